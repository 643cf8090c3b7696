"""What part 2's reads and writes send, counted with botocore's events: an index or partition read
is Query only (never a Scan) and, with no extra filter, reads only what it returns; a guarded write
or an increment is one request; a transaction of 10 operations is one TransactWriteItems."""

from __future__ import annotations

import time
from typing import Any

import pytest

from kvstore import (
    ConditionFailed,
    Index,
    NotFound,
    Store,
    begins_with,
    between,
    create_store,
    ge,
    gt,
    increment,
    le,
    lt,
    transaction,
)
from kvstore.testing import unique_kind
from tests.backends.dynamo.conftest import local_client
from tests.backends.dynamo.hooks import Calls

INDEXES = [Index("by_email", "email"), Index("by_team", ("team", "joined"), key_type=(str, float))]


class Reads:
    """Each Query's and Scan's parameters and its ``Count``/``ScannedCount``."""

    def __init__(self, client: Any) -> None:
        self.params: list[dict[str, Any]] = []
        self.counts: list[tuple[int, int]] = []
        for operation in ("Query", "Scan"):
            client.meta.events.register(f"provide-client-params.dynamodb.{operation}", self._param)
            client.meta.events.register(f"after-call.dynamodb.{operation}", self._count)

    def _param(self, params: dict[str, Any], **_: Any) -> None:
        self.params.append(dict(params))

    def _count(self, parsed: dict[str, Any], **_: Any) -> None:
        self.counts.append((parsed.get("Count", 0), parsed.get("ScannedCount", 0)))

    def scanned(self) -> int:
        """Items DynamoDB read for these calls."""
        return sum(scanned for _count, scanned in self.counts)


def users(client: Any, **kwargs: Any) -> Store:
    store = create_store(
        unique_kind(),
        backend="dynamo",
        client=client,
        id_field=("org", "id"),
        key_type=(str, int),
        indexes=INDEXES,
        **kwargs,
    )
    store.ensure()
    store.put_many(
        {
            "org": "o1" if n % 4 else "o2",
            "id": n,
            "email": f"u{n}@example.com",
            "team": f"t{n % 3}",
            "joined": float(n // 5),
            "flag": n % 2 == 0,
        }
        for n in range(60)
    )
    return store


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        ({"email": "u7@example.com"}, "by_email"),
        ({"team": "t1"}, "by_team"),
        ({"team": "t1", "joined": 3}, "by_team"),
        ({"team": "t1", "joined": lt(4)}, "by_team"),
        ({"team": "t1", "joined": le(4)}, "by_team"),
        ({"team": "t1", "joined": gt(4.5)}, "by_team"),
        ({"team": "t1", "joined": ge(4)}, "by_team"),
        ({"team": "t1", "joined": between(2, 7.5)}, "by_team"),
        ({"org": "o1"}, None),
        ({"org": "o1", "id": lt(20)}, None),
        ({"org": "o1", "id": between(10, 30)}, None),
        ({"org": "o1", "id": ge(50)}, None),
    ],
    ids=repr,
)
def test_an_index_or_partition_read_is_query_only_reading_what_it_returns(
    client: Any, filters: dict[str, Any], index: str | None
) -> None:
    store = users(client)
    calls = Calls(client)
    reads = Reads(client)
    found = store.find_all(filters)
    assert found
    assert store.count(filters) == len(found)
    page = store.find_page(filters, limit=2)
    assert page.records == found[:2] or store.explain(filters).startswith("index")
    assert set(calls.counts) == {"Query"}
    for params in reads.params:
        assert params.get("IndexName") == index
        assert ("ConsistentRead" in params) == (index is None)  # a GSI has no consistent reads
        assert "FilterExpression" not in params
    assert all(count == scanned for count, scanned in reads.counts)
    assert reads.params[1]["Select"] == "COUNT"


def test_a_string_prefix_is_a_key_condition(client: Any) -> None:
    store = create_store(
        unique_kind(), backend="dynamo", client=client, indexes=[Index("by_name", ("grp", "name"))]
    )
    store.ensure()
    store.put_many({"id": f"k{n}", "grp": "g", "name": f"{'ab'[n % 2]}{n}"} for n in range(30))
    reads = Reads(client)
    found = store.find_all({"grp": "g", "name": begins_with("a")})
    assert sorted(r["name"] for r in found) == sorted(f"a{n}" for n in range(0, 30, 2))
    assert "begins_with(" in reads.params[0]["KeyConditionExpression"]
    assert reads.scanned() == len(found)


