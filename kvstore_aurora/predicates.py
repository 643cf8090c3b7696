"""Conditions as exact SQL: each condition of ``kvstore.conditions`` on a field, wherever the field
lives (a key or typed column, ``doc`` or a jsonb column, nowhere).

A translation is a *token* (a hashable tuple saying what SQL to write) plus its parameters, so a
statement's text is rendered once per shape of call (``render``) and only the parameters change.

How the contract's typed rules become SQL:

- a JSON value (``doc -> 'f'``) compares with a jsonb parameter: jsonb equality is typed (a bool
  never equals a number, ``1 = 1.0``, lists by order, objects by entries) and jsonb numbers
  compare numerically; a range first asks ``jsonb_typeof``, so a value of another class never
  matches; strings compare as ``(doc ->> 'f') COLLATE "C"``: by code point (UTF-8 bytes) whatever
  the database's collation;
- an equality on a ``doc`` field also tests containment (``doc @> {"f": v}``), which a GIN index
  on ``doc`` serves; a statement that finds its row by key (``keyed``: a guarded write) writes the
  comparison alone, a string as ``to_jsonb(%s::text)``;
- a JSON ``null`` at the top level (another tool's) is an absent field, as reads decode it;
- a typed column holds one class: a condition of another class matches nothing, an operand the
  column cannot hold is never equal to a stored value, and ranges compare in the column's type
  (an int column against a float bound through the nearest int bound, so its indexes serve it);
- predicates are combined with AND and OR only, never NOT, so a SQL NULL always means "no match".
"""

from __future__ import annotations

import math
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from kvstore.conditions import (
    Absent,
    BeginsWith,
    Between,
    Condition,
    Eq,
    Exists,
    Ge,
    Gt,
    Le,
    Lt,
    Ne,
    NotExpired,
    OneOf,
)
from kvstore.values import DOUBLE_EXACT, INT64_MAX, INT64_MIN
from kvstore_aurora.columns import UNFIT, decimal
from kvstore_aurora.layout import ALIAS, Layout, Place

__all__ = [
    "ALIAS",
    "MAX_CONTAINMENTS",
    "Token",
    "column_sql",
    "condition",
    "render",
    "successor",
    "typed_bound",
]

Token = tuple[Any, ...]
"""What SQL a translation writes (its parameters travel apart)."""

MAX_CONTAINMENTS = 200
"""Up to this many values, ``one_of`` on a ``doc`` field is also written as containments, which
the GIN index on ``doc`` serves (it cannot serve ``= ANY``)."""

_OPS: dict[type[Condition], str] = {Lt: "<", Le: "<=", Gt: ">", Ge: ">="}
_FALSE: Token = ("F",)
_TRUE: Token = ("T",)


def column_sql(name: str, alias: str | None = ALIAS) -> sql.Composable:
    """A column of the kind's table, qualified by ``alias`` (``None``: bare, as in DDL)."""
    return sql.Identifier(alias, name) if alias else sql.Identifier(name)


def _json(place: Place, alias: str | None) -> sql.Composable:
    if place.column is None:
        return sql.SQL("({} -> {})").format(column_sql("doc", alias), sql.Literal(place.field))
    return column_sql(place.column.name, alias)


def _text(place: Place, alias: str | None) -> sql.Composable:
    if place.column is None:
        return sql.SQL("({} ->> {})").format(column_sql("doc", alias), sql.Literal(place.field))
    return sql.SQL("({} #>> '{{}}')").format(column_sql(place.column.name, alias))


def successor(prefix: str) -> str | None:
    """The least string greater than every string starting with ``prefix`` (by code point), or
    ``None`` when there is none: ``s`` starts with ``prefix`` exactly when
    ``prefix <= s < successor(prefix)``."""
    chars = list(prefix)
    while chars:
        following = ord(chars.pop()) + 1
        if following == 0xD800:  # surrogates are never in a valid string
            following = 0xE000
        if following <= 0x10FFFF:
            return "".join(chars) + chr(following)
    return None


