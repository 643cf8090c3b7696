"""Issue 12, defect 6: ``put_many`` of large records keeps its memory bounded.

Batches used to be counted in records only (500 a chunk, whatever their size): 300 KB records
peaked at 973 MB on aurora, 595 MB on sqlite and 237 MB on DynamoDB, and a 512 MB Lambda died.
Chunks now end at ``CHUNK_BYTES`` too, so a call holds a few chunks at most, whatever it writes:
the chunk being checked and encoded and, on aurora, the two whose COMMIT the server has not
confirmed (each as records, JSON text and the driver's copy). Measured with tracemalloc (Python's
allocations, every thread): records of ``RECORD_BYTES`` each, made one at a time by a
generator, twice as many bytes as the backend's bound in all, must never have been held at more
than that bound at once, which a store holding the whole call exceeds.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kvstore import Store, create_store
from kvstore.store import CHUNK_BYTES
from tests.faults.conftest import new_kind

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]

RECORD_BYTES = 300_000
HELD = {"aurora": 12, "dynamo": 5, "sqlite": 5}
"""Chunks a backend may hold at once (see above): the bound is this many ``CHUNK_BYTES``."""


def large_records(count: int, first: int = 0) -> Iterator[dict[str, Any]]:
    """``count`` records of about RECORD_BYTES each, each made when asked for (distinct text)."""
    for number in range(first, first + count):
        yield {"id": f"r{number:05}", "blob": f"{number:06d}" * (RECORD_BYTES // 6)}


@pytest.fixture
def open_store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[str], Store]:
    def make(backend: str) -> Store:
        if backend == "sqlite":
            monkeypatch.setenv("KVSTORE_SQLITE_PATH", str(tmp_path / "large.sqlite3"))
            store = create_store(new_kind("m"), backend="sqlite")
            store.ensure()
            return store
        factory: Callable[..., Store] = request.getfixturevalue(backend)
        # A generous budget: 192 MB written and deleted again on a loaded machine.
        return factory(timeout=60)

    return make


@pytest.mark.parametrize(
    "backend",
    ["aurora", "dynamo", "sqlite"],
)
def test_put_many_of_large_records_keeps_peak_memory_bounded(
    open_store: Callable[[str], Store], backend: str
) -> None:
    bound = HELD[backend] * CHUNK_BYTES
    count = 2 * bound // RECORD_BYTES
    store = open_store(backend)
    store.put_many(large_records(2, first=count))  # connected, client made, layout read
    tracemalloc.start()
    try:
        written = store.put_many(large_records(count))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    try:
        assert written == count
        assert peak < bound, f"put_many held {peak / 1e6:.0f} MB at once (bound {bound / 1e6:.0f})"
    finally:
        store.truncate(force=True)  # DynamoDB Local keeps tables in its memory
