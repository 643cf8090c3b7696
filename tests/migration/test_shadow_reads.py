"""Shadow reads (stages shadow and live): both sides read at once on the shadow pool, the
authoritative answer returned, a sampled fraction compared, and each lasting difference reported
with the fields that differ, never their values."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest

from kvstore import MultipleFound, NotFound, create_store, migration_stats
from kvstore.migration import MigrationEvent, shadow
from kvstore.testing import unique_kind
from tests.migration import flaky
from tests.migration.conftest import flaky_store

SECRET = "hunter2-value"


def _mismatches(events: list[MigrationEvent]) -> list[tuple[str, Any, tuple[str, ...], Any]]:
    return [(e.operation, e.key, e.fields, e.error) for e in events if e.outcome == "mismatch"]


def test_records_changed_behind_the_stores_back_are_reported(
    switch: flaky.Switch, events: list[MigrationEvent], caplog: pytest.LogCaptureFixture
) -> None:
    store = flaky_store(unique_kind(), switch, "shadow")
    store.put_many({"id": f"r{n}", "n": n, "secret": SECRET} for n in range(5))
    assert store.find_all() == store.old.find_all()
    assert events == []
    caplog.set_level(logging.WARNING, logger="kvstore.migration")
    # Behind its back: the new side loses one field and gains another, and a record goes.
    store.new.update({"id": "r1", "secret": None, "extra": SECRET})
    store.new.remove({"id": "r3"})
    assert store.find({"id": "r1"})["secret"] == SECRET  # the old side's answer
    assert len(store.find_all()) == 5
    assert store.count() == 5
    assert store.find_in("n", [3, 4]) == store.old.find_in("n", [3, 4])
    with pytest.raises(NotFound):
        store.find({"id": "nope"})  # both say NotFound: no mismatch
    assert store.find({"id": "r3"})["n"] == 3  # only the old side has it: every field named
    assert _mismatches(events) == [
        ("find", {"id": "r1"}, ("extra", "secret"), None),
        ("find_all", {"id": "r1"}, ("extra", "id", "n", "secret"), None),
        ("count", None, (), None),
        ("find_in", {"id": "r3"}, ("id", "n", "secret"), None),
        ("find", {"id": "r3"}, ("id", "n", "secret"), "NotFound"),
    ]
    counts = migration_stats()[store.kind]["shadow"]
    assert counts == {"compared": 7, "mismatches": 5, "second_write_failures": 0}
    lines = [r.getMessage() for r in caplog.records if r.name == "kvstore.migration"]
    assert len(lines) == 5
    assert "fields extra, secret" in lines[0]
    assert all(SECRET not in line for line in lines)


def test_a_different_error_is_a_mismatch_and_the_first_sides_error_is_raised(
    switch: flaky.Switch, events: list[MigrationEvent]
) -> None:
    store = flaky_store(unique_kind(), switch, "live")  # the flaky side answers
    store.put_many([{"id": "a", "x": 1}, {"id": "b", "x": 1}])
    store.old.remove({"id": "b"})
    with pytest.raises(MultipleFound):
        store.find({"x": 1})
    switch.down = True
    with pytest.raises(ConnectionError):
        store.find({"id": "a"})
    assert _mismatches(events) == [
        ("find", None, (), "MultipleFound"),
        ("find", {"id": "a"}, (), "BackendUnavailable"),
    ]


def test_no_read_is_compared_outside_shadow_and_live(
    switch: flaky.Switch, events: list[MigrationEvent]
) -> None:
    for stage in ("off", "dualwrite", "rampdown", "complete"):
        store = flaky_store(unique_kind(), switch, stage)
        store.old.put({"id": "a", "side": "old"})
        store.new.put({"id": "a", "side": "new"})
        reads_before = switch.calls.get("read", 0)
        found = store.find({"id": "a"})
        assert found["side"] == ("new" if stage in ("rampdown", "complete") else "old")
        if stage in ("off", "dualwrite"):
            assert switch.calls.get("read", 0) == reads_before  # the new side is not read
    assert events == []
    assert migration_stats() == {}


def test_the_sample_decides_how_many_reads_are_compared(
    switch: flaky.Switch, events: list[MigrationEvent], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STORE_MIGRATION_SAMPLE", "0")
    never = flaky_store(unique_kind(), switch, "shadow")
    never.new.put({"id": "a", "only": "new"})
    reads_before = switch.calls.get("read", 0)
    for _ in range(20):
        with pytest.raises(NotFound):
            never.find({"id": "a"})
    assert switch.calls.get("read", 0) == reads_before
    monkeypatch.setenv("STORE_MIGRATION_SAMPLE", "0.5")
    half = flaky_store(unique_kind(), switch, "shadow")
    for _ in range(400):
        half.count()
    compared = migration_stats()[half.kind]["shadow"]["compared"]
    assert 120 < compared < 280  # 200 expected; the bounds are 10 standard deviations wide
    assert events == []


def test_both_reads_run_at_once_so_a_slow_side_does_not_add_its_latency(
    switch: flaky.Switch, events: list[MigrationEvent]
) -> None:
    delay = 0.3
    store = flaky_store(unique_kind(), switch, "live")
    store.put({"id": "a"})
    old_reads: list[str] = []
    real_read = store.old.driver.read

    def slow_read(plan: Any) -> Any:  # the old side: as slow as the flaky one
        old_reads.append(threading.current_thread().name)
        time.sleep(delay)
        return real_read(plan)

    store.old.driver.read = slow_read
    switch.read_delay = delay
    started = time.monotonic()
    assert store.find({"id": "a"}) == {"id": "a"}
    elapsed = time.monotonic() - started
    # Both sides were read: the new one (first at stage live) in the caller's thread, the old
    # one on the shadow pool.
    assert switch.threads == {threading.current_thread().name}
    assert len(old_reads) == 1
    assert old_reads[0].startswith("kvstore-shadow")
    # One side's delay, not the sum of both (with a margin for a loaded machine).
    assert elapsed < 2 * delay - 0.05, elapsed
    assert events == []


def test_the_pool_is_a_few_daemon_threads_reused_by_every_call() -> None:
    kind = unique_kind()
    store: Any = create_store(
        kind, backend="memory", migration="sqlite:shadow", migration_options={"path": ":memory:"}
    )
    store.old.ensure()
    store.new.ensure()
    store.put({"id": "a"})
    store.find({"id": "a"})
    pool = [t for t in threading.enumerate() if t.name.startswith("kvstore-shadow")]
    for _ in range(50):
        store.find({"id": "a"})
        store.count()
    after = [t for t in threading.enumerate() if t.name.startswith("kvstore-shadow")]
    assert len(pool) == shadow.WORKERS
    assert after == pool
    assert all(t.daemon for t in pool)


def test_a_busy_pool_skips_the_shadow_read_instead_of_queueing_it(
    switch: flaky.Switch, events: list[MigrationEvent]
) -> None:
    store = flaky_store(unique_kind(), switch, "shadow")
    release = threading.Event()
    taken = [shadow.submit(release.wait) for _ in range(shadow.WORKERS)]
    try:
        assert all(future is not None for future in taken)
        reads_before = switch.calls.get("read", 0)
        assert store.count() == 0
        assert switch.calls.get("read", 0) == reads_before
    finally:
        release.set()
    for future in taken:
        assert future is not None
        future.result(timeout=5)
    assert events == []


def test_iter_all_and_find_page_read_the_authoritative_side_and_a_cursor_crosses_stages(
    switch: flaky.Switch, events: list[MigrationEvent]
) -> None:
    kind = unique_kind()
    declaration: dict[str, Any] = {"id_field": ("team", "seq"), "key_type": (str, int)}
    shadow_store = flaky_store(kind, switch, "shadow", **declaration)
    shadow_store.put_many({"team": "t", "seq": n} for n in range(10))
    shadow_store.new.put({"team": "t", "seq": 99})  # only the new side: not seen at shadow
    reads_before = switch.calls.get("read", 0)
    assert len(list(shadow_store.iter_all())) == 10
    page = shadow_store.find_page({"team": "t"}, limit=4)
    assert switch.calls.get("read", 0) == reads_before  # neither read went to the new side
    live_store = flaky_store(kind, switch, "live", **declaration)
    rest = live_store.find_page({"team": "t"}, limit=100, cursor=page.cursor)
    assert [r["seq"] for r in page.records + rest.records] == [*range(10), 99]
    assert events == []


def test_a_second_write_held_back_past_the_recheck_delay_is_not_a_mismatch(
    switch: flaky.Switch, events: list[MigrationEvent]
) -> None:
    # A loaded machine can hold a second write back longer than RECHECK_DELAY: the second look
    # also waits (SETTLE at most) for this process's second writes of the kind to land.
    from kvstore.migration.flight import RECHECK_DELAY, SETTLE

    store = flaky_store(unique_kind(), switch, "shadow")
    store.put({"id": "a", "n": 1})
    held = 6 * RECHECK_DELAY
    assert held < SETTLE
    write = store.new.driver.write

    def late(op: Any) -> Any:
        time.sleep(held)
        return write(op)

    store.new.driver.write = late
    writer = threading.Thread(target=store.put, args=({"id": "a", "n": 2},), daemon=True)
    writer.start()
    deadline = time.monotonic() + 10
    while store.old.find({"id": "a"})["n"] != 2:  # the first side has it; the second not yet
        assert time.monotonic() < deadline
        time.sleep(0.001)
    assert store.find({"id": "a"}) == {"id": "a", "n": 2}
    writer.join(timeout=10)
    assert not writer.is_alive()
    assert events == []
    assert migration_stats()[store.kind]["shadow"]["compared"] == 1
    # A difference no second write explains is still reported.
    store.new.driver.write = write
    store.new.update({"id": "a", "n": 3})
    store.find({"id": "a"})
    assert _mismatches(events) == [("find", {"id": "a"}, ("n",), None)]
