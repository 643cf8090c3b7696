"""``increment(n)`` in SQL: the sum computed exactly in ``numeric``, checked and normalised by the
number rules of ``kvstore.writes.add_numbers``, inside the UPDATE that stores it.

For a field ``f`` and an amount bound as ``p.aN`` (numeric):

- the stored value ``S``: a JSON number as its exact numeric, an absent field (or a JSON null) as
  0; any other stored value makes the increment invalid (``stored_ok``);
- the sum ``R = S + p.aN``, exact;
- valid when both are ints (an integral ``S`` within the signed 64-bit range, an int amount) and
  ``R`` stays within that range; otherwise when ``R`` has at most 38 significant digits (trailing
  zeros not counted) and is zero or of magnitude within [1E-130, 1E+126);
- stored as ``N``, ``R`` normalised as ``kvstore.values.normalize_value`` does: ``R`` when it is
  integral within the 64-bit range (without a fraction's zeros: ``5``, not ``5.0``), else the double nearest ``R`` (as an int when that double is
  integral within the range, else by its shortest text, which round-trips it exactly; that text is
  PostgreSQL's float8 output, shortest since version 12 while ``extra_float_digits`` keeps its
  default of 1);
- and, for a typed column, ``N`` must fit it as ``Column.encode`` says.

The common increment, an int amount added to an int in ``doc`` (or to an absent field), has a
cheaper form for a statement whose failure aborts nothing else (``summed``): the sum in
``bigint``, which fails the statement with a data exception wherever the rules above might say
anything but ``S + amount`` (a stored value that is not an integral number within the 64-bit
range, or a sum outside it); the caller then runs the full form, which says what the rules say.
Where it does not fail, ``S`` and the amount are ints and ``R`` is within the range, so the rules
give ``N = R``: the same record.
"""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import sql

from kvstore.values import INT64_MAX, INT64_MIN
from kvstore_aurora.columns import INT_RANGES, Column
from kvstore_aurora.layout import Layout, Place
from kvstore_aurora.predicates import column_sql

__all__ = [
    "derived_names",
    "failing_unless",
    "fits",
    "from_derived",
    "normalised",
    "stored_number",
    "stored_ok",
    "summable",
    "summed",
    "valid",
]

_INT64 = "-9223372036854775808 AND 9223372036854775807"
_DOUBLE_EXACT = "9007199254740992"


def _json_value(place: Place) -> sql.Composable:
    if place.column is None:
        return sql.SQL("({} -> {})").format(column_sql("doc"), sql.Literal(place.field))
    return column_sql(place.column.name)


def summable(layout: Layout, amounts: Sequence[tuple[str, int | float]]) -> bool:
    """Whether every increment of ``amounts`` may take the ``bigint`` form (``summed``): an int
    amount within the 64-bit range, on a field kept in ``doc``."""
    default = layout.default  # every field but the key's (never incremented) is in doc
    for field, amount in amounts:
        if type(amount) is not int or not INT64_MIN <= amount <= INT64_MAX:
            return False
        if not default:
            place = layout.place(field)
            if place.kind != "json" or place.column is not None:
                return False
    return True


def summed(place: Place, amount: sql.Composable) -> sql.Composable:
    """The stored int of ``place`` (a field in ``doc``; absent or a JSON null: 0) plus ``amount``
    (a ``bigint``), in ``bigint``: a data exception when the stored value is not an integral
    number within the 64-bit range (a fraction's text, a string, a boolean or a container will
    not cast) or the sum leaves the range (see the module's docstring)."""
    value = _json_value(place)
    text = sql.SQL("({} ->> {})").format(column_sql("doc"), sql.Literal(place.field))
    return sql.SQL(
        "(coalesce(CASE jsonb_typeof({0}) WHEN 'number' THEN {1}::bigint WHEN 'null' THEN 0 "
        "ELSE {0}::bigint END, 0) + {2})"
    ).format(value, text, amount)


def stored_number(place: Place) -> sql.Composable:
    """``S``: the stored value of ``place``'s field as an exact numeric (absent: 0)."""
    if place.kind == "json":
        value = _json_value(place)
        return sql.SQL(
            "(CASE WHEN jsonb_typeof({0}) = 'number' THEN ({0})::numeric ELSE 0 END)"
        ).format(value)
    column = place.column
    assert column is not None
    name = column_sql(column.name)
    if column.kind == "double":
        # A double reads back as an int when integral (its exact value), else by its text.
        return sql.SQL(
            "coalesce(CASE WHEN {0} = trunc({0}) AND {0} >= -9223372036854775808::float8 "
            "AND {0} < 9223372036854775808::float8 THEN {0}::bigint::numeric "
            "ELSE {0}::text::numeric END, 0)"
        ).format(name)
    if column.kind in ("int", "numeric"):
        return sql.SQL("coalesce({}::numeric, 0)").format(name)
    return sql.SQL("0")


def stored_ok(place: Place) -> sql.Composable:
    """Whether the stored value is a number or absent."""
    if place.kind == "json":
        return sql.SQL("coalesce(jsonb_typeof({}), 'null') IN ('number', 'null')").format(
            _json_value(place)
        )
    column = place.column
    assert column is not None
    if column.numeric:
        return sql.SQL("TRUE")
    return sql.SQL("{} IS NULL").format(column_sql(column.name))


