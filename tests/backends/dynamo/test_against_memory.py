"""Part 2 on dynamo, compared call by call with the memory backend (the contract's reference):
conditions in filters, reads served by the key, a partition or an index (ties, sparse and typed
indexes), pages in both directions with cursors made by either backend, removes, and guarded
writes (``expect``, versions, increments, expiry, transactions)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kvstore import (
    Index,
    Store,
    StoreError,
    begins_with,
    between,
    create_store,
    exists,
    ge,
    gt,
    increment,
    le,
    lt,
    ne,
    one_of,
    transaction,
)
from kvstore.testing import unique_kind
from kvstore.testing.suite.helpers import outcome, typed

INDEXES = [
    Index("by_score", ("grp", "score"), key_type=(str, float)),
    Index("by_name", ("grp", "name")),
    Index("by_tag", "tag"),
]
NAMES = ["a", "ab", "Z", "é", "\U0001f600", "\uffff", "abc", "b", "0", "A"]
VALUES: list[Any] = [1, 1.5, True, False, 0, "1", "abc", "ab", [1], [True], {"k": 1}, -5, None]
CONDITIONS: list[Any] = [
    1,
    True,
    "1",
    [1],
    {"k": 1},
    None,
    ne(1),
    ne([1]),
    ne("ab"),
    lt(2),
    le(1),
    gt("a"),
    ge(0),
    between(0, 2),
    between("a", "abd"),
    begins_with("ab"),
    one_of([1, "1", None]),
    one_of([[1], True]),
    exists(),
]


def record(team: str, seq: int) -> dict[str, Any]:
    """A record with ties in every index's sort field, and some fields absent."""
    n = seq + (7 if team == "t2" else 0)
    found: dict[str, Any] = {"team": team, "seq": seq, "v": VALUES[n % len(VALUES)]}
    if n % 5:
        found.update(grp=f"g{n % 2}", score=[1, 2, 2.5, 2][n % 4], name=NAMES[n % len(NAMES)])
    if n % 3:
        found["tag"] = "xy"[n % 2]
    return found


RECORDS = [record(team, seq) for team in ("t1", "t2") for seq in range(24)]

FILTERS: list[dict[str, Any]] = [
    {"team": "t1"},
    {"team": "t1", "seq": 5},
    {"team": "t1", "seq": lt(5)},
    {"team": "t1", "seq": le(5)},
    {"team": "t1", "seq": gt(20)},
    {"team": "t1", "seq": ge(20)},
    {"team": "t2", "seq": between(3, 9)},
    {"team": "t2", "seq": ne(3)},
    {"team": "t2", "seq": one_of([1, 2, 40])},
    {"grp": "g1"},
    {"grp": "g0", "score": 2},
    {"grp": "g1", "score": lt(2.5)},
    {"grp": "g1", "score": le(2)},
    {"grp": "g0", "score": gt(1)},
    {"grp": "g0", "score": ge(2.5)},
    {"grp": "g1", "score": between(2, 3)},
    {"grp": "g1", "score": "2"},
    {"grp": "g0", "name": begins_with("a")},
    {"grp": "g1", "name": lt("b")},
    {"grp": "g0", "name": between("a", "é")},
    {"tag": "x"},
    {"tag": "y", "grp": "g1"},
    {"grp": 3},
    *({"v": condition} for condition in CONDITIONS),
    *({"team": "t1", "v": condition} for condition in CONDITIONS[::2]),
    *({"grp": "g1", "v": condition} for condition in CONDITIONS[1::2]),
    *({"tag": "y", "v": condition} for condition in CONDITIONS[::3]),
]


def pair(client: Any, **kwargs: Any) -> tuple[Store, Store]:
    """A dynamo store and a memory store of one new kind, declared alike."""
    kind = unique_kind()
    dynamo = create_store(kind, backend="dynamo", client=client, **kwargs)
    memory = create_store(kind, backend="memory", **kwargs)
    dynamo.ensure()
    memory.ensure()
    return dynamo, memory


@pytest.fixture(scope="module", params=["moto", "local"])
def members(request: pytest.FixtureRequest) -> Iterator[tuple[Store, Store]]:
    """The two stores holding ``RECORDS`` (read only: the tests that write make their own)."""
    if request.param == "moto":
        from moto import mock_aws

        with mock_aws():
            import boto3

            client = boto3.client("dynamodb", region_name="us-east-1")
            yield _members(client)
        return
    from tests.backends.dynamo.conftest import local_client

    yield _members(local_client(request.getfixturevalue("dynamodb_local").endpoint))


def _members(client: Any) -> tuple[Store, Store]:
    stores = pair(client, id_field=("team", "seq"), key_type=(str, int), indexes=INDEXES)
    for store in stores:
        assert store.put_many(RECORDS) == len(RECORDS)
    return stores


