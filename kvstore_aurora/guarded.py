"""Guarded writes (``kvstore.writes``) as single statements: the check of the guard on the key's
live record and the write are one statement.

A put's and a delete's statement start with ``WITH p AS (SELECT %s AS k0, ...)``: the key bound
once and referenced as ``p.k0``; an update's has ``p`` in its ``FROM``, with every value it binds
but its guard's (its changes, key, increments' amounts and size bound). The write:

- a ``Put`` that may write on a key with no live record: ``INSERT ... ON CONFLICT (key) DO UPDATE
  ... WHERE <the stored row is expired, or the guard holds on it>`` (``DO NOTHING`` for a create
  without a ``ttl_field``), so a create takes an expired record's key;
- a ``Put`` that needs a live record, and every ``Update``: ``UPDATE ... WHERE key AND live AND
  guard [AND increments valid AND a size bound]`` (see ``update_sql``; each increment's stored
  number is computed once, in a correlated subquery: ``increments.from_derived``);
- a ``Delete``: ``DELETE ... WHERE key AND live AND guard``.

A single put or delete ends with the outcome (``outcome_sql``: whether ``w`` wrote, and the key's
row as the statement's snapshot shows it, read only when nothing was written). A single update is
the plain ``UPDATE ... RETURNING`` the merged row: when it returns nothing, the driver reads the
record to say why (two statements then, one for every update that writes). A transaction's step
ends with ``SELECT 1 / (SELECT count(*) FROM w)``, which fails when the guard did not hold. The
updates of one table in one transaction whose guards bind no value (no ``expect``, version or
expiry) and whose statements have one shape share one step (``shared_update``): ``p`` is then a
``VALUES`` list of their rows, and the step fails unless every one of them wrote.

The size rule of an ``Update`` (``check_item_size`` of the merged record) is kept by a bound the
statement checks, never below the merged record's DynamoDB size: twice the stored ``doc``'s JSON
text (a value's JSON text is at least half its item size; a one-digit number in a list is the
worst case), plus the changes' bound (``Update.size_bound``, increments included). The common
update is then one autocommit statement; one whose bound reaches the limit (a stored record of
about 200 KB of JSON or more) writes nothing, and the driver runs it again without the bound in a
transaction whose COMMIT waits for core's exact check of the merged record
(``kvstore_aurora.conditional``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from kvstore.conditions import Le, NotExpired
from kvstore.errors import InvalidArgument
from kvstore.plan import Conditions
from kvstore.schema import KindSchema
from kvstore.values import MAX_ITEM_SIZE, item_size, number_entry_bound
from kvstore.writes import Check, Delete, Guard, Put, Update
from kvstore_aurora import increments as inc
from kvstore_aurora.columns import decimal, dumps
from kvstore_aurora.layout import Layout
from kvstore_aurora.predicates import ALIAS, Token, column_sql, condition, render
from kvstore_aurora.upserts import json_source, replace_sql, stored_columns

__all__ = ["Statement", "check_sql", "delete_sql", "put_sql", "shared_update", "update_sql"]

_ALIAS = sql.Identifier(ALIAS)


class Statement:
    """A statement's shape (what its text depends on), parameters, and how to compose it."""

    __slots__ = ("build", "params", "shape", "shareable")

    def __init__(
        self,
        shape: Any,
        params: list[Any],
        build: Callable[[], sql.Composable],
        shareable: bool = False,
    ) -> None:
        self.shape = shape
        self.params = params
        self.build = build
        self.shareable = shareable
        """Whether the statement's guard binds no value (only ``update_sql`` says so)."""


def _params_cte(layout: Layout) -> sql.Composable:
    """``WITH p AS (...)``: the key's parameters as ``p.k0``..."""
    names = [
        sql.SQL("%s::{} AS {}").format(column.cast, sql.Identifier(f"k{i}"))
        for i, column in enumerate(layout.keys)
    ]
    return sql.SQL("WITH p AS (SELECT {})").format(sql.SQL(", ").join(names))


