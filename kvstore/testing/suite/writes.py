"""Contract, "Operations": put, create, update, find_or_create, remove, truncate; copies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from kvstore import (
    AlreadyExists,
    InvalidArgument,
    MultipleFound,
    NotFound,
    OperationRejected,
)
from kvstore.testing.fixtures import StoreFactory, StoreFixtures
from kvstore.testing.suite.helpers import keys, typed


class AbstractWriteTests(StoreFixtures):
    """The write calls: what they return, store and refuse."""

    def test_put_returns_the_stored_record_and_replaces_it_whole(
        self, make_store: StoreFactory
    ) -> None:
        store = make_store()
        assert typed(store.put({"id": "a", "x": 1, "y": 2.0})) == typed({"id": "a", "x": 1, "y": 2})
        assert store.put({"id": "a", "z": 3}) == {"id": "a", "z": 3}
        assert store.find({"id": "a"}) == {"id": "a", "z": 3}
        assert store.count() == 1

    def test_create_stores_a_new_record_and_returns_it(self, make_store: StoreFactory) -> None:
        store = make_store()
        assert store.create({"id": "a", "x": [1]}) == {"id": "a", "x": [1]}
        assert store.find_all() == [{"id": "a", "x": [1]}]

    def test_create_raises_already_exists_and_changes_nothing(
        self, make_store: StoreFactory
    ) -> None:
        store = make_store()
        store.create({"id": "a", "x": 1})
        with pytest.raises(AlreadyExists) as info:
            store.create({"id": "a", "x": 2, "y": 3})
        assert info.value.code == "ALREADY_EXISTS"
        assert store.find_all() == [{"id": "a", "x": 1}]

    def test_update_merges_sets_removes_and_keeps(self, make_store: StoreFactory) -> None:
        store = make_store()
        store.put({"id": "a", "keep": 1, "change": 1, "drop": 1, "m": {"p": 1, "q": 2}})
        updated = store.update({"id": "a", "change": 2.0, "drop": None, "new": "n", "m": {"p": 3}})
        expected = {"id": "a", "keep": 1, "change": 2, "new": "n", "m": {"p": 3}}
        assert typed(updated) == typed(expected)
        assert typed(store.find({"id": "a"})) == typed(expected)

    def test_update_with_only_the_key_returns_the_record_unchanged(
        self, make_store: StoreFactory
    ) -> None:
        store = make_store()
        store.put({"id": "a", "x": 1})
        assert store.update({"id": "a"}) == {"id": "a", "x": 1}
        assert store.find({"id": "a"}) == {"id": "a", "x": 1}

    def test_update_of_a_missing_key_raises_not_found_and_creates_nothing(
        self, make_store: StoreFactory
    ) -> None:
        store = make_store()
        store.put({"id": "a"})
        with pytest.raises(NotFound) as info:
            store.update({"id": "b", "x": 1})
        assert info.value.code == "NOT_FOUND"
        assert store.find_all() == [{"id": "a"}]

    def test_update_without_the_key_raises_invalid_argument(self, make_store: StoreFactory) -> None:
        store = make_store()
        store.put({"id": "a", "x": 1})
        for changes in ({"x": 2}, {}, {"id": None, "x": 2}):
            with pytest.raises(InvalidArgument):
                store.update(changes)
        assert store.find_all() == [{"id": "a", "x": 1}]

    def test_find_or_create_returns_the_match_without_writing(
        self, make_store: StoreFactory
    ) -> None:
        store = make_store()
        store.put({"id": "a", "name": "x"})
        found = store.find_or_create({"name": "x"}, {"id": "b", "name": "x"})
        assert found == {"id": "a", "name": "x"}
        assert store.find_or_create({"id": "a"}, {"id": "a", "other": 1}) == found
        assert store.find_all() == [found]

    def test_find_or_create_creates_the_record_when_nothing_matches(
        self, make_store: StoreFactory
    ) -> None:
        store = make_store()
        store.put({"id": "a", "name": "x"})
        created = store.find_or_create({"name": "y"}, {"id": "b", "name": "y", "n": 2.0, "z": None})
        assert typed(created) == typed({"id": "b", "name": "y", "n": 2})
        assert typed(store.find({"id": "b"})) == typed(created)
        assert store.find_or_create({"name": "y"}, {"id": "c", "name": "y"}) == created
        assert store.count() == 2

    def test_find_or_create_raises_multiple_found(self, make_store: StoreFactory) -> None:
        store = make_store()
        store.put_many([{"id": "a", "g": 1}, {"id": "b", "g": 1}])
        with pytest.raises(MultipleFound):
            store.find_or_create({"g": 1}, {"id": "c", "g": 1})
        assert store.count() == 2

    def test_find_or_create_raises_already_exists_when_the_key_is_taken(
        self, make_store: StoreFactory
    ) -> None:
        store = make_store()
        store.put({"id": "a", "name": "x"})
        with pytest.raises(AlreadyExists):
            store.find_or_create({"name": "y"}, {"id": "a", "name": "y"})
        assert store.find_all() == [{"id": "a", "name": "x"}]

    def test_find_or_create_checks_the_record_first(self, make_store: StoreFactory) -> None:
        store = make_store()
        store.put({"id": "a", "name": "x"})
        for record in ({"name": "x"}, {"id": "b", "bad-name": 1}, {"id": "b", "v": {1, 2}}):
            with pytest.raises(InvalidArgument):
                store.find_or_create({"name": "x"}, record)
        assert store.count() == 1

    def test_remove_deletes_every_match_and_returns_how_many(
        self, make_store: StoreFactory
    ) -> None:
        store = make_store()
        store.put_many([{"id": k, "g": k < "c"} for k in "abcde"])
        assert store.remove({"g": True}) == 2
        assert store.remove({"g": True}) == 0
        assert store.remove({"id": "c"}) == 1
        assert store.remove({"id": "nobody"}) == 0
        assert keys(store.find_all()) == ["d", "e"]

    def test_remove_refuses_empty_filters(self, make_store: StoreFactory) -> None:
        store = make_store()
        store.put({"id": "a"})
        with pytest.raises(InvalidArgument):
            store.remove({})
        assert store.count() == 1

    @pytest.mark.parametrize("force", [False, 1, "yes", None])
    def test_truncate_needs_force_true(self, make_store: StoreFactory, force: Any) -> None:
        store = make_store()
        store.put({"id": "a"})
        with pytest.raises(OperationRejected) as info:
            store.truncate(force)
        assert info.value.code == "OPERATION_REJECTED"
        with pytest.raises(OperationRejected):
            store.truncate()
        assert store.count() == 1

    def test_truncate_removes_everything_and_returns_how_many(
        self, make_store: StoreFactory
    ) -> None:
        store = make_store()
        assert store.truncate(force=True) == 0
        store.put_many({"id": str(i)} for i in range(7))
        assert store.truncate(force=True) == 7
        assert store.count() == 0
        store.put({"id": "again"})
        assert store.find_all() == [{"id": "again"}]

    def test_results_are_copies_the_caller_may_mutate(self, make_store: StoreFactory) -> None:
        store = make_store()
        original = {"id": "a", "l": [1], "m": {"k": [2]}}

        def mutate(record: dict[str, Any]) -> None:
            assert type(record) is dict
            record["l"].append("x")
            record["m"]["k"].append("x")
            record["m"]["new"] = 1
            record["extra"] = 1

        mutate(store.put({"id": "a", "l": [1], "m": {"k": [2]}}))
        mutate(store.find({"id": "a"}))
        mutate(store.find_all()[0])
        mutate(store.find_in("id", ["a"])[0])
        mutate(next(iter(store.iter_all())))
        mutate(store.update({"id": "a"}))
        mutate(store.find_or_create({"id": "a"}, {"id": "a"}))
        mutate(store.create({"id": "b", "l": [1], "m": {"k": [2]}}))
        mutate(store.find_or_create({"id": "c"}, {"id": "c", "l": [1], "m": {"k": [2]}}))
        for key in "abc":
            assert store.find({"id": key}) == original | {"id": key}

    def test_mutating_a_record_after_writing_it_changes_nothing_stored(
        self, make_store: StoreFactory
    ) -> None:
        store = make_store()
        writes: dict[str, Callable[[dict[str, Any]], Any]] = {
            "a": store.put,
            "b": store.create,
            "c": lambda r: store.put_many([r]),
            "d": lambda r: store.find_or_create({"id": "d"}, r),
        }
        for key, write in writes.items():
            record: dict[str, Any] = {"id": key, "l": [1], "m": {"k": 1}}
            write(record)
            record["l"].append(2)
            record["m"]["k"] = 2
            record["x"] = 1
        store.put({"id": "e", "l": [0]})
        changes: dict[str, Any] = {"id": "e", "l": [1], "m": {"k": 1}}
        store.update(changes)
        changes["l"].append(2)
        changes["m"]["k"] = 2
        for key in "abcde":
            assert store.find({"id": key}) == {"id": key, "l": [1], "m": {"k": 1}}
