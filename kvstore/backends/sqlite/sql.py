"""Plans as sqlite SQL: the WHERE clause that narrows a plan's rows, and the order of a page.

Key columns are compared as columns; other fields through ``json_extract(doc, '$.field')``, written
as a literal path so that a query's expression is the very text of an index's expression (field
names are ``[A-Za-z_][A-Za-z0-9_]*``: safe in a path). Strings compare by code point under sqlite's
default BINARY collation (UTF-8 bytes). SQL narrows; the driver checks each row with
``Plan.selects`` (sqlite reads JSON ``true`` as ``1``, and only simple filters are translated), so
a clause need only be a superset, and ``exact`` says when it is the plan itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kvstore.conditions import Absent, BeginsWith, Between, Condition, Eq, Exists, Ge, Gt, Le, Lt
from kvstore.plan import Plan
from kvstore.schema import Index, KindSchema

__all__ = ["Clause", "field_sql", "index_sql", "order_sql", "plan_clauses", "quote"]

KEYS_A_STATEMENT = 250
"""Keys (or partitions) a statement names at most (sqlite caps a statement's parameters)."""

_COMPARE = {Lt: "<", Le: "<=", Gt: ">", Ge: ">="}


def quote(name: str) -> str:
    """An identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def field_sql(schema: KindSchema, doc: str, field: str) -> str:
    """The SQL expression of a field: its key column, or its value in the JSON column."""
    if field in schema.id_fields:
        return quote(field)
    return f"json_extract({doc}, '$.{field}')"


class Clause:
    """A WHERE clause, its parameters, and whether it selects exactly the plan's records."""

    __slots__ = ("exact", "params", "sql")

    def __init__(self, sql: str, params: list[Any], exact: bool) -> None:
        self.sql = sql
        self.params = params
        self.exact = exact


def _sort(expr: str, condition: Condition, params: list[Any]) -> str:
    if isinstance(condition, Eq):
        params.append(condition.value)
        return f"{expr} = ?"
    if isinstance(condition, Between):
        params += [condition.low, condition.high]
        return f"{expr} BETWEEN ? AND ?"
    if isinstance(condition, BeginsWith):
        prefix = condition.prefix
        params += [prefix, len(prefix), prefix]
        return f"{expr} >= ? AND substr({expr}, 1, ?) = ?"
    assert isinstance(condition, (Lt, Le, Gt, Ge))
    operator = _COMPARE[type(condition)]
    params.append(condition.value)
    return f"{expr} {operator} ?"


def _residual(
    schema: KindSchema, doc: str, field: str, condition: Condition
) -> tuple[str, list[Any]] | None:
    """An exact translation of a filter, when it is a simple one."""
    if field in schema.id_fields:
        if isinstance(condition, Eq):
            return f"{quote(field)} = ?", [condition.value]
        return None
    path = f"'$.{field}'"
    if isinstance(condition, Absent):
        return f"json_type({doc}, {path}) IS NULL", []
    if isinstance(condition, Exists):
        return f"json_type({doc}, {path}) IS NOT NULL", []
    if isinstance(condition, Eq):
        value = condition.value
        if isinstance(value, bool):
            return f"json_type({doc}, {path}) = ?", ["true" if value else "false"]
        if isinstance(value, str):
            return (
                f"json_type({doc}, {path}) = 'text' AND json_extract({doc}, {path}) = ?",
                [value],
            )
    return None


def plan_clauses(plan: Plan, doc: str) -> list[Clause]:
    """The clauses that together select ``plan``'s rows (several when it names many keys)."""
    schema = plan.schema
    keys = [quote(field) for field in schema.id_fields]
    heads: list[tuple[str, list[Any]]] = []
    if plan.access == "key":
        for start in range(0, len(plan.keys), KEYS_A_STATEMENT):
            chunk = plan.keys[start : start + KEYS_A_STATEMENT]
            if len(keys) == 1:
                marks = ",".join("?" * len(chunk))
                heads.append((f"{keys[0]} IN ({marks})", [key[0] for key in chunk]))
            else:
                rows = ",".join(["(?,?)"] * len(chunk))
                heads.append(
                    (
                        f"({keys[0]}, {keys[1]}) IN (VALUES {rows})",
                        [v for key in chunk for v in key],
                    )
                )
    elif plan.access in ("partition", "index"):
        field = plan.partition_field
        assert field is not None
        expr = field_sql(schema, doc, field)
        for start in range(0, len(plan.partitions), KEYS_A_STATEMENT):
            chunk = list(plan.partitions[start : start + KEYS_A_STATEMENT])
            sql = f"{expr} IN ({','.join('?' * len(chunk))})"
            params = list(chunk)
            sort_field = plan.sort_field
            if plan.sort is not None and sort_field is not None:
                sql += " AND " + _sort(field_sql(schema, doc, sort_field), plan.sort, params)
            heads.append((sql, params))
    else:
        heads.append(("1", []))
    rest: list[str] = []
    rest_params: list[Any] = []
    exact = plan.index is None  # an index read must also keep the index's sparseness rules
    for field, condition in plan.filters:
        translated = _residual(schema, doc, field, condition)
        if translated is None:
            exact = False
            continue
        rest.append(translated[0])
        rest_params += translated[1]
    clauses = []
    for sql, params in heads:
        where = " AND ".join([f"({sql})", *rest]) if rest else sql
        clauses.append(Clause(where, params + rest_params, exact))
    return clauses


def order_sql(plan: Plan, doc: str) -> tuple[list[str], str]:
    """The expressions of ``plan``'s order, and the ORDER BY clause of its direction."""
    exprs = [field_sql(plan.schema, doc, field) for field in plan.order_fields]
    direction = " DESC" if plan.descending else ""
    return exprs, ", ".join(expr + direction for expr in exprs)


def after_sql(exprs: Sequence[str], descending: bool | None) -> str:
    """The condition "after this position" in an order (parameters: the position's values)."""
    marks = ", ".join("?" * len(exprs))
    return f"({', '.join(exprs)}) {'<' if descending else '>'} ({marks})"


def index_sql(schema: KindSchema, table: str, doc: str, index: Index) -> str:
    """The CREATE INDEX of a secondary index: its fields' expressions, then the key, over the
    records that have the partition field."""
    exprs = [field_sql(schema, doc, field) for field in index.fields]
    columns = ", ".join([*exprs, *(quote(f) for f in schema.id_fields)])
    name = quote(f"{schema.kind}__{index.name}")
    return f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({columns}) WHERE {exprs[0]} IS NOT NULL"
