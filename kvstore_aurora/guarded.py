"""Guarded writes (``kvstore.writes``) as single statements: the check of the guard on the key's
live record and the write are one statement. Updates are ``kvstore_aurora.updates``'; the
helpers both use (``Statement``, the key's match, the guard's tokens) are here.

A put's and a delete's statement start with ``WITH p AS (SELECT %s AS k0, ...)``: the key bound
once and referenced as ``p.k0``. The write:

- a ``Put`` that may write on a key with no live record: ``INSERT ... ON CONFLICT (key) DO UPDATE
  ... WHERE <the stored row is expired, or the guard holds on it>`` (``DO NOTHING`` for a create
  without a ``ttl_field``), so a create takes an expired record's key;
- a ``Put`` that needs a live record: ``UPDATE ... WHERE key AND live AND guard``;
- a ``Delete``: ``DELETE ... WHERE key AND live AND guard``.

A single put or delete ends with the outcome (``outcome_sql``: whether ``w`` wrote, and the key's
row as the statement's snapshot shows it, read only when nothing was written). A transaction's
step ends with ``SELECT 1 / (SELECT count(*) FROM w)``, which fails when the guard did not hold.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from psycopg import sql

from kvstore.conditions import Le, NotExpired
from kvstore.plan import Conditions
from kvstore.schema import KindSchema
from kvstore.writes import Check, Delete, Guard, Put
from kvstore_aurora.columns import dumps
from kvstore_aurora.layout import Layout
from kvstore_aurora.predicates import ALIAS, Token, column_sql, condition, render
from kvstore_aurora.upserts import json_source, replace_sql, stored_columns

__all__ = [
    "Statement",
    "all_of",
    "check_sql",
    "delete_sql",
    "key_match",
    "live_conditions",
    "put_sql",
    "tokens_of",
]

_ALIAS = sql.Identifier(ALIAS)


class Statement:
    """A statement's shape (what its text depends on), parameters, and how to compose it."""

    __slots__ = ("build", "params", "shape", "shareable", "summed")

    def __init__(
        self,
        shape: Any,
        params: list[Any],
        build: Callable[[], sql.Composable],
        shareable: bool = False,
        summed: bool = False,
    ) -> None:
        self.shape = shape
        self.params = params
        self.build = build
        self.shareable = shareable
        """Whether the statement's guard binds no value (only ``update_sql`` says so)."""
        self.summed = summed
        """Whether it sums increments in bigint, and so may fail where the full form of the
        number rules would not (only ``update_sql`` says so)."""


def _params_cte(layout: Layout) -> sql.Composable:
    """``WITH p AS (...)``: the key's parameters as ``p.k0``..."""
    names = [
        sql.SQL("%s::{} AS {}").format(column.cast, sql.Identifier(f"k{i}"))
        for i, column in enumerate(layout.keys)
    ]
    return sql.SQL("WITH p AS (SELECT {})").format(sql.SQL(", ").join(names))


def key_match(layout: Layout) -> sql.Composable:
    return sql.SQL(" AND ").join(
        sql.SQL("{} = p.{}").format(column_sql(column.name), sql.Identifier(f"k{i}"))
        for i, column in enumerate(layout.keys)
    )


def tokens_of(layout: Layout, conditions: Conditions, params: list[Any]) -> tuple[Token, ...]:
    """The tokens of ``conditions`` on the key's row (their values appended to ``params``)."""
    if not conditions:  # most writes: no generator to start
        return ()
    return tuple(condition(layout, field, cond, params, keyed=True) for field, cond in conditions)


def all_of(layout: Layout, tokens: tuple[Token, ...]) -> sql.Composable:
    if not tokens:
        return sql.SQL("TRUE")
    return sql.SQL("({})").format(sql.SQL(" AND ").join(render(layout, t) for t in tokens))


def live_conditions(schema: KindSchema, guard: Guard) -> Conditions:
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
        key_match(layout),
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
        expired = tokens_of(layout, _expired(schema, guard), params)
        present = (
            None if guard.when_present is None else tokens_of(layout, guard.when_present, params)
        )
        shape: Any = ("put-insert", step, expired, present)

        def build() -> sql.Composable:
            parts = [all_of(layout, expired)] if expired else []
            if present is not None:
                parts.append(all_of(layout, present))
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
    live = tokens_of(layout, live_conditions(schema, guard), params)
    present = tokens_of(layout, guard.when_present, params)
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
            key_match(layout),
            all_of(layout, live),
            all_of(layout, present),
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
    live = () if unconditional else tokens_of(layout, live_conditions(schema, guard), params)
    present = None if guard.when_present is None else tokens_of(layout, guard.when_present, params)
    shape = ("delete", step, unconditional, live, present, guard.when_absent)

    def build() -> sql.Composable:
        if unconditional:
            ctes = _w(
                sql.SQL("DELETE FROM {} AS {} USING p WHERE {} RETURNING 1").format(
                    layout.table, _ALIAS, key_match(layout)
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
                ).format(layout.table, _ALIAS, key_match(layout))
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
    ok = sql.SQL("FALSE") if present is None else all_of(layout, present)
    return sql.SQL(
        "c AS MATERIALIZED (SELECT {} AS live, {} AS ok FROM {} AS {}, p WHERE {} FOR {} OF {})"
    ).format(
        all_of(layout, live),
        ok,
        layout.table,
        _ALIAS,
        key_match(layout),
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
    live = tokens_of(layout, live_conditions(schema, guard), params)
    present = None if guard.when_present is None else tokens_of(layout, guard.when_present, params)
    shape = ("check", live, present, guard.when_absent)

    def build() -> sql.Composable:
        return sql.SQL("{}, {} SELECT {}").format(
            _params_cte(layout),
            _locked(layout, live, present, "SHARE"),
            _holds(guard.when_absent, "EXISTS (SELECT 1 FROM c WHERE live AND ok)"),
        )

    return Statement(shape, params, build)
