"""Second writes: the authoritative side's outcome reaches the other side; when that fails, the call
still succeeds and the failure is reported with the key (a WARNING, the hook, the counters)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from kvstore import NotFound, migration_stats, transaction
from kvstore.migration import MigrationEvent
from kvstore.testing import unique_kind
from tests.migration import flaky
from tests.migration.conftest import flaky_store

SECRET = "s3cr3t-value"


def _failures(events: list[MigrationEvent]) -> list[tuple[str, Any, str | None]]:
    return [(e.operation, e.key, e.error) for e in events if e.outcome == "second_write_failed"]


@pytest.mark.parametrize("stage", ["dualwrite", "shadow"])
def test_a_failing_second_side_fails_no_call_and_each_failure_names_its_key(
    switch: flaky.Switch,
    events: list[MigrationEvent],
    caplog: pytest.LogCaptureFixture,
    stage: str,
) -> None:
    store = flaky_store(unique_kind(), switch, stage)
    store.put({"id": "before", "v": 1})
    switch.down = True
    caplog.set_level(logging.WARNING, logger="kvstore.migration")
    assert store.put({"id": "a", "secret": SECRET}) == {"id": "a", "secret": SECRET}
    assert store.create({"id": "b"}) == {"id": "b"}
    assert store.update({"id": "a", "n": 1}) == {"id": "a", "secret": SECRET, "n": 1}
    assert store.find_or_create({"id": "c"}, {"id": "c"}) == {"id": "c"}
    assert store.put_many([{"id": "d"}, {"id": "e"}]) == 2
    assert store.remove({"id": "before"}) == 1
    with transaction() as tx:
        tx.put(store, {"id": "f"})
    if stage == "dualwrite":  # in shadow the reads go to the other side too (and are compared)
        assert store.find({"id": "a"})["n"] == 1
    assert _failures(events) == [
        ("put", {"id": "a"}, "BackendUnavailable"),
        ("create", {"id": "b"}, "BackendUnavailable"),
        ("update", {"id": "a"}, "BackendUnavailable"),
        ("find_or_create", {"id": "c"}, "BackendUnavailable"),
        ("put_many", {"id": "d"}, "BackendUnavailable"),
        ("put_many", {"id": "e"}, "BackendUnavailable"),
        ("remove", {"id": "before"}, "BackendUnavailable"),
        ("transaction", {"id": "f"}, "BackendUnavailable"),
    ]
    assert all(e.kind == store.kind and e.stage == stage for e in events)
    assert migration_stats()[store.kind][stage]["second_write_failures"] == 8
    warnings = [r for r in caplog.records if r.name == "kvstore.migration"]
    assert len(warnings) == len(events)
    assert all(r.levelno == logging.WARNING for r in warnings)
    assert "'id': 'a'" in warnings[0].getMessage()
    assert all(SECRET not in r.getMessage() for r in warnings)  # keys, never values
    # The authoritative side has everything; the other side missed every write.
    switch.down = False
    assert [r["id"] for r in store.old.find_all()] == ["a", "b", "c", "d", "e", "f"]
    assert [r["id"] for r in store.new.find_all()] == ["before"]


def test_the_second_side_gets_the_record_the_first_stored(
    switch: flaky.Switch, events: list[MigrationEvent]
) -> None:
    def validate(record: dict[str, Any]) -> dict[str, Any]:
        return {**record, "seen": record.get("seen", 0) + 1}

    store = flaky_store(unique_kind(), switch, "dualwrite", validate=validate, version_field="v")
    returned = store.put({"id": "a", "x": 1.0})
    # validate ran once on the way in and once on the way out; the sides hold what was stored.
    assert returned == {"id": "a", "x": 1, "v": 1, "seen": 2}
    assert (
        store.old.find({"id": "a"})
        == store.new.find({"id": "a"})
        == {
            "id": "a",
            "x": 1,
            "v": 1,
            "seen": 1,
        }
    )
    store.update({"id": "a", "y": [1]})
    assert store.new.find({"id": "a"}) == store.old.find({"id": "a"})
    assert store.new.find({"id": "a"})["v"] == 2
    assert events == []


def test_removals_mirror_exactly_the_keys_the_first_side_removed(
    switch: flaky.Switch, events: list[MigrationEvent]
) -> None:
    store = flaky_store(unique_kind(), switch, "dualwrite")
    store.put_many({"id": f"r{n}", "odd": n % 2 == 1} for n in range(10))
    # A record only the other side has (a backfill not run yet) is not the first side's to remove.
    store.new.put({"id": "only_new", "odd": True})
    assert store.remove({"odd": True}) == 5
    assert store.remove_in("id", ["r0", "r2", "nothing"]) == 2
    assert [r["id"] for r in store.old.find_all()] == ["r4", "r6", "r8"]
    assert [r["id"] for r in store.new.find_all()] == ["only_new", "r4", "r6", "r8"]
    assert store.truncate(force=True) == 3
    assert [r["id"] for r in store.new.find_all()] == ["only_new"]
    assert events == []


def test_a_failed_write_on_the_first_side_is_the_calls_error_and_is_not_mirrored(
    switch: flaky.Switch, events: list[MigrationEvent]
) -> None:
    store = flaky_store(unique_kind(), switch, "live")  # the flaky side is first here
    store.put({"id": "a"})
    switch.down = True
    with pytest.raises(ConnectionError):
        store.put({"id": "b"})
    switch.down = False
    with pytest.raises(NotFound):
        store.update({"id": "zz", "x": 1})
    assert [r["id"] for r in store.old.find_all()] == ["a"]
    assert events == []


def test_a_transaction_applies_to_the_authoritative_side_and_mirrors_after_commit(
    switch: flaky.Switch, events: list[MigrationEvent]
) -> None:
    from kvstore import InvalidArgument, create_store

    store = flaky_store(unique_kind(), switch, "live", version_field="v")  # first: flaky
    other_flaky: Any = create_store(unique_kind(), backend="flaky", switch=switch)
    other_flaky.ensure()
    store.put({"id": "gone"})
    store.put({"id": "u", "n": 1})
    writes_before = switch.calls.get("write", 0)
    with transaction() as tx:
        tx.create(store, {"id": "new"})
        tx.update(store, {"id": "u", "n": 2})
        tx.remove(store, {"id": "gone"})
        tx.put(other_flaky, {"id": "x"})  # one backend: the migrating store's first side
        # Nothing reached either side before the commit.
        assert store.old.count() == 2
        assert switch.calls.get("write", 0) == writes_before
    assert store.new.find_all() == store.old.find_all()
    assert [r["id"] for r in store.old.find_all()] == ["new", "u"]
    assert store.old.find({"id": "u"}) == {"id": "u", "n": 2, "v": 2}
    memory_store: Any = create_store(unique_kind(), backend="memory")
    memory_store.ensure()
    with transaction() as tx:
        tx.put(store, {"id": "m"})
        with pytest.raises(InvalidArgument, match="one backend"):
            tx.put(memory_store, {"id": "m"})  # the old side's backend does not count
    assert store.old.find({"id": "m"}) == store.new.find({"id": "m"}) == {"id": "m", "v": 1}
    assert events == []


def test_a_transaction_that_fails_mirrors_nothing(
    switch: flaky.Switch, events: list[MigrationEvent]
) -> None:
    from kvstore import AlreadyExists

    store = flaky_store(unique_kind(), switch, "dualwrite")
    store.put({"id": "taken"})

    def block() -> None:
        with transaction() as tx:
            tx.put(store, {"id": "a"})
            tx.create(store, {"id": "taken"})

    with pytest.raises(AlreadyExists):
        block()
    assert [r["id"] for r in store.new.find_all()] == ["taken"]
    assert [r["id"] for r in store.old.find_all()] == ["taken"]


def test_hook_kvstore_migration_event(switch: flaky.Switch, events: list[MigrationEvent]) -> None:
    """The hook gets one event per report, with every field the contract names; a hook that
    raises is logged and fails nothing."""
    from kvstore.hookspecs import hookimpl
    from kvstore.testing import registered

    class Broken:
        @hookimpl
        def kvstore_migration_event(self, event: MigrationEvent) -> None:
            raise RuntimeError("a broken hook")

    store = flaky_store(unique_kind(), switch, "shadow")
    switch.down = True
    with registered(Broken()):
        assert store.put({"id": "k", "x": 1}) == {"id": "k", "x": 1}
    switch.down = False
    store.new.put({"id": "k", "x": 2})
    store.find({"id": "k"})
    failed, differ = events
    assert failed == MigrationEvent(
        store.kind, "shadow", "put", {"id": "k"}, "second_write_failed", (), "BackendUnavailable"
    )
    assert differ == MigrationEvent(store.kind, "shadow", "find", {"id": "k"}, "mismatch", ("x",))