# -- number bounds in a column's own type ----------------------------------------------------------


def _int_bound(op: str, value: int | float) -> tuple[str, int] | bool:
    """``x op value`` for an int ``x`` as ``(op', int)``, or True (every int) / False (none)."""
    if type(value) is int:
        return op, value
    if op in ("<", "<="):
        bound = math.floor(value)  # x < 2.5 and x <= 2.5 are x <= 2 (value is not integral)
        op = "<=" if bound != value else op
        if bound > INT64_MAX:
            return True
        return False if bound < INT64_MIN else (op, bound)
    bound = math.ceil(value)
    op = ">=" if bound != value else op
    if bound < INT64_MIN:
        return True
    return False if bound > INT64_MAX else (op, bound)


def _double_bound(op: str, value: int | float) -> tuple[str, float] | bool:
    """``x op value`` for a double ``x`` as ``(op', double)`` (exact when ``value`` is an int that
    no double holds: the nearest double on the right side)."""
    if type(value) is float or abs(value) <= DOUBLE_EXACT:
        return op, float(value)
    near = float(value)
    if op in ("<", "<="):
        below = near if near < value else math.nextafter(near, -math.inf)
        return "<=", below
    above = near if near > value else math.nextafter(near, math.inf)
    return ">=", above


def typed_bound(kind: str, op: str, value: Any) -> tuple[str, Any] | bool:
    """``x op value`` for a value ``x`` of a column ``kind`` (or an index's key type)."""
    if kind == "int":
        return _int_bound(op, value)
    if kind == "double":
        return _double_bound(op, value)
    if kind == "numeric":
        return op, decimal(value)
    return op, value  # text


# -- conditions ------------------------------------------------------------------------------------


def condition(
    layout: Layout, field: str, cond: Condition, params: list[Any], keyed: bool = False
) -> Token:
    """The token of ``cond`` on ``field``; its parameters are appended to ``params``.

    ``keyed``: the statement finds its row by key (a guarded write), so an equality on a ``doc``
    field needs no containment test for a GIN index to serve, only the exact comparison (a
    string compared as ``to_jsonb`` of a text parameter: no JSON to encode)."""
    place = layout.place(field)
    kind = place.kind
    if kind == "json":
        return _json_condition(place, cond, params, keyed)
    if kind == "none":
        return _TRUE if cond.holds_when_absent() else _FALSE
    return _column_condition(place, cond, params)


def _json_condition(place: Place, cond: Condition, params: list[Any], keyed: bool) -> Token:
    field = place.field
    # A doc field's equalities also test containment, which a GIN index on doc can serve; a
    # statement that finds its row by key has no use for it.
    contain = place.column is None and not keyed
    kind = type(cond)
    if kind is Eq:
        value = cond.value  # type: ignore[attr-defined]
        if keyed and type(value) is str:
            params.append(value)
            return ("j_eq_text", field)
        if contain:
            params.append(Jsonb({field: value}))
        params.append(Jsonb(value))
        return ("j_eq", field, contain)
    if kind is Absent:
        return ("j_absent", field)
    if kind is Exists:
        return ("j_exists", field)
    if kind is Ne:
        params.append(Jsonb(cond.value))  # type: ignore[attr-defined]
        return ("j_ne", field)
    if kind in _OPS:
        value = cond.value  # type: ignore[attr-defined]
        if type(value) is str:
            params.append(value)
            return ("j_str", field, _OPS[kind])
        params.append(Jsonb(value))
        return ("j_num", field, _OPS[kind])
    if kind is Between:
        assert isinstance(cond, Between)
        if type(cond.low) is str:
            params += [cond.low, cond.high]
            return ("j_str2", field)
        params += [Jsonb(cond.low), Jsonb(cond.high)]
        return ("j_num2", field)
    if kind is BeginsWith:
        params.append(cond.prefix)  # type: ignore[attr-defined]
        return ("j_begins", field)
    if kind is OneOf:
        assert isinstance(cond, OneOf)
        values = cond.values
        if not values:
            return ("j_absent", field) if cond.absent else _FALSE
        contained = len(values) if contain and len(values) <= MAX_CONTAINMENTS else 0
        params += [Jsonb({field: value}) for value in values[:contained]]
        params.append([Jsonb(value) for value in values])
        return ("j_in", field, contained, cond.absent)
    if kind is NotExpired:
        params.append(Jsonb(cond.now))  # type: ignore[attr-defined]
        return ("j_live", field)
    raise TypeError(f"no translation of {cond!r}")  # pragma: no cover: a closed set


