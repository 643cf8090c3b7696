"""Validation and normalisation of names, keys, values and records; DynamoDB's item-size rules.

Every backend receives only what passed through here, so the contract's rules on names, values,
numbers and sizes are enforced once, before any I/O, and the same way on every backend. Values leave
this module *canonical*: ``str``, ``bool``, ``int`` (signed 64-bit), ``float``, ``list``, ``dict`` and
(nested only) ``None``; integral numbers in the int64 range are ints, every other number a float.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from decimal import Context, Decimal
from typing import Any

from kvstore.errors import InvalidArgument

__all__ = [
    "DOUBLE_EXACT",
    "INT64_MAX",
    "INT64_MIN",
    "MAX_DEPTH",
    "MAX_ITEM_SIZE",
    "MAX_KEY_BYTES",
    "MAX_NUMBER_SIZE",
    "canonical_sized",
    "check_field_name",
    "check_field_names",
    "check_kind",
    "item_size",
    "normalize_value",
    "number_entry_bound",
    "number_from_float_text",
    "number_from_text",
    "number_size",
    "same_value",
    "value_identity",
]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
DOUBLE_EXACT = 2**53
"""Below this magnitude a float holds every integer exactly."""
MAX_ITEM_SIZE = 409_600
"""A record's DynamoDB size must be under this many bytes (400 KiB)."""
MAX_KEY_BYTES = 1024
"""A string key's UTF-8 length limit (PostgreSQL's btree cannot index two 2048-byte keys)."""
MAX_DEPTH = 31
"""How deeply a field's value may nest lists and dicts (the record is level one of DynamoDB's 32)."""
MAX_DIGITS = 38
MAX_NUMBER_SIZE = 21
"""The most bytes DynamoDB counts for a number (38 significant digits, a sign)."""
_MIN_MAGNITUDE = Decimal("1E-130")
_MAX_MAGNITUDE = Decimal("1E+126")
_WIDE = Context(prec=80)  # normalize() without rounding a 38-digit number


def _is_name(text: str) -> bool:
    """Whether ``text`` is ``[A-Za-z_][A-Za-z0-9_]*``, at most 63 characters.

    String methods rather than a regular expression: compiling the two patterns cost a cold start
    0.3 ms, a fifth of ``import kvstore``'s own modules.
    """
    return len(text) <= 63 and text.isascii() and text.isidentifier()


def check_kind(kind: object) -> str:
    """Return ``kind`` when it is a valid kind name (3-63 of ``[a-z0-9_]``, first a letter)."""
    # islower(): no capital letter. The first character is no "_" and (isidentifier) no digit.
    if not (
        isinstance(kind, str)
        and len(kind) >= 3
        and _is_name(kind)
        and kind.islower()
        and kind[0] != "_"
    ):
        raise InvalidArgument(
            f"invalid kind {kind!r}: 3 to 63 characters of [a-z0-9_], starting with a letter"
        )
    return kind


_known_fields: set[str] = set()
"""Field names already found valid: a process uses few, and each record checks every one."""


def check_field_names(names: Iterable[object]) -> None:
    """``check_field_name`` of each of ``names`` (a record's keys), in one set operation when
    every name was seen valid before."""
    try:
        if _known_fields.issuperset(names):
            return
    except TypeError:  # an unhashable name (a Mapping of another kind's): refused below
        pass
    for name in names:
        check_field_name(name)


def check_field_name(name: object) -> str:
    """Return ``name`` when it is a valid top-level field name (``[A-Za-z_][A-Za-z0-9_]*``, <= 63)."""
    if type(name) is str and name in _known_fields:
        return name
    if not isinstance(name, str) or not _is_name(name):
        raise InvalidArgument(
            f"invalid field name {name!r}: [A-Za-z_][A-Za-z0-9_]*, at most 63 characters"
        )
    if type(name) is str and len(_known_fields) < 10_000:
        _known_fields.add(name)
    return name


def _check_string(value: str, field: str, what: str = "string") -> str:
    if "\x00" in value:
        raise InvalidArgument(f"field {field!r}: a {what} may not contain NUL")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgument(f"field {field!r}: a {what} must encode as UTF-8") from None
    return value


