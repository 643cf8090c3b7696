"""Records to DynamoDB's wire format (``AttributeValue`` dicts) and back, exactly and fast.

boto3's ``TypeSerializer``/``TypeDeserializer`` are not used: they turn every number into a
``Decimal``, reject the plain-notation numbers past 38 digits that DynamoDB Local sends back
(``1E+125`` comes back as 126 digits), and are slower than this direct walk.

Writing: ``str`` -> ``S``, ``bool`` -> ``BOOL``, ``int`` -> ``N`` (``str``), ``float`` -> ``N``
(the digits of ``repr``, the shortest decimal that reads back as the same float, never binary
noise, in plain notation), ``list`` -> ``L``, ``dict`` -> ``M``, nested ``None`` -> ``NULL``. Reading: ``N``
through ``kvstore.values.number_from_text`` (core's one rule for numbers read from text); sets
written by other tools (``SS``/``NS``/``BS``) -> lists sorted in Python's order; ``B`` -> ``bytes``
(readable, not writable back: core refuses bytes); a top-level ``NULL`` -> absent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from kvstore.values import number_from_text

__all__ = [
    "AttributeValue",
    "Item",
    "from_attribute",
    "from_item",
    "key_item",
    "to_attribute",
    "to_item",
]

AttributeValue = dict[str, Any]
"""One value in DynamoDB's wire format, e.g. ``{"N": "30.4"}``."""
Item = dict[str, AttributeValue]
"""A record in DynamoDB's wire format: attribute name to ``AttributeValue``."""


def to_attribute(value: Any) -> AttributeValue:
    """The ``AttributeValue`` of a canonical value (see ``kvstore.values``)."""
    kind = type(value)
    if kind is str:
        return {"S": value}
    if kind is bool:
        return {"BOOL": value}
    if kind is int:
        return {"N": str(value)}
    if kind is float:
        text = repr(value)
        # Plain notation ("1" and 20 zeros for 1e20): what DynamoDB itself sends back, and what
        # moto's arithmetic (an increment) can read.
        return {"N": format(Decimal(text), "f") if "e" in text else text}
    if kind is dict:
        return {"M": {key: to_attribute(item) for key, item in value.items()}}
    if kind is list:
        return {"L": [to_attribute(item) for item in value]}
    if value is None:
        return {"NULL": True}
    raise TypeError(f"not a canonical record value: {kind.__name__}")


def to_item(record: Mapping[str, Any]) -> Item:
    """The wire form of a canonical record (top-level ``None`` is never in one)."""
    return {name: to_attribute(value) for name, value in record.items() if value is not None}


def _sorted(values: list[Any]) -> list[Any]:
    return sorted(values)


_READERS: dict[str, Callable[[Any], Any]] = {
    "S": lambda raw: raw,
    "N": number_from_text,
    "BOOL": lambda raw: raw,
    "NULL": lambda raw: None,
    "M": lambda raw: {key: from_attribute(item) for key, item in raw.items()},
    "L": lambda raw: [from_attribute(item) for item in raw],
    "B": bytes,
    "SS": _sorted,
    "NS": lambda raw: sorted(number_from_text(text) for text in raw),
    "BS": lambda raw: sorted(bytes(item) for item in raw),
}


def from_attribute(attribute: Mapping[str, Any]) -> Any:
    """The Python value of an ``AttributeValue`` (numbers as ``int``/``float``, never ``Decimal``)."""
    for tag, raw in attribute.items():
        # The common tags inline: a record's values are read once each, on every read.
        if tag == "S" or tag == "BOOL":
            return raw
        if tag == "N":
            return number_from_text(raw)
        if tag == "M":
            return {key: from_attribute(item) for key, item in raw.items()}
        if tag == "L":
            return [from_attribute(item) for item in raw]
        return _READERS[tag](raw)
    raise ValueError("empty AttributeValue")  # pragma: no cover - never sent by DynamoDB


def from_item(item: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The record of a wire item; a top-level ``NULL`` (written by other tools) is left out."""
    record: dict[str, Any] = {}
    for name, attribute in item.items():
        string = attribute.get("S")
        if string is not None:  # the most common attribute, without a call
            record[name] = string
            continue
        value = from_attribute(attribute)
        if value is not None:
            record[name] = value
    return record


def key_item(fields: Sequence[str], key: Sequence[Any]) -> Item:
    """The wire form of a key: ``fields`` (the id fields, or an index's) with their values."""
    return {field: to_attribute(value) for field, value in zip(fields, key, strict=True)}
