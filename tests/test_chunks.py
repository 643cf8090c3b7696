"""put_many and remove_in work in chunks bounded by count and by bytes, the same on every backend:
an invalid item stops its chunk before any of it is written; earlier chunks stay."""

from __future__ import annotations

import pytest

from kvstore import InvalidArgument, create_store
from kvstore.store import CHUNK_BYTES, CHUNK_SIZE
from kvstore.testing import unique_kind

BLOB = 300_000
"""A record of about 300 KB (under DynamoDB's 400 KiB)."""


def test_a_chunk_ends_at_chunk_bytes_before_chunk_size() -> None:
    store = create_store(unique_kind(), backend="memory")
    store.ensure()
    per_chunk = -(-CHUNK_BYTES // BLOB)  # records of a chunk that reaches CHUNK_BYTES
    assert per_chunk < CHUNK_SIZE
    records = [{"id": f"r{n:03d}", "blob": "x" * BLOB} for n in range(per_chunk + 3)]
    records[per_chunk + 1] = {"id": "bad", "blob": {1}}  # in the second chunk
    with pytest.raises(InvalidArgument):
        store.put_many(iter(records))
    stored = [record["id"] for record in store.find_all()]
    assert stored == [f"r{n:03d}" for n in range(per_chunk)]  # the whole first chunk, no more


def test_small_records_still_chunk_by_count() -> None:
    store = create_store(unique_kind(), backend="memory")
    store.ensure()
    records = [{"id": f"r{n:04d}"} for n in range(CHUNK_SIZE + 10)]
    records[CHUNK_SIZE + 5] = {"id": 5}
    with pytest.raises(InvalidArgument):
        store.put_many(records)
    assert store.count() == CHUNK_SIZE


def test_remove_in_chunks_large_values_by_bytes() -> None:
    store = create_store(unique_kind(), backend="memory")
    store.ensure()
    big = "y" * BLOB
    store.put_many([{"id": "a", "v": big}, {"id": "b", "v": "small"}])
    values = [big] * (CHUNK_BYTES // BLOB + 2) + [float("nan")]
    with pytest.raises(InvalidArgument):
        store.remove_in("v", values)
    assert [record["id"] for record in store.find_all()] == ["b"]  # the first chunk removed "a"


def test_an_interrupted_put_many_says_how_many_records_were_stored() -> None:
    store = create_store(unique_kind(), backend="memory")
    store.ensure()
    records = [{"id": f"r{n:04d}"} for n in range(2 * CHUNK_SIZE + 10)]
    records[CHUNK_SIZE + 3] = {"id": "bad", "v": float("nan")}  # in the second chunk
    records.insert(5, {"id": "r0001", "again": True})  # a key twice counts once
    with pytest.raises(InvalidArgument) as info:
        store.put_many(records)
    assert info.value.written == store.count() == CHUNK_SIZE - 1