def _decimal_number(value: Decimal, field: str) -> int | float:
    if not value.is_finite():
        raise InvalidArgument(f"field {field!r}: numbers must be finite, not {value}")
    if value.is_zero():
        return 0
    _sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    significant = len(digits)
    # Trailing zeros do not count as significant digits.
    for digit in reversed(digits):
        if digit != 0 or significant == 1:
            break
        significant -= 1
    if significant > MAX_DIGITS:
        raise InvalidArgument(
            f"field {field!r}: {value} has more than {MAX_DIGITS} significant digits"
        )
    magnitude = abs(value)
    if magnitude < _MIN_MAGNITUDE or magnitude >= _MAX_MAGNITUDE:
        raise InvalidArgument(
            f"field {field!r}: {value} is out of range (zero, or 1E-130 <= |n| < 1E+126)"
        )
    if value == value.to_integral_value():
        as_int = int(value)
        if INT64_MIN <= as_int <= INT64_MAX:
            return as_int
    # Rounding to a float may land on an integer (0.999...9 with 38 nines is 1.0): the canonical
    # value must normalise to itself, or backends storing "1" would read back an int.
    as_float = float(value)
    if as_float.is_integer() and INT64_MIN <= as_float <= INT64_MAX:
        return int(as_float)
    return as_float


def _number(value: int | float | Decimal, field: str) -> int | float:
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise InvalidArgument(
                f"field {field!r}: int {value} is outside the signed 64-bit range"
            )
        return int(value)  # a subclass (IntEnum, ...) is stored and read back as a plain int
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidArgument(f"field {field!r}: numbers must be finite, not {value}")
        if value == 0.0:
            return 0
        magnitude = abs(value)
        if magnitude < 1e-130 or magnitude >= 1e126:
            # Near the bounds a float's binary value needs the exact decimal check.
            return _decimal_number(Decimal(repr(value)), field)
        if value.is_integer() and INT64_MIN <= value <= INT64_MAX:
            return int(value)
        return float(value)
    return _decimal_number(value, field)


def normalize_value(value: Any, field: str, depth: int = 0) -> Any:
    """Return the canonical form of ``value`` (of field ``field``), or raise ``InvalidArgument``.

    ``depth`` counts the lists and dicts around ``value`` inside its field.
    """
    # Fast paths for the common plain values (put_many validates every field of every record);
    # anything unusual falls through to the full checks below.
    kind = type(value)
    if kind is str:
        if value.isascii() and "\x00" not in value:  # ASCII: valid UTF-8, no surrogates
            return value
    elif kind is int:
        if INT64_MIN <= value <= INT64_MAX:
            return value
    elif kind is float and 1e-130 <= abs(value) < 1e126 and not value.is_integer():
        return value
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        # str.__str__ gives a plain str for a subclass (StrEnum, ...), whatever its own __str__.
        return _check_string(str.__str__(value), field)
    if isinstance(value, (int, float, Decimal)):
        return _number(value, field)
    if isinstance(value, (list, tuple)):
        if depth >= MAX_DEPTH:
            raise InvalidArgument(f"field {field!r}: nests more than {MAX_DEPTH} levels deep")
        return [normalize_value(item, field, depth + 1) for item in value]
    if isinstance(value, dict):
        if depth >= MAX_DEPTH:
            raise InvalidArgument(f"field {field!r}: nests more than {MAX_DEPTH} levels deep")
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str) or not key:
                raise InvalidArgument(f"field {field!r}: nested keys must be non-empty strings")
            _check_string(key, field, "nested key")
            out[key] = normalize_value(item, field, depth + 1)
        return out
    raise InvalidArgument(
        f"field {field!r}: {type(value).__name__} is not a record value "
        "(str, bool, int, float, Decimal, list, tuple, dict or None)"
    )


def number_from_text(text: str) -> int | float:
    """A number written as text (a database's JSON, DynamoDB's ``N``) as the contract reads it:
    an ``int`` when it is integral within the signed 64-bit range, else a ``float``.

    ``"2.0"`` reads as ``2``; ``"9007199254740993.0"`` as that int, exactly (through ``Decimal``,
    not through a float that would round it); ``"1E+20"`` as ``1e20``. A number that is not
    integral but whose float is (``"4611686018427387905.5"``) reads as that float's int, as
    ``normalize_value`` makes it: a value reads back the same however it was stored.
    """
    if "." not in text and "e" not in text and "E" not in text:
        whole = int(text)
        return whole if INT64_MIN <= whole <= INT64_MAX else float(whole)
    return number_from_float_text(text)