def _key_match(layout: Layout) -> sql.Composable:
    return sql.SQL(" AND ").join(
        sql.SQL("{} = p.{}").format(column_sql(column.name), sql.Identifier(f"k{i}"))
        for i, column in enumerate(layout.keys)
    )


def _tokens(layout: Layout, conditions: Conditions, params: list[Any]) -> tuple[Token, ...]:
    return tuple(condition(layout, field, cond, params, keyed=True) for field, cond in conditions)


def _all(layout: Layout, tokens: tuple[Token, ...]) -> sql.Composable:
    if not tokens:
        return sql.SQL("TRUE")
    return sql.SQL("({})").format(sql.SQL(" AND ").join(render(layout, t) for t in tokens))


def _live(schema: KindSchema, guard: Guard) -> Conditions:
    ttl = schema.ttl_field
    return () if ttl is None or guard.now is None else ((ttl, NotExpired(guard.now)),)


def _expired(schema: KindSchema, guard: Guard) -> Conditions:
    ttl = schema.ttl_field
    return () if ttl is None or guard.now is None else ((ttl, Le(guard.now)),)


def outcome_sql(layout: Layout, ctes: sql.Composable) -> sql.Composed:
    """``ctes`` (ending with ``w``, the write; ``p`` precedes them) then one row: how many rows
    ``w`` wrote, and the key's row as the statement's snapshot shows it (all NULL when there is
    none, or when ``w`` wrote)."""
    return sql.SQL(
        "{}, {} SELECT (SELECT count(*) FROM w), {} FROM p "
        "LEFT JOIN {} AS {} ON {} AND NOT EXISTS (SELECT 1 FROM w)"
    ).format(
        _params_cte(layout),
        ctes,
        sql.SQL(", ").join(column_sql(name) for name in layout.selected),
        layout.table,
        _ALIAS,
        _key_match(layout),
    )


def step_sql(layout: Layout, ctes: sql.Composable) -> sql.Composed:
    """``ctes`` (ending with ``w``) as a transaction's step: an error (division by zero) when
    ``w`` wrote nothing."""
    return sql.SQL("{}, {} SELECT 1 / (SELECT count(*) FROM w)::int").format(
        _params_cte(layout), ctes
    )


def _w(write: sql.Composable) -> sql.Composed:
    return sql.SQL("w AS ({})").format(write)


def put_sql(layout: Layout, schema: KindSchema, op: Put, step: bool) -> Statement | None:
    """The statement of a guarded ``Put`` (``None``: its guard can hold on nothing)."""
    guard = op.guard
    key = list(schema.key_of(op.record))
    params: list[Any] = [*key, dumps(op.record)]
    if guard.when_absent:
        expired = _tokens(layout, _expired(schema, guard), params)
        present = (
            None if guard.when_present is None else _tokens(layout, guard.when_present, params)
        )
        shape: Any = ("put-insert", step, expired, present)

        def build() -> sql.Composable:
            parts = [_all(layout, expired)] if expired else []
            if present is not None:
                parts.append(_all(layout, present))
            conflict: sql.Composable
            if not parts:
                conflict = sql.SQL("DO NOTHING")
            else:
                conflict = sql.SQL("{} WHERE {}").format(
                    replace_sql(layout, always=True), sql.SQL(" OR ").join(parts)
                )
            write = _w(
                sql.SQL("{} RETURNING 1").format(
                    _insert(layout, json_source(layout, many=False), conflict)
                )
            )
            return step_sql(layout, write) if step else outcome_sql(layout, write)

        return Statement(shape, params, build)
    if guard.when_present is None:
        return None
    live = _tokens(layout, _live(schema, guard), params)
    present = _tokens(layout, guard.when_present, params)
    shape = ("put-update", step, live, present)

    def build_update() -> sql.Composable:
        stored = [c.name for c in stored_columns(layout)] + (["doc"] if layout.has_doc else [])
        keys = {column.name for column in layout.keys}
        sets = [
            sql.SQL("{0} = x.{0}").format(sql.Identifier(name))
            for name in stored
            if name not in keys
        ] or [sql.SQL("{0} = {1}").format(sql.Identifier(stored[0]), column_sql(stored[0]))]
        write = sql.SQL(
            "UPDATE {} AS {} SET {} FROM p, ({}) AS x ({}) WHERE {} AND {} AND {} RETURNING 1"
        ).format(
            layout.table,
            _ALIAS,
            sql.SQL(", ").join(sets),
            json_source(layout, many=False),
            sql.SQL(", ").join(map(sql.Identifier, stored)),
            _key_match(layout),
            _all(layout, live),
            _all(layout, present),
        )
        return step_sql(layout, _w(write)) if step else outcome_sql(layout, _w(write))

    return Statement(shape, params, build_update)


