"""Each call sends the fewest statements: counted on the wire (libpq's protocol trace)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from kvstore import Store, create_store
from kvstore.config import PostgresSettings
from kvstore.testing import unique_kind
from tests.aurora.helpers import StatementCounter, connect


@pytest.fixture
def traced(pg_settings: PostgresSettings) -> Iterator[tuple[Store, StatementCounter]]:
    """A store on an injected connection whose statements are counted."""
    connection = connect(pg_settings)
    store = create_store(
        unique_kind("stmt"), backend="aurora", settings=pg_settings, connection=connection
    )
    store.ensure()
    store.put({"id": "warm"})  # the layout is read once, before any counting
    yield store, StatementCounter(connection)
    connection.close()


def count(counter: StatementCounter, call: Any) -> int:
    with counter.counting() as sent:
        call()
    return sent[0]


def test_the_counter_sees_every_statement(
    traced: tuple[Store, StatementCounter],
) -> None:
    store, counter = traced
    with counter.counting() as sent:
        store.put({"id": "a"})
        store.put({"id": "b"})
        store.find({"id": "a"})
    assert sent == [3, 3]


def test_find_by_key_and_put_are_one_statement_each(
    traced: tuple[Store, StatementCounter],
) -> None:
    store, counter = traced
    assert count(counter, lambda: store.put({"id": "a", "name": "Ada", "n": [1, {"x": 2}]})) == 1
    assert count(counter, lambda: store.find({"id": "a"})) == 1
    assert count(counter, lambda: store.find({"name": "Ada", "n": [1, {"x": 2}]})) == 1
    assert count(counter, lambda: store.create({"id": "b"})) == 1
    assert count(counter, lambda: store.count({"name": "Ada"})) == 1
    assert count(counter, lambda: store.remove({"id": "b"})) == 1


def test_find_in_of_500_keys_is_one_statement(traced: tuple[Store, StatementCounter]) -> None:
    store, counter = traced
    store.put_many({"id": f"k{i}", "v": i} for i in range(500))
    keys = [f"k{i}" for i in range(500)]
    with counter.counting() as sent:
        found = store.find_in("id", keys)
    assert len(found) == 500
    assert sent[0] == 1
    with counter.counting() as sent:
        assert len(store.find_in("v", range(500))) == 500
    assert sent[0] == 1


def test_put_many_of_500_records_is_one_statement(traced: tuple[Store, StatementCounter]) -> None:
    store, counter = traced
    with counter.counting() as sent:
        assert store.put_many({"id": f"r{i}", "v": i} for i in range(500)) == 500
    assert sent == [1, 1]


def test_put_many_of_1000_records_is_one_pipeline_of_two_upserts(
    traced: tuple[Store, StatementCounter],
) -> None:
    store, counter = traced
    records = [{"id": f"r{i}", "v": i, "tags": ["a", i]} for i in range(1000)]
    with counter.counting() as sent:
        assert store.put_many(records) == 1000
    # Two chunks of 500, each BEGIN + INSERT + COMMIT, sent without waiting; one Sync at the end.
    assert sent == [6, 1]
    assert store.count() == 1001
    with counter.counting() as sent:
        assert store.remove_in("id", [r["id"] for r in records]) == 1000
    assert sent[0] <= 2


def test_update_is_one_update_in_one_transaction(traced: tuple[Store, StatementCounter]) -> None:
    store, counter = traced
    store.put({"id": "a", "x": 1, "y": 2})
    with counter.counting() as sent:
        assert store.update({"id": "a", "x": None, "z": 3}) == {"id": "a", "y": 2, "z": 3}
    assert sent == [3, 2]  # BEGIN + UPDATE ... RETURNING (one round trip), COMMIT


def test_find_all_is_a_cursor_in_two_round_trips(traced: tuple[Store, StatementCounter]) -> None:
    store, counter = traced
    store.put_many({"id": f"r{i}"} for i in range(50))
    with counter.counting() as sent:
        assert len(store.find_all()) == 51
    assert sent == [4, 2]  # BEGIN + DECLARE + FETCH (one round trip), COMMIT


def test_a_put_many_batch_too_big_for_one_statement_is_split(
    traced: tuple[Store, StatementCounter], monkeypatch: pytest.MonkeyPatch
) -> None:
    from kvstore_aurora import store as aurora_store

    monkeypatch.setattr(aurora_store, "MAX_BATCH_BYTES", 10_000)
    store, counter = traced
    records = [{"id": f"r{i:03}", "pad": "x" * 1000} for i in range(100)]
    with counter.counting() as sent:
        assert store.put_many(records) == 100
    assert sent[0] >= 10
    assert store.find_all({"pad": "x" * 1000}) == records


def test_find_in_statements_kept_per_shape_answer_each_shape(
    traced: tuple[Store, StatementCounter],
) -> None:
    """One store, one statement cache: every shape of find_in in turn still gets its own."""
    store, _counter = traced
    records = [{"id": f"k{i}", "v": i % 3, "tag": f"t{i % 2}"} for i in range(6)] + [{"id": "bare"}]
    store.put_many(records)
    oracle = create_store(unique_kind("oracle"), backend="memory")
    oracle.ensure()
    oracle.put_many([*records, {"id": "warm"}])
    calls = [
        ("id", ["k1", "k2"]),
        ("id", ["k1", "nope", "k5"]),
        ("v", [0]),
        ("v", [0, None]),
        ("v", [None]),
        ("v", ["x"]),  # a value of no stored type
        ("tag", ["t0"]),
        ("tag", ["t0", "t1"]),
        ("tag", ["t1", None]),
        ("missing", [None]),
        ("v", [1, 2]),
        ("tag", ["t1"]),
    ]
    for _round in range(2):
        for field, values in calls:
            assert store.find_in(field, values) == oracle.find_in(field, values), (field, values)