def number_from_float_text(text: str) -> int | float:
    """``number_from_text`` of a number written with a point or an exponent (what a JSON
    decoder's ``parse_float`` is given)."""
    value = float(text)
    if not value.is_integer():
        return value
    if -DOUBLE_EXACT < value < DOUBLE_EXACT:
        # An integral float this small is the int that the text, or the float it rounds to,
        # reads as below: no Decimal needed.
        return int(value)
    if -_TWO_63 <= value <= _TWO_63:
        # "1.0" is integral; "9007199254740993.5" only rounds to an integral float: ask Decimal.
        # (An int64 near either end has a float of -2**63 or 2**63: the bounds are the text's.)
        exact = Decimal(text)
        if exact == exact.to_integral_value():
            whole = int(exact)
            return whole if INT64_MIN <= whole <= INT64_MAX else value
        # Its float is integral: as normalize_value, the integer it rounds to (a sum a server
        # computed exactly, such as an increment's, reads back as core would have stored it).
        return int(value) if INT64_MIN <= value <= INT64_MAX else value
    return value


_TWO_63 = 2.0**63


def canonical_sized(value: Any, field: str, depth: int = 0) -> tuple[Any, int]:
    """``normalize_value(value, field)`` and an upper bound of its size by the item-size rules
    (strings, booleans and containers exact, a number as ``MAX_NUMBER_SIZE`` bytes, the most
    ``number_size`` gives), in one pass: ``put_many`` checks every field of every record."""
    kind = type(value)
    if kind is str:
        if value.isascii() and "\x00" not in value:
            return value, len(value)
    elif kind is int:
        if INT64_MIN <= value <= INT64_MAX:
            return value, MAX_NUMBER_SIZE
    elif kind is float:
        if 1e-130 <= abs(value) < 1e126 and not value.is_integer():
            return value, MAX_NUMBER_SIZE
    elif kind is bool:
        return value, 1
    elif kind is dict or kind is list:
        if depth >= MAX_DEPTH:
            raise InvalidArgument(f"field {field!r}: nests more than {MAX_DEPTH} levels deep")
        # A plain ASCII string (the commonest item) is taken here, without a call.
        if kind is list:
            items = []
            size = 3
            for item in value:
                if type(item) is str and item.isascii() and "\x00" not in item:
                    items.append(item)
                    size += len(item) + 1
                    continue
                item, item_bound = canonical_sized(item, field, depth + 1)
                items.append(item)
                size += item_bound + 1
            return items, size
        out: dict[str, Any] = {}
        size = 3
        for key, item in value.items():
            if type(key) is not str or not key.isascii() or "\x00" in key:
                if not isinstance(key, str) or not key:
                    raise InvalidArgument(f"field {field!r}: nested keys must be non-empty strings")
                key = _check_string(str.__str__(key), field, "nested key")
            elif not key:
                raise InvalidArgument(f"field {field!r}: nested keys must be non-empty strings")
            if type(item) is str and item.isascii() and "\x00" not in item:
                out[key] = item
                size += len(key.encode("utf-8")) + len(item) + 1
                continue
            out[key], item_bound = canonical_sized(item, field, depth + 1)
            size += len(key.encode("utf-8")) + item_bound + 1
        return out, size
    elif value is None:
        return None, 1
    value = normalize_value(value, field, depth)  # every other case, with its full checks
    return value, min(_value_size(value), MAX_NUMBER_SIZE) if type(value) in (
        int,
        float,
    ) else _value_size(value)


def same_value(a: Any, b: Any) -> bool:
    """Typed equality of two canonical values: a bool never equals a number, ``1 == 1.0``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)):
        return isinstance(b, (int, float)) and a == b
    if isinstance(a, str):
        return isinstance(b, str) and a == b
    if isinstance(a, list):
        return (
            isinstance(b, list)
            and len(a) == len(b)
            and all(same_value(x, y) for x, y in zip(a, b, strict=True))
        )
    if isinstance(a, dict):
        return (
            isinstance(b, dict)
            and a.keys() == b.keys()
            and all(same_value(item, b[key]) for key, item in a.items())
        )
    return a is None and b is None


def value_identity(value: Any) -> Any:
    """A hashable stand-in for a canonical value: equal exactly when ``same_value`` says so."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, (int, float)):
        return ("n", value)  # 1 and 1.0 hash and compare equal, as the contract wants
    if isinstance(value, list):
        return ("l", tuple(value_identity(item) for item in value))
    if isinstance(value, dict):
        return ("d", frozenset((key, value_identity(item)) for key, item in value.items()))
    return ("s", value) if isinstance(value, str) else ("z", None)


