"""``ensure()`` on dynamo: global secondary indexes (at creation, added later one UpdateTable at a
time and waited for), DynamoDB's TTL for the ``ttl_field``, and the layout checks; and how
DynamoDB Local orders an index's ties (not by the primary key: the driver orders them)."""

from __future__ import annotations

from typing import Any

import pytest

from kvstore import ConfigError, Index, create_store
from kvstore.testing import unique_kind
from kvstore_dynamo import tables
from tests.backends.dynamo.conftest import local_client
from tests.backends.dynamo.hooks import Calls

INDEXES = [
    Index("by_email", "email"),
    Index("by_team", ("team", "joined"), key_type=(str, float)),
    Index("by_rank", ("rank", "name"), key_type=(int, str)),
]


def described(client: Any, table: str) -> dict[str, Any]:
    table_description: dict[str, Any] = client.describe_table(TableName=table)["Table"]
    return table_description


def indexes_of(description: dict[str, Any]) -> dict[str, Any]:
    return {
        index["IndexName"]: (
            [(k["AttributeName"], k["KeyType"]) for k in index["KeySchema"]],
            index["Projection"]["ProjectionType"],
            index["IndexStatus"],
        )
        for index in description.get("GlobalSecondaryIndexes", [])
    }


WANTED = {
    "by_email": ([("email", "HASH")], "ALL", "ACTIVE"),
    "by_team": ([("team", "HASH"), ("joined", "RANGE")], "ALL", "ACTIVE"),
    "by_rank": ([("rank", "HASH"), ("name", "RANGE")], "ALL", "ACTIVE"),
}


