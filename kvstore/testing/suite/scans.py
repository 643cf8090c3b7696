"""Contract, "Indexes and how a read is served": ``scan=False`` refuses, before any I/O, every
read that no key or index serves, and lets the others through."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from kvstore import (  # type: ignore[attr-defined, unused-ignore]
    ConfigError,
    OperationRejected,
)
from kvstore.testing.fixtures import StoreFixtures
from kvstore.testing.suite.helpers import keys, typed
from kvstore.testing.suite.index_cases import USERS, user_indexes
from kvstore.testing.suite.matching import Cond, QueryStoreFactory, build, select


class AbstractScanGuardTests(StoreFixtures):
    """``create_store(..., scan=False)``: a guard for large kinds, the same on every backend."""

    def _guarded(self, make_store: QueryStoreFactory, ensure: bool) -> Any:
        return make_store(ensure=ensure, indexes=user_indexes(), scan=False)

    def _scans(self, store: Any) -> dict[str, Callable[[], Any]]:
        """Every call that would scan: filters explain reports as 'scan', find_in/remove_in on
        a field that is neither the partition key nor an index's partition field."""
        return {
            "find {}": lambda: store.find({}),
            "find n": lambda: store.find({"n": 1}),
            "find_all": lambda: store.find_all(),
            "find_all {}": lambda: store.find_all({}),
            "find_all n": lambda: store.find_all({"n": 1}),
            "find_all email None": lambda: store.find_all({"email": None}),
            "find_all email exists": lambda: store.find_all({"email": Cond("exists").build()}),
            "find_all id condition": lambda: store.find_all({"id": Cond("gt", "a").build()}),
            "find_all sort field only": lambda: store.find_all({"joined": 1}),
            "count": lambda: store.count(),
            "count n": lambda: store.count({"n": 1}),
            "iter_all": lambda: list(store.iter_all()),
            "iter_all n": lambda: list(store.iter_all({"n": 1})),
            "find_page {}": lambda: store.find_page({}, limit=10),
            "find_page n": lambda: store.find_page({"n": 1}, limit=10),
            "remove n": lambda: store.remove({"n": 1}),
            "find_or_create n": lambda: store.find_or_create({"n": 1}, {"id": "a", "n": 1}),
            "find_in n": lambda: store.find_in("n", [1]),
            "find_in index sort field": lambda: store.find_in("joined", [1]),
            "remove_in n": lambda: store.remove_in("n", [1]),
            "find_in n, no values": lambda: store.find_in("n", []),
            "remove_in n, no values": lambda: store.remove_in("n", []),
            "remove_in index sort field": lambda: store.remove_in("rank", [1]),
        }

    def _served(self, store: Any) -> dict[str, Callable[[], Any]]:
        """Calls a key, partition or index serves (or that select nothing by filters)."""
        return {
            "find id": lambda: store.find({"id": "a"}),
            "find_all id": lambda: store.find_all({"id": "a"}),
            "find_all email": lambda: store.find_all({"email": "a@example.com"}),
            "count team": lambda: store.count({"team": "t1", "joined": Cond("gt", 1).build()}),
            "iter_all level": lambda: list(store.iter_all({"level": 1})),
            "find_page email": lambda: store.find_page({"email": "a@example.com"}, limit=10),
            "remove id": lambda: store.remove({"id": "zz"}),
            "remove email": lambda: store.remove({"email": "zz@example.com"}),
            "find_or_create id": lambda: store.find_or_create({"id": "a"}, {"id": "a", "n": 1}),
            "find_in id": lambda: store.find_in("id", ["a"]),
            "find_in email": lambda: store.find_in("email", ["a@example.com"]),
            "remove_in email": lambda: store.remove_in("email", ["zz@example.com"]),
            "remove_in id": lambda: store.remove_in("id", ["zz"]),
            "put": lambda: store.put({"id": "b", "n": 2}),
            "truncate force": lambda: store.truncate(force=True),
        }

    def test_scan_false_rejects_every_scan_before_any_io(
        self, make_store: QueryStoreFactory
    ) -> None:
        store = self._guarded(make_store, ensure=False)
        for name, call in self._scans(store).items():
            with pytest.raises(OperationRejected):
                call()
            assert name, "every call is named, for the failure's traceback"
        with pytest.raises(OperationRejected):
            store.truncate()

    def test_scan_false_lets_key_partition_and_index_reads_through(
        self, make_store: QueryStoreFactory
    ) -> None:
        # On a missing table a call the guard lets through fails only when it reaches the table.
        store = self._guarded(make_store, ensure=False)
        for name, call in self._served(store).items():
            with pytest.raises(ConfigError):
                call()
            assert name, "every call is named, for the failure's traceback"

    def test_scan_false_rejects_without_changing_anything(
        self, make_store: QueryStoreFactory
    ) -> None:
        store = self._guarded(make_store, ensure=True)
        records = [{"id": "a", "n": 1, "email": "a@example.com"}, {"id": "b", "n": 2}]
        store.put_many(records)
        for call in self._scans(store).values():
            with pytest.raises(OperationRejected):
                call()
        assert typed(store.find_in("id", ["a", "b", "c"])) == typed(records)

    def test_scan_false_serves_keys_and_indexes(self, make_store: QueryStoreFactory) -> None:
        store = self._guarded(make_store, ensure=True)
        store.put_many(USERS)
        for filters in (
            {"id": "u04"},
            {"email": "ada@example.com"},
            {"team": "t1", "joined": Cond("between", 2024, 2025)},
            {"level": 0, "n": Cond("lt", 20)},
        ):
            wanted = select(USERS, filters, ["id"])
            assert typed(store.find_all(build(filters))) == typed(wanted), filters
            assert store.count(build(filters)) == len(wanted), filters
        assert store.find_or_create({"id": "new"}, {"id": "new"}) == {"id": "new"}
        assert store.remove({"email": "bob@example.com"}) == len(
            select(USERS, {"email": "bob@example.com"}, ["id"])
        )
        assert store.truncate(force=True) == len(USERS) + 1 - len(
            select(USERS, {"email": "bob@example.com"}, ["id"])
        )

    def test_scan_false_on_a_two_field_key(self, make_store: QueryStoreFactory) -> None:
        store = make_store(
            ensure=False, id_field=("team_id", "seq"), key_type=(str, int), scan=False
        )
        rejected: list[Callable[[], Any]] = [
            lambda: store.find_all({"seq": 1}),
            lambda: store.find_in("seq", [1]),
            lambda: store.remove_in("seq", [1]),
            lambda: store.count({"team_id": Cond("begins_with", "t").build()}),
        ]
        for call in rejected:
            with pytest.raises(OperationRejected):
                call()
        served: list[Callable[[], Any]] = [
            lambda: store.find_all({"team_id": "t1"}),
            lambda: store.find_all({"team_id": "t1", "seq": Cond("gt", 1).build()}),
            lambda: store.find_in("team_id", ["t1"]),
            lambda: store.remove_in("team_id", ["t1"]),
            lambda: store.find_page({"team_id": "t1"}, limit=5),
        ]
        for call in served:
            with pytest.raises(ConfigError):
                call()

    def test_scans_are_allowed_by_default(self, make_store: QueryStoreFactory) -> None:
        for store in (make_store(), make_store(scan=True)):
            store.put_many([{"id": "a", "n": 1}, {"id": "b", "n": 2}])
            assert keys(store.find_all({"n": 2})) == ["b"]
            assert keys(store.find_in("n", [1])) == ["a"]
            assert store.count() == 2
            assert store.remove({"n": 1}) == 1