def pages(store: Store, filters: dict[str, Any], limit: int, descending: bool) -> list[Any]:
    """Every page of a read, as ``(records, has a next cursor)``."""
    found = []
    cursor = None
    for _ in range(200):
        page = store.find_page(filters, limit=limit, cursor=cursor, descending=descending)
        found.append((typed(page.records), page.cursor is not None))
        cursor = page.cursor
        if cursor is None:
            return found
    raise AssertionError("more than 200 pages")


@pytest.mark.parametrize("filters", FILTERS, ids=repr)
def test_reads_answer_as_on_memory(members: tuple[Store, Store], filters: dict[str, Any]) -> None:
    dynamo, memory = members
    assert dynamo.explain(filters) == memory.explain(filters)
    assert typed(dynamo.find_all(filters)) == typed(memory.find_all(filters))
    assert dynamo.count(filters) == memory.count(filters)
    assert outcome(lambda: dynamo.find(filters)) == outcome(lambda: memory.find(filters))
    streamed = sorted(dynamo.iter_all(filters), key=lambda r: (r["team"], r["seq"]))
    assert typed(streamed) == typed(memory.find_all(filters))
    if dynamo.explain(filters) == "scan":
        return
    for limit, descending in itertools.product((1, 3, 50), (False, True)):
        assert pages(dynamo, filters, limit, descending) == pages(
            memory, filters, limit, descending
        )


@pytest.mark.parametrize("filters", [f for f in FILTERS if "v" not in f][:22], ids=repr)
def test_a_cursor_from_either_backend_continues_on_the_other(
    members: tuple[Store, Store], filters: dict[str, Any]
) -> None:
    dynamo, memory = members
    if dynamo.explain(filters) == "scan":
        return
    for descending in (False, True):
        first, other = (dynamo, memory) if descending else (memory, dynamo)
        page = first.find_page(filters, limit=4, descending=descending)
        if page.cursor is None:
            continue
        here = other.find_page(filters, limit=5, cursor=page.cursor, descending=descending)
        there = first.find_page(filters, limit=5, cursor=page.cursor, descending=descending)
        assert typed(here.records) == typed(there.records)
        assert here.cursor == there.cursor  # a position, the same on both


def test_find_in_on_every_kind_of_field(members: tuple[Store, Store]) -> None:
    dynamo, memory = members
    for field, values in (
        ("team", ["t2", "t9"]),
        ("grp", ["g1", 7]),
        ("tag", ["x", "y"]),
        ("v", [1, True, None, [1], "ab"]),
        ("name", NAMES[:4]),
    ):
        assert typed(dynamo.find_in(field, values)) == typed(memory.find_in(field, values))


def test_removes_delete_and_count_as_on_memory(client: Any) -> None:
    dynamo, memory = pair(client, id_field=("team", "seq"), key_type=(str, int), indexes=INDEXES)
    for store in (dynamo, memory):
        store.put_many(RECORDS)
    for filters in (
        {"v": ne(1)},
        {"grp": "g1", "score": between(2, 3)},
        {"team": "t1", "seq": ge(20), "v": exists()},
        {"tag": "x"},
        {"team": "t2", "seq": 3},
        {"v": None},
    ):
        assert dynamo.remove(filters) == memory.remove(filters), filters
        assert typed(dynamo.find_all()) == typed(memory.find_all())
    assert dynamo.remove_in("name", ["a", "Z"]) == memory.remove_in("name", ["a", "Z"])
    assert dynamo.truncate(force=True) == memory.truncate(force=True)
    assert dynamo.count() == memory.count() == 0


EXPECTS: list[dict[str, Any]] = [
    {},
    {"x": 1},
    {"x": None},
    {"x": ne(1)},
    {"x": [1, {"k": True}]},
    {"x": ne([1, {"k": True}])},
    {"x": one_of([2, [1, {"k": True}], None])},
    {"x": gt(0), "y": "b"},
    {"y": begins_with("b")},
    {"y": exists(), "x": le(1)},
    {"nope": None, "y": between("a", "c")},
]
STORED: list[dict[str, Any] | None] = [
    None,
    {"id": "a", "x": 1, "y": "b"},
    {"id": "a", "x": True, "y": "bc"},
    {"id": "a", "x": [1, {"k": True}]},
    {"id": "a", "x": [True, {"k": 1}], "y": "a"},
]