def _column_condition(place: Place, cond: Condition, params: list[Any]) -> Token:
    column = place.column
    assert column is not None
    field, kind = place.field, type(cond)
    if kind is Eq or kind is Ne:
        encoded = column.encode(cond.value)  # type: ignore[attr-defined]
        if encoded is UNFIT:  # no stored value equals it
            return _FALSE if kind is Eq else ("c_notnull", field)
        params.append(encoded)
        return ("c_eq" if kind is Eq else "c_ne", field)
    if kind is Absent:
        return _FALSE if place.kind == "key" else ("c_null", field)
    if kind is Exists:
        return ("c_notnull", field)
    if kind is OneOf:
        assert isinstance(cond, OneOf)
        encoded = [column.encode(value) for value in cond.values]
        fitting = [value for value in encoded if value is not UNFIT]
        if fitting:
            params.append(fitting)
        absent = cond.absent and place.kind != "key"
        if not fitting:
            return ("c_null", field) if absent else _FALSE
        return ("c_in", field, absent)
    if kind is NotExpired:
        if not column.numeric:
            return _TRUE
        bound = typed_bound(column.kind, ">", cond.now)  # type: ignore[attr-defined]
        if isinstance(bound, bool):
            return ("c_null", field) if not bound else _TRUE
        params.append(bound[1])
        return ("c_live", field, bound[0])
    if kind is BeginsWith:
        if column.kind != "text":
            return _FALSE
        params.append(cond.prefix)  # type: ignore[attr-defined]
        return ("c_begins", field)
    # A range: the operand's class must be the column's.
    if kind is Between:
        assert isinstance(cond, Between)
        bounds = [(">=", cond.low), ("<=", cond.high)]
    else:
        bounds = [(_OPS[kind], cond.value)]  # type: ignore[attr-defined]
    if (type(bounds[0][1]) is str) != (column.kind == "text") or not (
        column.kind == "text" or column.numeric
    ):
        return _FALSE
    parts: list[Token] = []
    for op, value in bounds:
        bound = typed_bound(column.kind, op, value)
        if bound is False:
            return _FALSE
        if bound is True:
            continue
        assert not isinstance(bound, bool)
        params.append(bound[1])
        parts.append(("c_cmp", field, bound[0]))
    return ("and", *parts) if parts else ("c_notnull", field)


# -- rendering -------------------------------------------------------------------------------------


def _typed_column(place: Place, alias: str | None) -> sql.Composable:
    """A typed column as it compares: text by code point."""
    assert place.column is not None
    expr = column_sql(place.column.name, alias)
    if place.column.kind == "text":
        return sql.SQL('({} COLLATE "C")').format(expr)
    return expr


