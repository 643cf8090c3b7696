"""Contract: a top-level ``None`` means "absent", in records, changes, filters and value lists."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from kvstore import InvalidArgument
from kvstore.testing.fixtures import StoreFactory, StoreFixtures
from kvstore.testing.suite.helpers import keys


class AbstractAbsentTests(StoreFixtures):
    """``None`` at the top level is never stored nor returned; nested ``None`` is kept."""

    def test_a_top_level_none_is_not_stored_nor_returned(self, make_store: StoreFactory) -> None:
        store = make_store()
        assert store.put({"id": "a", "x": None, "y": 1}) == {"id": "a", "y": 1}
        assert store.create({"id": "b", "x": None}) == {"id": "b"}
        assert store.put_many([{"id": "c", "x": None}]) == 1
        assert store.find_or_create({"id": "d"}, {"id": "d", "x": None}) == {"id": "d"}
        for record in (*store.find_all(), *store.iter_all(), *store.find_in("id", ["a", "b"])):
            assert "x" not in record

    def test_nested_none_is_kept(self, make_store: StoreFactory) -> None:
        store = make_store()
        record = {"id": "a", "l": [None, 1], "m": {"n": None, "o": [None]}}
        store.put(record)
        assert store.find({"id": "a"}) == record

    def test_a_none_filter_matches_records_without_the_field(
        self, make_store: StoreFactory
    ) -> None:
        store = make_store()
        store.put_many(
            [
                {"id": "a", "x": 1},
                {"id": "b"},
                {"id": "c", "x": None},
                {"id": "d", "x": [None]},
                {"id": "e", "x": 0},
                {"id": "f", "x": False},
                {"id": "g", "x": ""},
            ]
        )
        assert keys(store.find_all({"x": None})) == ["b", "c"]
        assert store.count({"x": None}) == 2
        assert sorted(keys(store.iter_all({"x": None}))) == ["b", "c"]
        assert store.find({"x": None, "id": "c"}) == {"id": "c"}
        assert store.remove({"x": None}) == 2
        assert keys(store.find_all()) == ["a", "d", "e", "f", "g"]

    def test_none_among_find_in_and_remove_in_values_means_absent(
        self, make_store: StoreFactory
    ) -> None:
        store = make_store()
        store.put_many([{"id": "a", "x": 1}, {"id": "b"}, {"id": "c", "x": 2}])
        assert keys(store.find_in("x", [None, 1])) == ["a", "b"]
        assert keys(store.find_in("x", [None])) == ["b"]
        assert store.remove_in("x", [None]) == 1
        assert keys(store.find_all()) == ["a", "c"]

    def test_a_none_key_is_invalid_in_filters_and_value_lists(
        self, make_store: StoreFactory
    ) -> None:
        store = make_store()
        store.put({"id": "a"})
        calls: list[Callable[[], Any]] = [
            lambda: store.find({"id": None}),
            lambda: store.find_all({"id": None}),
            lambda: store.count({"id": None}),
            lambda: store.remove({"id": None}),
            lambda: store.iter_all({"id": None}),
            lambda: store.find_or_create({"id": None}, {"id": "b"}),
            lambda: store.find_in("id", [None]),
            lambda: store.find_in("id", ["a", None]),
            lambda: store.remove_in("id", [None]),
            lambda: store.put({"id": None}),
            lambda: store.update({"id": None, "x": 1}),
        ]
        for call in calls:
            with pytest.raises(InvalidArgument):
                call()
        assert store.find_all() == [{"id": "a"}]

    def test_a_none_in_update_removes_the_field(self, make_store: StoreFactory) -> None:
        store = make_store()
        store.put({"id": "a", "x": 1, "y": 2})
        assert store.update({"id": "a", "x": None, "never_there": None}) == {"id": "a", "y": 2}
        assert store.find({"id": "a"}) == {"id": "a", "y": 2}
        assert store.count({"x": None}) == 1
