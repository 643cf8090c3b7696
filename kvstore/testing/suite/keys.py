"""Contract: key fields hold exactly their ``key_type``; composite (partition, sort) keys."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from kvstore import AlreadyExists, InvalidArgument, NotFound
from kvstore.testing.fixtures import StoreFactory, StoreFixtures
from kvstore.testing.suite.helpers import keys, typed

GOOD_STR_KEYS = ["a", "x" * 1024, "é" * 512, "€" * 341 + "x", "\U0001f600" * 256, " ", "a b/c#d"]
BAD_STR_KEYS: list[Any] = ["", "x" * 1025, "é" * 512 + "x", "\U0001f600" * 257, 1, 1.5, True]
GOOD_INT_KEYS = [0, 1, -1, 2**53 + 1, 2**63 - 1, -(2**63)]
BAD_INT_KEYS: list[Any] = [True, False, 1.0, Decimal(1), "1", 2**63, -(2**63) - 1, [1]]


class AbstractKeyTests(StoreFixtures):
    """String and int keys, their limits, and two-field keys."""

    @pytest.mark.parametrize("key", GOOD_STR_KEYS, ids=lambda k: f"{len(k.encode())}B")
    def test_a_string_key_of_up_to_1024_utf8_bytes_works(
        self, make_store: StoreFactory, key: str
    ) -> None:
        assert len(key.encode("utf-8")) <= 1024
        store = make_store()
        store.put({"id": key, "v": 1})
        assert store.find({"id": key}) == {"id": key, "v": 1}
        assert store.find_in("id", [key]) == [{"id": key, "v": 1}]
        assert store.update({"id": key, "v": 2}) == {"id": key, "v": 2}
        assert store.remove({"id": key}) == 1

    @pytest.mark.parametrize("key", BAD_STR_KEYS, ids=repr)
    def test_a_bad_string_key_is_refused(self, make_store: StoreFactory, key: Any) -> None:
        store = make_store()
        with pytest.raises(InvalidArgument):
            store.put({"id": key})
        with pytest.raises(InvalidArgument):
            store.find({"id": key})
        with pytest.raises(InvalidArgument):
            store.find_in("id", [key])
        with pytest.raises(InvalidArgument):
            store.remove_in("id", [key])
        assert store.count() == 0

    @pytest.mark.parametrize("key", GOOD_INT_KEYS)
    def test_an_int_key_in_the_int64_range_works(self, make_store: StoreFactory, key: int) -> None:
        store = make_store(key_type=int)
        store.put({"id": key, "v": 1})
        found = store.find({"id": key})
        assert typed(found) == typed({"id": key, "v": 1})
        assert store.find_in("id", [key]) == [found]
        assert store.remove_in("id", [key]) == 1

    @pytest.mark.parametrize("key", BAD_INT_KEYS, ids=repr)
    def test_an_int_key_must_be_an_int_not_bool_float_or_decimal(
        self, make_store: StoreFactory, key: Any
    ) -> None:
        store = make_store(key_type=int)
        for call in (
            lambda: store.put({"id": key}),
            lambda: store.create({"id": key}),
            lambda: store.update({"id": key, "v": 1}),
            lambda: store.find({"id": key}),
            lambda: store.find_in("id", [key]),
            lambda: store.remove({"id": key}),
        ):
            with pytest.raises(InvalidArgument):
                call()
        assert store.count() == 0

    def test_a_record_without_its_key_is_refused(self, make_store: StoreFactory) -> None:
        store = make_store(id_field=("team", "seq"), key_type=(str, int))
        for record in ({"seq": 1}, {"team": "t"}, {"team": "t", "seq": None}, {}):
            for call in (store.put, store.create, store.update):
                with pytest.raises(InvalidArgument):
                    call(record)
            with pytest.raises(InvalidArgument):
                store.put_many([record])
        assert store.count() == 0

    def test_a_composite_key_identifies_a_record(self, make_store: StoreFactory) -> None:
        store = make_store(id_field=("team", "seq"), key_type=(str, int))
        store.create({"team": "t", "seq": 1, "v": "a"})
        store.create({"team": "t", "seq": 2, "v": "b"})
        store.create({"team": "u", "seq": 1, "v": "c"})
        with pytest.raises(AlreadyExists):
            store.create({"team": "t", "seq": 1, "v": "again"})
        assert store.find({"team": "t", "seq": 2})["v"] == "b"
        assert [r["v"] for r in store.find_all({"team": "t"})] == ["a", "b"]
        assert [r["v"] for r in store.find_all({"seq": 1})] == ["a", "c"]
        assert [r["v"] for r in store.find_in("team", ["u", "t"])] == ["a", "b", "c"]
        assert [r["v"] for r in store.find_in("seq", [2])] == ["b"]
        updated = store.update({"team": "u", "seq": 1, "w": 1})
        assert updated == {"team": "u", "seq": 1, "v": "c", "w": 1}
        with pytest.raises(NotFound):
            store.update({"team": "u", "seq": 2, "w": 1})
        assert store.remove({"team": "t"}) == 2
        assert store.find_all() == [updated]

    def test_composite_key_types_are_checked_per_field(self, make_store: StoreFactory) -> None:
        store = make_store(id_field=("team", "seq"), key_type=(str, int))
        for bad in ({"team": 1, "seq": 1}, {"team": "t", "seq": "1"}, {"team": "t", "seq": True}):
            with pytest.raises(InvalidArgument):
                store.put(bad)
        with pytest.raises(InvalidArgument):
            store.find({"seq": "1"})
        with pytest.raises(InvalidArgument):
            store.find_in("team", [1])

    def test_an_int_and_a_str_key_of_same_digits_are_different_kinds_of_key(
        self, make_store: StoreFactory
    ) -> None:
        store = make_store(id_field=("a", "b"), key_type=(int, str))
        store.put({"a": 1, "b": "1"})
        assert typed(store.find({"a": 1})) == typed({"a": 1, "b": "1"})
        assert keys(store.find_in("b", ["1"]), "a") == [1]

    def test_keys_come_back_unchanged_in_every_result(self, make_store: StoreFactory) -> None:
        store = make_store(key_type=int)
        assert store.put({"id": 7})["id"] == 7
        assert store.update({"id": 7, "x": 1})["id"] == 7
        assert type(store.find({"id": 7})["id"]) is int
