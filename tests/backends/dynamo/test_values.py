"""Values on the dynamo backend: exact numbers, reserved words, sizes, other tools' types."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from kvstore import ConditionFailed, InvalidArgument, Store, create_store, transaction
from kvstore.testing import unique_kind
from kvstore.values import MAX_ITEM_SIZE, item_size
from tests.backends.dynamo.conftest import local_client

RESERVED = ("name", "status", "data", "size", "count", "key", "value", "type", "date", "order")


def make(client: Any, **kwargs: Any) -> Store:
    store = create_store(unique_kind(), backend="dynamo", client=client, **kwargs)
    store.ensure()
    return store


def test_reserved_words_are_ordinary_field_names(client: Any) -> None:
    store = make(client, id_field="name")
    record = {"name": "n1", **{word: f"{word}-1" for word in RESERVED if word != "name"}}
    store.put(record)
    store.put({"name": "n2", "status": "closed"})
    assert store.find({"name": "n1"}) == record
    assert store.find({"status": "status-1", "data": "data-1"}) == record
    assert store.count({"status": "closed"}) == 1
    assert store.find_in("status", ["closed", "status-1"]) == [
        record,
        {"name": "n2", "status": "closed"},
    ]
    updated = store.update({"name": "n1", "status": "open", "data": None})
    assert updated["status"] == "open"
    assert "data" not in store.find({"name": "n1"})
    assert store.remove({"status": "open"}) == 1


@pytest.mark.parametrize("number", [30.4, 0.1 + 0.2, 1 / 3, -2.5e-7, 1e20, 123456789.123])
def test_floats_round_trip_exactly_and_filter_exactly(client: Any, number: float) -> None:
    store = make(client)
    store.put({"id": "a", "n": number, "nested": {"l": [number]}})
    found = store.find({"id": "a"})
    assert found["n"] == number
    assert type(found["n"]) is float
    assert found["nested"]["l"][0] == number
    assert store.count({"n": number}) == 1
    # A neighbour float (one ulp away) is another number, on the server too.
    import math

    assert store.count({"n": math.nextafter(number, math.inf)}) == 0


def test_point_one_plus_point_two_is_not_point_three(client: Any) -> None:
    store = make(client)
    store.put({"id": "a", "n": 0.1 + 0.2})
    assert store.find_all({"n": 0.3}) == []
    assert store.find({"n": 0.1 + 0.2})["n"] == 0.30000000000000004


def test_a_record_just_under_the_limit_round_trips(client: Any) -> None:
    store = make(client)
    record = {"id": "big", "blob": ""}
    record["blob"] = "x" * (399_000 - item_size(record))
    assert item_size(record) == 399_000
    store.put(record)
    assert store.find({"id": "big"}) == record
    assert store.find_all({"blob": record["blob"]}) == [record]


def test_typed_equality_in_filters(client: Any) -> None:
    store = make(client)
    store.put_many(
        [
            {"id": "n", "v": 1},
            {"id": "f", "v": 1.5},
            {"id": "b", "v": True},
            {"id": "s", "v": "1"},
            {"id": "m1", "v": {"x": 1, "y": [1, "a"]}},
            {"id": "m2", "v": {"y": [1, "a"], "x": 1, "z": None}},
            {"id": "l", "v": [1, True]},
            {"id": "absent"},
        ]
    )

    def ids(filters: dict[str, Any]) -> list[str]:
        found = [r["id"] for r in store.find_all(filters)]
        assert store.count(filters) == len(found)
        return found

    assert ids({"v": 1}) == ["n"]
    assert ids({"v": 1.0}) == ["n"]
    assert ids({"v": True}) == ["b"]
    assert ids({"v": "1"}) == ["s"]
    assert ids({"v": {"y": [1.0, "a"], "x": 1}}) == ["m1"]  # entries, not order; 1 == 1.0
    assert ids({"v": {"x": 1, "y": [1, "a"], "z": None}}) == ["m2"]
    assert ids({"v": [1, True]}) == ["l"]
    assert ids({"v": [True, 1]}) == []
    assert ids({"v": None}) == ["absent"]
    found = store.find_in("v", [1, True, None, {"x": 1, "y": [1, "a"]}])
    assert [r["id"] for r in found] == ["absent", "b", "m1", "n"]


def test_big_and_precise_numbers_round_trip_on_dynamodb_local(dynamodb_local: Any) -> None:
    # DynamoDB Local answers in plain notation (1E+125 is 126 digits), which boto3's own
    # deserializer refuses past 38 digits: kvstore reads numbers itself.
    store = make(local_client(dynamodb_local.endpoint))
    numbers: dict[str, Any] = {
        "huge": 1e125,
        "neg_huge": -9.99e125,
        "tiny": 1e-130,
        "neg_tiny": -1.5e-7,
        "digits38": Decimal("1" * 38),
        "frac38": Decimal("0.0000" + "3" * 38),
        "max64": 2**63 - 1,
        "min64": -(2**63),
        "past64": Decimal("9223372036854775808"),
    }
    stored = store.put({"id": "a", **numbers, "nested": dict(numbers)})
    found = store.find({"id": "a"})
    assert found == stored
    for name, written in numbers.items():
        expected = written if isinstance(written, int) else float(written)
        assert found[name] == expected
        assert type(found[name]) is type(expected)
        assert found["nested"][name] == expected
        assert store.count({name: written}) == 1


def test_sets_and_binary_written_by_other_tools_read_back(client: Any) -> None:
    store = make(client)
    table = store.native().table_name
    client.put_item(
        TableName=table,
        Item={
            "id": {"S": "other"},
            "ss": {"SS": ["b", "a", "é", "B"]},
            "ns": {"NS": ["10", "-1.5", "2"]},
            "bs": {"BS": [b"\x02", b"\x01"]},
            "b": {"B": b"\x00\xff"},
            "nul": {"NULL": True},
            "m": {"M": {"n": {"N": "1.0"}, "s": {"SS": ["z", "y"]}}},
        },
    )
    assert store.find({"id": "other"}) == {
        "id": "other",
        "ss": sorted(["b", "a", "é", "B"]),
        "ns": [-1.5, 2, 10],
        "bs": [b"\x01", b"\x02"],
        "b": b"\x00\xff",
        "m": {"n": 1, "s": ["y", "z"]},
    }
    # A filter or an expect equal to a set as it reads back finds it (the server compares sets).
    read_back = sorted(["b", "a", "é", "B"])
    assert store.find({"ss": read_back, "ns": [-1.5, 2, 10]})["id"] == "other"
    assert store.count({"ss": read_back}) == 1
    assert store.find_all({"ss": list(reversed(read_back))}) == []
    store.update({"id": "other", "x": 1}, expect={"ss": read_back, "ns": [-1.5, 2, 10]})
    with pytest.raises(ConditionFailed):
        store.update({"id": "other", "x": 2}, expect={"ns": [10, 2, -1.5]})


def test_an_update_to_exactly_the_limit_raises_and_changes_nothing(dynamodb_local: Any) -> None:
    # DynamoDB accepts an item of exactly 409,600 bytes; the contract's limit is strict.
    store = make(local_client(dynamodb_local.endpoint))
    record = {"id": "a", "keep": 1, "blob": "x" * 1000}
    store.put(record)
    grow: dict[str, Any] = {"id": "a", "blob": None, "extra": ""}
    merged: dict[str, Any] = {"id": "a", "keep": 1, "extra": ""}
    grow["extra"] = merged["extra"] = "y" * (MAX_ITEM_SIZE - item_size(merged))
    assert item_size(merged) == MAX_ITEM_SIZE
    with pytest.raises(InvalidArgument):
        store.update(grow)
    assert store.find({"id": "a"}) == record
    merged["extra"] = grow["extra"] = grow["extra"][:-1]
    assert store.update(grow) == merged
    assert store.find({"id": "a"}) == merged


def test_an_update_in_a_transaction_to_exactly_the_limit_is_stored(dynamodb_local: Any) -> None:
    # The one place the strict limit does not hold (docs/DECISIONS.md, DynamoDB): DynamoDB stores
    # an item of exactly 409,600 bytes and TransactWriteItems returns no values to check. What
    # the user sees afterwards: the record reads back, and writing it as it is is refused.
    store = make(local_client(dynamodb_local.endpoint))
    store.put({"id": "a", "keep": 1})
    merged: dict[str, Any] = {"id": "a", "keep": 1, "extra": ""}
    merged["extra"] = "y" * (MAX_ITEM_SIZE - item_size(merged))
    assert item_size(merged) == MAX_ITEM_SIZE
    with transaction() as tx:
        tx.update(store, {"id": "a", "extra": merged["extra"]})
    assert store.find({"id": "a"}) == merged
    with pytest.raises(InvalidArgument):
        store.put(merged)
    with pytest.raises(InvalidArgument):
        store.update({"id": "a", "keep": 2})  # still too large after it: refused, undone
    assert store.find({"id": "a"}) == merged
    assert store.update({"id": "a", "keep": None}) == {"id": "a", "extra": merged["extra"]}


def test_an_update_past_the_limit_raises_and_changes_nothing(client: Any) -> None:
    store = make(client)
    record = {"id": "a", "blob": "x" * 300_000}
    store.put(record)
    with pytest.raises(InvalidArgument):
        store.update({"id": "a", "more": "y" * 200_000})
    assert store.find({"id": "a"}) == record