def render(layout: Layout, token: Token, alias: str | None = ALIAS) -> sql.Composable:
    """The SQL of ``token`` (its parameters in the order ``condition`` appended them)."""
    op = token[0]
    if op == "T":
        return sql.SQL("TRUE")
    if op == "F":
        return sql.SQL("FALSE")
    if op == "and" or op == "or":
        glue = sql.SQL(" AND " if op == "and" else " OR ")
        return sql.SQL("({})").format(glue.join(render(layout, part, alias) for part in token[1:]))
    place = layout.place(token[1])
    if op[0] == "j":
        return _render_json(op, token, place, alias)
    assert place.column is not None
    column = column_sql(place.column.name, alias)
    cast = place.column.cast
    if op == "c_eq":
        return sql.SQL("{} = %s::{}").format(column, cast)
    if op == "c_ne":
        return sql.SQL("{} <> %s::{}").format(column, cast)
    if op == "c_null":
        return sql.SQL("{} IS NULL").format(column)
    if op == "c_notnull":
        return sql.SQL("{} IS NOT NULL").format(column)
    if op == "c_in":
        found = sql.SQL("{} = ANY(%s::{}[])").format(column, cast)
        if token[2]:
            return sql.SQL("({} OR {} IS NULL)").format(found, column)
        return found
    if op == "c_cmp":
        return sql.SQL("{} {} %s::{}").format(_typed_column(place, alias), sql.SQL(token[2]), cast)
    if op == "c_live":
        return sql.SQL("({0} IS NULL OR {0} {1} %s::{2})").format(column, sql.SQL(token[2]), cast)
    if op == "c_begins":
        return sql.SQL("starts_with({}, %s::text)").format(column)
    raise ValueError(f"unknown token {token!r}")  # pragma: no cover


def _render_json(op: str, token: Token, place: Place, alias: str | None) -> sql.Composable:
    value = _json(place, alias)
    absent = sql.SQL("({0} IS NULL OR {0} = 'null'::jsonb)").format(value)
    if op == "j_eq_text":
        return sql.SQL("{} = to_jsonb(%s::text)").format(value)
    if op == "j_eq":
        if token[2]:
            return sql.SQL("({} @> %s::jsonb AND {} = %s::jsonb)").format(
                column_sql("doc", alias), value
            )
        return sql.SQL("{} = %s::jsonb").format(value)
    if op == "j_absent":
        return absent
    if op == "j_exists":
        return sql.SQL("{} <> 'null'::jsonb").format(value)
    if op == "j_ne":
        return sql.SQL("({0} <> %s::jsonb AND {0} <> 'null'::jsonb)").format(value)
    if op == "j_num":
        return sql.SQL("(jsonb_typeof({0}) = 'number' AND {0} {1} %s::jsonb)").format(
            value, sql.SQL(token[2])
        )
    if op == "j_num2":
        return sql.SQL(
            "(jsonb_typeof({0}) = 'number' AND {0} >= %s::jsonb AND {0} <= %s::jsonb)"
        ).format(value)
    text = sql.SQL('({} COLLATE "C")').format(_text(place, alias))
    if op == "j_str":
        return sql.SQL("(jsonb_typeof({}) = 'string' AND {} {} %s::text)").format(
            value, text, sql.SQL(token[2])
        )
    if op == "j_str2":
        return sql.SQL(
            "(jsonb_typeof({0}) = 'string' AND {1} >= %s::text AND {1} <= %s::text)"
        ).format(value, text)
    if op == "j_begins":
        return sql.SQL("(jsonb_typeof({}) = 'string' AND starts_with({}, %s::text))").format(
            value, _text(place, alias)
        )
    if op == "j_live":
        return sql.SQL("(jsonb_typeof({0}) IS DISTINCT FROM 'number' OR {0} > %s::jsonb)").format(
            value
        )
    if op == "j_in":
        _, _field, contained, with_absent = token
        found: sql.Composable = sql.SQL("{} = ANY(%s::jsonb[])").format(value)
        if contained:
            doc = column_sql("doc", alias)
            either = sql.SQL(" OR ").join([sql.SQL("{} @> %s::jsonb").format(doc)] * contained)
            found = sql.SQL("(({}) AND {})").format(either, found)
        if with_absent:
            return sql.SQL("({} OR {})").format(found, absent)
        return found
    raise ValueError(f"unknown token {token!r}")  # pragma: no cover
