"""Eight threads racing on create and find_or_create for the same keys: one winner per key."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from kvstore import AlreadyExists, Store, create_store
from kvstore.testing import unique_kind
from kvstore_aurora.settings import PostgresSettings

THREADS = 8
KEYS = 20


@pytest.fixture
def store(pg_settings: PostgresSettings) -> Store:
    made = create_store(unique_kind("race"), backend="aurora", settings=pg_settings)
    made.ensure()
    return made


def race(work: Callable[[int], Any]) -> list[list[Any]]:
    """Run ``work(thread)`` in THREADS threads started together; each returns its results."""
    barrier = threading.Barrier(THREADS)
    results: list[list[Any]] = [[] for _ in range(THREADS)]

    def run(thread: int) -> None:
        barrier.wait()
        results[thread] = work(thread)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_one_create_wins_each_key(store: Store) -> None:
    def work(thread: int) -> list[Any]:
        outcome: list[Any] = []
        for key in range(KEYS):
            try:
                store.create({"id": f"k{key}", "by": thread})
                outcome.append(key)
            except AlreadyExists:
                pass
        return outcome

    results = race(work)
    won = sorted(key for keys in results for key in keys)
    assert won == list(range(KEYS))  # every key created exactly once
    for thread, keys in enumerate(results):
        for key in keys:
            assert store.find({"id": f"k{key}"}) == {"id": f"k{key}", "by": thread}


def test_find_or_create_returns_the_winners_record_to_everyone(store: Store) -> None:
    def work(thread: int) -> list[Any]:
        return [
            store.find_or_create({"id": f"k{key}"}, {"id": f"k{key}", "by": thread})
            for key in range(KEYS)
        ]

    results = race(work)
    stored = {record["id"]: record for record in store.find_all()}
    assert len(stored) == KEYS
    for per_thread in results:
        assert per_thread == [stored[f"k{key}"] for key in range(KEYS)]


def test_racing_ensures_create_the_table_once(pg_settings: PostgresSettings) -> None:
    kind = unique_kind("ens")

    def work(thread: int) -> list[Any]:
        store = create_store(kind, backend="aurora", settings=pg_settings)
        store.ensure()
        return [store.put({"id": f"t{thread}"})]

    race(work)
    assert create_store(kind, backend="aurora", settings=pg_settings).count() == THREADS


def test_racing_put_many_on_overlapping_keys_do_not_deadlock(store: Store) -> None:
    import random

    def work(thread: int) -> list[Any]:
        shuffle = random.Random(thread)
        for round_ in range(3):
            records = [{"id": f"k{n:04}", "by": thread, "round": round_} for n in range(300)]
            shuffle.shuffle(records)
            store.put_many(records)
        return [thread]

    assert sorted(t for done in race(work) for t in done) == list(range(THREADS))
    assert store.count({"round": 2}) == 300


@pytest.mark.parametrize("guarded", [True, False], ids=["guarded", "shared"])
def test_a_transaction_aborted_by_a_deadlock_runs_again(
    store: Store, pg_settings: PostgresSettings, monkeypatch: pytest.MonkeyPatch, guarded: bool
) -> None:
    """Two transactions update both records in opposite orders. A third connection holds "a" so
    that the first (a, b) queues on "a" before the second (b, a) takes "b"; once "a" is released
    they deadlock, PostgreSQL aborts one (nothing of it was applied) and the driver runs it
    again: both apply, once each. That is with guarded updates, each a statement of its own;
    unguarded ones share one statement, which locks its rows in key order: no deadlock."""
    import time

    from kvstore import ge, increment, transaction
    from kvstore_aurora import transact
    from tests.backends.aurora.helpers import connect

    store.put_many([{"id": "a", "n": 0}, {"id": "b", "n": 0}])
    again: list[int] = []
    run = transact._run

    def counting(*args: Any) -> None:
        try:
            run(*args)
        except transact._Again:
            again.append(1)
            raise

    monkeypatch.setattr(transact, "_run", counting)
    errors: list[BaseException] = []
    expect = {"n": ge(0)} if guarded else None

    def move(order: list[str]) -> None:
        try:
            with transaction() as tx:
                for key in order:
                    tx.update(store, {"id": key, "n": increment(1)}, expect=expect)
        except BaseException as exc:
            errors.append(exc)

    rounds = 0
    # The lock queue's order makes the deadlock near certain: a few rounds to see one.
    while not again and rounds < (5 if guarded else 2):
        rounds += 1
        with connect(pg_settings) as gate:
            gate.execute("BEGIN")
            gate.execute(f"SELECT 1 FROM \"{store.kind}\" WHERE id = 'a' FOR UPDATE")
            first = threading.Thread(target=move, args=(["a", "b"],))
            first.start()
            time.sleep(0.3)
            second = threading.Thread(target=move, args=(["b", "a"],))
            second.start()
            time.sleep(0.3)
            gate.execute("ROLLBACK")
        first.join(30)
        second.join(30)
    assert not errors
    assert bool(again) == guarded, "a deadlock happened" if again else "no deadlock happened"
    assert store.find_all() == [{"id": "a", "n": 2 * rounds}, {"id": "b", "n": 2 * rounds}]
