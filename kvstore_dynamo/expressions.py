"""Core's conditions and guards as DynamoDB expressions, every name and value a placeholder.

Every attribute name goes through ``ExpressionAttributeNames`` (``#n0``...), so reserved words such
as ``name``, ``status`` or ``data`` are ordinary field names here, and every value through
``ExpressionAttributeValues`` (``:v0``...).

Each condition of ``kvstore.conditions`` becomes a Filter or Condition expression and says whether
the server's answer is the contract's (``exact``): a count may trust an exact filter, and a guard
must be exact, since the server alone decides a conditional write. Two habits keep them exact:

- a type test (``attribute_type``) comes first, before any comparison: DynamoDB never finds a bool
  equal to a number nor a string below a number, but moto does (and raises comparing them), and it
  stops at the first false operand of an AND. String equality needs none: both compare a string
  only with a string (moto compares Python values, and a ``str`` equals no other type's), so an
  ``expect`` of a string sends no type test;
- strings compare as UTF-8 bytes on DynamoDB, which is code-point order, the contract's.

Nested equality (a list or dict filter value) is narrowed to the value's type in a filter (core
re-checks each record); in a guard it is DynamoDB's own ``=``, which compares nested values by
type and value, maps by their entries, numbers numerically (checked on DynamoDB Local; moto finds
nested bools equal to numbers). A list that a string or number set written by another tool reads
back as (distinct members in ascending order) also matches that set.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Any

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
from kvstore.errors import StoreError
from kvstore.schema import KindSchema
from kvstore.values import INT64_MAX, INT64_MIN
from kvstore.writes import Guard
from kvstore_dynamo.codec import AttributeValue, to_attribute

__all__ = [
    "MAX_IN",
    "Expression",
    "beyond_increments",
    "condition",
    "filter_expression",
    "guard_expression",
    "increment_checks",
    "key_condition",
    "update_expression",
]

MAX_IN = 100
"""DynamoDB's limit of values in one ``IN`` list; past it, a filter is left to core."""

_COMPARE: dict[type, str] = {Lt: "<", Le: "<=", Gt: ">", Ge: ">="}
_KNOWN = (Eq, Absent, Exists, Ne, Lt, Le, Gt, Ge, Between, BeginsWith, NotExpired)
_NESTED = (list, dict)


def _tag(value: Any) -> str:
    """The DynamoDB type of a canonical scalar or nested value."""
    kind = type(value)
    if kind is str:
        return "S"
    if kind is bool:
        return "BOOL"
    if kind is int or kind is float:
        return "N"
    return "L" if kind is list else "M"


class Expression:
    """Placeholders for one request's expressions; ``params()`` gives the request's arguments."""

    def __init__(self) -> None:
        self._names: dict[str, str] = {}
        self._values: dict[str, AttributeValue] = {}

    def name(self, field: str) -> str:
        """The placeholder of attribute ``field`` (the same one each time)."""
        placeholder = self._names.get(field)
        if placeholder is None:
            placeholder = self._names[field] = f"#n{len(self._names)}"
        return placeholder

    def value(self, value: Any) -> str:
        """A new placeholder for the canonical ``value``."""
        return self.attribute(to_attribute(value))

    def attribute(self, attribute: AttributeValue) -> str:
        """A new placeholder for a value already in wire form."""
        placeholder = f":v{len(self._values)}"
        self._values[placeholder] = attribute
        return placeholder

    def type_of(self, field: str, tag: str) -> str:
        """``attribute_type(field, tag)``; the tag's placeholder is shared by every use."""
        placeholder = f":t{tag}"
        self._values[placeholder] = {"S": tag}
        return f"attribute_type({self.name(field)}, {placeholder})"

    def params(self) -> dict[str, Any]:
        """``ExpressionAttributeNames``/``Values`` for the request (only those that are used)."""
        params: dict[str, Any] = {}
        if self._names:
            params["ExpressionAttributeNames"] = {ph: field for field, ph in self._names.items()}
        if self._values:
            params["ExpressionAttributeValues"] = dict(self._values)
        return params