def number_size(value: int | float | Decimal) -> int:
    """Bytes DynamoDB counts for a number: one per pair of significant digits, plus one, plus one
    more when negative (digits pair up around the decimal point, as DynamoDB stores them base 100)."""
    if type(value) is int:
        return _int_size(value)
    if type(value) is float:
        return _text_number_size(repr(value))
    number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if number.is_zero():
        return 1
    sign, digits, exponent = number.normalize(_WIDE).as_tuple()
    assert isinstance(exponent, int)
    highest = exponent + len(digits) - 1
    pairs = highest // 2 - exponent // 2 + 1
    return min(pairs + 1 + sign, MAX_NUMBER_SIZE)


def _int_size(value: int) -> int:
    """``number_size`` of an int: its digits pair up from the units, trailing zeros not counted."""
    if value == 0:
        return 1
    text = str(value)
    negative = text[0] == "-"
    digits = len(text) - negative
    zeros = digits - len(text.rstrip("0")) + negative if text[-1] == "0" else 0
    return min((digits - 1) // 2 - zeros // 2 + 2 + negative, MAX_NUMBER_SIZE)


def _text_number_size(text: str) -> int:
    """``number_size`` from a number's ``str``/``repr`` (``-12.5e-07``), without ``Decimal``."""
    negative = text[0] == "-"
    mantissa, _, power = text.lstrip("-").partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    significant = digits.rstrip("0")
    if not significant:
        return 1  # zero
    exponent = (int(power) if power else 0) - len(fraction) + len(digits) - len(significant)
    highest = exponent + len(significant) - 1
    pairs = highest // 2 - exponent // 2 + 1
    return min(pairs + 1 + negative, MAX_NUMBER_SIZE)


def _value_size(value: Any) -> int:
    kind = type(value)
    if kind is str:
        return len(value) if value.isascii() else len(value.encode("utf-8"))
    if kind is int:
        return _int_size(value)
    if kind is float:
        return _text_number_size(repr(value))
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, (int, float, Decimal)):
        return number_size(value)
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    if isinstance(value, list):
        return 3 + sum(_value_size(item) + 1 for item in value)
    if isinstance(value, dict):
        return 3 + sum(len(k.encode("utf-8")) + _value_size(v) + 1 for k, v in value.items())
    raise TypeError(f"not a canonical value: {type(value).__name__}")  # pragma: no cover


def item_size(record: Mapping[str, Any]) -> int:
    """The size DynamoDB gives ``record`` (canonical): UTF-8 attribute names plus their values."""
    size = 0
    for name, value in record.items():
        if value is not None:
            size += (len(name) if name.isascii() else len(name.encode("utf-8"))) + _value_size(
                value
            )
    return size


def number_entry_bound(name: str) -> int:
    """At least the item size of a field ``name`` holding any number: what an increment of
    ``name`` can add to a record."""
    return len(name.encode("utf-8")) + MAX_NUMBER_SIZE


def check_item_size(record: Mapping[str, Any]) -> None:
    """Raise ``InvalidArgument`` when ``record`` is not under DynamoDB's 400 KiB item limit."""
    size = item_size(record)
    if size >= MAX_ITEM_SIZE:
        raise InvalidArgument(
            f"record is {size} bytes by DynamoDB's item-size rules; it must be under {MAX_ITEM_SIZE}"
        )


def check_key_value(value: Any, field: str, key_type: type) -> str | int:
    """Return ``value`` when it is a valid key of ``key_type`` for ``field``."""
    # Fast path (every find by key): ASCII is valid UTF-8 of len() bytes; else the full checks.
    if (
        type(value) is key_type is str
        and value
        and value.isascii()
        and "\x00" not in value
        and len(value) <= MAX_KEY_BYTES
    ):
        return value
    if key_type is str:
        if not isinstance(value, str) or not value:
            raise InvalidArgument(f"key field {field!r} needs a non-empty str, got {value!r}")
        _check_string(value, field)
        if len(value.encode("utf-8")) > MAX_KEY_BYTES:
            raise InvalidArgument(
                f"key field {field!r}: a string key is at most {MAX_KEY_BYTES} UTF-8 bytes"
            )
        return str.__str__(value)
    if type(value) is not int:
        raise InvalidArgument(f"key field {field!r} needs an int, got {value!r}")
    if not INT64_MIN <= value <= INT64_MAX:
        raise InvalidArgument(
            f"key field {field!r}: int {value} is outside the signed 64-bit range"
        )
    return value
