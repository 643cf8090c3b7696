"""iter_all: a server-side cursor, page by page, in bounded memory, with calls made meanwhile."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

from kvstore import Store, create_store
from kvstore.testing import unique_kind
from kvstore_aurora import streaming
from kvstore_aurora.settings import PostgresSettings
from tests.backends.aurora.helpers import connect

ROWS = 3000


@pytest.fixture(params=["pooled", "injected"])
def store(request: pytest.FixtureRequest, pg_settings: PostgresSettings) -> Iterator[Store]:
    options: dict[str, Any] = {"settings": pg_settings}
    connection = None
    if request.param == "injected":
        connection = options["connection"] = connect(pg_settings)
    made = create_store(unique_kind("iter"), backend="aurora", **options)
    made.ensure()
    made.put_many({"id": f"r{n:05}", "n": n, "pad": "x" * 200} for n in range(ROWS))
    yield made
    if connection is not None:
        connection.close()


def test_writes_while_iterating_are_kept_even_when_the_loop_breaks(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(streaming, "PAGE_SIZE", 50)  # the loop spans several pages
    for seen, record in enumerate(store.iter_all({"pad": "x" * 200})):
        store.update({"id": record["id"], "touched": True})
        if seen == 150:
            break
    assert store.count({"touched": True}) == 151
    assert store.find({"id": "r00000"}) == {
        "id": "r00000",
        "n": 0,
        "pad": "x" * 200,
        "touched": True,
    }


def test_nested_iterations(store: Store) -> None:
    outer = store.iter_all({"n": 1})
    first = next(outer)
    assert sum(1 for _ in store.iter_all()) == ROWS
    assert list(outer) == []
    assert first["n"] == 1
    assert store.count() == ROWS


def test_iter_all_memory_is_bounded_by_the_page(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(streaming, "PAGE_SIZE", 100)
    tracemalloc.start()
    try:
        everything = store.find_all()
        _, whole = tracemalloc.get_traced_memory()
        del everything
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        count = 0
        for _record in store.iter_all():
            count += 1
        _, streamed = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == ROWS
    assert streamed - base < whole / 5


def test_an_update_refused_while_iterating_changes_nothing_and_the_loop_goes_on(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kvstore import InvalidArgument

    monkeypatch.setattr(streaming, "PAGE_SIZE", 50)
    big = {"id": "big", "pad": "y" * 300_000}
    store.put(big)
    refused = 0
    for seen, record in enumerate(store.iter_all({"pad": "x" * 200})):
        if seen % 20 == 0:
            with pytest.raises(InvalidArgument):  # the merged record would pass 400 KiB
                store.update({"id": "big", "more": "z" * 200_000})
            refused += 1
        store.update({"id": record["id"], "touched": True})
        if seen == 99:
            break
    assert refused == 5
    assert store.count({"touched": True}) == 100
    assert store.find({"id": "big"}) == big


@pytest.mark.parametrize("key_type", [str, int, (str, int)])
def test_a_resumable_scan_reads_each_segment_in_key_order_and_resumes_after_a_key(
    pg_settings: PostgresSettings, key_type: Any
) -> None:
    """``kvstore copy``'s reads: segments partition the kind, each in key order (strings by code
    point), resumed after the last key taken, even one deleted since."""
    import itertools
    import random

    from kvstore.copying import read_segment, scan_segments
    from kvstore.records import sort_key

    composite = isinstance(key_type, tuple)
    fields: Any = ("team", "seq") if composite else "id"
    store = create_store(
        unique_kind("seg"),
        backend="aurora",
        settings=pg_settings,
        id_field=fields,
        key_type=key_type,
    )
    store.ensure()
    names = ["a", "B", "é", "中", "ab", "Z", "😀", "a b"]
    if composite:
        records = [{"team": t, "seq": n} for t, n in itertools.product(names, range(-3, 4))]
    elif key_type is int:
        records = [{"id": n} for n in range(-50, 50)]
    else:
        records = [{"id": f"{name}{n}"} for name, n in itertools.product(names, range(10))]
    for record in random.Random(7).sample(records, len(records)):  # stored out of key order
        store.put(record)
    order = sort_key(store.schema)
    everything = sorted(records, key=order)
    assert list(read_segment(store)) == everything
    assert scan_segments(store) > 1
    for segments in (2, 5):
        parts = [list(read_segment(store, segment, segments)) for segment in range(segments)]
        for part in parts:
            assert part == sorted(part, key=order)
        assert sorted((r for part in parts for r in part), key=order) == everything
        # Stopped after a few records and resumed after the last key taken:
        for segment, part in enumerate(parts):
            if len(part) > 3:
                last = store.schema.key_of(part[2])
                store.remove(store.schema.key_filters(last))  # gone since: resumes all the same
                assert list(read_segment(store, segment, segments, after=last)) == part[3:]
                store.put(part[2])
