"""Contract, "Filters" and equality: AND of exact, typed equalities on top-level fields."""

from __future__ import annotations

from typing import Any

import pytest

from kvstore.testing.fixtures import StoreFactory, StoreFixtures
from kvstore.testing.suite.helpers import keys

# Stored values, by key; each filter below must match exactly the keys the contract's equality says.
STORED: dict[str, Any] = {
    "int1": 1,
    "true": True,
    "false": False,
    "zero": 0,
    "float": 2.5,
    "str1": "1",
    "str_a": "a",
    "str_A": "A",
    "str_a_space": "a ",
    "e_acute": "\u00e9",
    "e_combining": "e\u0301",
    "empty": "",
    "list12": [1, 2],
    "list21": [2, 1],
    "list123": [1, 2, 3],
    "list_true": [True],
    "list_one": [1],
    "dict_ab": {"a": 1, "b": 2},
    "dict_a": {"a": 1},
    "dict_a_none": {"a": 1, "b": None},
    "dict_nested": {"a": [1, {"b": "c"}]},
    "empty_list": [],
    "empty_dict": {},
}

EXPECTED: list[tuple[Any, list[str]]] = [
    (1, ["int1"]),
    (1.0, ["int1"]),  # 1 == 1.0
    (True, ["true"]),  # a bool never equals a number
    (False, ["false"]),
    (0, ["zero"]),
    (2.5, ["float"]),
    ("1", ["str1"]),
    ("a", ["str_a"]),  # case and trailing space matter
    ("\u00e9", ["e_acute"]),  # by code point, no normalisation
    ("e\u0301", ["e_combining"]),
    ("", ["empty"]),
    ([1, 2], ["list12"]),  # lists by order and length
    ([2, 1], ["list21"]),
    ([1], ["list_one"]),
    ([1.0], ["list_one"]),
    ([True], ["list_true"]),
    ({"b": 2, "a": 1}, ["dict_ab"]),  # dicts by their entries
    ({"a": 1}, ["dict_a"]),
    ({"a": 1.0, "b": None}, ["dict_a_none"]),
    ({"a": [1, {"b": "c"}]}, ["dict_nested"]),
    ([], ["empty_list"]),
    ({}, ["empty_dict"]),
    ("nothing", []),
    (2, []),
]


class AbstractFilterTests(StoreFixtures):
    """Typed, exact equality in filters and ``find_in``; AND of fields; empty filters."""

    @pytest.fixture
    def typed_store(self, make_store: StoreFactory) -> Any:
        store = make_store()
        store.put_many({"id": key, "v": value} for key, value in STORED.items())
        store.put({"id": "absent"})
        return store

    @pytest.mark.parametrize(("value", "expected"), EXPECTED, ids=repr)
    def test_equality_is_exact_and_typed(
        self, typed_store: Any, value: Any, expected: list[str]
    ) -> None:
        wanted = sorted(expected)
        assert keys(typed_store.find_all({"v": value})) == wanted
        assert typed_store.count({"v": value}) == len(wanted)
        assert sorted(keys(typed_store.iter_all({"v": value}))) == wanted
        assert keys(typed_store.find_in("v", [value])) == wanted

    def test_find_in_matches_any_of_several_values_by_the_same_equality(
        self, typed_store: Any
    ) -> None:
        found = typed_store.find_in("v", [1, "a", [2, 1], {"a": 1}, None])
        assert keys(found) == sorted(["int1", "str_a", "list21", "dict_a", "absent"])

    def test_find_in_and_remove_in_keep_look_alike_values_apart(self, typed_store: Any) -> None:
        assert keys(typed_store.find_in("v", [1, True])) == ["int1", "true"]
        assert keys(typed_store.find_in("v", [True, 1.0, "1"])) == ["int1", "str1", "true"]
        assert keys(typed_store.find_in("v", [[1], [True]])) == ["list_one", "list_true"]
        assert typed_store.remove_in("v", [0, False]) == 2
        assert typed_store.count({"v": 0}) + typed_store.count({"v": False}) == 0

    def test_filters_are_combined_with_and(self, make_store: StoreFactory) -> None:
        store = make_store()
        store.put_many(
            [
                {"id": "a", "x": 1, "y": 1},
                {"id": "b", "x": 1, "y": 2},
                {"id": "c", "x": 2, "y": 1},
                {"id": "d", "x": 1},
            ]
        )
        assert keys(store.find_all({"x": 1, "y": 1})) == ["a"]
        assert keys(store.find_all({"x": 1})) == ["a", "b", "d"]
        assert keys(store.find_all({"x": 1, "y": None})) == ["d"]
        assert keys(store.find_all({"id": "b", "x": 1})) == ["b"]
        assert store.find_all({"id": "b", "x": 2}) == []
        assert store.count({"x": 1, "y": 1, "id": "a"}) == 1

    def test_a_filter_on_a_field_a_record_lacks_does_not_match_it(
        self, make_store: StoreFactory
    ) -> None:
        store = make_store()
        store.put_many([{"id": "a", "x": 1}, {"id": "b"}])
        assert keys(store.find_all({"x": 1})) == ["a"]
        assert store.find_all({"nowhere": 1}) == []
        assert store.remove({"nowhere": 1}) == 0
        assert store.count() == 2

    def test_filters_apply_alike_to_find_count_remove_and_find_or_create(
        self, make_store: StoreFactory
    ) -> None:
        store = make_store()
        store.put_many([{"id": "a", "v": True}, {"id": "b", "v": 1}])
        assert store.find({"v": True})["id"] == "a"
        assert store.find_or_create({"v": 1.0}, {"id": "c", "v": 1})["id"] == "b"
        assert store.remove({"v": 1}) == 1
        assert keys(store.find_all()) == ["a"]
