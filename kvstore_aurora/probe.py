"""The first find by key on a table whose layout is not cached yet: the record and the layout
from one statement, instead of ``LAYOUT_QUERY`` then the select.

The invariant that makes it exact: a probe's answer is used only when it shows everything
``LAYOUT_QUERY`` would have read, so ``build_layout`` of the probe's rows is the layout the
catalog gives. The probe's result must show

- the very table ``LAYOUT_QUERY`` reads: the one named ``kind`` in ``COALESCE(db_schema,
  current_schema())`` (not whatever the search path finds first, such as a temporary table),
  compared by OID with the table each result column comes from;
- exactly the key columns and ``doc`` (``t.*`` lists every column: one more means another
  layout), each of a type ``_PROBED_TYPES`` names, declared as that type (``pg_typeof`` of the
  column shows a domain as itself, where the result's description shows its base type).

Anything else (another layout, a missing table or schema, a connection inside a transaction, which
a failed probe would abort) returns ``None`` and the caller reads the catalog. ``ENABLED = False``
turns the probe off: every first read then goes through ``LAYOUT_QUERY``.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import pq, sql
from psycopg.pq import TransactionStatus

from kvstore.backend import Key, KindSchema, Record
from kvstore_aurora.connection import Connection
from kvstore_aurora.layout import Layout, build_layout, decode

__all__ = ["ENABLED", "find", "probe_sql", "read_probe"]

ENABLED = True
"""The one switch: ``False`` reads every table's layout from the catalog first."""

_PROBED_TYPES = {
    25: "text",
    1043: "character varying",
    20: "bigint",
    23: "integer",
    21: "smallint",
    3802: "jsonb",
}
"""The types, by OID and as ``format_type`` names them, that the columns of a probed table (its key
columns and ``doc``) may have."""


def probe_sql(schema: KindSchema, db_schema: str | None) -> sql.Composed:
    """A find by key (parameters: the key) that also shows whether the table has the default
    layout (``read_probe`` reads it): ``t.*`` beside the declared type of each key column and of
    ``doc``, the schema ``LAYOUT_QUERY`` would look in, and the OID of the table it would find
    there."""
    names = (*schema.id_fields, "doc")
    match = [
        sql.SQL("t.{} = %s::{}").format(
            sql.Identifier(field), sql.SQL("text" if key_type is str else "bigint")
        )
        for field, key_type in zip(schema.id_fields, schema.key_types, strict=True)
    ]
    return sql.SQL(
        "SELECT to_regclass(quote_ident(COALESCE({db_schema}, current_schema())) || '.' || "
        "quote_ident({kind}))::oid, COALESCE({db_schema}, current_schema()), {declared}, t.* "
        "FROM (VALUES (1)) AS one LEFT JOIN {table} AS t ON {match}"
    ).format(
        db_schema=sql.Literal(db_schema),
        kind=sql.Literal(schema.kind),
        declared=sql.SQL(", ").join(
            sql.SQL("pg_typeof(t.{})::oid").format(sql.Identifier(name)) for name in names
        ),
        table=sql.Identifier(db_schema, schema.kind) if db_schema else sql.Identifier(schema.kind),
        match=sql.SQL(" AND ").join(match),
    )


def read_probe(
    schema: KindSchema, result: pq.abc.PGresult, row: tuple[Any, ...]
) -> tuple[Layout, tuple[Any, ...] | None] | None:
    """From ``probe_sql``'s result: the layout, and the matching row in ``layout.selected``'s
    order (``None``: no match). ``None`` when the table's layout is not provably the default one
    (see the module's invariant)."""
    wanted = [name.encode() for name in (*schema.id_fields, "doc")]
    first = 2 + len(wanted)
    table_oid, namespace, declared = row[0], row[1], dict(zip(wanted, row[2:first], strict=True))
    names = [bytes(result.fname(index) or b"") for index in range(first, result.nfields)]
    if table_oid is None or sorted(names) != sorted(wanted):
        return None
    rows = []
    for index, name in enumerate(names, first):
        oid = result.ftype(index)
        if result.ftable(index) != table_oid or oid not in _PROBED_TYPES or declared[name] != oid:
            return None
        rows.append((name.decode(), _PROBED_TYPES[oid], result.fmod(index), namespace))
    layout = build_layout(schema, rows)
    assert layout is not None  # rows is not empty
    values = {column[0]: value for column, value in zip(rows, row[first:], strict=True)}
    if values[schema.id_fields[0]] is None:  # no match: a matched row's key equals the parameter
        return layout, None
    return layout, tuple(values[name] for name in layout.selected)


def find(
    connection: Connection, schema: KindSchema, db_schema: str | None, key: Key
) -> tuple[Layout, Record | None] | None:
    """The table's layout and the record at ``key`` (``None``: none), from one statement; or
    ``None`` when the layout must be read from the catalog (see the invariant), or when the probe
    is off or the connection is inside a transaction or the caller's pipeline, which a failed
    probe would abort."""
    if (
        not ENABLED
        or not connection.autocommit
        or connection.pgconn.pipeline_status
        or connection.pgconn.transaction_status != TransactionStatus.IDLE
    ):
        return None
    try:
        cursor = connection.execute(probe_sql(schema, db_schema), key, prepare=False)
        row = cursor.fetchone()
    except psycopg.ProgrammingError:  # no such table or column: LAYOUT_QUERY says which
        return None
    result = cursor.pgresult
    assert row is not None  # the LEFT JOIN's one row
    assert result is not None
    probed = read_probe(schema, result, row)
    if probed is None:
        return None
    layout, found = probed
    return layout, None if found is None else decode(layout, found)