def test_extra_filters_go_to_the_server(client: Any) -> None:
    store = users(client)
    reads = Reads(client)
    found = store.find_all({"team": "t1", "flag": True})
    wanted = [n for n in range(60) if n % 3 == 1 and n % 2 == 0]
    assert [r["id"] for r in found] == sorted(wanted, key=lambda n: (n % 4 == 0, n))
    assert "FilterExpression" in reads.params[0]
    assert reads.counts[0][0] == len(found)  # the server dropped the others


def test_pages_ask_for_the_page_size_and_follow_positions_not_tokens(client: Any) -> None:
    store = users(client)
    reads = Reads(client)
    page = store.find_page({"org": "o1"}, limit=10)
    assert reads.params[0]["Limit"] == 11  # one more, to know whether a next page exists
    assert reads.scanned() == 11
    reads.params.clear()
    store.find_page({"org": "o1"}, limit=10, cursor=page.cursor)
    params = reads.params[0]
    assert "ExclusiveStartKey" not in params  # the cursor's position is a key condition
    assert ">" in params["KeyConditionExpression"]
    descending = store.find_page({"org": "o1"}, limit=3, descending=True)
    assert reads.params[-1]["ScanIndexForward"] is False
    assert [r["id"] for r in descending.records] == [59, 58, 57]


def test_an_index_page_without_ties_is_one_query_with_or_without_a_cursor(client: Any) -> None:
    # The page, one more record (is there a next page?), one more item to end that record's
    # tie, and after a cursor the cursor's own record again: one Query, not a second to finish.
    store = create_store(
        unique_kind(),
        backend="dynamo",
        client=client,
        indexes=[Index("by_rank", ("grp", "rank"), key_type=(str, int))],
    )
    store.ensure()
    store.put_many({"id": f"k{n}", "grp": "g", "rank": n} for n in range(40))
    calls = Calls(client)
    reads = Reads(client)
    first = store.find_page({"grp": "g"}, limit=10)
    second = store.find_page({"grp": "g"}, limit=10, cursor=first.cursor)
    last = store.find_page({"grp": "g", "rank": ge(30)}, limit=10)
    assert [r["rank"] for r in first.records + second.records] == list(range(20))
    assert [r["rank"] for r in last.records] == list(range(30, 40))
    assert last.cursor is None
    assert dict(calls.counts) == {"Query": 3}
    assert [params["Limit"] for params in reads.params] == [12, 13, 12]


def test_a_page_inside_a_tie_of_an_index_reads_the_whole_tie(client: Any) -> None:
    # DynamoDB orders an index's tied items its own way: core's order (then by the primary key)
    # needs the whole tie, and only that: the next value ends the read.
    store = users(client)
    tie = [r for r in store.find_all({"team": "t0"}) if r["joined"] == 3.0]
    assert len(tie) > 1
    after = [r for r in store.find_all({"team": "t0"}) if r["joined"] >= 3.0]
    reads = Reads(client)
    page = store.find_page({"team": "t0", "joined": ge(3)}, limit=1)
    assert page.records == [min(tie, key=lambda r: (r["org"], r["id"]))]
    assert len(tie) < reads.scanned() < len(after)  # past the tie, not to the partition's end


def test_a_read_of_several_keys_is_batch_get_item(client: Any) -> None:
    store = users(client)
    calls = Calls(client)
    found = store.find_in("org", ["o2"])
    assert len(found) == 15
    assert dict(calls.counts) == {"Query": 1}
    plain = create_store(unique_kind(), backend="dynamo", client=client)
    plain.ensure()
    plain.put_many({"id": f"k{n}"} for n in range(150))
    calls.reset()
    assert len(plain.find_in("id", [f"k{n}" for n in range(0, 150)])) == 150
    assert dict(calls.counts) == {"BatchGetItem": 2}


def test_a_count_with_a_filter_the_server_applies_exactly_is_select_count(client: Any) -> None:
    store = users(client)
    reads = Reads(client)
    assert store.count({"flag": True}) == 30
    assert reads.params[0]["Select"] == "COUNT"
    reads.params.clear()
    assert store.count({"team": "t2", "flag": False}) == 10
    assert reads.params[0]["Select"] == "COUNT"
    assert reads.params[0]["IndexName"] == "by_team"


