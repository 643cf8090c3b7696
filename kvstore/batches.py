"""``put_many`` and ``remove_in``'s chunks: every record (or value) of a chunk is checked before any
of it is written, the same on every backend, and a call's memory is bounded by a few chunks."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from kvstore.backend import Driver
from kvstore.errors import InvalidArgument, StoreError
from kvstore.records import chunked, prepare_sized
from kvstore.schema import Key

__all__ = ["CHUNK_BYTES", "CHUNK_SIZE", "iterable_argument", "put_many"]

CHUNK_SIZE = 500
"""Records (``put_many``) or values (``remove_in``) checked together before any of them is written.

It is the same on every backend, so an invalid item fails the same way everywhere: nothing of its
chunk is written, earlier chunks stay. Each chunk then goes to the driver in slices of at most its
``batch_size``.
"""
CHUNK_BYTES = 8 << 20
"""A chunk also ends once its records (or values) reach this many bytes by the item-size rules, so
a call's memory is bounded by bytes too: 500 records of 300 KB would be 150 MB a chunk."""
_END: Any = object()

Incoming = Callable[[object, str], object]
"""The store's ``validate`` hook on the way in (with its argument check), when it has one."""


def iterable_argument(value: object, what: str) -> Iterable[Any]:
    """``value`` when it is an iterable of items (not a string, bytes or a dict); else
    ``InvalidArgument`` naming the argument ``what``."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise InvalidArgument(f"{what} must be a list, tuple or other iterable")
    return value


def put_many(driver: Driver, records: object, incoming: Incoming | None) -> int:
    """Store ``records`` through ``driver`` a chunk at a time; the number of distinct keys
    written. A chunk's error carries ``written``: the keys of the chunks stored before it."""
    size = driver.batch_size
    raw = iter(iterable_argument(records, "records"))
    chunks = _chunks(driver, raw, incoming)
    first = next(chunks, None)
    if first is None:
        return 0
    following = next(raw, _END)  # one more record: is there a second chunk?
    if following is not _END:
        chunks = _chunks(driver, itertools.chain((following,), raw), incoming)
    seen: set[Key] = set()
    fresh: list[int] = []  # keys each chunk adds to those of the chunks before it
    writer: Any = None
    try:
        with driver.batch_writer(many=following is not _END) as writer:
            for chunk in itertools.chain((first,), chunks):
                parts = [writer.encode(part) for part in chunked(chunk.values(), size)]
                before = len(seen)
                seen.update(chunk)
                fresh.append(len(seen) - before)
                writer.write(parts)
    except StoreError as error:
        stored = getattr(writer, "stored", 0) if writer is not None else 0
        error.written = sum(fresh[:stored])
        raise
    return len(seen)


def _chunks(
    driver: Driver, records: Iterator[Any], incoming: Incoming | None
) -> Iterator[dict[Key, Any]]:
    """``records`` checked, a chunk at a time (``CHUNK_SIZE`` records or ``CHUNK_BYTES``): by
    key, the last record of a key winning in its place. A chunk is yielded once every record
    of it passed the checks, so an invalid one stops its chunk before any of it is written."""
    schema = driver.schema
    key_of = schema.key_of
    batch: dict[Key, Any] = {}
    count = weight = 0
    for raw in records:
        if incoming is not None:
            raw = incoming(raw, "record")
        prepared, bound = prepare_sized(raw, schema)
        key = key_of(prepared)
        batch.pop(key, None)
        batch[key] = prepared
        count += 1
        weight += bound
        if count >= CHUNK_SIZE or weight >= CHUNK_BYTES:
            yield batch
            batch, count, weight = {}, 0, 0
    if batch:
        yield batch
