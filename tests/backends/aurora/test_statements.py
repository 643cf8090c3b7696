"""Each call sends the fewest statements: counted on the wire (libpq's protocol trace)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from kvstore import Store, create_store
from kvstore.testing import unique_kind
from kvstore_aurora.settings import PostgresSettings
from tests.backends.aurora.helpers import StatementCounter, connect


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
    # On another field too (a read of any size, but of at most a page here).
    with counter.counting() as sent:
        assert len(store.find_in("v", range(500))) == 500
    assert sent == [1, 1]


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


def test_update_is_one_statement(traced: tuple[Store, StatementCounter]) -> None:
    store, counter = traced
    store.put({"id": "a", "x": 1, "y": 2})
    with counter.counting() as sent:
        assert store.update({"id": "a", "x": None, "z": 3}) == {"id": "a", "y": 2, "z": 3}
    assert sent == [1, 1]  # UPDATE ... WHERE ... RETURNING, autocommit


def test_find_all_is_one_statement_up_to_a_page_then_a_cursor(
    traced: tuple[Store, StatementCounter], monkeypatch: pytest.MonkeyPatch
) -> None:
    from kvstore_aurora import streaming

    store, counter = traced
    store.put_many({"id": f"r{i:02}"} for i in range(50))
    monkeypatch.setattr(streaming, "PAGE_SIZE", 51)
    with counter.counting() as sent:
        assert len(store.find_all()) == 51
    assert sent == [1, 1]  # SELECT ... LIMIT 52: all of it, and nothing more
    store.put({"id": "more"})
    with counter.counting() as sent:
        found = store.find_all()
    assert [record["id"] for record in found] == ["more", *(f"r{i:02}" for i in range(50)), "warm"]
    # The first statement says there are more: BEGIN + DECLARE + FETCH (one round trip), the
    # last FETCH, COMMIT.
    assert sent == [6, 4]


def test_a_put_many_batch_too_big_for_one_statement_is_split(
    traced: tuple[Store, StatementCounter], monkeypatch: pytest.MonkeyPatch
) -> None:
    from kvstore_aurora import batch

    monkeypatch.setattr(batch, "MAX_BATCH_BYTES", 10_000)
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


@pytest.fixture
def counted(pg_settings: PostgresSettings) -> Iterator[tuple[Any, StatementCounter]]:
    """A factory of stores on one injected connection whose statements are counted."""
    connection = connect(pg_settings)

    def make(**options: Any) -> Store:
        store = create_store(
            unique_kind("stmt"),
            backend="aurora",
            settings=pg_settings,
            connection=connection,
            **options,
        )
        store.ensure()
        return store

    yield make, StatementCounter(connection)
    connection.close()


def test_conditional_writes_and_increments_are_one_statement_each(
    counted: tuple[Any, StatementCounter],
) -> None:
    from kvstore import ConditionFailed, ge, increment, lt

    make, counter = counted
    store = make(version_field="version", ttl_field="expires")
    store.put({"id": "warm"})
    store.update({"id": "warm", "n": increment(1)})
    record = {"id": "a", "n": 1, "s": "x"}
    assert count(counter, lambda: store.create(record)) == 1
    assert count(counter, lambda: store.put({**record, "version": 1}, expect={"n": 1})) == 1
    assert count(counter, lambda: store.update({"id": "a", "s": "y"}, expect={"s": "x"})) == 1
    assert count(counter, lambda: store.update({"id": "a", "n": increment(3)})) == 1
    assert (
        count(counter, lambda: store.update({"id": "a", "n": increment(-1)}, expect={"n": ge(3)}))
        == 1
    )
    assert count(counter, lambda: store.update({"id": "a", "n": increment(-0.5)})) == 1
    assert store.find({"id": "a"}) == {"id": "a", "n": 2.5, "s": "y", "version": 6}
    # An int added to a stored fraction: the sum in bigint fails (it wrote nothing), and the
    # full form of the number rules runs.
    with counter.counting() as sent:
        assert store.update({"id": "a", "n": increment(1)})["n"] == 3.5
    assert sent == [2, 2]
    # A refused put is one statement (the record that refused it comes back with it); a refused
    # update is two, the write and then the read that says why, so that a successful update is
    # one plain UPDATE.
    with counter.counting() as sent, pytest.raises(ConditionFailed):
        store.update({"id": "a", "n": increment(1)}, expect={"n": lt(0)})
    assert sent == [2, 2]
    with counter.counting() as sent, pytest.raises(ConditionFailed):
        store.put({**record, "version": 1})
    assert sent == [1, 1]


def test_a_transaction_of_ten_operations_is_one_round_trip(
    counted: tuple[Any, StatementCounter],
) -> None:
    from kvstore import ConditionFailed, ge, increment, transaction

    make, counter = counted
    orders, stock = make(), make(version_field="version")
    stock.put_many([{"id": f"s{n}", "qty": 5} for n in range(4)])
    orders.put_many([{"id": "old"}, {"id": "kept", "state": "open"}, {"id": "counter"}])

    def block(qty: int) -> None:
        with transaction() as tx:
            for n in range(4):
                tx.update(stock, {"id": f"s{n}", "qty": increment(-qty)}, expect={"qty": ge(qty)})
            tx.create(orders, {"id": f"o{qty}", "qty": qty})
            tx.put(orders, {"id": f"p{qty}"}, expect={"state": None})
            tx.remove(orders, {"id": "old"})
            tx.check(orders, {"id": "kept"}, expect={"state": "open"})
            tx.update(orders, {"id": "counter", "seen": increment(1)})
            tx.create(stock, {"id": f"new{qty}"})

    block(1)  # statements rendered and prepared once
    with counter.counting() as sent:
        block(2)
    # Ten statements and one Sync, at which the server commits them (no BEGIN, no COMMIT).
    assert sent == [10, 1]
    assert [r["qty"] for r in stock.find_all({"qty": ge(0)})] == [2, 2, 2, 2]
    with counter.counting() as sent, pytest.raises(ConditionFailed) as info:
        block(3)
    assert info.value.index == 0
    # The pipeline, which the server rolled back whole at its Sync, then the read of the record
    # that refused it (psycopg may add a DEALLOCATE ALL of the statements it had prepared in
    # the failed transaction).
    assert sent[1] in (2, 3)
    assert [r["qty"] for r in stock.find_all({"qty": ge(0)})] == [2, 2, 2, 2]
    assert orders.find({"id": "counter"}) == {"id": "counter", "seen": 2}
    # An int added to a stored fraction: the run that summed in bigint fails (nothing applied),
    # and the transaction runs again with the full form of the number rules.
    orders.put({"id": "counter", "seen": 0.5})
    with counter.counting() as sent:
        block(0)
    assert sent[1] == 2
    assert orders.find({"id": "counter"}) == {"id": "counter", "seen": 1.5}
    assert orders.find({"id": "o0"}) == {"id": "o0", "qty": 0}


def test_a_transaction_s_plain_puts_to_one_kind_share_one_statement(
    counted: tuple[Any, StatementCounter],
) -> None:
    from kvstore import ConditionFailed, increment, transaction

    make, counter = counted
    teams, members = make(), make(id_field=("team", "seq"), key_type=(str, int))
    teams.put({"id": "t1", "size": 0})

    def block(size: int, expect_size: int) -> None:
        with transaction() as tx:
            for seq in (3, 1, 2):  # written in key order, whatever the block's order
                tx.put(members, {"team": "t1", "seq": seq, "joined": size})
            tx.put(teams, {"id": "t2", "size": size})
            tx.update(teams, {"id": "t1", "size": increment(1)}, expect={"size": expect_size})
            tx.put(members, {"team": "t2", "seq": 1, "joined": size})

    block(1, 0)  # statements rendered and prepared once
    with counter.counting() as sent:
        block(2, 1)
    # The members' four puts in one statement, the team's put, the update: one Sync.
    assert sent == [3, 1]
    assert members.find_all({"team": "t1"}) == [
        {"team": "t1", "seq": seq, "joined": 2} for seq in (1, 2, 3)
    ]
    assert members.find({"team": "t2", "seq": 1}) == {"team": "t2", "seq": 1, "joined": 2}
    assert teams.find({"id": "t1"}) == {"id": "t1", "size": 2}
    # A refusal after the shared statement names its own operation; nothing is applied.
    with pytest.raises(ConditionFailed) as info:
        block(3, 0)
    assert info.value.index == 4
    assert [m["joined"] for m in members.find_all({"joined": 2})] == [2, 2, 2, 2]
    assert teams.find({"id": "t2"}) == {"id": "t2", "size": 2}


def test_a_transaction_s_unguarded_updates_of_one_shape_share_one_statement(
    counted: tuple[Any, StatementCounter],
) -> None:
    from kvstore import ConditionFailed, InvalidArgument, NotFound, increment, transaction

    make, counter = counted
    stock, expiring = make(), make(ttl_field="expires")
    stock.put_many([{"id": f"s{n}", "qty": 10, "note": "x"} for n in range(5)])
    expiring.put_many([{"id": f"e{n}", "n": 0} for n in range(2)])

    def block(amount: int) -> None:
        with transaction() as tx:
            for n in (3, 0, 2):  # one statement: an increment and a set each
                tx.update(stock, {"id": f"s{n}", "qty": increment(-amount), "note": f"{amount}"})
            tx.update(stock, {"id": "s1", "qty": increment(amount)})  # another shape
            tx.update(stock, {"id": "s4", "qty": increment(1)}, expect={"note": "x"})  # guarded
            for n in range(2):  # their expiry binds the clock: a statement each
                tx.update(expiring, {"id": f"e{n}", "n": increment(1)})

    block(1)  # statements rendered and prepared once
    with counter.counting() as sent:
        block(2)
    assert sent == [5, 1]
    assert stock.find_all() == [
        {"id": "s0", "qty": 7, "note": "2"},
        {"id": "s1", "qty": 13, "note": "x"},
        {"id": "s2", "qty": 7, "note": "2"},
        {"id": "s3", "qty": 7, "note": "2"},
        {"id": "s4", "qty": 12, "note": "x"},
    ]
    assert expiring.find_all() == [{"id": "e0", "n": 2}, {"id": "e1", "n": 2}]

    # A shared statement that fails is run again a statement an operation, which names the
    # operation; nothing is applied.
    stock.put({"id": "s2", "qty": "many", "note": "x"})
    before = stock.find_all(), expiring.find_all()

    def bump(key: str, **expect: Any) -> tuple[str, dict[str, Any]]:
        return key, expect

    failing: list[tuple[list[tuple[str, dict[str, Any]]], type[Exception], int]] = [
        ([bump("s0"), bump("s2"), bump("s1")], InvalidArgument, 1),  # a string's increment
        ([bump("s0"), bump("gone"), bump("s1")], NotFound, 1),
        ([bump("s0"), bump("s1"), bump("s3", qty=0), bump("s4")], ConditionFailed, 2),
    ]
    for bumps, error, index in failing:
        with pytest.raises(error) as info, transaction() as tx:  # noqa: PT012
            for key, expect in bumps:
                tx.update(stock, {"id": key, "qty": increment(1)}, expect=expect or None)
        assert info.value.index == index, error
        assert (stock.find_all(), expiring.find_all()) == before


def test_a_shared_update_near_the_size_limit_runs_again_checked(
    counted: tuple[Any, StatementCounter],
) -> None:
    from kvstore import InvalidArgument, transaction
    from kvstore.values import MAX_ITEM_SIZE, item_size

    make, _counter = counted
    store = make()
    big = {"id": "big", "blob": ""}
    big["blob"] = "x" * (300_000 - item_size(big))
    store.put_many([big, {"id": "small"}])
    room = MAX_ITEM_SIZE - 1 - item_size(big) - len("more")
    with transaction() as tx:  # one shape: one statement, whose size bound the big one reaches
        tx.update(store, {"id": "small", "more": "y"})
        tx.update(store, {"id": "big", "more": "y" * room})
    assert item_size(store.find({"id": "big"})) == MAX_ITEM_SIZE - 1
    assert store.find({"id": "small"}) == {"id": "small", "more": "y"}
    with pytest.raises(InvalidArgument) as info, transaction() as tx:  # noqa: PT012
        tx.update(store, {"id": "small", "more": "z"})
        tx.update(store, {"id": "big", "more": "z" * (room + 1)})
    assert info.value.index == 1
    assert store.find({"id": "small"}) == {"id": "small", "more": "y"}


def test_a_shared_update_s_rows_go_in_key_order(counted: tuple[Any, StatementCounter]) -> None:
    # Two transactions that update the same records, named in different orders, then lock them
    # in one order (each waits for the other, rather than deadlocking).
    from kvstore import increment
    from kvstore_aurora.steps import statements

    make, counter = counted
    store = make()
    keys = ["k3", "k1", "k4", "k2"]
    store.put_many([{"id": key, "n": 0} for key in keys])
    ops = [(store.driver, store.update_op({"id": key, "n": increment(1)})) for key in keys]
    steps, owners, sharing = statements(counter.connection, ops, checked=False)
    assert (owners, sharing) == ([0], {0})
    ((_query, params),) = steps
    assert [value for value in params if isinstance(value, str)] == sorted(keys)