def test_a_remove_by_whole_key_is_one_conditional_delete_item(client: Any) -> None:
    store = create_store(unique_kind(), backend="dynamo", client=client, ttl_field="expires")
    store.ensure()
    now = time.time()
    store.put_many(
        [
            {"id": "a", "tag": "x"},
            {"id": "b", "tag": "x"},
            {"id": "c", "tag": [1, {"n": 2}]},
            {"id": "gone", "tag": "x", "expires": now - 10},
        ]
    )
    calls = Calls(client)
    assert store.remove({"id": "a"}) == 1
    assert store.remove({"id": "a"}) == 0  # no record left
    assert store.remove({"id": "b", "tag": "y"}) == 0  # not a match: kept
    assert store.remove({"id": "c", "tag": [1, {"n": 1}]}) == 0  # nested values compared
    assert store.remove({"id": "gone"}) == 0  # expired: absent, not counted
    assert store.remove_in("id", ["b"]) == 1
    assert store.remove({"id": "c", "tag": [1, {"n": 2.0}]}) == 1
    assert dict(calls.counts) == {"DeleteItem": 7}
    assert store.find_all() == []
    store.put_many({"id": key} for key in "pq")
    calls.reset()
    assert store.remove_in("id", ["p", "q", "r"]) == 2  # several keys: one read, one batch
    assert dict(calls.counts) == {"BatchGetItem": 1, "BatchWriteItem": 1}


def test_a_remove_by_whole_key_compares_nested_values_by_type(dynamodb_local: Any) -> None:
    # moto finds a nested true equal to 1 in a condition; DynamoDB does not (nor the contract).
    store = create_store(
        unique_kind(), backend="dynamo", client=local_client(dynamodb_local.endpoint)
    )
    store.ensure()
    store.put({"id": "c", "tag": [1, {"n": True}]})
    assert store.remove({"id": "c", "tag": [True, {"n": True}]}) == 0
    assert store.remove({"id": "c", "tag": [1, {"n": 1}]}) == 0
    assert store.remove({"id": "c", "tag": [1.0, {"n": True}]}) == 1


def test_a_remove_through_an_index_reads_keys_only(client: Any) -> None:
    store = users(client)
    calls = Calls(client)
    reads = Reads(client)
    assert store.remove({"team": "t0", "flag": True}) == 10
    assert set(calls.counts) == {"Query", "BatchWriteItem"}
    assert "ProjectionExpression" in reads.params[0]
    assert store.count({"team": "t0"}) == 10


def test_guarded_writes_and_increments_are_one_request(client: Any) -> None:
    store = users(client, version_field="version")
    calls = Calls(client)
    # A stored record without a version is at version 0.
    store.put({"org": "o1", "id": 1, "n": 1, "version": 0}, expect={"email": "u1@example.com"})
    assert dict(calls.counts) == {"PutItem": 1}
    calls.reset()
    updated = store.update({"org": "o1", "id": 1, "n": increment(2)}, expect={"n": ge(1)})
    assert updated["n"] == 3
    assert updated["version"] == 2
    assert dict(calls.counts) == {"UpdateItem": 1}
    calls.reset()
    store.update({"org": "o1", "id": 1, "n": increment(1), "version": 2})
    assert dict(calls.counts) == {"UpdateItem": 1}
    calls.reset()
    with pytest.raises(ConditionFailed):
        store.update({"org": "o1", "id": 1, "version": 2})
    with pytest.raises(NotFound):
        store.update({"org": "o9", "id": 1, "n": increment(1)})
    with pytest.raises(ConditionFailed):
        store.put({"org": "o1", "id": 1, "version": 1})
    # The refusal brought back the record it found: no second read.
    assert dict(calls.counts) == {"UpdateItem": 2, "PutItem": 1}


def test_a_transaction_of_10_operations_is_one_transact_write_items(client: Any) -> None:
    one = users(client)
    two = create_store(unique_kind(), backend="dynamo", client=client, version_field="version")
    two.ensure()
    two.create({"id": "v"})
    calls = Calls(client)
    tokens: list[str] = []
    client.meta.events.register(
        "provide-client-params.dynamodb.TransactWriteItems",
        lambda params, **_: tokens.append(params["ClientRequestToken"]),
    )
    with transaction() as tx:
        for n in (1, 2, 3, 5, 6):
            tx.update(one, {"org": "o1", "id": n, "n": increment(1)})
        tx.create(one, {"org": "o3", "id": 1})
        tx.remove(one, {"org": "o2", "id": 0})
        tx.check(one, {"org": "o2", "id": 4}, expect={"team": "t1"})
        tx.update(two, {"id": "v", "version": 1, "w": 1})
        tx.put(two, {"id": "w"})
    assert dict(calls.counts) == {"TransactWriteItems": 1}
    assert len(tokens) == 1
    assert tokens[0]
    assert two.find({"id": "v"})["version"] == 2
    assert one.find({"org": "o1", "id": 3})["n"] == 1