def test_guarded_writes_decide_as_on_memory(client: Any) -> None:
    dynamo, memory = pair(client, version_field="version")
    stored_records = STORED
    if client.meta.endpoint_url.startswith("https://dynamodb."):  # moto, in process
        # moto finds nested bools equal to numbers ([True] == [1]); DynamoDB does not.
        stored_records = [r for r in STORED if r is None or r["x"] != [True, {"k": 1}]]
    writes = [
        ("put", lambda s, e: s.put({"id": "a", "x": 2}, expect=e)),
        ("put versioned", lambda s, e: s.put({"id": "a", "x": 2, "version": 1}, expect=e)),
        ("update", lambda s, e: s.update({"id": "a", "z": 1, "x": None}, expect=e)),
        ("increment", lambda s, e: s.update({"id": "a", "x": increment(2)}, expect=e)),
        ("create", lambda s, e: s.create({"id": "a", "x": 3})),
    ]
    for stored, expect, (name, write) in itertools.product(stored_records, EXPECTS, writes):
        for store in (dynamo, memory):
            store.truncate(force=True)
            if stored is not None:
                store.put_many([stored])
        got = outcome(lambda: write(dynamo, expect))  # noqa: B023 - called at once
        want = outcome(lambda: write(memory, expect))  # noqa: B023
        assert got == want, (stored, expect, name)
        assert typed(dynamo.find_all()) == typed(memory.find_all()), (stored, expect, name)


def test_increments_and_their_number_rules_as_on_memory(client: Any) -> None:
    dynamo, memory = pair(client)
    cases: list[tuple[Any, Any]] = [
        (None, 1),
        (5, -7),
        (2**63 - 2, 1),
        (2**63 - 1, 1),
        (-(2**63), -1),
        (-(2**63) + 1, -1),
        (2**63 - 1, 1.0),
        (1e19, 1),  # beyond the int64 range: a float, which takes any amount
        (-1e19, -1),
        (float(2**63), 2),
        (3, 0.5),
        (3, 1.0),
        (0.1, 0.2),
        (9e125, 9e125),
        (1e-130, -1e-130),
        (1.5, 2**62),
        ("1", 1),
        (True, 1),
        ([1], 1),
    ]
    for stored, amount in cases:
        for store in (dynamo, memory):
            store.put({"id": "a", **({} if stored is None else {"n": stored}), "o": 1})
        change = {"id": "a", "n": increment(amount), "o": 2}
        assert outcome(lambda: dynamo.update(change)) == outcome(  # noqa: B023
            lambda: memory.update(change)  # noqa: B023
        ), (stored, amount)
        assert typed(dynamo.find_all()) == typed(memory.find_all()), (stored, amount)


def test_expiry_as_on_memory(client: Any) -> None:
    dynamo, memory = pair(client, ttl_field="exp")
    now = time.time()
    records = [
        {"id": "past", "exp": now - 60, "v": 1},
        {"id": "soon", "exp": now + 3600, "v": 1},
        {"id": "never", "v": 1},
    ]
    for store in (dynamo, memory):
        store.put_many(records)
    calls: list[Callable[[Store], object]] = [
        lambda s: s.find_all({"v": 1}),
        lambda s: s.count(),
        lambda s: s.find_in("id", ["past", "soon"]),
        lambda s: s.update({"id": "past", "v": 2}),
        lambda s: s.put({"id": "past", "v": 3}, expect={"v": None}),
        lambda s: s.create({"id": "soon", "v": 4}),
        lambda s: s.put({"id": "old", "exp": now - 1}),
        lambda s: s.create({"id": "old", "v": 5}),
        lambda s: s.remove({"v": 1}),
        lambda s: s.purge_expired(),
        lambda s: s.find_all(),
    ]
    for call in calls:
        assert outcome(lambda: call(dynamo)) == outcome(lambda: call(memory))  # noqa: B023


def failure(call: Callable[[], object]) -> tuple[str, int | None] | None:
    """The error class and ``.index`` a call raises, ``None`` when it returns."""
    try:
        call()
    except StoreError as exc:
        return type(exc).__name__, exc.index
    return None


def test_transactions_as_on_memory(client: Any) -> None:
    dynamo_a, memory_a = pair(client)
    dynamo_b, memory_b = pair(client, version_field="version")
    for store in (dynamo_a, memory_a):
        store.put_many([{"id": "a", "n": 1}, {"id": "b", "n": 2}])
    for store in (dynamo_b, memory_b):
        store.create({"id": "v"})

    def run(a: Store, b: Store, fail: int | None) -> None:
        with transaction() as tx:
            tx.update(a, {"id": "a", "n": increment(1)}, expect={"n": ge(1)})
            tx.create(a, {"id": "c", "n": 0} if fail != 1 else {"id": "b"})
            tx.remove(a, {"id": "zz"})
            tx.check(a, {"id": "b"}, expect={"n": 2 if fail != 3 else 3})
            tx.update(b, {"id": "v", "version": 1 if fail != 4 else 7, "w": 1})
            tx.put(b, {"id": "w"})

    for fail in (1, 3, 4, None):
        assert failure(lambda: run(dynamo_a, dynamo_b, fail)) == failure(  # noqa: B023
            lambda: run(memory_a, memory_b, fail)  # noqa: B023
        )
        for dynamo, memory in ((dynamo_a, memory_a), (dynamo_b, memory_b)):
            assert typed(dynamo.find_all()) == typed(memory.find_all()), fail
