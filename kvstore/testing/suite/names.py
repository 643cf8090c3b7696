"""Contract: field names, and the shapes of arguments every call checks before any I/O."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from kvstore import InvalidArgument, Store
from kvstore.testing.fixtures import StoreFactory, StoreFixtures

VALID_NAMES = ["a", "_", "A", "A_b9", "_private", "doc", "x" * 63, "CamelCase", "__x__"]
INVALID_NAMES: list[Any] = [
    "",
    "9a",
    "a-b",
    "a b",
    "a.b",
    "é",
    "x" * 64,
    "a\n",
    "a\x00",
    1,
    None,
    ("a",),
]


def _calls_naming(store: Store, name: Any) -> list[Callable[[], Any]]:
    return [
        lambda: store.put({"id": "a", name: 1}),
        lambda: store.create({"id": "a", name: 1}),
        lambda: store.update({"id": "a", name: 1}),
        lambda: store.put_many([{"id": "a", name: 1}]),
        lambda: store.find_or_create({name: 1}, {"id": "a"}),
        lambda: store.find_or_create({"id": "a"}, {"id": "a", name: 1}),
        lambda: store.find({name: 1}),
        lambda: store.find_all({name: 1}),
        lambda: store.count({name: 1}),
        lambda: store.remove({name: 1}),
        lambda: store.iter_all({name: 1}),
        lambda: store.find_in(name, [1]),
        lambda: store.remove_in(name, [1]),
    ]


class AbstractNameTests(StoreFixtures):
    """Field-name rules on every call, and non-dict / non-iterable arguments."""

    def test_valid_field_names_round_trip(self, make_store: StoreFactory) -> None:
        store = make_store()
        record = {"id": "a"} | {name: i for i, name in enumerate(VALID_NAMES)}
        store.put(record)
        assert store.find({"id": "a"}) == record
        for i, name in enumerate(VALID_NAMES):
            assert store.find({name: i}) == record

    @pytest.mark.parametrize("name", INVALID_NAMES, ids=repr)
    def test_an_invalid_field_name_is_refused_by_every_call(
        self, make_store: StoreFactory, name: Any
    ) -> None:
        store = make_store()
        store.put({"id": "a", "v": 1})
        for call in _calls_naming(store, name):
            with pytest.raises(InvalidArgument):
                call()
        assert store.find_all() == [{"id": "a", "v": 1}]

    @pytest.mark.parametrize("record", [None, [("id", "a")], "id=a", 5, {"id"}], ids=repr)
    def test_a_record_that_is_not_a_dict_is_refused(
        self, make_store: StoreFactory, record: Any
    ) -> None:
        store = make_store()
        for call in (store.put, store.create, store.update, lambda r: store.put_many([r])):
            with pytest.raises(InvalidArgument):
                call(record)
        with pytest.raises(InvalidArgument):
            store.find_or_create({"id": "a"}, record)
        assert store.count() == 0

    @pytest.mark.parametrize("filters", [[("id", "a")], "id", 5, {"id"}], ids=repr)
    def test_filters_that_are_not_a_dict_are_refused(
        self, make_store: StoreFactory, filters: Any
    ) -> None:
        store = make_store()
        store.put({"id": "a"})
        for call in (store.find, store.find_all, store.count, store.remove, store.iter_all):
            with pytest.raises(InvalidArgument):
                call(filters)
        with pytest.raises(InvalidArgument):
            store.find_or_create(filters, {"id": "a"})
        assert store.count() == 1

    @pytest.mark.parametrize("values", ["ab", b"ab", 5, None, {"a": 1}], ids=repr)
    def test_values_that_are_not_a_list_or_iterable_are_refused(
        self, make_store: StoreFactory, values: Any
    ) -> None:
        store = make_store()
        store.put({"id": "a"})
        with pytest.raises(InvalidArgument):
            store.find_in("id", values)
        with pytest.raises(InvalidArgument):
            store.remove_in("id", values)
        assert store.count() == 1

    @pytest.mark.parametrize("records", ["ab", 5, None, {"id": "a"}], ids=repr)
    def test_put_many_refuses_what_is_not_an_iterable_of_records(
        self, make_store: StoreFactory, records: Any
    ) -> None:
        store = make_store()
        with pytest.raises(InvalidArgument):
            store.put_many(records)
        assert store.count() == 0
