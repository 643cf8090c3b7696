"""Contract: create and find_or_create are atomic; a store is safe from several threads."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kvstore import AlreadyExists, Store
from kvstore.testing.fixtures import StoreFactory, StoreFixtures

THREADS = 8
KEYS = ["k0", "k1", "k2"]


def _race(stores: list[Store], work: Callable[[Store, int, str], Any]) -> dict[str, list[Any]]:
    """Run ``work(store, thread, key)`` for every key in ``THREADS`` threads released together."""
    barrier = threading.Barrier(THREADS)

    def run(thread: int) -> list[tuple[str, Any]]:
        store = stores[thread % len(stores)]
        barrier.wait()
        out = []
        for key in KEYS:
            try:
                out.append((key, work(store, thread, key)))
            except AlreadyExists as exc:
                out.append((key, exc))
        return out

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(run, range(THREADS)))
    by_key: dict[str, list[Any]] = {key: [] for key in KEYS}
    for per_thread in results:
        for key, result in per_thread:
            by_key[key].append(result)
    return by_key


class AbstractConcurrencyTests(StoreFixtures):
    """Threads racing on the same keys, through one store and through several."""

    def _stores(self, make_store: StoreFactory) -> list[Store]:
        first = make_store()
        # Half the threads share one store object, the others each have their own.
        return [first] * 4 + [make_store(kind=first.kind, ensure=False) for _ in range(4)]

    def test_racing_creates_have_exactly_one_winner_per_key(self, make_store: StoreFactory) -> None:
        self.require("atomic_conditional_writes")
        stores = self._stores(make_store)
        results = _race(stores, lambda store, thread, key: store.create({"id": key, "by": thread}))
        for key, outcomes in results.items():
            winners = [r for r in outcomes if not isinstance(r, AlreadyExists)]
            assert len(winners) == 1, f"{key}: {outcomes}"
            assert len(outcomes) - len(winners) == THREADS - 1
            assert stores[0].find({"id": key}) == winners[0]
        assert stores[0].count() == len(KEYS)

    def test_racing_find_or_create_all_get_the_winners_record(
        self, make_store: StoreFactory
    ) -> None:
        self.require("atomic_conditional_writes")
        stores = self._stores(make_store)
        results = _race(
            stores,
            lambda store, thread, key: store.find_or_create({"id": key}, {"id": key, "by": thread}),
        )
        for key, outcomes in results.items():
            assert not any(isinstance(r, AlreadyExists) for r in outcomes), outcomes
            stored = stores[0].find({"id": key})
            assert all(r == stored for r in outcomes), (key, outcomes)
        assert stores[0].count() == len(KEYS)

    def test_racing_find_or_create_by_a_field_all_get_the_winners_record(
        self, make_store: StoreFactory
    ) -> None:
        self.require("atomic_conditional_writes")
        stores = self._stores(make_store)
        results = _race(
            stores,
            lambda store, thread, key: store.find_or_create(
                {"name": key}, {"id": key, "name": key, "by": thread}
            ),
        )
        for key, outcomes in results.items():
            stored = stores[0].find({"name": key})
            assert all(r == stored for r in outcomes), (key, outcomes)
        assert stores[0].count() == len(KEYS)

    def test_threads_writing_different_keys_all_land(self, make_store: StoreFactory) -> None:
        stores = self._stores(make_store)
        results = _race(
            stores, lambda store, thread, key: store.put({"id": f"{key}-{thread}", "n": thread})
        )
        assert stores[0].count() == THREADS * len(KEYS)
        assert all(len(outcomes) == THREADS for outcomes in results.values())

    def test_racing_ensure_calls_all_succeed(self, make_store: StoreFactory) -> None:
        kind = make_store(ensure=False).kind
        stores = [make_store(kind=kind, ensure=False) for _ in range(THREADS)]
        barrier = threading.Barrier(THREADS)

        def ensure(store: Store) -> None:
            barrier.wait()
            store.ensure()

        with ThreadPoolExecutor(THREADS) as pool:
            assert list(pool.map(ensure, stores)) == [None] * THREADS
        stores[0].put({"id": "a"})
        assert stores[-1].find_all() == [{"id": "a"}]