def _insert(layout: Layout, source: sql.Composable, conflict: sql.Composable) -> sql.Composed:
    keys = [column.name for column in layout.keys]
    return sql.SQL("INSERT INTO {} AS {} ({}) {} ON CONFLICT ({}) {}").format(
        layout.table,
        _ALIAS,
        sql.SQL(", ").join(map(sql.Identifier, layout.selected)),
        source,
        sql.SQL(", ").join(map(sql.Identifier, keys)),
        conflict,
    )


def delete_sql(layout: Layout, schema: KindSchema, op: Delete, step: bool) -> Statement:
    """The statement of a ``Delete``: the record at the key, when the guard holds on it. A
    guarded one first locks the row (``c``) and judges the guard there; as a step it also holds,
    deleting nothing, when there is no live record and the guard allows that."""
    guard = op.guard
    params: list[Any] = list(op.key)
    unconditional = guard.unconditional
    live = () if unconditional else _tokens(layout, _live(schema, guard), params)
    present = None if guard.when_present is None else _tokens(layout, guard.when_present, params)
    shape = ("delete", step, unconditional, live, present, guard.when_absent)

    def build() -> sql.Composable:
        if unconditional:
            ctes = _w(
                sql.SQL("DELETE FROM {} AS {} USING p WHERE {} RETURNING 1").format(
                    layout.table, _ALIAS, _key_match(layout)
                )
            )
            if step:
                return sql.SQL("{}, {} SELECT count(*) FROM w").format(_params_cte(layout), ctes)
            return outcome_sql(layout, ctes)
        ctes = sql.SQL("{}, {}").format(
            _locked(layout, live, present, "UPDATE"),
            _w(
                sql.SQL(
                    "DELETE FROM {} AS {} USING p, c WHERE {} AND c.live AND c.ok RETURNING 1"
                ).format(layout.table, _ALIAS, _key_match(layout))
            ),
        )
        if not step:
            return outcome_sql(layout, ctes)
        return sql.SQL("{}, {} SELECT {}").format(
            _params_cte(layout), ctes, _holds(guard.when_absent, "EXISTS (SELECT 1 FROM w)")
        )

    return Statement(shape, params, build)


def _locked(
    layout: Layout, live: tuple[Token, ...], present: tuple[Token, ...] | None, strength: str
) -> sql.Composed:
    """``c``: the key's row locked (``FOR UPDATE`` or ``FOR SHARE``: the latest version, which
    no other transaction can change until this one ends), whether it is live and whether the
    guard's conditions hold on it."""
    ok = sql.SQL("FALSE") if present is None else _all(layout, present)
    return sql.SQL(
        "c AS MATERIALIZED (SELECT {} AS live, {} AS ok FROM {} AS {}, p WHERE {} FOR {} OF {})"
    ).format(
        _all(layout, live),
        ok,
        layout.table,
        _ALIAS,
        _key_match(layout),
        sql.SQL(strength),
        _ALIAS,
    )


def _holds(when_absent: bool, done: str) -> sql.Composed:
    """1 when ``done`` (the write happened), or when there is no live record and the guard allows
    that; else a division by zero, which fails the transaction."""
    return sql.SQL(
        "1 / (CASE WHEN {} THEN 1 WHEN {} AND NOT EXISTS (SELECT 1 FROM c WHERE live) THEN 1 "
        "ELSE 0 END)"
    ).format(sql.SQL(done), sql.SQL("TRUE" if when_absent else "FALSE"))