def _all(parts: list[str]) -> str:
    """``parts`` (each one operand: a call, a comparison, ``NOT x`` or a parenthesised group)
    joined by AND, as one operand: DynamoDB refuses a group in redundant parentheses."""
    return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"


def _any(parts: list[str]) -> str:
    """``parts`` joined by OR, as one operand (see ``_all``)."""
    return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"


def _never(expr: Expression, field: str) -> str:
    name = expr.name(field)
    return _all([f"attribute_exists({name})", f"attribute_not_exists({name})"])


def _set_of(value: Any) -> AttributeValue | None:
    """The string or number set (``SS``/``NS``) that reads back as the list ``value``, if one
    does: a set another tool wrote reads back as its members sorted, so only a list of distinct
    strings, or of distinct numbers, in ascending order is one."""
    if type(value) is not list or not value:
        return None
    if all(type(item) is str for item in value):
        tag = "SS"
    elif all(type(item) in (int, float) for item in value):
        tag = "NS"
    else:
        return None
    if any(a >= b for a, b in itertools.pairwise(value)):
        return None
    members = [to_attribute(item) for item in value]
    return {tag: [next(iter(member.values())) for member in members]}


def _equal(expr: Expression, field: str, value: Any, guard: bool) -> tuple[str, bool]:
    name = expr.name(field)
    if isinstance(value, _NESTED):
        members = _set_of(value)
        if guard:
            parts = [f"{name} = {expr.value(value)}"]
            if members is not None:
                parts.append(f"{name} = {expr.attribute(members)}")
            return f"({' OR '.join(parts)})", True
        if members is not None:  # a set written by another tool may read back as this list
            tags = [_tag(value), next(iter(members))]
            return _any([expr.type_of(field, tag) for tag in tags]), False
        return expr.type_of(field, _tag(value)), False
    kind = type(value)
    if kind is str or kind is float or (kind is int and value not in (0, 1)):
        # Equal only to the same type, on DynamoDB and on moto alike (moto takes true for 1 and
        # false for 0: those, and booleans, test the type too). One operator a field keeps a
        # wide record's guard within an expression's 300 (``kvstore.reconcile.unchanged``).
        return f"{name} = {expr.value(value)}", True
    return _all([expr.type_of(field, _tag(value)), f"{name} = {expr.value(value)}"]), True


def _one_of(expr: Expression, field: str, wanted: OneOf, guard: bool) -> tuple[str | None, bool]:
    parts: list[str] = []
    exact = True
    scalars: dict[str, list[Any]] = {}
    nested: list[Any] = []
    for value in wanted.values:
        if isinstance(value, _NESTED):
            nested.append(value)
        else:
            scalars.setdefault(_tag(value), []).append(value)
    if sum(map(len, scalars.values())) > MAX_IN:
        if guard:  # pragma: no cover - core limits one_of() to 100 values
            raise StoreError(f"field {field!r}: more than {MAX_IN} values in a condition")
        return None, False
    name = expr.name(field)
    for tag, values in scalars.items():
        listed = ", ".join(expr.value(value) for value in values)
        parts.append(_all([expr.type_of(field, tag), f"{name} IN ({listed})"]))
    for value in nested:
        text, exact_one = _equal(expr, field, value, guard)
        exact = exact and exact_one
        if text not in parts:
            parts.append(text)
    if wanted.absent:
        parts.append(f"attribute_not_exists({name})")
    if not parts:
        return _never(expr, field), True
    return _any(parts), exact


