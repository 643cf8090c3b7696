"""Filter conditions (``ne``, ``lt``, ... ``exists``) and ``increment``: the objects, their checks,
and how a stored record matches them.

A filter value is either a plain value (typed equality; ``None`` means "absent") or one of these
objects. Core turns every filter into a ``Condition`` of this module (``Eq`` and ``Absent`` for plain
values) with canonical operands, so a driver translates one closed set of conditions:

============================  ===============================================================
condition                     matches a record whose field ...
============================  ===============================================================
``Eq(v)``                     is present and equal to ``v`` (typed equality, ``same_value``)
``Absent()``                  is absent
``Ne(v)``                     is present and not equal to ``v``
``Lt Le Gt Ge(v)``            holds a value of ``v``'s class (number or string) comparing so
``Between(lo, hi)``           holds a value of their class with ``lo <= value <= hi``
``BeginsWith(prefix)``        holds a string starting with ``prefix``
``OneOf(values, absent)``     equals one of ``values``, or is absent when ``absent``
``Exists()``                  is present
``NotExpired(now)``           is not a number at or before ``now`` (absent included)
============================  ===============================================================

Numbers compare numerically (an int with a float too), strings by code point; a value of another
class (a bool against a number, a list, a string against a number) never matches a range.
``NotExpired`` is core's own: it hides expired records from reads when a kind has a ``ttl_field``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from kvstore.errors import InvalidArgument
from kvstore.values import INT64_MAX, INT64_MIN, normalize_value, same_value, value_identity

if TYPE_CHECKING:
    from decimal import Decimal

__all__ = [
    "MAX_ONE_OF",
    "Absent",
    "BeginsWith",
    "Between",
    "Condition",
    "Eq",
    "Exists",
    "Ge",
    "Gt",
    "Increment",
    "Le",
    "Lt",
    "Ne",
    "NotExpired",
    "OneOf",
    "Range",
    "begins_with",
    "between",
    "exists",
    "ge",
    "gt",
    "increment",
    "is_number",
    "le",
    "lt",
    "ne",
    "one_of",
]

MAX_ONE_OF = 100
"""``one_of`` takes 1 to this many values (DynamoDB's limit of an ``IN`` list)."""


def is_number(value: object) -> bool:
    """Whether a canonical value is a number (an int or a float, never a bool)."""
    kind = type(value)
    return kind is int or kind is float


def _same_class(value: object, operand: object) -> bool:
    """Whether ``value`` is of ``operand``'s class for a range: both numbers, or both strings."""
    if type(operand) is str:
        return type(value) is str
    return is_number(value)


class Condition:
    """A test on one top-level field of a stored record; ``operands`` are canonical values."""

    __slots__ = ()

    name: str = ""
    """The condition's name, as its constructor is called (``"lt"``, ``"one_of"``, ...)."""

    def matches(self, present: bool, value: Any) -> bool:
        """Whether a record whose field is ``present`` with ``value`` matches."""
        raise NotImplementedError

    def holds_when_absent(self) -> bool:
        """Whether a record without the field matches (``matches(False, None)``)."""
        return self.matches(False, None)

    def operands(self) -> tuple[Any, ...]:
        """The condition's canonical operands (what a driver translates, and cursors digest)."""
        return ()

    def prepared(self, field: str) -> Condition:
        """This condition with its operands checked and made canonical for ``field``.

        ``InvalidArgument`` names the field when an operand is not allowed.
        """
        return self

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is type(self)
            and isinstance(other, Condition)
            and _identities(self.operands()) == _identities(other.operands())
        )

    def __hash__(self) -> int:
        return hash((type(self).__name__, _identities(self.operands())))

    def __repr__(self) -> str:
        return f"{self.name}({', '.join(map(repr, self.operands()))})"