def check_sql(layout: Layout, schema: KindSchema, op: Check) -> Statement:
    """A transaction's ``Check``: a step that fails unless the guard holds on the key's record,
    which it locks (``FOR SHARE``) until the transaction ends."""
    guard = op.guard
    params: list[Any] = list(op.key)
    live = _tokens(layout, _live(schema, guard), params)
    present = None if guard.when_present is None else _tokens(layout, guard.when_present, params)
    shape = ("check", live, present, guard.when_absent)

    def build() -> sql.Composable:
        return sql.SQL("{}, {} SELECT {}").format(
            _params_cte(layout),
            _locked(layout, live, present, "SHARE"),
            _holds(guard.when_absent, "EXISTS (SELECT 1 FROM c WHERE live AND ok)"),
        )

    return Statement(shape, params, build)


# -- updates ---------------------------------------------------------------------------------------


def update_sql(
    layout: Layout,
    schema: KindSchema,
    op: Update,
    mode: str,
    bounded: bool = True,
    rows: int = 1,
    idle: bool = False,
) -> Statement:
    """The statement of an ``Update``: ``mode`` ``"write"`` (returns the merged row, or nothing
    when it wrote nothing: the caller reads the current row to say why), ``"step"`` (a
    transaction's step), ``"checked"`` (a step returning the merged row). ``bounded``: only when
    the size bound shows the merged record is small enough.

    An increment that breaks the number rules fails a step, and a write on an ``idle``
    connection (in no transaction, whose failure aborts nothing else), by a division by zero;
    any other write then writes nothing.

    Every value of ``op`` that the statement binds is a column of ``p`` (its changes, key,
    increments' amounts and size bound), except its guard's: a statement whose guard binds none
    (``Statement.shareable``) may be a step of ``rows`` updates of the same shape, with ``p`` a
    ``VALUES`` list of their rows (``shared_update``), that fails unless every one wrote."""
    guard = op.guard
    amounts = list(op.increments.items())
    # p's columns in order: the doc's removes and sets, the real columns' values, the key, the
    # increments' amounts, the size bound. Their parameters come first, then WHERE's.
    params: list[Any] = []
    doc_removes: list[str] = []
    doc_sets: dict[str, Any] = {}
    column_sets: list[str] = []
    column_removes: list[str] = []
    for field in op.removes:
        place = layout.place(field)
        if place.kind == "json" and place.column is None:
            doc_removes.append(field)
        elif place.kind in ("column", "json"):
            column_removes.append(field)
    for field, value in op.sets.items():
        place = layout.place(field)
        if place.kind == "json" and place.column is None:
            doc_sets[field] = value
        else:
            column_sets.append(field)
    for field, _amount in amounts:
        if layout.place(field).kind == "none":
            layout.encode(field, 0)  # raises: the table has no place for it
    if doc_removes:
        params.append(doc_removes)
    if doc_sets:
        params.append(Jsonb(doc_sets))
    params += [layout.encode(field, op.sets[field]) for field in column_sets]
    params += [*op.key, *(decimal(amount) for _field, amount in amounts)]
    if bounded:
        # The merged record's fields come from the stored record (bounded in SQL by
        # _size_bound) or from the changes, sets and increments (their bound, or sized here):
        # their sum is never below the merged record's size.
        room = op.size_bound
        if room is None:
            room = item_size(dict(zip(schema.id_fields, op.key, strict=True)) | op.sets)
            room += sum(number_entry_bound(field) for field, _amount in amounts)
        room += sum(
            number_entry_bound(column.name)
            for column in layout.columns.values()
            if column.kind in ("int", "numeric", "double", "boolean")
        )
        params.append(room)
    bound = len(params)
    live = _tokens(layout, _live(schema, guard), params)
    present = _tokens(layout, guard.when_present or (), params)
    failing = mode != "write" or idle
    shape = (
        "update",
        mode,
        failing,
        tuple((field, type(amount) is int) for field, amount in amounts),
        bool(doc_removes),
        bool(doc_sets),
        tuple(column_sets),
        tuple(column_removes),
        live,
        present,
        bounded,
    )

    def build() -> sql.Composable:
        p: list[tuple[str, sql.Composable]] = []  # p's columns: (name, cast)
        if doc_removes:
            p.append(("x", sql.SQL("text[]")))
        if doc_sets:
            p.append(("d", sql.SQL("jsonb")))
        p += [(f"c{i}", _column(layout, field).cast) for i, field in enumerate(column_sets)]
        p += [(f"k{i}", column.cast) for i, column in enumerate(layout.keys)]
        p += [(f"a{i}", sql.SQL("numeric")) for i in range(len(amounts))]
        if bounded:
            p.append(("b", sql.SQL("bigint")))
        assignments, checks = _update_parts(
            layout, amounts, bool(doc_removes), bool(doc_sets), failing
        )
        assignments += [
            sql.SQL("{} = p.{}").format(sql.Identifier(field), sql.Identifier(f"c{i}"))
            for i, field in enumerate(column_sets)
        ]
        assignments += [sql.SQL("{} = NULL").format(sql.Identifier(f)) for f in column_removes]
        if not assignments:
            first = layout.keys[0].name
            assignments.append(sql.SQL("{} = {}").format(sql.Identifier(first), column_sql(first)))
        where = [_key_match(layout), _all(layout, live), _all(layout, present), *checks]
        if bounded:
            where.append(sql.SQL("{} + p.b < {}").format(_size_bound(layout), MAX_ITEM_SIZE))
        returned = sql.SQL(", ").join(column_sql(name) for name in layout.selected)
        write = sql.SQL("UPDATE {} AS {} SET {} FROM {} WHERE {} RETURNING {}").format(
            layout.table,
            _ALIAS,
            sql.SQL(", ").join(assignments),
            _rows_of_p(p, rows),
            sql.SQL(" AND ").join(where),
            sql.SQL("1") if mode == "step" else returned,
        )
        if mode == "write":
            return write
        if mode == "step":
            every = sql.SQL("WITH w AS ({}) SELECT 1 / ((SELECT count(*) FROM w) = {})::int")
            return every.format(write, sql.Literal(rows))
        names = sql.SQL(", ").join(sql.Identifier("w", name) for name in layout.selected)
        return sql.SQL(
            "WITH w AS ({}) SELECT (1 / (SELECT count(*) FROM w))::int, {} "
            "FROM (SELECT 1) AS one LEFT JOIN w ON TRUE"
        ).format(write, names)

    return Statement(shape, params, build, shareable=bound == len(params))