def condition(
    expr: Expression, field: str, wanted: Condition, *, guard: bool = False
) -> tuple[str | None, bool]:
    """The expression of ``wanted`` on ``field`` (``None``: no narrowing) and whether it is exact.

    ``guard``: for a ConditionExpression, where nested equality is the server's own.
    """
    if isinstance(wanted, OneOf):
        return _one_of(expr, field, wanted, guard)
    if not isinstance(wanted, _KNOWN):
        if guard:
            raise StoreError(f"field {field!r}: no DynamoDB expression for {wanted!r}")
        return None, False  # left to core; no placeholder made (DynamoDB refuses unused ones)
    name = expr.name(field)
    if isinstance(wanted, Eq):
        return _equal(expr, field, wanted.value, guard)
    if isinstance(wanted, Absent):
        return f"attribute_not_exists({name})", True
    if isinstance(wanted, Exists):
        return f"attribute_exists({name})", True
    if isinstance(wanted, Ne):
        if isinstance(wanted.value, _NESTED) and not guard:
            return f"attribute_exists({name})", False  # NOT of a narrowing would drop matches
        text, _exact = _equal(expr, field, wanted.value, guard)
        return _all([f"attribute_exists({name})", f"NOT {text}"]), True
    if isinstance(wanted, (Lt, Le, Gt, Ge)):
        operand = wanted.value
        compare = f"{name} {_COMPARE[type(wanted)]} {expr.value(operand)}"
        return _all([expr.type_of(field, _tag(operand)), compare]), True
    if isinstance(wanted, Between):
        low, high = expr.value(wanted.low), expr.value(wanted.high)
        test = expr.type_of(field, _tag(wanted.low))
        return _all([test, f"{name} BETWEEN {low} AND {high}"]), True
    if isinstance(wanted, BeginsWith):
        prefix = expr.value(wanted.prefix)
        return _all([expr.type_of(field, "S"), f"begins_with({name}, {prefix})"]), True
    assert isinstance(wanted, NotExpired)
    expired = _all([expr.type_of(field, "N"), f"{name} <= {expr.value(wanted.now)}"])
    return f"NOT {expired}", True


def filter_expression(
    expr: Expression, filters: Iterable[tuple[str, Condition]], skip: Iterable[str] = ()
) -> tuple[str | None, bool]:
    """The FilterExpression of ``filters`` (``None``: none) and whether it is exact.

    Filters on the ``skip`` fields (the key a Query reads, which DynamoDB refuses in a filter)
    are left to core.
    """
    skipped = set(skip)
    parts: list[str] = []
    exact = True
    for field, wanted in filters:
        if field in skipped:
            exact = False
            continue
        text, exact_one = condition(expr, field, wanted)
        exact = exact and exact_one
        if text is not None:
            parts.append(text)
    return (_all(parts) if parts else None), exact


def key_condition(
    expr: Expression, partition: str, value: Any, sort: str | None, wanted: Condition | None
) -> str:
    """A KeyConditionExpression: the partition field equal to ``value``, and ``wanted`` (``Eq``,
    ``lt le gt ge``, ``Between``, ``BeginsWith``) on the ``sort`` field."""
    text = f"{expr.name(partition)} = {expr.value(value)}"
    if wanted is None or sort is None:
        return text
    name = expr.name(sort)
    if isinstance(wanted, Eq):
        return f"{text} AND {name} = {expr.value(wanted.value)}"
    if isinstance(wanted, (Lt, Le, Gt, Ge)):
        return f"{text} AND {name} {_COMPARE[type(wanted)]} {expr.value(wanted.value)}"
    if isinstance(wanted, Between):
        low, high = expr.value(wanted.low), expr.value(wanted.high)
        return f"{text} AND {name} BETWEEN {low} AND {high}"
    if isinstance(wanted, BeginsWith):
        return f"{text} AND begins_with({name}, {expr.value(wanted.prefix)})"
    raise StoreError(f"no key condition for {wanted!r}")  # pragma: no cover - plan_read's rule


def _live(expr: Expression, schema: KindSchema, now: float | None) -> str:
    """Whether the key's record is live: stored and, with a ``ttl_field``, not expired."""
    stored = f"attribute_exists({expr.name(schema.partition)})"
    ttl = schema.ttl_field
    if ttl is None or now is None:
        return stored
    name = expr.name(ttl)
    expired = _all([expr.type_of(ttl, "N"), f"{name} <= {expr.value(now)}"])
    return _all([stored, f"NOT {expired}"])


