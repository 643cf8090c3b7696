"""With a version_field, a second write never goes back in version, so both sides converge however
writers race; a second side that holds a higher version for another reason is repaired."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest

from kvstore import create_store
from kvstore.copying import diff_records
from kvstore.migration import MigrationEvent
from kvstore.testing import unique_kind
from tests.migration.racing import KEYS, increments, race

THREADS = 6
ROUNDS = 40


def _store(kind: str, stage: str, path: str, *, jitter: bool = False) -> Any:
    store: Any = create_store(
        kind,
        backend="memory",
        migration=f"sqlite:{stage}",
        migration_options={"path": path},
        version_field="v",
    )
    store.old.ensure()
    store.new.ensure()
    if jitter:  # second writes land late and out of order, as over a network
        second = store.old if store.authoritative is store.new else store.new
        write = second.driver.write

        def late(op: Any) -> Any:
            time.sleep(random.random() * 0.01)
            return write(op)

        second.driver.write = late
    return store


@pytest.mark.parametrize("stage", ["dualwrite", "shadow", "live", "rampdown"])
def test_racing_writers_leave_both_sides_equal(
    tmp_path: Any, events: list[MigrationEvent], stage: str
) -> None:
    kind = unique_kind()
    path = str(tmp_path / "new.sqlite3")
    stores = [_store(kind, stage, path, jitter=True) for _ in range(THREADS)]
    assert race(stores, ROUNDS) > 0
    assert list(diff_records(stores[0].old, stores[0].new)) == []
    total = increments(THREADS, ROUNDS)
    assert sum(stores[0].old.find({"id": key})["n"] for key in KEYS) == total
    assert [e for e in events if e.outcome == "second_write_failed"] == []


def test_a_higher_version_on_the_second_side_is_repaired_from_the_first(
    tmp_path: Any, events: list[MigrationEvent]
) -> None:
    store = _store(unique_kind(), "dualwrite", str(tmp_path / "new.sqlite3"))
    # The key was removed and created again on the old side while the new side kept an old
    # record (a removal whose second write was lost): versions started again at 1.
    store.new.put({"id": "a", "old": True})
    for _ in range(4):
        store.new.update({"id": "a", "old": True})
    assert store.new.find({"id": "a"})["v"] == 5
    created = store.create({"id": "a", "fresh": True})
    assert created == {"id": "a", "fresh": True, "v": 1}
    assert store.new.find({"id": "a"}) == created
    # And a second write older than what the second side holds is not written over it.
    store.new.update({"id": "a", "newer": True})  # v2 there, as a later mirrored write would be
    store.old.update({"id": "a", "newer": True})  # v2 here
    assert list(diff_records(store.old, store.new)) == []
    assert events == []


def test_a_second_write_older_than_the_second_sides_record_is_not_written(
    tmp_path: Any, events: list[MigrationEvent]
) -> None:
    from kvstore.migration.mirror import mirror_delete, mirror_put

    store = _store(unique_kind(), "dualwrite", str(tmp_path / "new.sqlite3"))
    v1 = store.put({"id": "a", "n": 1})
    v2 = store.update({"id": "a", "n": 2})
    assert store.new.find({"id": "a"}) == v2
    mirror_put(store.old, store.new, v1)  # landing late, after the newer one
    assert store.new.find({"id": "a"}) == v2
    mirror_delete(store.old, store.new, ("a",), v1)  # a removal of the older record: refused
    assert store.new.find({"id": "a"}) == v2
    mirror_delete(store.old, store.new, ("a",), v2)
    assert store.new.find_all() == []
    # A record stored without a version counts as version 0: any version replaces it.
    store.new.driver.put_many([{"id": "b", "n": 0}])
    mirror_put(store.old, store.new, {"id": "b", "n": 1, "v": 1})
    assert store.new.find({"id": "b"}) == {"id": "b", "n": 1, "v": 1}
    assert events == []


@pytest.mark.parametrize("new_side_first", [True, False])
def test_old_first_and_new_first_writers_of_one_version_converge_on_the_new_sides_record(
    tmp_path: Any, events: list[MigrationEvent], new_side_first: bool
) -> None:
    # A fleet rolling from shadow (old first) to live (new first): two processes update one key
    # at once, each side takes its own write to v2, then both second writes land.
    from kvstore.migration.mirror import mirror_put

    kind = unique_kind()
    path = str(tmp_path / "new.sqlite3")
    shadow, live = _store(kind, "shadow", path), _store(kind, "live", path)
    shadow.put({"id": "a", "x": 0})
    from_shadow = shadow.old.update({"id": "a", "x": "shadow"})  # its first write, on old
    from_live = live.new.update({"id": "a", "x": "live"})  # its first write, on new
    assert from_shadow["v"] == from_live["v"] == 2
    toward_new = lambda: mirror_put(shadow.old, shadow.new, from_shadow)  # noqa: E731
    toward_old = lambda: mirror_put(live.new, live.old, from_live, toward_new=False)  # noqa: E731
    for second_write in (toward_old, toward_new) if new_side_first else (toward_new, toward_old):
        second_write()
    assert shadow.old.find({"id": "a"}) == shadow.new.find({"id": "a"}) == from_live
    # A second write sent again (its answer lost) finds its own record there: nothing to do.
    mirror_put(live.new, live.old, from_live, toward_new=False)
    mirror_put(shadow.old, shadow.new, from_live)
    assert shadow.old.find({"id": "a"}) == shadow.new.find({"id": "a"}) == from_live
    assert events == []
