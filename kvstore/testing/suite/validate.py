"""Contract: the ``validate`` hook runs on every write's argument and every returned record."""

from __future__ import annotations

from typing import Any

import pytest

from kvstore import InvalidArgument
from kvstore.testing.fixtures import StoreFactory, StoreFixtures
from kvstore.testing.suite.helpers import keys


class Rejected(Exception):
    """What the test hooks raise: it must reach the caller unchanged."""


class Recorder:
    """A hook that notes each record it sees and returns it unchanged."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def __call__(self, record: dict[str, Any]) -> dict[str, Any]:
        self.seen.append(dict(record))
        return record


def lower_name(record: dict[str, Any]) -> dict[str, Any]:
    """Lower-case ``name`` and fill in ``id`` from it: kvstore checks what the hook returns."""
    record = dict(record)
    if isinstance(record.get("name"), str):
        record["name"] = record["name"].lower()
        record.setdefault("id", record["name"])
    if record.get("name") == "reject":
        raise Rejected("no rejects")
    return record


def with_version(record: dict[str, Any]) -> dict[str, Any]:
    """Upgrade old records on the way out: a missing ``version`` reads as 1."""
    return {"version": 1} | record


class AbstractValidateTests(StoreFixtures):
    """The hook's inputs, outputs and errors."""

    def test_the_hook_runs_on_each_write_argument_before_kvstore_checks(
        self, make_store: StoreFactory
    ) -> None:
        store = make_store(validate=lower_name)
        assert store.put({"name": "ADA"}) == {"id": "ada", "name": "ada"}
        assert store.create({"name": "Bob"}) == {"id": "bob", "name": "bob"}
        assert store.put_many([{"name": "CY"}, {"name": "Di"}]) == 2
        assert store.find_or_create({"name": "eve"}, {"name": "EVE"}) == {
            "id": "eve",
            "name": "eve",
        }
        assert keys(store.find_all()) == ["ada", "bob", "cy", "di", "eve"]

    def test_the_hook_runs_on_update_changes(self, make_store: StoreFactory) -> None:
        hook = Recorder()
        store = make_store(validate=hook)
        store.put({"id": "a", "x": 1, "y": 2})
        hook.seen.clear()
        assert store.update({"id": "a", "x": None, "z": 3}) == {"id": "a", "y": 2, "z": 3}
        assert hook.seen == [{"id": "a", "x": None, "z": 3}, {"id": "a", "y": 2, "z": 3}]

    def test_filters_match_the_stored_values(self, make_store: StoreFactory) -> None:
        store = make_store(validate=lower_name)
        store.put({"id": "x1", "name": "ADA"})
        assert store.find({"name": "ada"})["id"] == "x1"
        assert store.find_all({"name": "ADA"}) == []
        assert store.find_in("name", ["ADA"]) == []

    def test_what_the_hook_raises_reaches_the_caller_unchanged(
        self, make_store: StoreFactory
    ) -> None:
        store = make_store(validate=lower_name)
        store.put({"name": "ok"})
        for call in (
            lambda: store.put({"name": "REJECT"}),
            lambda: store.create({"name": "reject"}),
            lambda: store.update({"id": "ok", "name": "Reject"}),
            lambda: store.put_many([{"name": "fine"}, {"name": "reject"}]),
            lambda: store.find_or_create({"name": "x"}, {"name": "reject"}),
        ):
            with pytest.raises(Rejected):
                call()
        assert store.find_all() == [{"id": "ok", "name": "ok"}]

    def test_the_hook_runs_on_every_returned_record(self, make_store: StoreFactory) -> None:
        plain = make_store()
        plain.put_many([{"id": "a"}, {"id": "b", "version": 2}])
        store = make_store(kind=plain.kind, ensure=False, validate=with_version)
        expected = [{"id": "a", "version": 1}, {"id": "b", "version": 2}]
        assert store.find({"id": "a"}) == expected[0]
        assert store.find_all() == expected
        assert store.find_in("id", ["a", "b"]) == expected
        assert sorted(store.iter_all(), key=lambda r: r["id"]) == expected
        assert store.find_or_create({"id": "a"}, {"id": "a"}) == expected[0]
        assert store.update({"id": "a", "x": 1}) == expected[0] | {"x": 1}
        assert store.put({"id": "c"}) == {"id": "c", "version": 1}
        assert plain.find({"id": "c"}) == {"id": "c", "version": 1}  # the way in too

    def test_put_runs_the_hook_on_the_way_in_and_out(self, make_store: StoreFactory) -> None:
        hook = Recorder()
        store = make_store(validate=hook)
        store.put({"id": "a", "n": 2.0})
        assert hook.seen == [{"id": "a", "n": 2.0}, {"id": "a", "n": 2}]
        hook.seen.clear()
        store.find({"id": "a"})
        assert hook.seen == [{"id": "a", "n": 2}]

    def test_a_hook_raising_on_a_stored_record_fails_the_read(
        self, make_store: StoreFactory
    ) -> None:
        plain = make_store()
        plain.put({"id": "x", "name": "reject"})
        store = make_store(kind=plain.kind, ensure=False, validate=lower_name)
        with pytest.raises(Rejected):
            store.find({"id": "x"})
        with pytest.raises(Rejected):
            list(store.iter_all())

    def test_the_hook_output_is_still_checked(self, make_store: StoreFactory) -> None:
        def spoil(record: dict[str, Any]) -> dict[str, Any]:
            return record | {"bad": {1, 2}}

        store = make_store(validate=spoil)
        with pytest.raises(InvalidArgument):
            store.put({"id": "a"})
        plain = make_store(kind=store.kind, ensure=False)
        assert plain.count() == 0
