"""Copy a kind between two stores and compare them, in memory bounded by a chunk, not by the kind.

``copy_records`` streams ``iter_all`` of the source into ``put_many`` of the target a chunk at a
time (``put_many`` keeps a set of the keys it wrote, so it is never handed the whole stream). Since
``put`` replaces, running a copy again after an interruption converges on the source's records.

``diff_records`` streams both sides. It keeps one small digest per key of the first side (the only
memory that grows with the kind: tens of bytes a record) and streams the second against it, so
neither side needs an order; records that differ are then read again by key to say which fields.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from kvstore.backend import Key, Record
from kvstore.records import chunked
from kvstore.store import Store

__all__ = [
    "Difference",
    "FieldChange",
    "copy_records",
    "diff_records",
    "dumps",
    "record_digest",
]

DEFAULT_CHUNK = 500
"""Records read from the source and handed to the target's ``put_many`` at once."""

ABSENT: Any = object()
"""Marks a field one side of a difference does not have."""


def _json_default(value: object) -> object:
    # Tables written by other DynamoDB tools may hold binary values: show them, do not fail.
    if isinstance(value, (bytes, bytearray)):
        return {"$binary": base64.b64encode(value).decode("ascii")}
    raise TypeError(f"{type(value).__name__} is not a record value")


def dumps(value: object, *, sort_keys: bool = False) -> str:
    """``value`` as one line of JSON (UTF-8 text kept, binary values as ``{"$binary": ...}``)."""
    return json.dumps(
        value, ensure_ascii=False, sort_keys=sort_keys, default=_json_default, allow_nan=False
    )


def record_digest(record: Record) -> bytes:
    """A digest equal for two records exactly when they are equal under the contract's rules.

    Records read from a store are canonical (integral numbers are ints, so ``1`` and ``1.0`` never
    both occur), so their sorted JSON tells ``True`` from ``1`` and ``"1"`` from ``1``.
    """
    return hashlib.blake2b(dumps(record, sort_keys=True).encode(), digest_size=16).digest()


def copy_records(
    source: Store,
    target: Store,
    *,
    chunk_size: int = DEFAULT_CHUNK,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Put every record of ``source`` into ``target``, a chunk at a time; return how many.

    ``progress`` is called with the number of records copied so far after each chunk.
    """
    copied = 0
    for chunk in chunked(source.iter_all(), chunk_size):
        copied += target.put_many(chunk)
        if progress is not None:
            progress(copied)
    return copied


class FieldChange(NamedTuple):
    """One field that differs: its value on each side (``ABSENT`` when the side lacks it)."""

    field: str
    left: Any
    right: Any


class Difference(NamedTuple):
    """A key whose records differ: ``missing`` is ``"left"`` or ``"right"`` when one side has no
    record, else ``None`` and ``changes`` lists the fields that differ."""

    key: Key
    missing: str | None
    changes: tuple[FieldChange, ...] = ()


def _changes(left: Record, right: Record) -> tuple[FieldChange, ...]:
    changes = []
    for field in sorted(left.keys() | right.keys()):
        a, b = left.get(field, ABSENT), right.get(field, ABSENT)
        if a is ABSENT or b is ABSENT or dumps(a, sort_keys=True) != dumps(b, sort_keys=True):
            changes.append(FieldChange(field, a, b))
    return tuple(changes)


def _by_key(store: Store, key: Key) -> Record | None:
    found = store.find_all(dict(zip(store.id_fields, key, strict=True)))
    return found[0] if found else None


def diff_records(
    left: Store, right: Store, *, progress: Callable[[int], None] | None = None
) -> Iterator[Difference]:
    """Yield every key whose record is missing on one side or differs, sorted by key.

    ``progress`` is called with the number of records read so far (both sides), now and then.
    """
    digests: dict[Key, bytes] = {}
    read = 0
    for record in left.iter_all():
        digests[tuple(record[field] for field in left.id_fields)] = record_digest(record)
        read += 1
        if progress is not None and read % DEFAULT_CHUNK == 0:
            progress(read)
    only_right: list[Key] = []
    differing: list[Key] = []
    for record in right.iter_all():
        key = tuple(record[field] for field in right.id_fields)
        digest = digests.pop(key, None)
        if digest is None:
            only_right.append(key)
        elif digest != record_digest(record):
            differing.append(key)
        read += 1
        if progress is not None and read % DEFAULT_CHUNK == 0:
            progress(read)
    if progress is not None:
        progress(read)
    found = [Difference(key, "right") for key in digests]
    found += [Difference(key, "left") for key in only_right]
    for key in differing:
        a, b = _by_key(left, key), _by_key(right, key)
        if a is None or b is None:  # removed while we compared
            found.append(Difference(key, "left" if a is None else "right"))
        elif record_digest(a) != record_digest(b):  # else: made equal while we compared
            found.append(Difference(key, None, _changes(a, b)))
    yield from sorted(found, key=lambda difference: difference.key)
