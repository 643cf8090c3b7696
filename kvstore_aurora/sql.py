"""WHERE clauses for filters and ``find_in`` with the contract's exact, typed equality.

A real column compares with ``=`` on a parameter cast to its type (a value that cannot be stored
in the column matches nothing); a ``doc`` field compares ``doc -> 'f'`` with a jsonb value (jsonb
equality is typed, numeric for numbers, deep for lists and dicts), after a ``doc @> ...``
containment test that a GIN index on ``doc`` serves. A filter value ``None`` means "absent".
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from kvstore_aurora.layout import UNFIT, Layout

__all__ = [
    "Shape",
    "Where",
    "find_in_clause",
    "insert_sql",
    "json_insert_sql",
    "where_clause",
    "where_plan",
    "where_sql",
]

_TRUE = sql.SQL("TRUE")
MAX_CONTAINMENTS = 200
"""Up to this many values, ``find_in`` on a ``doc`` field is written so the GIN index serves it."""


class Where:
    """A WHERE clause, its parameters, and whether it can never match (then skip the I/O)."""

    __slots__ = ("clause", "never", "params", "shape")  # a plain class: see layout.Column

    def __init__(
        self,
        clause: sql.Composable,
        params: list[Any],
        never: bool = False,
        shape: Hashable = None,
    ) -> None:
        self.clause = clause
        self.params = params
        self.never = never
        self.shape = shape
        """What the clause's text depends on besides the layout (``None``: not worked out), so a
        caller can render it once per shape."""


_NEVER = Where(sql.SQL("FALSE"), [], never=True)


Shape = tuple[tuple[str, str], ...]
"""What a WHERE clause's text depends on: each filtered field and how it is compared."""


def where_plan(layout: Layout, filters: Mapping[str, Any]) -> tuple[Shape, list[Any]] | None:
    """The shape and parameters of the clause matching ``filters``; ``None`` when nothing can.

    Computing them costs no SQL composition: a caller may cache ``where_sql(layout, shape)``.
    """
    shape: list[tuple[str, str]] = []
    params: list[Any] = []
    contained: dict[str, Any] = {}
    for field, value in filters.items():
        column = layout.column(field)
        if column is not None:
            if value is None:
                shape.append((field, "null"))
                continue
            encoded = column.encode(value)
            if encoded is UNFIT:
                return None
            shape.append((field, "="))
            params.append(encoded)
        elif not layout.has_doc:
            # The table cannot hold this field: it is absent from every record.
            if value is not None:
                return None
        elif value is None:
            shape.append((field, "absent"))
            params.append(field)
        else:
            contained[field] = value
            shape.append((field, "doc"))
            params += [field, Jsonb(value)]
    if contained:
        params.insert(0, Jsonb(contained))
    return tuple(shape), params


def where_sql(layout: Layout, shape: Shape) -> sql.Composable:
    """The clause text for a ``where_plan`` shape (its parameters in ``where_plan``'s order)."""
    parts: list[sql.Composable] = []
    for field, how in shape:
        if how == "null":
            parts.append(sql.SQL("{} IS NULL").format(sql.Identifier(field)))
        elif how == "=":
            column = layout.column(field)
            assert column is not None
            parts.append(sql.SQL("{} = %s::{}").format(sql.Identifier(field), column.cast))
        elif how == "absent":
            parts.append(sql.SQL("NOT (doc ? %s)"))
        else:
            parts.append(sql.SQL("(doc -> %s) = %s::jsonb"))
    if any(how == "doc" for _, how in shape):
        parts.insert(0, sql.SQL("doc @> %s::jsonb"))
    return sql.SQL(" AND ").join(parts) if parts else _TRUE


def where_clause(layout: Layout, filters: Mapping[str, Any]) -> Where:
    """The clause matching records equal to ``filters`` (AND of each field's equality)."""
    plan = where_plan(layout, filters)
    if plan is None:
        return _NEVER
    shape, params = plan
    return Where(where_sql(layout, shape), params)


