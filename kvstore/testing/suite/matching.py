"""The contract's matching and ordering rules restated in plain Python, for the query tests' answers.

The query tests never copy what the code returns: they filter and sort their own records here, by
the rules of CONTRACT.md ("Records and values", "Filters", "Conditions in filters", "Pages"), and
compare. A condition is written as a ``Cond`` (its name and operands), which both builds the
``kvstore`` condition object and says which stored values it matches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from kvstore import (  # type: ignore[attr-defined, unused-ignore]
    begins_with,
    between,
    exists,
    ge,
    gt,
    le,
    lt,
    ne,
    one_of,
)

__all__ = [
    "ABSENT",
    "Cond",
    "QueryStoreFactory",
    "build",
    "equal",
    "field_of",
    "is_number",
    "key_order",
    "matches",
    "same_class",
    "select",
]


QueryStoreFactory = Callable[..., Any]
"""``make_store`` as the query tests type it: their stores also have ``explain`` and ``find_page``,
which the ``Store`` protocol does not declare yet, so they are ``Any`` here."""


class _Absent:
    """A field's value when the record does not have the field."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()


def is_number(value: Any) -> bool:
    """A number by the contract: int, float or Decimal, never a bool."""
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def equal(a: Any, b: Any) -> bool:
    """Typed equality: a bool never equals a number, ``1 == 1.0``, strings by code point, lists
    (or tuples) by order, dicts by their entries; ``None`` only inside nested values."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if is_number(a) and is_number(b):
        return bool(a == b)
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    return a is None and b is None


def same_class(value: Any, operand: Any) -> bool:
    """Whether a range condition may match ``value``: both numbers, or both strings."""
    if is_number(value) and is_number(operand):
        return True
    return isinstance(value, str) and isinstance(operand, str)


def field_of(record: Mapping[str, Any], field: str) -> Any:
    """The record's value of a top-level field, ``ABSENT`` when it has none (``None`` is absent)."""
    value = record.get(field)
    return ABSENT if value is None else value


_CONSTRUCTORS: dict[str, Callable[..., Any]] = {
    "ne": ne,
    "lt": lt,
    "le": le,
    "gt": gt,
    "ge": ge,
    "between": between,
    "begins_with": begins_with,
    "one_of": one_of,
    "exists": exists,
}


@dataclass(frozen=True)
class Cond:
    """A condition as data: ``Cond("between", 1, 2)`` stands for ``between(1, 2)``."""

    name: str
    args: tuple[Any, ...] = ()

    def __init__(self, name: str, *args: Any) -> None:
        assert name in _CONSTRUCTORS, name
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "args", args)

    def __repr__(self) -> str:
        return f"{self.name}({', '.join(map(repr, self.args))})"

    def build(self) -> Any:
        """The ``kvstore`` condition object."""
        return _CONSTRUCTORS[self.name](*self.args)

    def holds(self, value: Any) -> bool:
        """Whether a field holding ``value`` (``ABSENT`` when missing) matches, by the contract."""
        name, args = self.name, self.args
        if name == "one_of":
            return any(
                (choice is None) if value is ABSENT else equal(value, choice) for choice in args[0]
            )
        if value is ABSENT:
            return False
        if name == "exists":
            return True
        if name == "ne":
            return not equal(value, args[0])
        if name == "begins_with":
            return isinstance(value, str) and value.startswith(args[0])
        if not same_class(value, args[0]):
            return False
        if name == "between":
            return bool(args[0] <= value <= args[1])
        compare: dict[str, Callable[[Any, Any], bool]] = {
            "lt": lambda v, o: v < o,
            "le": lambda v, o: v <= o,
            "gt": lambda v, o: v > o,
            "ge": lambda v, o: v >= o,
        }
        return bool(compare[name](value, args[0]))


def build(filters: Mapping[str, Any]) -> dict[str, Any]:
    """``filters`` with every ``Cond`` replaced by its ``kvstore`` condition object."""
    return {
        field: value.build() if isinstance(value, Cond) else value
        for field, value in filters.items()
    }


def matches(record: Mapping[str, Any], filters: Mapping[str, Any]) -> bool:
    """Whether ``record`` matches ``filters`` (plain values, ``None`` for absent, ``Cond``s)."""
    for field, wanted in filters.items():
        value = field_of(record, field)
        if isinstance(wanted, Cond):
            if not wanted.holds(value):
                return False
        elif wanted is None:
            if value is not ABSENT:
                return False
        elif value is ABSENT or not equal(value, wanted):
            return False
    return True


def key_order(fields: Sequence[str]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """Sort key of records by ``fields`` in order (Python's order is the contract's: strings by
    code point, numbers numerically)."""
    return lambda record: tuple(record[field] for field in fields)


def select(
    records: Iterable[Mapping[str, Any]],
    filters: Mapping[str, Any],
    order: Sequence[str],
) -> list[dict[str, Any]]:
    """The records matching ``filters``, sorted by the fields of ``order``."""
    found = [dict(record) for record in records if matches(record, filters)]
    return sorted(found, key=key_order(order))
