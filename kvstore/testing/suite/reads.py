"""Contract, "Operations": find, find_all, find_in and count: results and errors."""

from __future__ import annotations

import pytest

from kvstore import MultipleFound, NotFound
from kvstore.testing.fixtures import StoreFactory, StoreFixtures
from kvstore.testing.suite.helpers import keys


class AbstractReadTests(StoreFixtures):
    """The read calls."""

    def test_find_returns_the_one_match(self, make_store: StoreFactory) -> None:
        store = make_store()
        store.put_many([{"id": "a", "g": 1, "n": "x"}, {"id": "b", "g": 1, "n": "y"}])
        assert store.find({"id": "b"}) == {"id": "b", "g": 1, "n": "y"}
        assert store.find({"g": 1, "n": "x"}) == {"id": "a", "g": 1, "n": "x"}

    def test_find_raises_not_found_when_nothing_matches(self, make_store: StoreFactory) -> None:
        store = make_store()
        with pytest.raises(NotFound) as info:
            store.find({})
        assert info.value.code == "NOT_FOUND"
        store.put({"id": "a", "g": 1})
        for filters in ({"id": "b"}, {"g": 2}, {"id": "a", "g": 2}, {"other": 1}):
            with pytest.raises(NotFound):
                store.find(filters)

    def test_find_raises_multiple_found_when_several_match(self, make_store: StoreFactory) -> None:
        store = make_store()
        store.put_many([{"id": "a", "g": 1}, {"id": "b", "g": 1}, {"id": "c", "g": 2}])
        for filters in ({"g": 1}, {}):
            with pytest.raises(MultipleFound) as info:
                store.find(filters)
            assert info.value.code == "MULTIPLE_FOUND"
        assert store.find({"g": 2})["id"] == "c"

    def test_find_with_empty_filters_returns_the_only_record(
        self, make_store: StoreFactory
    ) -> None:
        store = make_store()
        store.put({"id": "a"})
        assert store.find({}) == {"id": "a"}

    def test_find_all_returns_matches_sorted_by_key(self, make_store: StoreFactory) -> None:
        store = make_store()
        assert store.find_all() == []
        store.put_many([{"id": k, "g": k in "bd"} for k in "dbcae"])
        assert keys(store.find_all()) == ["a", "b", "c", "d", "e"]
        assert keys(store.find_all({})) == ["a", "b", "c", "d", "e"]
        assert keys(store.find_all({"g": True})) == ["b", "d"]
        assert store.find_all({"g": "no"}) == []

    def test_find_in_returns_each_match_once_sorted_by_key(self, make_store: StoreFactory) -> None:
        store = make_store()
        store.put_many([{"id": k, "g": i % 3} for i, k in enumerate("fedcba")])
        assert keys(store.find_in("id", ["c", "a", "c", "zz"])) == ["a", "c"]
        assert keys(store.find_in("g", [0, 2, 0])) == ["a", "c", "d", "f"]
        assert keys(store.find_in("g", (value for value in [1]))) == ["b", "e"]
        assert store.find_in("g", [7]) == []
        assert store.find_in("missing_field", [1]) == []
        assert store.find_in("id", []) == []

    def test_find_in_accepts_many_values(self, make_store: StoreFactory) -> None:
        store = make_store()
        store.put_many({"id": f"k{i:03}", "n": i} for i in range(150))
        wanted = [f"k{i:03}" for i in range(0, 150, 2)] + [f"none{i}" for i in range(100)]
        assert keys(store.find_in("id", wanted)) == sorted(wanted[:75])
        assert len(store.find_in("n", range(0, 300, 3))) == 50

    def test_count_counts_matches(self, make_store: StoreFactory) -> None:
        store = make_store()
        assert store.count() == 0
        store.put_many([{"id": k, "g": k < "c"} for k in "abcde"])
        assert store.count() == 5
        assert store.count({}) == 5
        assert store.count({"g": True}) == 2
        assert store.count({"g": True, "id": "a"}) == 1
        assert store.count({"id": "zz"}) == 0
