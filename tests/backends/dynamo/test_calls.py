"""The dynamo backend makes the fewest calls: GetItem, Query, BatchGetItem, BatchWriteItem, pages."""

from __future__ import annotations

import math
from typing import Any

import pytest

from kvstore import AlreadyExists, Store, create_store
from kvstore.testing import unique_kind
from kvstore.values import item_size
from kvstore_dynamo import batch
from tests.backends.dynamo.conftest import local_client
from tests.backends.dynamo.hooks import Calls


def make(client: Any, **kwargs: Any) -> Store:
    store = create_store(unique_kind(), backend="dynamo", client=client, **kwargs)
    store.ensure()
    return store


def test_creating_a_store_makes_no_call(client: Any) -> None:
    calls = Calls(client)
    create_store(unique_kind(), backend="dynamo", client=client)
    assert calls.total() == 0


def test_find_by_whole_key_is_one_get_item(client: Any) -> None:
    store = make(client, id_field=("team", "seq"), key_type=(str, int))
    store.put({"team": "t", "seq": 1, "v": 1})
    calls = Calls(client)
    assert store.find({"team": "t", "seq": 1}) == {"team": "t", "seq": 1, "v": 1}
    assert dict(calls.counts) == {"GetItem": 1}


def test_a_filter_on_the_partition_key_is_one_query(client: Any) -> None:
    store = make(client, id_field=("team", "seq"), key_type=(str, int))
    store.put_many([{"team": t, "seq": i, "v": i % 2} for t in "ab" for i in range(5)])
    calls = Calls(client)
    assert [r["seq"] for r in store.find_all({"team": "a", "v": 1})] == [1, 3]
    assert store.count({"team": "b"}) == 5
    assert dict(calls.counts) == {"Query": 2}


def test_find_in_250_keys_is_3_batch_get_item(client: Any) -> None:
    store = make(client)
    store.put_many([{"id": f"k{i:03}"} for i in range(300)])
    wanted = [f"k{i:03}" for i in range(250)]
    calls = Calls(client)
    assert [r["id"] for r in store.find_in("id", wanted)] == wanted
    assert dict(calls.counts) == {"BatchGetItem": math.ceil(250 / batch.GET_BATCH)}
    assert calls["BatchGetItem"] == 3


def test_put_many_100_records_is_4_batch_write_item(client: Any) -> None:
    store = make(client)
    calls = Calls(client)
    assert store.put_many({"id": f"k{i:03}", "v": i} for i in range(100)) == 100
    assert dict(calls.counts) == {"BatchWriteItem": math.ceil(100 / batch.WRITE_BATCH)}
    assert calls["BatchWriteItem"] == 4
    assert store.count() == 100


def test_remove_in_and_truncate_are_batch_writes(client: Any) -> None:
    store = make(client)
    store.put_many({"id": f"k{i:03}", "v": i % 3, "blob": "x" * 100} for i in range(60))
    fetched: set[str] = set()

    def note_fields(parsed: dict[str, Any], **_: Any) -> None:
        items = parsed.get("Items") or [i for t in parsed.get("Responses", {}).values() for i in t]
        fetched.update(name for item in items for name in item)

    for operation in ("BatchGetItem", "Scan"):
        client.meta.events.register(f"after-call.dynamodb.{operation}", note_fields)
    calls = Calls(client)
    assert store.remove_in("id", [f"k{i:03}" for i in range(50)]) == 50
    assert dict(calls.counts) == {"BatchGetItem": 1, "BatchWriteItem": 2}
    assert store.remove_in("v", [0]) == 3  # k051, k054, k057
    assert fetched == {"id", "v"}  # keys (and the matched field) only: no blob read to delete
    calls.reset()
    assert store.truncate(force=True) == 7
    assert dict(calls.counts) == {"Scan": 1, "BatchWriteItem": 1}


def test_no_table_call_outside_ensure(client: Any) -> None:
    # Production roles often lack DescribeTable/CreateTable: only ensure() may call them.
    store = make(client)
    calls = Calls(client)
    store.put({"id": "a", "v": 1})
    store.create({"id": "b"})
    store.update({"id": "a", "v": 2})
    store.find({"id": "a"})
    store.find_all({"v": 2})
    store.find_in("v", [2])
    store.count()
    store.remove({"id": "b"})
    store.native()
    assert not {"DescribeTable", "CreateTable"} & set(calls.counts)
    calls.reset()
    store.ensure()
    assert calls["CreateTable"] == 0  # it exists: described, not created


