"""Condition, filter and update expressions with every name and value as a placeholder.

Every attribute name goes through ``ExpressionAttributeNames`` (``#n0``...), so reserved words such
as ``name``, ``status`` or ``data`` are ordinary field names here, and every value through
``ExpressionAttributeValues`` (``:v0``...).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kvstore_dynamo.codec import AttributeValue, to_attribute

__all__ = ["Expression", "filter_expression"]

_TYPE_TAGS = {bool: "BOOL", int: "N", float: "N", str: "S", list: "L", dict: "M"}


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

    def type_tag(self, tag: str) -> str:
        """The placeholder of a type name for ``attribute_type`` (shared by every use)."""
        placeholder = f":t{tag}"
        self._values[placeholder] = {"S": tag}
        return placeholder

    def params(self) -> dict[str, Any]:
        """``ExpressionAttributeNames``/``Values`` for the request (only those that are used)."""
        params: dict[str, Any] = {}
        if self._names:
            params["ExpressionAttributeNames"] = {ph: field for field, ph in self._names.items()}
        if self._values:
            params["ExpressionAttributeValues"] = dict(self._values)
        return params


def _condition(expr: Expression, field: str, value: Any) -> str:
    name = expr.name(field)
    if value is None:
        return f"attribute_not_exists({name})"
    tag = expr.type_tag(_TYPE_TAGS[type(value)])
    if isinstance(value, (list, dict)):
        # Nested equality is checked in Python (kvstore.records.matches): DynamoDB's own map and
        # list comparison is not documented precisely enough to stake the contract's equality on
        # (DynamoDB Local compares maps by entries and 1 == 1.0; moto says True == 1).
        return f"attribute_type({name}, {tag})"
    # The type test keeps a bool from equalling a number on servers that confuse them (moto).
    return f"({name} = {expr.value(value)} AND attribute_type({name}, {tag}))"


def filter_expression(
    expr: Expression, filters: Mapping[str, Any], skip: Iterable[str] = ()
) -> str | None:
    """The FilterExpression for ``filters`` (minus the ``skip`` fields), or ``None`` for none.

    For scalar and ``None`` values the server's answer is the contract's, so a ``Select=COUNT``
    needs no second look; a nested value is only narrowed to its type here.
    """
    skipped = set(skip)
    parts = [_condition(expr, f, v) for f, v in filters.items() if f not in skipped]
    return " AND ".join(parts) or None
