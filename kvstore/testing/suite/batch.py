"""Contract: put_many and remove_in: a loop of put/remove, in chunks, any iterable, empty input."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from kvstore import InvalidArgument
from kvstore.store import CHUNK_SIZE
from kvstore.testing.fixtures import StoreFactory, StoreFixtures
from kvstore.testing.suite.helpers import keys, typed


class AbstractBatchTests(StoreFixtures):
    """``put_many`` and ``remove_in``."""

    def test_put_many_writes_each_record_like_put(self, make_store: StoreFactory) -> None:
        store = make_store()
        store.put({"id": "b", "old": 1})
        written = store.put_many([{"id": "a", "x": 2.0}, {"id": "b", "new": 1}, {"id": "c"}])
        assert written == 3
        expected = [{"id": "a", "x": 2}, {"id": "b", "new": 1}, {"id": "c"}]
        assert typed(store.find_all()) == typed(expected)

    def test_put_many_keeps_the_last_record_of_a_key_and_counts_it_once(
        self, make_store: StoreFactory
    ) -> None:
        store = make_store()
        records = [{"id": "a", "v": 1}, {"id": "b", "v": 1}, {"id": "a", "v": 2, "w": 1}]
        assert store.put_many(records) == 2
        assert store.find_all() == [{"id": "a", "v": 2, "w": 1}, {"id": "b", "v": 1}]

    def test_put_many_counts_keys_repeated_far_apart_once(self, make_store: StoreFactory) -> None:
        store = make_store()
        count = self.many_records
        records = [{"id": f"k{i:05}", "v": 1} for i in range(count)]
        records += [{"id": f"k{i:05}", "v": 2} for i in range(0, count, 7)]
        assert store.put_many(records) == count
        assert store.count() == count
        assert store.count({"v": 2}) == len(range(0, count, 7))

    def test_put_many_and_remove_in_accept_any_iterable(self, make_store: StoreFactory) -> None:
        store = make_store()

        def generate() -> Iterator[dict[str, Any]]:
            for i in range(5):
                yield {"id": f"g{i}", "n": i}

        assert store.put_many(generate()) == 5
        assert store.put_many(iter([{"id": "t"}])) == 1
        assert store.put_many({"id": k} for k in ("x", "y")) == 2
        assert store.remove_in("n", (n for n in range(3))) == 3
        assert store.remove_in("id", {"x": 0, "y": 0}.keys()) == 2
        assert store.remove_in("id", ("t",)) == 1
        assert keys(store.find_all()) == ["g3", "g4"]

    def test_an_invalid_record_writes_nothing_of_its_chunk(self, make_store: StoreFactory) -> None:
        store = make_store()
        # Any backend's chunk holds at least two records, so these share the first chunk.
        invalid: Any
        for invalid in ({"id": "b", "v": {1}}, {"v": 1}, {"id": "b", "bad-name": 1}, "x"):
            with pytest.raises(InvalidArgument):
                store.put_many([{"id": "a"}, invalid])
            with pytest.raises(InvalidArgument):
                store.put_many([invalid, {"id": "a"}])
        assert store.count() == 0

    def test_an_invalid_record_after_earlier_chunks_keeps_them(
        self, make_store: StoreFactory
    ) -> None:
        store = make_store()
        # Core checks CHUNK_SIZE records at a time on every backend: the first chunk is written,
        # the second (holding the bad record, last of five) is not.
        records: list[Any] = [{"id": f"k{i:05}"} for i in range(CHUNK_SIZE + 4)] + [{"id": 5}]
        with pytest.raises(InvalidArgument):
            store.put_many(records)
        assert keys(store.find_all()) == [f"k{i:05}" for i in range(CHUNK_SIZE)]
        # remove_in likewise: its first chunk removes k00000 and k00001, the second fails whole.
        values: list[Any] = [f"none{i}" for i in range(CHUNK_SIZE - 2)] + ["k00000", "k00001"]
        with pytest.raises(InvalidArgument):
            store.remove_in("id", [*values, "k00002", 5])
        assert keys(store.find_all()) == [f"k{i:05}" for i in range(2, CHUNK_SIZE)]

    def test_empty_input_returns_at_once_without_io(self, make_store: StoreFactory) -> None:
        store = make_store(ensure=False)
        # The kind has no table, so any I/O would raise ConfigError.
        assert store.put_many([]) == 0
        assert store.put_many(iter(())) == 0
        assert store.find_in("id", []) == []
        assert store.find_in("x", iter(())) == []
        assert store.remove_in("id", []) == 0
        assert store.remove_in("x", ()) == 0
        # Empty input still has its field name checked.
        with pytest.raises(InvalidArgument):
            store.find_in("bad-name", [])
        with pytest.raises(InvalidArgument):
            store.remove_in("bad-name", [])

    def test_remove_in_removes_matches_and_returns_how_many(self, make_store: StoreFactory) -> None:
        store = make_store()
        store.put_many({"id": k, "g": i % 3} for i, k in enumerate("abcdefg"))
        assert store.remove_in("id", ["a", "a", "zz", "c"]) == 2
        assert store.remove_in("id", ["a"]) == 0
        assert store.remove_in("g", [1, 1.0]) == 2
        assert keys(store.find_all()) == ["d", "f", "g"]

    def test_remove_in_refuses_a_bad_field_or_value_before_removing(
        self, make_store: StoreFactory
    ) -> None:
        store = make_store()
        store.put_many([{"id": "a", "x": 1}, {"id": "b", "x": 2}])
        for field, values in (("bad-name", [1]), ("x", [1, {1}]), ("id", ["a", 5])):
            with pytest.raises(InvalidArgument):
                store.remove_in(field, values)
        assert store.count() == 2

    def test_remove_in_across_many_records(self, make_store: StoreFactory) -> None:
        store = make_store()
        count = self.many_records
        store.put_many({"id": f"k{i:05}", "n": i % 10} for i in range(count))
        doomed = [f"k{i:05}" for i in range(0, count, 2)]
        assert store.remove_in("id", doomed) == len(doomed)
        assert store.remove_in("n", [1, 3]) == len([i for i in range(count) if i % 10 in (1, 3)])
        assert store.count() == len([i for i in range(count) if i % 10 in (5, 7, 9)])