def test_update_is_one_update_item(client: Any) -> None:
    store = make(client)
    store.put({"id": "a", "v": 1, "w": 1})
    calls = Calls(client)
    assert store.update({"id": "a", "v": 2, "w": None, "x": [1]}) == {"id": "a", "v": 2, "x": [1]}
    assert dict(calls.counts) == {"UpdateItem": 1}


def test_create_on_a_taken_key_is_one_put_item(client: Any) -> None:
    # The refused PutItem returns the holder (ReturnValuesOnConditionCheckFailure): no GetItem.
    store = make(client)
    store.put({"id": "a", "v": 1})
    calls = Calls(client)
    with pytest.raises(AlreadyExists):
        store.create({"id": "a", "v": 2})
    assert dict(calls.counts) == {"PutItem": 1}
    assert store.find({"id": "a"}) == {"id": "a", "v": 1}


def test_find_or_create_losing_a_race_returns_the_winner_without_a_second_read(
    client: Any,
) -> None:
    store = make(client)
    table = store.native().table_name
    winner = {"id": {"S": "a"}, "v": {"N": "1"}}

    def race(**_: Any) -> None:  # another process creates the record right after our read
        client.meta.events.unregister("after-call.dynamodb.GetItem", race)
        client.put_item(TableName=table, Item=winner)

    client.meta.events.register("after-call.dynamodb.GetItem", race)
    calls = Calls(client)
    assert store.find_or_create({"id": "a"}, {"id": "a", "v": 2}) == {"id": "a", "v": 1}
    assert calls["GetItem"] == 1  # the failed conditional put told us who holds the key


def test_a_scan_over_3_mb_follows_every_page(dynamodb_local: Any) -> None:
    # DynamoDB's 1 MB page limit counts before the filter: a match may sit on any page.
    client = local_client(dynamodb_local.endpoint)
    store = make(client)
    records = [{"id": f"k{i:02}", "blob": "x" * 100_000, "odd": i % 2 == 1} for i in range(32)]
    store.put_many(records)
    # A page stops once it holds 1 MB (the item crossing the line included): at least this many.
    pages = sum(item_size(r) for r in records) // 2**20
    assert pages >= 3
    calls = Calls(client)
    assert store.find_all() == records
    assert calls["Scan"] >= pages
    calls.reset()
    assert [r["id"] for r in store.find_all({"odd": True})] == [r["id"] for r in records[1::2]]
    assert calls["Scan"] >= pages
    assert store.count({"odd": False}) == 16
    assert sum(1 for _ in store.iter_all()) == 32
    fetched: set[str] = set()

    def note_fields(parsed: dict[str, Any], **_: Any) -> None:
        fetched.update(name for item in parsed.get("Items", []) for name in item)

    client.meta.events.register("after-call.dynamodb.Scan", note_fields)
    assert store.remove({"odd": True}) == 16
    assert fetched == {"id", "odd"}  # remove reads keys and filtered fields, not the blobs
    assert store.count() == 16


def test_find_in_on_a_composite_partition_key_is_one_query_per_value(client: Any) -> None:
    store = make(client, id_field=("team", "seq"), key_type=(str, int))
    store.put_many([{"team": t, "seq": i} for t in "abcd" for i in range(3)])
    calls = Calls(client)
    found = store.find_in("team", ["a", "c"])
    assert [(r["team"], r["seq"]) for r in found] == [(t, i) for t in "ac" for i in range(3)]
    assert dict(calls.counts) == {"Query": 2}


def test_find_in_on_another_field_is_one_scan_even_past_100_values(client: Any) -> None:
    store = make(client)
    store.put_many({"id": f"k{i:03}", "v": i} for i in range(150))
    calls = Calls(client)
    for wanted in (list(range(0, 150, 3)), list(range(140)), [*range(120), None]):
        calls.reset()
        found = store.find_in("v", wanted)
        assert [r["v"] for r in found] == [v for v in wanted if v is not None]
        assert dict(calls.counts) == {"Scan": 1}
