"""Plans as SQL: the WHERE clause that selects exactly a plan's records, its order and keyset
position.

``plan_shape`` turns a plan into a *shape* (tokens: what SQL to write) and parameters without
composing any SQL; ``plan_where`` renders a shape. Callers render each shape once
(``AuroraDriver._statement``). The translation is exact (``kvstore_aurora.predicates``), so a
count or a delete is one statement and a ``LIMIT`` never cuts a match.

How each access reads (``r`` is the table's alias):

- ``key``: ``r.id = %s`` (one key), ``r.id = ANY(%s)`` (several: ``find_in``);
- ``partition``: ``r.team = %s`` (or ``= ANY``) and the sort condition on the key's sort column;
- ``index``: the index's typed partition expression ``= %s``, its partial predicate, its typed
  sort expression ``IS NOT NULL`` and the sort condition on it, written exactly as the index is
  created (``kvstore_aurora.indexes``), so the planner serves the read from it;
- ``scan``: every row.

An ordered read (a page) adds ``ORDER BY`` the plan's ``order_fields`` (strings ``COLLATE "C"``)
and, after a position, the keyset condition ``(a, b) > (%s, %s)`` (``<`` descending): no OFFSET.
A resumable scan (``kvstore copy``) reads in key order after a key, and a segment of it only the
keys whose hash (``hashtextextended``) falls in it.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from psycopg import sql

from kvstore.backend import KindSchema, Plan
from kvstore.schema import Index
from kvstore_aurora.columns import UNFIT
from kvstore_aurora.indexes import (
    CASTS,
    bounds,
    column_kinds,
    expr_kind,
    index_expr,
    index_predicate,
    parameter,
)
from kvstore_aurora.layout import Layout, select_columns
from kvstore_aurora.predicates import ALIAS, Token, column_sql, condition, render

__all__ = [
    "Shape",
    "count_sql",
    "delete_sql",
    "limit_of",
    "order_sql",
    "plan_shape",
    "plan_where",
    "position_params",
    "read_shape",
    "select_sql",
]

Shape = tuple[Token, ...]
"""A WHERE clause as tokens (see ``kvstore_aurora.predicates``)."""


def _key_kind(layout: Layout, position: int) -> str:
    return "text" if layout.keys[position].kind == "text" else "int"


def _index_kinds(layout: Layout, index: Index) -> list[str]:
    """What each of ``index``'s expressions compares as (see ``indexes.expr_kind``), worked out
    once per layout: every indexed read asks."""
    found = layout.index_kinds.get(index)
    if found is None:
        kinds = column_kinds(layout, index)
        found = [expr_kind(t, k) for t, k in zip(index.key_types, kinds, strict=True)]
        layout.index_kinds[index] = found
    return found


def _key_cast(layout: Layout, position: int) -> sql.SQL:
    return layout.keys[position].cast


def _fitting(layout: Layout, position: int, values: Any) -> list[Any]:
    """The values that the key column at ``position`` can hold (others name no record)."""
    column = layout.keys[position]
    if column in layout.checked:
        return [value for value in values if column.encode(value) is not UNFIT]
    return list(values)


def plan_shape(layout: Layout, plan: Plan) -> tuple[Shape, list[Any]] | None:
    """The shape and parameters of the WHERE clause selecting exactly ``plan``'s records (its
    order and position apart: ``order_sql``); ``None`` when no record can match."""
    tokens: list[Token] = []
    params: list[Any] = []
    access = plan.access
    if access == "key":
        keys = plan.keys
        if layout.checked:
            keys = [
                key for key in keys if all(_fitting(layout, i, (v,)) for i, v in enumerate(key))
            ]
        if not keys:
            return None
        if len(keys) == 1:
            tokens.append(("k1",))
            params += keys[0]
        else:
            tokens.append(("kN",))
            params += [[key[i] for key in keys] for i in range(len(layout.keys))]
    elif access == "partition":
        values = _fitting(layout, 0, plan.partitions)
        if not values:
            return None
        tokens.append(("p1",) if len(values) == 1 else ("pN",))
        params.append(values[0] if len(values) == 1 else values)
        if plan.sort is not None:
            found = bounds(_key_kind(layout, 1), plan.sort)
            if found is False:
                return None
            for op, value in found if isinstance(found, list) else ():
                tokens.append(("psort", op))
                params.append(value)
    elif access == "index":
        index = plan.index
        assert index is not None
        kinds = _index_kinds(layout, index)  # ConfigError when the table cannot hold it
        values = [parameter(kinds[0], value) for value in plan.partitions]
        values = [value for value in values if value is not None]
        if not values:
            return None
        tokens.append(("i1", index.name) if len(values) == 1 else ("iN", index.name))
        params.append(values[0] if len(values) == 1 else values)
        if index.sort is not None:
            tokens.append(("iguard", index.name))
            if plan.sort is not None:
                found = bounds(kinds[1], plan.sort)
                if found is False:
                    return None
                for op, value in found if isinstance(found, list) else ():
                    tokens.append(("isort", index.name, op))
                    params.append(value)
    if plan.stable:  # one segment of a resumable scan, after a key (kvstore copy)
        if plan.segments > 1:
            tokens.append(("segment",))
            params += [plan.segments, plan.segment]
        if plan.after is not None:
            tokens.append(("after",))
            params += plan.after
    for field, cond in plan.filters:
        token = condition(layout, field, cond, params)
        if token[0] == "F":
            return None
        if token[0] != "T":
            tokens.append(token)
    return tuple(tokens), params


def _keys_sql(layout: Layout) -> list[sql.Composable]:
    return [column_sql(column.name) for column in layout.keys]


def _index_part(layout: Layout, index: Index, position: int) -> sql.Composable:
    kinds = column_kinds(layout, index)
    return index_expr(index.fields[position], index.key_types[position], kinds[position])


def _render_access(layout: Layout, schema: KindSchema, token: Token) -> sql.Composable:
    op = token[0]
    keys = _keys_sql(layout)
    if op == "k1":
        return sql.SQL(" AND ").join(
            sql.SQL("{} = %s::{}").format(key, _key_cast(layout, i)) for i, key in enumerate(keys)
        )
    if op == "kN":
        if len(keys) == 1:
            return sql.SQL("{} = ANY(%s::{}[])").format(keys[0], _key_cast(layout, 0))
        return sql.SQL("({}) IN (SELECT * FROM unnest({}))").format(
            sql.SQL(", ").join(keys),
            sql.SQL(", ").join(
                sql.SQL("%s::{}[]").format(_key_cast(layout, i)) for i in range(len(keys))
            ),
        )
    if op == "p1":
        return sql.SQL("{} = %s::{}").format(keys[0], _key_cast(layout, 0))
    if op == "pN":
        return sql.SQL("{} = ANY(%s::{}[])").format(keys[0], _key_cast(layout, 0))
    if op == "psort":
        return sql.SQL("{} {} %s::{}").format(
            _key_order(layout, 1), sql.SQL(token[1]), _key_cast(layout, 1)
        )
    if op == "segment":
        # A deterministic partition of the keys: the same segment for a key in every process.
        texts = [
            sql.SQL("{}::text").format(key) if layout.keys[i].kind != "text" else key
            for i, key in enumerate(keys)
        ]
        text = sql.SQL(" || chr(31) || ").join(texts)
        return sql.SQL("abs(mod(hashtextextended({}, 0), %s::bigint)) = %s::bigint").format(text)
    if op == "after":
        return sql.SQL("({}) > ({})").format(
            sql.SQL(", ").join(_key_order(layout, i) for i in range(len(keys))),
            sql.SQL(", ").join(
                sql.SQL("%s::{}").format(_key_cast(layout, i)) for i in range(len(keys))
            ),
        )
    if op not in ("i1", "iN", "iguard", "isort"):
        return render(layout, token)
    index = schema.index(token[1])
    kinds = _index_kinds(layout, index)
    if op in ("i1", "iN"):
        match = sql.SQL("{} = %s::{}" if op == "i1" else "{} = ANY(%s::{}[])").format(
            _index_part(layout, index, 0), sql.SQL(CASTS[kinds[0]])
        )
        predicate = index_predicate(index.partition, column_kinds(layout, index)[0])
        return sql.SQL("{} AND {}").format(match, predicate)
    if op == "iguard":
        return sql.SQL("{} IS NOT NULL").format(_index_part(layout, index, 1))
    if op == "isort":
        return sql.SQL("{} {} %s::{}").format(
            _index_part(layout, index, 1), sql.SQL(token[2]), sql.SQL(CASTS[kinds[1]])
        )
    raise ValueError(f"unknown token {token!r}")  # pragma: no cover


def plan_where(layout: Layout, schema: KindSchema, shape: Shape) -> sql.Composable:
    """The WHERE clause of a ``plan_shape`` shape."""
    if not shape:
        return sql.SQL("TRUE")
    return sql.SQL(" AND ").join(_render_access(layout, schema, token) for token in shape)


def _key_order(layout: Layout, position: int) -> sql.Composable:
    """A key column as it sorts: text by code point."""
    column = layout.keys[position]
    name = column_sql(column.name)
    return sql.SQL('({} COLLATE "C")').format(name) if column.kind == "text" else name


def order_sql(layout: Layout, plan: Plan) -> tuple[list[sql.Composable], list[sql.SQL]]:
    """The expressions of ``plan``'s order, and the casts of a position in it."""
    exprs: list[sql.Composable] = []
    casts: list[sql.SQL] = []
    schema = plan.schema
    index = plan.index
    for field in plan.order_fields:
        if index is not None and field == index.sort:
            exprs.append(_index_part(layout, index, 1))
            casts.append(sql.SQL(CASTS[_index_kinds(layout, index)[1]]))
        else:
            position = schema.id_fields.index(field)
            exprs.append(_key_order(layout, position))
            casts.append(_key_cast(layout, position))
    return exprs, casts