def test_a_new_table_has_every_declared_index(client: Any) -> None:
    kind = unique_kind()
    calls = Calls(client)
    create_store(kind, backend="dynamo", client=client, indexes=INDEXES).ensure()
    assert calls["CreateTable"] == 1
    assert calls["UpdateTable"] == 0
    description = described(client, kind)
    assert indexes_of(description) == WANTED
    types = {d["AttributeName"]: d["AttributeType"] for d in description["AttributeDefinitions"]}
    assert types == {"id": "S", "email": "S", "team": "S", "joined": "N", "rank": "N", "name": "S"}
    assert description["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"


def test_missing_indexes_are_added_one_at_a_time_and_waited_for(
    index_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = index_client
    kind = unique_kind()
    plain = create_store(kind, backend="dynamo", client=client)
    plain.ensure()
    plain.put_many([{"id": "a", "email": "a@x", "team": "t", "joined": 1.5}])
    monkeypatch.setattr(tables, "sleep", lambda seconds: None)
    updates: list[Any] = []
    client.meta.events.register(
        "provide-client-params.dynamodb.UpdateTable",
        lambda params, **_: updates.append(params["GlobalSecondaryIndexUpdates"]),
    )
    creating = [2]

    def still_creating(parsed: dict[str, Any], **_: Any) -> None:
        # DynamoDB backfills a new index for a while: report it CREATING twice.
        for index in parsed.get("Table", {}).get("GlobalSecondaryIndexes", []):
            if creating[0] > 0 and index["IndexName"] == "by_team":
                creating[0] -= 1
                index["IndexStatus"] = "CREATING"

    client.meta.events.register("after-call.dynamodb.DescribeTable", still_creating)
    declared = create_store(kind, backend="dynamo", client=client, indexes=INDEXES[:2])
    declared.ensure()
    assert [len(update) for update in updates] == [1, 1]
    assert [update[0]["Create"]["IndexName"] for update in updates] == ["by_email", "by_team"]
    assert creating[0] == 0
    assert indexes_of(described(client, kind)) == {k: WANTED[k] for k in ("by_email", "by_team")}
    assert declared.find({"email": "a@x"})["id"] == "a"  # backfilled
    calls = Calls(client)
    declared.ensure()
    assert calls["UpdateTable"] == 0


def test_an_index_missing_from_the_table_is_a_config_error_saying_how_to_add_it(
    client: Any,
) -> None:
    kind = unique_kind()
    create_store(kind, backend="dynamo", client=client).ensure()
    store = create_store(kind, backend="dynamo", client=client, indexes=INDEXES[:1])
    with pytest.raises(ConfigError, match="ensure"):
        store.find_all({"email": "a@x"})


def test_conflicting_declarations_are_a_config_error_before_any_call(client: Any) -> None:
    calls = Calls(client)
    for declared in (
        [Index("by_a", "x"), Index("by_b", ("y", "x"), key_type=int)],
        [Index("by_id", ("team", "id"), key_type=(str, int))],
    ):
        store = create_store(unique_kind(), backend="dynamo", client=client, indexes=declared)
        with pytest.raises(ConfigError, match="type"):
            store.ensure()
    assert calls.total() == 0


def test_an_existing_index_with_another_key_is_a_config_error(client: Any) -> None:
    kind = unique_kind()
    create_store(kind, backend="dynamo", client=client, indexes=[Index("by_x", "x")]).ensure()
    other = create_store(kind, backend="dynamo", client=client, indexes=[Index("by_x", "y")])
    with pytest.raises(ConfigError, match="by_x"):
        other.ensure()


def test_ttl_is_turned_on_once_for_the_ttl_field(client: Any) -> None:
    kind = unique_kind()
    store = create_store(kind, backend="dynamo", client=client, ttl_field="expires_at")
    calls = Calls(client)
    store.ensure()
    assert calls["UpdateTimeToLive"] == 1
    ttl = client.describe_time_to_live(TableName=kind)["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] in ("ENABLED", "ENABLING")
    assert ttl["AttributeName"] == "expires_at"
    calls.reset()
    store.ensure()  # DynamoDB Local refuses to turn TTL on twice: it is described first
    assert calls["DescribeTimeToLive"] == 1
    assert calls["UpdateTimeToLive"] == 0
    other = create_store(kind, backend="dynamo", client=client, ttl_field="gone_at")
    with pytest.raises(ConfigError, match="expires_at"):
        other.ensure()


def test_no_ttl_call_without_a_ttl_field(client: Any) -> None:
    calls = Calls(client)
    create_store(unique_kind(), backend="dynamo", client=client).ensure()
    assert calls["DescribeTimeToLive"] == calls["UpdateTimeToLive"] == 0


def test_dynamodb_local_orders_index_ties_by_its_own_hash_the_driver_by_the_key(
    dynamodb_local: Any,
) -> None:
    # Evidence for the report: DynamoDB Local returns the items of one index partition whose
    # index sort values tie in an order of its own (a hash of the table key), not by the key.
    # The contract orders ties by the primary key, which the driver does for every page.
    client = local_client(dynamodb_local.endpoint)
    store = create_store(
        unique_kind(),
        backend="dynamo",
        client=client,
        indexes=[Index("by_score", ("grp", "score"), key_type=(str, int))],
    )
    store.ensure()
    ids = ["b", "a", "é", "Z", "aa", "c", "\U0001f600", "\uffff", "m", "A", "ab", "0"]
    store.put_many({"id": key, "grp": "g", "score": 1} for key in ids)
    raw = client.query(
        TableName=store.native().table_name,
        IndexName="by_score",
        KeyConditionExpression="grp = :g",
        ExpressionAttributeValues={":g": {"S": "g"}},
    )
    served = [item["id"]["S"] for item in raw["Items"]]
    assert sorted(served) == sorted(ids)
    assert served != sorted(ids)  # not the key's order (nor its reverse)
    assert served != sorted(ids, reverse=True)
    paged: list[str] = []
    cursor = None
    while True:
        page = store.find_page({"grp": "g"}, limit=5, cursor=cursor)
        paged += [record["id"] for record in page.records]
        cursor = page.cursor
        if cursor is None:
            break
    assert paged == sorted(ids)