def _identities(operands: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(
        frozenset(map(value_identity, item))
        if isinstance(item, frozenset)
        else value_identity(item)
        for item in operands
    )


class Eq(Condition):
    """Typed equality with a canonical, non-None value (a plain filter value)."""

    __slots__ = ("value",)
    name = "eq"

    def __init__(self, value: Any) -> None:
        self.value = value

    def matches(self, present: bool, value: Any) -> bool:
        return present and same_value(value, self.value)

    def operands(self) -> tuple[Any, ...]:
        return (self.value,)


class Absent(Condition):
    """The field is absent (a plain filter value of ``None``)."""

    __slots__ = ()
    name = "absent"

    def matches(self, present: bool, value: Any) -> bool:
        return not present


class Exists(Condition):
    """The field is present, whatever its value: ``exists()``."""

    __slots__ = ()
    name = "exists"

    def matches(self, present: bool, value: Any) -> bool:
        return present


class Ne(Condition):
    """The field is present and not equal to ``value``: ``ne(value)``."""

    __slots__ = ("value",)
    name = "ne"

    def __init__(self, value: Any) -> None:
        self.value = value

    def matches(self, present: bool, value: Any) -> bool:
        return present and not same_value(value, self.value)

    def operands(self) -> tuple[Any, ...]:
        return (self.value,)

    def prepared(self, field: str) -> Condition:
        if self.value is None:
            raise InvalidArgument(f"field {field!r}: ne() needs a value (exists() means present)")
        return Ne(normalize_value(self.value, field))


def _range_operand(value: object, field: str, what: str) -> Any:
    if type(value) is bool or (not isinstance(value, (int, float, str)) and not _decimal(value)):
        raise InvalidArgument(
            f"field {field!r}: {what}() compares with a number or a string, not {value!r:.80}"
        )
    return normalize_value(value, field)


def _decimal(value: object) -> bool:
    from decimal import Decimal  # Decimal operands are rare; the class is already imported

    return isinstance(value, Decimal)


class Range(Condition):
    """A comparison with one operand of a range class (number or string): ``lt le gt ge``."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def operands(self) -> tuple[Any, ...]:
        return (self.value,)

    def compare(self, value: Any) -> bool:
        """The comparison itself, on a value of the operand's class."""
        raise NotImplementedError

    def matches(self, present: bool, value: Any) -> bool:
        return present and _same_class(value, self.value) and self.compare(value)

    def prepared(self, field: str) -> Condition:
        return type(self)(_range_operand(self.value, field, self.name))


class Lt(Range):
    """``lt(v)``: a value of ``v``'s class below ``v``."""

    __slots__ = ()
    name = "lt"

    def compare(self, value: Any) -> bool:
        return bool(value < self.value)


class Le(Range):
    """``le(v)``: a value of ``v``'s class at most ``v``."""

    __slots__ = ()
    name = "le"

    def compare(self, value: Any) -> bool:
        return bool(value <= self.value)


class Gt(Range):
    """``gt(v)``: a value of ``v``'s class above ``v``."""

    __slots__ = ()
    name = "gt"

    def compare(self, value: Any) -> bool:
        return bool(value > self.value)


class Ge(Range):
    """``ge(v)``: a value of ``v``'s class at least ``v``."""

    __slots__ = ()
    name = "ge"

    def compare(self, value: Any) -> bool:
        return bool(value >= self.value)


class Between(Condition):
    """``between(lo, hi)``: a value of their class with ``lo <= value <= hi``."""

    __slots__ = ("high", "low")
    name = "between"

    def __init__(self, low: Any, high: Any) -> None:
        self.low = low
        self.high = high

    def operands(self) -> tuple[Any, ...]:
        return (self.low, self.high)

    def matches(self, present: bool, value: Any) -> bool:
        return present and _same_class(value, self.low) and self.low <= value <= self.high

    def prepared(self, field: str) -> Condition:
        low = _range_operand(self.low, field, "between")
        high = _range_operand(self.high, field, "between")
        if (type(low) is str) != (type(high) is str):
            raise InvalidArgument(
                f"field {field!r}: between() takes two numbers or two strings, "
                f"not {low!r:.40} and {high!r:.40}"
            )
        if low > high:
            raise InvalidArgument(
                f"field {field!r}: between() needs lo <= hi, got {low!r} > {high!r}"
            )
        return Between(low, high)


class BeginsWith(Condition):
    """``begins_with(prefix)``: a string starting with ``prefix``."""

    __slots__ = ("prefix",)
    name = "begins_with"

    def __init__(self, prefix: Any) -> None:
        self.prefix = prefix

    def operands(self) -> tuple[Any, ...]:
        return (self.prefix,)

    def matches(self, present: bool, value: Any) -> bool:
        return present and type(value) is str and value.startswith(self.prefix)

    def prepared(self, field: str) -> Condition:
        if not isinstance(self.prefix, str) or not self.prefix:
            raise InvalidArgument(
                f"field {field!r}: begins_with() takes a non-empty string, not {self.prefix!r:.80}"
            )
        return BeginsWith(normalize_value(self.prefix, field))


class OneOf(Condition):
    """Equal to one of ``values`` (canonical, distinct, none of them None), or absent when
    ``absent``: ``one_of(values)``, and core's form of ``find_in``'s values (any number of them)."""

    __slots__ = ("_given", "_wanted", "absent", "values")
    name = "one_of"

    def __init__(
        self, values: Iterable[Any], absent: bool = False, given: int | None = None
    ) -> None:
        self.values = list(values)
        self.absent = absent
        self._given = (
            given  # how many values the caller passed (None included), for one_of()'s limit
        )
        self._wanted: frozenset[Any] | None = None

    def operands(self) -> tuple[Any, ...]:
        return (tuple(self.values), self.absent)

    def matches(self, present: bool, value: Any) -> bool:
        if not present:
            return self.absent
        wanted = self._wanted
        if wanted is None:
            wanted = self._wanted = frozenset(map(value_identity, self.values))
        return value_identity(value) in wanted

    def prepared(self, field: str) -> Condition:
        given = len(self.values) + self.absent if self._given is None else self._given
        if not 1 <= given <= MAX_ONE_OF:
            raise InvalidArgument(f"field {field!r}: one_of() takes 1 to {MAX_ONE_OF} values")
        return one_of_values(field, [*self.values, *([None] if self.absent else [])], None)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, OneOf)
            and self.absent == other.absent
            and frozenset(map(value_identity, self.values))
            == frozenset(map(value_identity, other.values))
        )

    def __hash__(self) -> int:
        return hash(("one_of", self.absent, frozenset(map(value_identity, self.values))))