def find_in_clause(layout: Layout, field: str, values: Sequence[Any]) -> Where:
    """The clause matching records whose ``field`` equals one of ``values`` (None: absent)."""
    name = sql.Identifier(field)
    absent = any(value is None for value in values)
    present = [value for value in values if value is not None]
    column = layout.column(field)
    parts: list[sql.Composable] = []
    params: list[Any] = []
    shape: list[Hashable] = [field, absent]
    if column is not None:
        encoded = [column.encode(value) for value in present]
        encoded = [value for value in encoded if value is not UNFIT]
        if encoded:
            parts.append(sql.SQL("{} = ANY(%s::{}[])").format(name, column.cast))
            params.append(encoded)
            shape.append("any")
        if absent:
            parts.append(sql.SQL("{} IS NULL").format(name))
    elif layout.has_doc:
        if present:
            exact: sql.Composable = sql.SQL("(doc -> %s) = ANY(%s::jsonb[])")
            if len(present) <= MAX_CONTAINMENTS:
                # GIN cannot serve "= ANY": an OR of containments lets it (a BitmapOr).
                contained = sql.SQL(" OR ").join([sql.SQL("doc @> %s::jsonb")] * len(present))
                exact = sql.SQL("(({}) AND {})").format(contained, exact)
                params += [Jsonb({field: value}) for value in present]
                shape.append(len(present))
            parts.append(exact)
            params += [field, [Jsonb(value) for value in present]]
            shape.append("doc")
        if absent:
            parts.append(sql.SQL("NOT (doc ? %s)"))
            params.append(field)
    elif absent:
        return Where(_TRUE, [], shape=("all",))
    if not parts:
        return _NEVER
    clause = sql.SQL("({})").format(sql.SQL(" OR ").join(parts))
    return Where(clause, params, shape=tuple(shape))


def insert_sql(layout: Layout, upsert: bool, source: sql.Composable) -> sql.Composed:
    """``INSERT`` of ``source``'s rows (``Layout.selected``'s columns) with ``ON CONFLICT`` on the
    key: ``DO UPDATE`` of every other column when ``upsert``, else ``DO NOTHING``."""
    names = list(layout.selected)
    keys = [column.name for column in layout.keys]
    others = [name for name in names if name not in keys]
    conflict: sql.Composable
    if upsert and others:
        conflict = sql.SQL("DO UPDATE SET {}").format(
            sql.SQL(", ").join(
                sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(name)) for name in others
            )
        )
    else:
        conflict = sql.SQL("DO NOTHING")
    return sql.SQL("INSERT INTO {} ({}) {} ON CONFLICT ({}) {}").format(
        layout.table,
        sql.SQL(", ").join(map(sql.Identifier, names)),
        source,
        sql.SQL(", ").join(map(sql.Identifier, keys)),
        conflict,
    )


def json_insert_sql(layout: Layout, upsert: bool, many: bool) -> sql.Composed:
    """The insert (``upsert``: or replace) of whole records sent as JSON in one parameter: one
    record, or (``many``) a JSON array of them, written in the array's order.

    Each record's key and real-column fields are taken out into their columns (cast to the column's
    type from their JSON text, which is exact for the values ``check_rows`` lets through) and the
    rest becomes ``doc``. One ``dumps`` call on the client encodes a whole batch.
    """
    stored = [*layout.keys, *(c for c in layout.columns.values() if c.kind != "unsupported")]
    values: list[sql.Composable] = []
    for column in stored:
        name = sql.Literal(column.name)
        if column.kind == "jsonb":
            values.append(sql.SQL("e -> {}").format(name))
        elif column.kind == "text":
            values.append(sql.SQL("e ->> {}").format(name))
        else:
            values.append(sql.SQL("(e ->> {})::{}").format(name, column.cast))
    if layout.has_doc:
        names = sql.Literal([column.name for column in stored])
        values.append(sql.SQL("e - {}::text[]").format(names))
    records = "jsonb_array_elements(%b::jsonb) AS e" if many else "(SELECT %b::jsonb AS e) AS r"
    source = sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(values), sql.SQL(records))
    return insert_sql(layout, upsert, source)