def shared_update(
    layout: Layout, schema: KindSchema, first: Update, statements: list[Statement]
) -> Statement:
    """One transaction step for updates of one table (each key once, ``first`` the first of
    them) whose ``statements`` (``update_sql``'s, in step mode) are shareable and of one shape:
    their shared statement, with their parameters row after row (``update_sql``'s docstring)."""
    params = [value for statement in statements for value in statement.params]
    rows = len(statements)

    def build() -> sql.Composable:
        return update_sql(layout, schema, first, "step", rows=rows).build()

    return Statement(("shared", rows, statements[0].shape), params, build)


def _rows_of_p(columns: list[tuple[str, sql.Composable]], rows: int) -> sql.Composed:
    """``p``: one row of ``columns`` (each a name and a cast) bound as parameters, or ``rows``
    rows of them in a ``VALUES`` list."""
    names = [sql.Identifier(name) for name, _cast in columns]
    if rows == 1:
        return sql.SQL("(SELECT {}) AS p").format(
            sql.SQL(", ").join(
                sql.SQL("%s::{} AS {}").format(cast, name)
                for (_name, cast), name in zip(columns, names, strict=True)
            )
        )
    row = sql.SQL("({})").format(
        sql.SQL(", ").join(sql.SQL("%s::{}").format(cast) for _name, cast in columns)
    )
    return sql.SQL("(VALUES {}) AS p ({})").format(
        sql.SQL(", ").join([row] * rows), sql.SQL(", ").join(names)
    )


