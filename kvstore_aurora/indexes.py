"""Secondary indexes on PostgreSQL: the typed expression an index keeps of each field, its
partial predicate, and a sort condition as comparisons the index serves.

A field in ``doc`` (or a jsonb column) is indexed through an expression that is the field's value
when it fits the index's type, else NULL (``fits_index_type``'s rule, in SQL):

- ``str``: ``(CASE WHEN jsonb_typeof(doc -> 'f') = 'string' AND octet_length(doc ->> 'f')
  BETWEEN 1 AND 1024 THEN doc ->> 'f' END) COLLATE "C"``: strings by code point;
- ``int``: ``CASE WHEN jsonb_typeof(doc -> 'f') = 'number' AND <integral within int64> THEN
  (doc ->> 'f')::numeric END``;
- ``float``: ``CASE WHEN jsonb_typeof(doc -> 'f') = 'number' THEN (doc ->> 'f')::numeric END``.

Such an expression never fails (another tool's ``"5"`` or ``5.0`` in an int field is NULL, or
5), and a NULL never equals nor compares, so a read served by the index needs no extra type
checks: equality on the partition expression, ``IS NOT NULL`` on the sort expression (a record
whose sort field does not fit is not in the index), both estimated by the planner as they are.
A field in a typed column is indexed as the column itself (text ``COLLATE "C"``, cut to 1024
bytes by the same CASE). The index is partial, ``WHERE doc ? 'partition'`` (``"partition" IS NOT
NULL`` for a column): a record without the partition field is in no index. Reads write the very
same expressions, so the planner serves them from the index.
"""

from __future__ import annotations

from typing import Any

from psycopg import sql

from kvstore.conditions import BeginsWith, Between, Condition, Eq, Ge, Gt, Le, Lt
from kvstore.errors import ConfigError
from kvstore.schema import Index
from kvstore_aurora.columns import decimal
from kvstore_aurora.layout import Layout
from kvstore_aurora.predicates import ALIAS, column_sql, successor, typed_bound

__all__ = [
    "CASTS",
    "bounds",
    "column_kinds",
    "expr_kind",
    "index_expr",
    "index_predicate",
    "parameter",
]

CASTS = {"text": "text", "int": "bigint", "numeric": "numeric"}
"""The SQL type of an index expression of each kind (``expr_kind``), for its parameters."""

_INDEXABLE = {str: ("text", "jsonb"), int: ("int", "jsonb"), float: ("int", "numeric", "jsonb")}
"""The column kinds that can hold an index field of each key type (``doc`` holds any)."""
_OPS: dict[type[Condition], str] = {Lt: "<", Le: "<=", Gt: ">", Ge: ">="}
_INT64 = "-9223372036854775808 AND 9223372036854775807"


def column_kinds(layout: Layout, index: Index) -> list[str | None]:
    """The kind of the column holding each of ``index``'s fields (``None``: ``doc``);
    ``ConfigError`` when the table cannot hold a field as the index's type."""
    kinds: list[str | None] = []
    for field, key_type in zip(index.fields, index.key_types, strict=True):
        place = layout.place(field)
        column = place.column
        if place.kind == "none" or (column is not None and column.kind not in _INDEXABLE[key_type]):
            where = f"a column of type {column.data_type}" if column else "no column and no doc"
            raise ConfigError(
                f"index {index.name!r} of kind {layout.kind!r} keeps {field!r} as "
                f"{key_type.__name__}, but table {layout.schema}.{layout.kind} has {where} for it"
            )
        kinds.append(None if column is None else column.kind)
    return kinds


def expr_kind(key_type: type, column_kind: str | None) -> str:
    """What an index expression compares as: ``text``, ``int`` (a bigint column) or
    ``numeric``."""
    if key_type is str:
        return "text"
    return "int" if column_kind == "int" else "numeric"


def index_expr(
    field: str, key_type: type, column_kind: str | None, alias: str | None = ALIAS
) -> sql.Composable:
    """The typed expression an index keeps of ``field`` (see the module's docstring);
    ``column_kind`` is the kind of the column holding it, ``None`` for ``doc``."""
    if column_kind is None or column_kind == "jsonb":
        value: sql.Composable
        text: sql.Composable
        if column_kind is None:
            doc, name = column_sql("doc", alias), sql.Literal(field)
            value = sql.SQL("({} -> {})").format(doc, name)
            text = sql.SQL("({} ->> {})").format(doc, name)
        else:
            value = column_sql(field, alias)
            text = sql.SQL("({} #>> '{{}}')").format(value)
        if key_type is str:
            return sql.SQL(
                "((CASE WHEN jsonb_typeof({0}) = 'string' AND octet_length({1}) BETWEEN 1 AND "
                '1024 THEN {1} END) COLLATE "C")'
            ).format(value, text)
        number = sql.SQL("({}::numeric)").format(text)
        if key_type is int:
            return sql.SQL(
                "(CASE WHEN jsonb_typeof({0}) = 'number' AND {1} = trunc({1}) AND {1} BETWEEN {2} "
                "THEN {1} END)"
            ).format(value, number, sql.SQL(_INT64))
        return sql.SQL("(CASE WHEN jsonb_typeof({}) = 'number' THEN {} END)").format(value, number)
    column = column_sql(field, alias)
    if column_kind == "text":
        return sql.SQL(
            '((CASE WHEN octet_length({0}) BETWEEN 1 AND 1024 THEN {0} END) COLLATE "C")'
        ).format(column)
    return column


def index_predicate(field: str, column_kind: str | None, alias: str | None = ALIAS) -> sql.Composed:
    """The partial index's predicate: the records that have the index's partition field."""
    if column_kind is None:
        return sql.SQL("({} ? {})").format(column_sql("doc", alias), sql.Literal(field))
    return sql.SQL("({} IS NOT NULL)").format(column_sql(field, alias))


def parameter(kind: str, value: Any) -> Any:
    """A canonical value as a parameter compared with an expression of ``kind``; ``None`` when
    no value of that expression can equal it (a fraction against an int column)."""
    if kind == "numeric":
        return decimal(value)
    if kind == "int" and type(value) is not int:
        return None
    return value


def bounds(kind: str, cond: Condition) -> list[tuple[str, Any]] | bool:
    """A sort condition (``Eq``, a range, ``Between``, ``BeginsWith``) on an expression of
    ``kind`` as comparisons ``(op, parameter)``; True: every value, False: none."""
    if isinstance(cond, Eq):
        found = parameter(kind, cond.value)
        return False if found is None else [("=", found)]
    if isinstance(cond, BeginsWith):
        following = successor(cond.prefix)
        return [(">=", cond.prefix)] + ([("<", following)] if following is not None else [])
    if isinstance(cond, Between):
        pairs = [(">=", cond.low), ("<=", cond.high)]
    else:
        pairs = [(_OPS[type(cond)], cond.value)]  # type: ignore[attr-defined]
    out: list[tuple[str, Any]] = []
    for op, value in pairs:
        bound = typed_bound(kind, op, value)
        if bound is False:
            return False
        if bound is not True:
            assert not isinstance(bound, bool)
            out.append(bound)
    return out or True
