"""Pages of ordered reads: ``Page`` and the cursors that continue them on any backend.

A cursor names a position in a query's order (the serving key's values of the last record
returned), not a backend's token, so a cursor made on one backend continues the same query on
another holding the same records. It is URL-safe base64 (no padding) of a few bytes: a version, a
digest of the query (kind, filters, direction), the position's values, and a checksum of all that.
Values are packed, not JSON: a string as its UTF-8 bytes after their length, so that three keys of
1,024 bytes fit in 8,192 characters whatever their characters. A cursor changed in any way, or used
with other filters, another order or another kind, is ``InvalidArgument``. Nothing in it is ever
evaluated or unpickled: each value is read by its tag and checked against its field's type.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import struct
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from kvstore.conditions import Condition, OneOf
from kvstore.errors import InvalidArgument
from kvstore.plan import Plan
from kvstore.schema import fits_index_type
from kvstore.values import normalize_value

__all__ = ["MAX_CURSOR", "MAX_LIMIT", "Page", "check_limit", "decode_cursor", "encode_cursor"]

MAX_LIMIT = 1000
"""A page holds 1 to this many records."""
MAX_CURSOR = 8192
"""A cursor is at most this many characters."""
_VERSION = 1
_CHECKSUM = 8
_PERSON = b"kvstore-cursor"


class Page(NamedTuple):
    """One page of ``find_page``: its records, and the cursor of the next page (``None`` when
    no further record matches)."""

    records: list[dict[str, Any]]
    cursor: str | None


def check_limit(limit: object) -> int:
    """A page's ``limit``: an int from 1 to ``MAX_LIMIT``."""
    if type(limit) is not int or not 1 <= limit <= MAX_LIMIT:
        raise InvalidArgument(f"limit is an int from 1 to {MAX_LIMIT}, not {limit!r:.40}")
    return limit


def _typed(value: Any) -> Any:
    """A JSON form of a canonical value that keeps its type (``True`` vs ``1``, ``1`` vs ``1.0``)."""
    kind = type(value)
    if kind is bool:
        return ["b", value]
    if kind is int or kind is float:
        return ["n", value]
    if kind is str:
        return ["s", value]
    if kind is list:
        return ["l", [_typed(item) for item in value]]
    if kind is dict:
        return ["d", sorted([key, _typed(item)] for key, item in value.items())]
    return ["z"]


def _condition(condition: Condition) -> Any:
    if isinstance(condition, OneOf):
        values = sorted(json.dumps(_typed(v)) for v in condition.values)
        return ["one_of", values, condition.absent]
    return [condition.name, [_typed(operand) for operand in condition.operands()]]


_compact = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
"""``json.dumps`` with these options, without the encoder that each such call builds."""


def query_digest(kind: str, filters: Mapping[str, Condition], descending: bool) -> str:
    """What a cursor is bound to: the kind, the filters (in any order) and the direction."""
    described = sorted([field, _condition(condition)] for field, condition in filters.items())
    text = _compact([kind, descending, described])
    return hashlib.blake2b(text.encode(), digest_size=9).hexdigest()


def _checksum(payload: bytes) -> bytes:
    return hashlib.blake2b(payload, digest_size=_CHECKSUM, person=_PERSON).digest()


def _pack(value: Any) -> bytes:
    kind = type(value)
    if kind is str:
        data: bytes = value.encode("utf-8")
        return b"s" + struct.pack(">H", len(data)) + data
    if kind is int:
        return b"i" + struct.pack(">q", value)
    return b"f" + struct.pack(">d", value)


def encode_cursor(digest: str, position: Sequence[Any]) -> str:
    """The cursor continuing the query ``digest`` names after ``position`` (key values: str,
    int, or float)."""
    payload = bytes([_VERSION]) + bytes.fromhex(digest) + b"".join(map(_pack, position))
    return base64.urlsafe_b64encode(payload + _checksum(payload)).rstrip(b"=").decode("ascii")


def _refuse(why: str) -> InvalidArgument:
    return InvalidArgument(f"invalid cursor: {why}")


def _unpack(data: bytes) -> list[Any]:
    values: list[Any] = []
    at = 0
    while at < len(data):
        tag, at = data[at : at + 1], at + 1
        if tag == b"s":
            (size,) = struct.unpack_from(">H", data, at)
            values.append(data[at + 2 : at + 2 + size].decode("utf-8"))
            at += 2 + size
        elif tag in (b"i", b"f"):
            (value,) = struct.unpack_from(">q" if tag == b"i" else ">d", data, at)
            values.append(value)
            at += 8
        else:
            raise ValueError("unknown tag")
    if at != len(data):
        raise ValueError("truncated")
    return values


def decode_cursor(cursor: object, digest: str, plan: Plan) -> tuple[Any, ...]:
    """The position ``cursor`` continues after, checked against the query (``digest``) and the
    types of ``plan``'s order fields; ``InvalidArgument`` for anything else."""
    if not isinstance(cursor, str) or not cursor or len(cursor) > MAX_CURSOR:
        raise _refuse(f"a cursor is a non-empty string of at most {MAX_CURSOR} characters")
    if not cursor.isascii() or "=" in cursor:
        raise _refuse("it was changed")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raise _refuse("it was changed") from None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != cursor:
        raise _refuse("it was changed")  # another spelling of the same bytes
    payload, checksum = raw[:-_CHECKSUM], raw[-_CHECKSUM:]
    if len(raw) <= _CHECKSUM or _checksum(payload) != checksum:
        raise _refuse("it was changed or cut")
    size = 1 + len(digest) // 2
    if payload[:1] != bytes([_VERSION]) or payload[1:size].hex() != digest:
        raise _refuse("it belongs to another query (other filters, order or kind)")
    try:
        position = _unpack(payload[size:])
    except (ValueError, struct.error, UnicodeDecodeError):
        raise _refuse("it was changed") from None
    fields = plan.order_fields
    if len(position) != len(fields):
        raise _refuse("it belongs to another query")
    for value, key_type, field in zip(position, _order_types(plan), fields, strict=True):
        if not fits_index_type(value, key_type):
            raise _refuse("it belongs to another query")
        try:
            canonical = normalize_value(value, field)
        except InvalidArgument:
            canonical = None
        if type(canonical) is not type(value) or canonical != value:  # never in a real cursor
            raise _refuse("it was changed")
    return tuple(position)


def _order_types(plan: Plan) -> tuple[type, ...]:
    schema = plan.schema
    index = plan.index
    if index is not None:
        sort = index.key_types[1:] if index.sort is not None else ()
        return (*sort, *schema.key_types)
    if plan.access == "partition":
        return schema.key_types[1:]
    return schema.key_types