def one_of_values(field: str, raw: Iterable[Any], key_type: type | None) -> OneOf:
    """A canonical ``OneOf`` of ``raw`` values (distinct; ``None`` means absent), each checked as
    a key of ``key_type`` when the field is a key field."""
    from kvstore.values import check_key_value

    values: list[Any] = []
    seen: set[Any] = set()
    absent = False
    for value in raw:
        if isinstance(value, Condition):
            raise InvalidArgument(f"field {field!r}: a condition is not a value to compare with")
        if key_type is not None:
            value = check_key_value(value, field, key_type)
            identity = value  # valid keys of one field are all str or all int: their own identity
        elif value is None:
            absent = True
            continue
        else:
            value = normalize_value(value, field)
            identity = value_identity(value)
        if identity not in seen:
            seen.add(identity)
            values.append(value)
    return OneOf(values, absent)


class NotExpired(Condition):
    """Not a number at or before ``now`` (core's: a kind's ``ttl_field`` on every read)."""

    __slots__ = ("now",)
    name = "not_expired"

    def __init__(self, now: float) -> None:
        self.now = now

    def operands(self) -> tuple[Any, ...]:
        return (self.now,)

    def matches(self, present: bool, value: Any) -> bool:
        return not (present and is_number(value) and value <= self.now)


def ne(value: Any) -> Condition:
    """Matches a record whose field is present and not equal to ``value``."""
    return Ne(value)


def lt(value: Any) -> Condition:
    """Matches a field holding a value of ``value``'s class (number or string) below it."""
    return Lt(value)


def le(value: Any) -> Condition:
    """Matches a field holding a value of ``value``'s class (number or string) at most it."""
    return Le(value)


def gt(value: Any) -> Condition:
    """Matches a field holding a value of ``value``'s class (number or string) above it."""
    return Gt(value)


def ge(value: Any) -> Condition:
    """Matches a field holding a value of ``value``'s class (number or string) at least it."""
    return Ge(value)


def between(low: Any, high: Any) -> Condition:
    """Matches a field holding a value of their class with ``low <= value <= high``."""
    return Between(low, high)


def begins_with(prefix: str) -> Condition:
    """Matches a field holding a string that starts with ``prefix`` (a non-empty string)."""
    return BeginsWith(prefix)


def one_of(values: Iterable[Any]) -> Condition:
    """Matches a field equal to one of ``values`` (1 to 100; ``None`` among them: absent)."""
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        raise InvalidArgument("one_of() takes a list, tuple or other iterable of values")
    raw = list(values)
    absent = any(value is None for value in raw)
    return OneOf([value for value in raw if value is not None], absent, given=len(raw))


def exists() -> Condition:
    """Matches a record that has the field, whatever its value."""
    return Exists()


class Increment:
    """``increment(n)`` as a value in ``update``'s changes: add ``n`` to the stored number."""

    __slots__ = ("amount",)

    def __init__(self, amount: Any) -> None:
        self.amount = amount

    def __repr__(self) -> str:
        return f"increment({self.amount!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Increment) and same_value(self.amount, other.amount)

    def __hash__(self) -> int:
        return hash(("increment", value_identity(self.amount)))

    def prepared(self, field: str) -> Increment:
        """This increment with its amount checked (a finite number, not a bool) and canonical."""
        amount = self.amount
        if type(amount) is int and INT64_MIN <= amount <= INT64_MAX:
            return self  # the commonest amount, canonical as it is
        if type(amount) is bool or not (isinstance(amount, (int, float)) or _decimal(amount)):
            raise InvalidArgument(
                f"field {field!r}: increment() takes a number, not {amount!r:.80}"
            )
        value = normalize_value(amount, field)
        # An amount given as a float stays one (1.0 reads as 1 once stored): only an int added to
        # a stored int must keep the result in the signed 64-bit range.
        return Increment(float(value) if type(amount) is not int else value)


def increment(amount: int | float | Decimal) -> Increment:
    """In ``update``'s changes, add ``amount`` atomically to the stored number (absent: 0)."""
    return Increment(amount)
