"""The command line's filter syntax (``age>=30``, ``name^=Ad``, ...) read into a filters dict.

The grammar, also in ``kvstore --help`` and the README::

    FIELD=VALUE  FIELD!=VALUE  FIELD<VALUE  FIELD<=VALUE  FIELD>VALUE  FIELD>=VALUE
    FIELD^=PREFIX  FIELD:between=LO,HI  FIELD:one_of=A,B,...  FIELD:exists  FIELD:OP=VALUE

A field name is ``[A-Za-z0-9_]`` up to the operator (core checks it). A VALUE is JSON when it
parses (``NaN`` and ``Infinity`` excepted), else the text; for a field declared ``str`` it is always
the text, so a str key ``007`` stays ``"007"``. A list operand (``between``, ``one_of``) is one
JSON list, or such values split at commas.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from kvstore.conditions import begins_with, between, exists, ge, gt, le, lt, ne, one_of
from kvstore.errors import InvalidArgument

__all__ = ["SYNTAX", "parse_filter", "parse_filters"]

SYNTAX = (
    "FIELD=VALUE, FIELD!=VALUE, FIELD<VALUE, FIELD<=VALUE, FIELD>VALUE, FIELD>=VALUE, "
    "FIELD^=PREFIX, FIELD:between=LO,HI, FIELD:one_of=A,B,..., FIELD:exists or FIELD:OP=VALUE "
    "(OP: eq ne lt le gt ge begins_with between one_of); see kvstore --help"
)
"""The grammar in one line, for error messages."""

# The two-character operators first: "<=" is not "<" followed by "=...".
_SYMBOLS = (
    ("!=", "ne"),
    ("<=", "le"),
    (">=", "ge"),
    ("^=", "begins_with"),
    ("<", "lt"),
    (">", "gt"),
    ("=", "eq"),
)

_CONDITIONS: dict[str, Callable[[Any], Any]] = {
    "ne": ne,
    "lt": lt,
    "le": le,
    "gt": gt,
    "ge": ge,
}

FieldType = Callable[[str], type | None]


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a record value")


def _json(text: str) -> Any:
    """``text`` as JSON; ``ValueError`` when it is not (NaN and Infinity are not)."""
    return json.loads(text, parse_constant=_refuse_constant)


def _value(text: str, declared: type | None) -> Any:
    if declared is str:
        return text
    try:
        return _json(text)
    except ValueError:
        return text


def _items(text: str, declared: type | None) -> list[Any]:
    """A list operand: one JSON list, or values split at commas."""
    if text.startswith("["):
        try:
            parsed = _json(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, list):
            return parsed
    return [_value(part, declared) for part in text.split(",")]


def _field_end(text: str) -> int:
    end = 0
    while end < len(text) and text[end].isascii() and (text[end].isalnum() or text[end] == "_"):
        end += 1
    return end


def parse_filter(text: str, field_type: FieldType) -> tuple[str, Any]:
    """One filter argument as ``(field, value or condition)``; ``field_type(field)`` is the
    type declared for a field (``str`` keeps its values as text), ``None`` when none is."""
    end = _field_end(text)
    field, rest = text[:end], text[end:]
    name = operand = None
    if field and rest.startswith(":"):
        name, equals, operand = rest[1:].partition("=")
        if name == "exists":
            if equals:
                raise InvalidArgument(f"{text!r}: FIELD:exists takes no value")
            return field, exists()
        if not equals or name not in (*_CONDITIONS, "eq", "begins_with", "between", "one_of"):
            name = None
    elif field:
        for symbol, named in _SYMBOLS:
            if rest.startswith(symbol):
                name, operand = named, rest[len(symbol) :]
                break
    if name is None or operand is None:
        raise InvalidArgument(f"{text!r} is not a filter: {SYNTAX}")
    declared = field_type(field)
    if name == "begins_with":
        return field, begins_with(operand)
    if name == "between":
        bounds = _items(operand, declared)
        if len(bounds) != 2:
            raise InvalidArgument(
                f"{text!r}: between takes two values, LO,HI (or a JSON list [LO, HI])"
            )
        return field, between(bounds[0], bounds[1])
    if name == "one_of":
        return field, one_of(_items(operand, declared))
    value = _value(operand, declared)
    return field, value if name == "eq" else _CONDITIONS[name](value)


def parse_filters(texts: Iterable[str], field_type: FieldType) -> dict[str, Any]:
    """Filter arguments as a filters dict (every one must hold)."""
    filters: dict[str, Any] = {}
    for text in texts:
        field, value = parse_filter(text, field_type)
        if field in filters:
            raise InvalidArgument(
                f"{field!r} is filtered twice: a field takes one condition "
                f"(a range is {field}:between=LO,HI)"
            )
        filters[field] = value
    return filters