def position_params(layout: Layout, plan: Plan) -> list[Any]:
    """``plan.start`` as the parameters of ``order_sql``'s casts (none when it has no start)."""
    if plan.start is None:
        return []
    index = plan.index
    if index is None or index.sort is None:
        return list(plan.start)
    kind = _index_kinds(layout, index)[1]  # the index's sort field comes first
    return [parameter(kind, plan.start[0]), *plan.start[1:]]


LITERAL_LIMIT_MAX = 1000
"""Limits up to this are written into the statement (``limit_of``), larger ones are a parameter."""


def limit_of(plan: Plan) -> int | bool:
    """How ``select_sql`` bounds ``plan``: its limit as a literal (``LIMIT 2``, a page's size
    and one more), ``True`` for a ``LIMIT`` parameter, ``False`` for none.

    A literal, because with ``LIMIT $n`` PostgreSQL's generic plan for a prepared statement is
    costed for an unknown limit and loses to a custom plan, which it then makes at every call:
    an indexed find planned each time. A literal limit keeps the generic plan (on the index).
    The few page sizes an application uses each make one statement."""
    limit = plan.limit
    if limit is None:
        return False
    return limit if 0 < limit <= LITERAL_LIMIT_MAX else True


def select_sql(
    layout: Layout, schema: KindSchema, shape: Shape, plan: Plan, limited: bool | int
) -> sql.Composed:
    """The SELECT of ``plan``'s records: in its order after its start (an ordered plan), and at
    most a ``LIMIT``: the int ``limited`` written as a literal, or a parameter when ``limited``
    is ``True`` (parameters: the shape's, the start's, that limit)."""
    where = plan_where(layout, schema, shape)
    query = sql.SQL("SELECT {} FROM {} AS {} WHERE {}").format(
        select_columns(layout), layout.table, sql.Identifier(ALIAS), where
    )
    if plan.descending is not None:
        exprs, casts = order_sql(layout, plan)
        direction = sql.SQL(" DESC" if plan.descending else "")
        if plan.start is not None:
            query += sql.SQL(" AND ({}) {} ({})").format(
                sql.SQL(", ").join(exprs),
                sql.SQL("<" if plan.descending else ">"),
                sql.SQL(", ").join(sql.SQL("%s::{}").format(cast) for cast in casts),
            )
        query += sql.SQL(" ORDER BY {}").format(
            sql.SQL(", ").join(sql.SQL("{}{}").format(expr, direction) for expr in exprs)
        )
    elif plan.stable:  # a resumable scan's stable order: the key's (the primary key's index)
        query += sql.SQL(" ORDER BY {}").format(
            sql.SQL(", ").join(_key_order(layout, i) for i in range(len(layout.keys)))
        )
    if limited is True:
        query += sql.SQL(" LIMIT %s")
    elif limited:
        query += sql.SQL(" LIMIT {}").format(sql.Literal(int(limited)))
    return query


def count_sql(layout: Layout, schema: KindSchema, shape: Shape) -> sql.Composed:
    """``SELECT count(*)`` of a shape's records."""
    return sql.SQL("SELECT count(*) FROM {} AS {} WHERE {}").format(
        layout.table, sql.Identifier(ALIAS), plan_where(layout, schema, shape)
    )


def delete_sql(layout: Layout, schema: KindSchema, shape: Shape) -> sql.Composed:
    """``DELETE`` of a shape's records."""
    return sql.SQL("DELETE FROM {} AS {} WHERE {}").format(
        layout.table, sql.Identifier(ALIAS), plan_where(layout, schema, shape)
    )


def read_shape(plan: Plan, shape: Shape, limited: bool | int) -> Hashable:
    """What a SELECT's text depends on besides the layout."""
    ordered = None if plan.descending is None else (plan.descending, plan.start is not None)
    served = plan.index.name if plan.index else plan.access
    limit = "param" if limited is True else limited or None  # True == 1 as a dict key
    return ("select", shape, ordered, limit, served, plan.stable)
