"""Contract: a record's DynamoDB item size must be under 409,600 bytes, on every backend."""

from __future__ import annotations

from typing import Any

import pytest

from kvstore import InvalidArgument, Store
from kvstore.testing.fixtures import StoreFactory, StoreFixtures
from kvstore.testing.suite.helpers import dynamo_string_record
from kvstore.values import item_size

LIMIT = 409_600
"""400 KiB; a record's size must be strictly under it."""

# The fixed part of a record mixing every type, sized by hand by DynamoDB's documented rules:
#   "id": "k"                 2 + 1                                   = 3
#   "num": 1234               3 + (2 digit pairs + 1)                 = 6
#   "neg": -5                 3 + (1 pair + 1 + 1 for the sign)       = 6
#   "flag": True              4 + 1                                   = 5
#   "l": ["ab", 7, None]      1 + 3 + (2 + 1) + (2 + 1) + (1 + 1)     = 12
#   "m": {"key": "v"}         1 + 3 + (3 + 1 + 1)                     = 9
#   "blob": "x" * n           4 + n
MIXED_FIXED = 3 + 6 + 6 + 5 + 12 + 9 + 4


def mixed_record(size: int) -> dict[str, Any]:
    """A record of every value type whose DynamoDB item size is exactly ``size``."""
    return {
        "id": "k",
        "num": 1234,
        "neg": -5,
        "flag": True,
        "l": ["ab", 7, None],
        "m": {"key": "v"},
        "blob": "x" * (size - MIXED_FIXED),
    }


def long_name_record(size: int) -> dict[str, Any]:
    """Attribute names count: a 63-character name holding a string, exactly ``size`` bytes."""
    name = "n" * 63
    return {"id": "k", name: "x" * (size - 3 - 63)}


SHAPES = {
    "ascii": lambda size: dynamo_string_record(size),
    "two_byte_chars": lambda size: dynamo_string_record(size, "é"),
    "three_byte_chars": lambda size: dynamo_string_record(size, "€"),
    "four_byte_chars": lambda size: dynamo_string_record(size, "\U0001f600"),
    "every_type": mixed_record,
    "long_name": long_name_record,
}


def _writes(store: Store) -> dict[str, Any]:
    return {
        "put": store.put,
        "create": store.create,
        "put_many": lambda record: store.put_many([record]),
        "find_or_create": lambda record: store.find_or_create({"id": record["id"]}, record),
    }


class AbstractSizeTests(StoreFixtures):
    """The 400 KiB item-size rule: exact boundary, multi-byte strings, names, updates."""

    @pytest.mark.parametrize("shape", sorted(SHAPES))
    def test_the_sizes_built_here_follow_dynamodb_rules(self, shape: str) -> None:
        # Ties kvstore's own computation to the hand-computed sizes above.
        for size in (LIMIT - 1, LIMIT, LIMIT + 1):
            assert item_size(SHAPES[shape](size)) == size

    @pytest.mark.parametrize("shape", sorted(SHAPES))
    def test_a_record_one_byte_under_the_limit_is_stored(
        self, make_store: StoreFactory, shape: str
    ) -> None:
        self.require("exact_item_size")
        record = SHAPES[shape](LIMIT - 1)
        for name in ("put", "create", "put_many", "find_or_create"):
            store = make_store()
            assert _writes(store)[name](record) in (record, 1), name
            assert store.find({"id": record["id"]}) == record

    @pytest.mark.parametrize("shape", sorted(SHAPES))
    def test_a_record_of_exactly_the_limit_is_refused(
        self, make_store: StoreFactory, shape: str
    ) -> None:
        store = make_store()
        for size in (LIMIT, LIMIT + 1):
            record = SHAPES[shape](size)
            for write in _writes(store).values():
                with pytest.raises(InvalidArgument):
                    write(record)
        assert store.count() == 0

    def test_a_far_larger_record_is_refused_before_any_io(self, make_store: StoreFactory) -> None:
        store = make_store(ensure=False)
        with pytest.raises(InvalidArgument):
            store.put({"id": "k", "blob": "x" * 1_000_000})
        with pytest.raises(InvalidArgument):
            store.put({"id": "k", "l": ["x" * 1000] * 500})

    def test_an_update_past_the_limit_raises_and_changes_nothing(
        self, make_store: StoreFactory
    ) -> None:
        store = make_store()
        # 3 (id) + 4 + 300_000 (blob) + 5 + 2 (small: 1) = 300_014 bytes.
        original = {"id": "k", "blob": "x" * 300_000, "small": 1}
        store.put(original)
        # Merged: 300_014 - 7 (small) + 7 (other: 1) + 4 + n (more) = LIMIT when n = 109_582.
        for extra in (109_582, 109_583, 200_000):
            merged = {"id": "k", "blob": "x" * 300_000, "other": 1, "more": "y" * extra}
            assert item_size(merged) >= LIMIT
            with pytest.raises(InvalidArgument):
                store.update({"id": "k", "more": "y" * extra, "small": None, "other": 1})
        # Growing an existing field counts too: 3 + 4 + n + 7 = LIMIT when n = 409_586.
        with pytest.raises(InvalidArgument):
            store.update({"id": "k", "blob": "x" * 409_586})
        assert store.find({"id": "k"}) == original

    def test_an_update_to_just_under_the_limit_is_stored(self, make_store: StoreFactory) -> None:
        self.require("exact_item_size")
        store = make_store()
        store.put({"id": "k", "blob": "x" * 300_000, "small": 1})
        # 300_014 + 4 + 109_581 = LIMIT - 1
        updated = store.update({"id": "k", "more": "y" * 109_581})
        assert item_size(updated) == LIMIT - 1
        assert store.find({"id": "k"}) == updated
        # Removing fields in the same update frees their bytes: 3 + 4 + 409_592 = LIMIT - 1.
        shrunk = store.update({"id": "k", "more": None, "small": None, "blob": "x" * 409_592})
        assert shrunk == {"id": "k", "blob": "x" * 409_592}
        assert store.find({"id": "k"}) == shrunk
