"""Whole records sent as JSON and split by the server: the INSERT of ``put``, ``put_many`` and a
guarded ``Put``.

One JSON parameter holds a record, or a JSON array of them (one ``dumps`` call on the client for a
whole batch); the statement takes each key and real-column field out into its column (cast to
the column's type from its JSON text, which is exact for the values ``check_rows`` lets through)
and keeps the rest as ``doc``. A plain put on a table of the default layout (key columns and
``doc``) sends its key values as parameters beside the JSON instead (``keyed_insert_sql``): the
server then only trims the key fields from ``doc``.
"""

from __future__ import annotations

from typing import Any

from psycopg import sql

from kvstore_aurora.layout import ALIAS, Layout

__all__ = [
    "insert_sql",
    "json_insert_sql",
    "json_source",
    "json_values",
    "keyed_insert_sql",
    "replace_sql",
    "stored_columns",
]


def stored_columns(layout: Layout) -> list[Any]:
    """The columns a write fills from a record: keys, then supported real columns."""
    return [*layout.keys, *(c for c in layout.columns.values() if c.kind != "unsupported")]


def json_values(layout: Layout, source: str = "e") -> list[sql.Composable]:
    """The values of ``layout.selected``'s columns taken from the JSON record ``source``."""
    stored = stored_columns(layout)
    element = sql.Identifier(source)
    values: list[sql.Composable] = []
    for column in stored:
        name = sql.Literal(column.name)
        if column.kind == "jsonb":
            values.append(sql.SQL("{} -> {}").format(element, name))
        elif column.kind == "text":
            values.append(sql.SQL("{} ->> {}").format(element, name))
        else:
            values.append(sql.SQL("({} ->> {})::{}").format(element, name, column.cast))
    if layout.has_doc:
        names = sql.Literal([column.name for column in stored])
        values.append(sql.SQL("{} - {}::text[]").format(element, names))
    return values


def insert_sql(layout: Layout, source: sql.Composable, conflict: sql.Composable) -> sql.Composed:
    """``INSERT`` of ``source``'s rows (``layout.selected``'s columns) with ``conflict`` (what
    follows ``ON CONFLICT (key)``)."""
    keys = [column.name for column in layout.keys]
    return sql.SQL("INSERT INTO {} AS {} ({}) {} ON CONFLICT ({}) {}").format(
        layout.table,
        sql.Identifier(ALIAS),
        sql.SQL(", ").join(map(sql.Identifier, layout.selected)),
        source,
        sql.SQL(", ").join(map(sql.Identifier, keys)),
        conflict,
    )


def replace_sql(layout: Layout, always: bool = False) -> sql.Composable:
    """``DO UPDATE SET`` of every non-key column from ``EXCLUDED``: an upsert replaces the whole
    record. A table of key columns only has nothing to replace: ``DO NOTHING``, or (``always``,
    for a ``WHERE`` to follow) the first key column set to itself."""
    keys = {column.name for column in layout.keys}
    others = [name for name in layout.selected if name not in keys]
    if not others and always:
        return sql.SQL("DO UPDATE SET {0} = EXCLUDED.{0}").format(
            sql.Identifier(layout.keys[0].name)
        )
    if not others:
        return sql.SQL("DO NOTHING")
    return sql.SQL("DO UPDATE SET {}").format(
        sql.SQL(", ").join(
            sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(name)) for name in others
        )
    )


def json_source(layout: Layout, many: bool) -> sql.Composed:
    """The rows of one JSON record parameter, or (``many``) of a JSON array of them."""
    records = "jsonb_array_elements(%b::jsonb) AS e" if many else "(SELECT %b::jsonb AS e) AS one"
    return sql.SQL("SELECT {} FROM {}").format(
        sql.SQL(", ").join(json_values(layout)), sql.SQL(records)
    )


def keyed_insert_sql(layout: Layout) -> sql.Composed | None:
    """The upsert of one record of the default layout (key columns and ``doc``) with its key
    values as parameters, then the record as JSON (``doc`` is the record less its key fields):
    the server only casts and trims, where ``json_insert_sql`` takes each key out of the JSON
    through a subquery. ``None`` for a layout with other columns."""
    if layout.columns or not layout.has_doc:
        return None
    names = [column.name for column in layout.keys]
    values = [sql.SQL("%s::{}").format(column.cast) for column in layout.keys]
    values.append(sql.SQL("%b::jsonb - {}::text[]").format(sql.Literal(names)))
    source = sql.SQL("VALUES ({})").format(sql.SQL(", ").join(values))
    return insert_sql(layout, source, replace_sql(layout))


def json_insert_sql(layout: Layout, upsert: bool, many: bool) -> sql.Composed:
    """The insert (``upsert``: or replace) of whole records sent as JSON in one parameter: one
    record, or (``many``) a JSON array of them, written in the array's order."""
    conflict = replace_sql(layout) if upsert else sql.SQL("DO NOTHING")
    return insert_sql(layout, json_source(layout, many), conflict)