def increment_checks(
    expr: Expression, increments: Mapping[str, int | float], *, exact: bool = True
) -> list[str]:
    """What a stored record must hold for each increment to be valid (``add_numbers``): the field
    absent or a number, and for an int amount no result past the signed 64-bit range from an
    int (a stored number beyond that range is a float, which takes any amount).

    ``exact=False`` leaves out that exception: one comparison instead of two, which refuses
    also a stored number beyond the range (``beyond_increments`` tells such a refusal, and the
    write is sent again with the exact checks). It never accepts what the exact checks refuse.
    """
    checks = []
    for field, amount in increments.items():
        name = expr.name(field)
        test = expr.type_of(field, "N")
        if type(amount) is int and amount > 0:
            within = f"{name} <= {expr.value(INT64_MAX - amount)}"
            if exact:
                within = _any([within, f"{name} > {expr.value(INT64_MAX)}"])
            test = _all([test, within])
        elif type(amount) is int and amount < 0:
            within = f"{name} >= {expr.value(INT64_MIN - amount)}"
            if exact:
                within = _any([within, f"{name} < {expr.value(INT64_MIN)}"])
            test = _all([test, within])
        checks.append(_any([f"attribute_not_exists({name})", test]))
    return checks


def beyond_increments(
    increments: Mapping[str, int | float], current: Mapping[str, Any] | None
) -> bool:
    """Whether ``current`` holds, in a field an int amount increments, a number beyond the
    signed 64-bit range: the one record that the checks of ``exact=False`` refuse and the
    exact ones may not."""
    if current is None:
        return False
    return any(
        type(amount) is int
        and amount != 0
        and type(value := current.get(field)) is float
        and not INT64_MIN <= value <= INT64_MAX
        for field, amount in increments.items()
    )


def guard_expression(
    expr: Expression, schema: KindSchema, guard: Guard, extra: Iterable[str] = ()
) -> str | None:
    """The ConditionExpression of ``guard`` (``None``: the write is unconditional):
    ``(live AND when_present AND extra) OR (NOT live AND when_absent)``. ``extra`` holds what a
    live record must also meet (an update's increment checks)."""
    checks = list(extra)
    present = guard.when_present
    if guard.when_absent and present == () and not checks:
        return None
    branch: str | None = None
    if present is not None:
        parts = []
        for field, wanted in present:
            text, _exact = condition(expr, field, wanted, guard=True)
            if text is not None:
                parts.append(text)
        if not _implies_live(schema, guard, present):
            parts.insert(0, _live(expr, schema, guard.now))
        branch = _all(parts + checks)
    if guard.when_absent:
        absent = f"NOT {_live(expr, schema, guard.now)}"
        return absent if branch is None else _any([branch, absent])
    return branch if branch is not None else _never(expr, schema.partition)


def _implies_live(
    schema: KindSchema, guard: Guard, present: Iterable[tuple[str, Condition]]
) -> bool:
    """Whether ``present`` holds only on a stored record, and stored is live (no expiry to
    test): then the live test would repeat it, and the guard leaves it out (a smaller request
    for the server to parse and evaluate, as the raw code's ``#name = :name`` alone)."""
    if schema.ttl_field is not None and guard.now is not None:
        return False
    # A condition that a record without the field fails needs a stored record (DynamoDB finds
    # no attribute of a missing item, and ``condition`` writes such a test on the attribute).
    return any(not wanted.holds_when_absent() for _field, wanted in present)


def update_expression(
    expr: Expression,
    sets: Mapping[str, Any],
    removes: Iterable[str],
    increments: Mapping[str, int | float],
) -> str:
    """An UpdateExpression: ``SET`` each field of ``sets``, ``ADD #f n`` for each increment,
    ``REMOVE`` each of ``removes``.

    ``ADD`` adds to a stored number and stores ``n`` where the field is absent: what an
    increment does (its guard, ``increment_checks``, has already refused any other stored
    value), in one operand where ``SET #f = if_not_exists(#f, 0) + n`` takes three.
    """
    clauses = []
    if sets:
        clauses.append(
            "SET "
            + ", ".join(
                f"{expr.name(field)} = {expr.value(value)}" for field, value in sets.items()
            )
        )
    if increments:
        clauses.append(
            "ADD "
            + ", ".join(
                f"{expr.name(field)} {expr.value(amount)}" for field, amount in increments.items()
            )
        )
    removed = [expr.name(field) for field in removes]
    if removed:
        clauses.append("REMOVE " + ", ".join(removed))
    return " ".join(clauses)