def _column(layout: Layout, field: str) -> Any:
    column = layout.column(field)
    if column is None:  # pragma: no cover: layout.encode raised already
        raise InvalidArgument(f"field {field!r} has no column")
    return column


def _update_parts(
    layout: Layout,
    amounts: list[tuple[str, int | float]],
    doc_removes: bool,
    doc_sets: bool,
    failing: bool,
) -> tuple[list[sql.Composable], list[sql.Composable]]:
    """The assignments of ``doc`` and of incremented columns, and the increments' checks for
    the WHERE (none when ``failing``: the first assignment fails the statement instead).

    Each increment's stored number (``S``) is computed once a value, in a correlated subquery
    (``inc.from_derived``): written inline, every check and assignment would repeat ``S``'s
    expression, and PostgreSQL prepares each copy at every execution (the statement took
    several times a plain UPDATE's time). A check in the SET spares the WHERE a subquery of its
    own, which the server would start at every run too.
    """
    # (column, value, its type, whether the value reads y's S)
    targets: list[tuple[str, sql.Composable, sql.Composable, bool]] = []
    checks: list[sql.Composable] = []
    doc_increments: list[sql.Composable] = []
    places = [layout.place(field) for field, _amount in amounts]
    for number, ((field, amount), place) in enumerate(zip(amounts, places, strict=True)):
        stored, total, result = inc.derived_names(number)
        column = None if place.kind == "json" else place.column
        checks += [
            sql.SQL("y.{}").format(sql.Identifier(f"ok{number}")),
            inc.valid(stored, total, type(amount) is int),
            inc.fits(column, result),
        ]
        if place.kind == "json" and place.column is None:
            doc_increments += [sql.Literal(field), sql.SQL("to_jsonb({})").format(result)]
        else:
            assert place.column is not None
            column = place.column
            targets.append((column.name, inc.as_column(column, result), column.cast, True))
    if doc_removes or doc_sets or doc_increments:
        doc: sql.Composable = column_sql("doc")
        if doc_removes:
            doc = sql.SQL("({} - p.x)").format(doc)
        if doc_sets:
            doc = sql.SQL("({} || p.d)").format(doc)
        # A function takes at most 100 arguments: 50 fields a jsonb_build_object.
        for start in range(0, len(doc_increments), 100):
            doc = sql.SQL("({} || jsonb_build_object({}))").format(
                doc, sql.SQL(", ").join(doc_increments[start : start + 100])
            )
        targets.insert(0, ("doc", doc, sql.SQL("jsonb"), bool(doc_increments)))
    assignments: list[sql.Composable] = []
    for position, (name, value, cast, derived) in enumerate(targets):
        if checks and failing and position == 0:
            value, derived = inc.failing_unless(sql.SQL(" AND ").join(checks), value, cast), True
        if derived:
            value = inc.from_derived(places, value)
        assignments.append(sql.SQL("{} = {}").format(sql.Identifier(name), value))
    if checks and not failing:
        return assignments, [inc.from_derived(places, sql.SQL(" AND ").join(checks))]
    return assignments, []


def _size_bound(layout: Layout) -> sql.Composable:
    """Never below the stored record's item size: twice the JSON text of ``doc`` and of jsonb
    columns (a value's item size is at most twice its JSON text, a one-digit number in a list
    being the worst case), text columns' bytes and names (number and boolean columns are counted
    in the parameter added to it)."""
    parts: list[sql.Composable] = []
    if layout.has_doc:
        parts.append(sql.SQL("2 * octet_length({}::text)").format(column_sql("doc")))
    for column in layout.columns.values():
        name = column_sql(column.name)
        size = len(column.name)
        if column.kind == "jsonb":
            parts.append(sql.SQL("coalesce(2 * octet_length({}::text) + {}, 0)").format(name, size))
        elif column.kind == "text":
            parts.append(sql.SQL("coalesce(octet_length({}) + {}, 0)").format(name, size))
    return sql.SQL(" + ").join(parts) if parts else sql.SQL("0")