def _is_int(value: sql.Composable) -> sql.Composable:
    return sql.SQL("({0} = trunc({0}) AND {0} BETWEEN {1})").format(value, sql.SQL(_INT64))


def valid(stored: sql.Composable, total: sql.Composable, int_amount: bool) -> sql.Composable:
    """Whether ``total`` (``R``) follows the number rules (``stored``: ``S``)."""
    general = sql.SQL(
        "(length(trim(both '0' from replace(abs({0})::text, '.', ''))) <= 38 "
        "AND ({0} = 0 OR (abs({0}) >= 1e-130 AND abs({0}) < 1e126)))"
    ).format(total)
    if not int_amount:
        return general
    return sql.SQL("(CASE WHEN {} THEN {} BETWEEN {} ELSE {} END)").format(
        _is_int(stored), total, sql.SQL(_INT64), general
    )


def normalised(total: sql.Composable) -> sql.Composable:
    """``N``: ``total`` as the canonical number ``normalize_value`` makes of it."""
    double = sql.SQL("({}::float8)").format(total)
    return sql.SQL(
        "(CASE WHEN {0} THEN trunc({1}) "
        "WHEN {2} = trunc({2}) AND {2} >= -9223372036854775808::float8 "
        "AND {2} < 9223372036854775808::float8 THEN {2}::bigint::numeric "
        "ELSE {2}::text::numeric END)"
    ).format(_is_int(total), total, double)


def fits(column: Column | None, number: sql.Composable) -> sql.Composable:
    """Whether the normalised ``number`` fits ``column`` (``None``: JSON, where any fits)."""
    if column is None or column.kind == "jsonb":
        return sql.SQL("TRUE")
    kind = column.kind
    if kind == "int":
        low, high = INT_RANGES.get(column.data_type, INT_RANGES["bigint"])
        return sql.SQL("({0} = trunc({0}) AND {0} BETWEEN {1} AND {2})").format(
            number, sql.Literal(low), sql.Literal(high)
        )
    if kind == "double":
        # An int past 2**53 does not fit (a double would round it).
        return sql.SQL("(NOT {0} OR abs({1}) <= {2})").format(
            _is_int(number), number, sql.SQL(_DOUBLE_EXACT)
        )
    if kind == "numeric":
        if column.precision is None:
            return sql.SQL("TRUE")
        scale = column.scale or 0
        return sql.SQL("({0} = round({0}, {1}) AND abs({0}) < 10::numeric ^ {2})").format(
            number, sql.Literal(scale), sql.Literal(column.precision - scale)
        )
    return sql.SQL("FALSE")  # a number never fits a text or boolean column


def as_column(column: Column, number: sql.Composable) -> sql.Composable:
    """The normalised ``number`` as ``column``'s type."""
    if column.kind == "jsonb":
        return sql.SQL("to_jsonb({})").format(number)
    if not column.numeric:
        # Never written (``fits`` is FALSE), but the statement must still type-check: PostgreSQL
        # has no cast from numeric to boolean.
        return sql.SQL("NULL::{}").format(column.cast)
    return sql.SQL("({})::{}").format(number, column.cast)


def derived_names(number: int) -> tuple[sql.Composable, sql.Composable, sql.Composable]:
    """``S``, ``R`` and ``N`` of increment ``number`` in a value ``from_derived`` computes."""
    stored = sql.SQL("y.{}").format(sql.Identifier(f"s{number}"))
    total = sql.SQL("({} + p.{})").format(stored, sql.Identifier(f"a{number}"))
    return stored, total, normalised(total)


def from_derived(places: list[Place], value: sql.Composable) -> sql.Composed:
    """``value`` computed in a scalar subquery of the row being updated where, for increment
    ``i`` of the field at ``places[i]`` (amount ``p.a<i>``), ``y.s<i>`` is ``S`` and ``y.ok<i>``
    whether the stored value may be incremented. ``OFFSET 0`` keeps PostgreSQL from folding the
    subquery back into copies of ``S``'s expression. (The server starts every subquery of a
    statement at each run: ``R`` and ``N``, cheap over ``S``, are written where they are used.)"""
    stored = sql.SQL(", ").join(
        sql.SQL("{} AS {}, {} AS {}").format(
            stored_number(place),
            sql.Identifier(f"s{number}"),
            stored_ok(place),
            sql.Identifier(f"ok{number}"),
        )
        for number, place in enumerate(places)
    )
    return sql.SQL("(SELECT {} FROM (SELECT {} OFFSET 0) AS y)").format(value, stored)


def failing_unless(
    checks: sql.Composable, value: sql.Composable, cast: sql.Composable
) -> sql.Composed:
    """``value`` (of type ``cast``, inside ``from_derived``) when ``checks`` hold, else a division
    by zero that fails the statement (the divisor is the row's, or the server would divide
    while it plans)."""
    return sql.SQL("(CASE WHEN {} THEN {} ELSE (1 / (y.s0 * 0))::text::{} END)").format(
        checks, value, cast
    )
