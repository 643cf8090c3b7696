"""Contract: iter_all streams every match once; reads, remove and truncate work across pages."""

from __future__ import annotations

import inspect

import pytest

from kvstore import InvalidArgument, Store
from kvstore.testing.fixtures import StoreFactory, StoreFixtures
from kvstore.testing.suite.helpers import keys

PAD = "p" * 1000  # makes pages fill up by size too, where a backend pages by bytes


class AbstractPagingTests(StoreFixtures):
    """Many records (``many_records`` of them): more than one page or batch on every backend."""

    def _fill(self, make_store: StoreFactory) -> tuple[Store, list[str]]:
        store = make_store()
        ids = [f"k{i:05}" for i in range(self.many_records)]
        assert store.put_many(
            {"id": key, "odd": i % 2 == 1, "pad": PAD} for i, key in enumerate(ids)
        )
        return store, ids

    def test_iter_all_yields_every_record_exactly_once(self, make_store: StoreFactory) -> None:
        store, ids = self._fill(make_store)
        assert inspect.isgenerator(store.iter_all())  # as the contract says: not a list
        seen = keys(store.iter_all())
        assert len(seen) == len(ids)
        assert sorted(seen) == ids
        odd = keys(store.iter_all({"odd": True}))
        assert sorted(odd) == ids[1::2]

    def test_iter_all_stops_when_closed(self, make_store: StoreFactory) -> None:
        store, ids = self._fill(make_store)
        for filters in ({}, {"odd": True}, {"id": ids[0]}):
            stream = store.iter_all(filters)
            first = next(stream)
            assert first["id"] in ids
            stream.close()
            assert list(stream) == []

    def test_iter_all_checks_its_filters_when_called(self, make_store: StoreFactory) -> None:
        store = make_store()
        with pytest.raises(InvalidArgument):
            store.iter_all({"bad-name": 1})
        with pytest.raises(InvalidArgument):
            store.iter_all({"id": 5})
        with pytest.raises(InvalidArgument):
            store.iter_all("id")  # type: ignore[arg-type]

    def test_iter_all_of_an_empty_kind_yields_nothing(self, make_store: StoreFactory) -> None:
        store = make_store()
        assert list(store.iter_all()) == []
        store.put({"id": "a", "x": 1})
        assert list(store.iter_all({"x": 2})) == []

    def test_reads_return_every_record_across_pages(self, make_store: StoreFactory) -> None:
        store, ids = self._fill(make_store)
        assert keys(store.find_all()) == ids
        assert keys(store.find_all({"odd": False})) == ids[::2]
        assert store.count() == len(ids)
        assert store.count({"odd": True}) == len(ids[1::2])
        assert keys(store.find_in("odd", [True, False])) == ids

    def test_remove_deletes_every_match_across_pages(self, make_store: StoreFactory) -> None:
        store, ids = self._fill(make_store)
        assert store.remove({"odd": True}) == len(ids[1::2])
        assert keys(store.find_all()) == ids[::2]
        assert store.remove({"pad": PAD}) == len(ids[::2])
        assert store.count() == 0

    def test_truncate_deletes_everything_across_pages(self, make_store: StoreFactory) -> None:
        store, ids = self._fill(make_store)
        assert store.truncate(force=True) == len(ids)
        assert store.count() == 0
        assert list(store.iter_all()) == []
