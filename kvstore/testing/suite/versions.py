"""Contract part 2, "versions": the ``version_field`` a store maintains and checks on writes."""

# (The part-2 API, kvstore.ConditionFailed and version_field=..., is being built: remove the line
# above once it lands, so that mypy checks these calls too.)

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

import kvstore
from kvstore import InvalidArgument, NotFound, Store
from kvstore.testing.fixtures import StoreFactory, StoreFixtures
from kvstore.testing.suite.helpers import in_threads, typed

V = "version"
"""The version field of every store made here."""

BAD_VERSIONS: dict[str, Any] = {
    "negative": -1,
    "true": True,
    "false": False,
    "integral_float": 1.0,
    "float": 2.5,
    "decimal": Decimal("1"),
    "string": "1",
    "list": [1],
    "dict": {"v": 1},
    "past_int64": 2**63,
}
"""Values a version may not take: it is an int (not a bool, float or Decimal) of at least 0."""


def _versioned(make_store: StoreFactory, **kwargs: Any) -> Store:
    return make_store(version_field=V, **kwargs)


def _writes_with_version(store: Store, version: Any) -> dict[str, Callable[[], Any]]:
    """Each write of ``{"id": "a", "version": version}``."""
    return {
        "put": lambda: store.put({"id": "a", V: version}),
        "create": lambda: store.create({"id": "a", V: version}),
        "update": lambda: store.update({"id": "a", "x": 1, V: version}),
        "find_or_create": lambda: store.find_or_create({"id": "a"}, {"id": "a", V: version}),
    }


class AbstractVersionTests(StoreFixtures):
    """``create_store(..., version_field="version")``: set, bumped, checked, kept by copies."""

    def test_create_sets_version_one(self, make_store: StoreFactory) -> None:
        store = _versioned(make_store)
        created = store.create({"id": "a", "x": 1})
        assert typed(created) == typed({"id": "a", "x": 1, V: 1})
        assert typed(store.find({"id": "a"})) == typed(created)
        # A version of 0 is the version of a record that does not exist yet.
        assert store.create({"id": "b", V: 0}) == {"id": "b", V: 1}
        assert store.find({"id": "b"}) == {"id": "b", V: 1}

    def test_find_or_create_sets_version_one_only_when_it_creates(
        self, make_store: StoreFactory
    ) -> None:
        store = _versioned(make_store)
        created = store.find_or_create({"id": "a"}, {"id": "a", "x": 1})
        assert typed(created) == typed({"id": "a", "x": 1, V: 1})
        store.update({"id": "a", "x": 2})
        # Found, not created: the stored record as it is, its version not bumped.
        assert store.find_or_create({"id": "a"}, {"id": "a"}) == {"id": "a", "x": 2, V: 2}
        assert store.find_or_create({"x": 2}, {"id": "z", "x": 2}) == {"id": "a", "x": 2, V: 2}
        by_field = store.find_or_create({"x": 3}, {"id": "b", "x": 3})
        assert by_field == {"id": "b", "x": 3, V: 1}
        assert store.find_all() == [{"id": "a", "x": 2, V: 2}, by_field]

    def test_put_on_a_new_key_without_a_version_or_with_zero_writes_version_one(
        self, make_store: StoreFactory
    ) -> None:
        store = _versioned(make_store)
        assert typed(store.put({"id": "a", "x": 1})) == typed({"id": "a", "x": 1, V: 1})
        assert typed(store.put({"id": "b", V: 0})) == typed({"id": "b", V: 1})
        # A top-level None means "absent": the same as no version.
        assert typed(store.put({"id": "c", V: None})) == typed({"id": "c", V: 1})
        assert store.find_all() == [{"id": "a", "x": 1, V: 1}, {"id": "b", V: 1}, {"id": "c", V: 1}]

    @pytest.mark.parametrize("version", [1, 2, 7])
    def test_put_on_a_new_key_with_another_version_raises_condition_failed(
        self, make_store: StoreFactory, version: int
    ) -> None:
        store = _versioned(make_store)
        store.create({"id": "other"})
        with pytest.raises(kvstore.ConditionFailed) as info:
            store.put({"id": "a", V: version})
        assert info.value.code == "CONDITION_FAILED"
        with pytest.raises(NotFound):
            store.find({"id": "a"})
        assert store.find_all() == [{"id": "other", V: 1}]

    def test_put_with_the_stored_version_replaces_and_bumps_it(
        self, make_store: StoreFactory
    ) -> None:
        store = _versioned(make_store)
        store.create({"id": "a", "x": 1})
        assert store.put({"id": "a", "y": 2, V: 1}) == {"id": "a", "y": 2, V: 2}
        assert store.find({"id": "a"}) == {"id": "a", "y": 2, V: 2}
        assert store.put({"id": "a", V: 2}) == {"id": "a", V: 3}
        assert store.find({"id": "a"}) == {"id": "a", V: 3}

    @pytest.mark.parametrize("version", [0, 1, 3, 10])
    def test_put_with_another_version_raises_and_changes_nothing(
        self, make_store: StoreFactory, version: int
    ) -> None:
        store = _versioned(make_store)
        store.create({"id": "a", "x": 1})
        stored = store.update({"id": "a", "x": 2})
        assert stored == {"id": "a", "x": 2, V: 2}
        with pytest.raises(kvstore.ConditionFailed):
            store.put({"id": "a", "y": 1, V: version})
        assert store.find({"id": "a"}) == stored

    def test_put_without_a_version_on_an_existing_key_raises_and_changes_nothing(
        self, make_store: StoreFactory
    ) -> None:
        store = _versioned(make_store)
        stored = store.create({"id": "a", "x": 1})
        for record in ({"id": "a", "x": 2}, {"id": "a", "x": 2, V: None}):
            with pytest.raises(kvstore.ConditionFailed):
                store.put(record)
            assert store.find({"id": "a"}) == stored

    def test_update_with_the_stored_version_merges_and_bumps_it(
        self, make_store: StoreFactory
    ) -> None:
        store = _versioned(make_store)
        store.create({"id": "a", "x": 1, "drop": 1})
        updated = store.update({"id": "a", "y": 2, "drop": None, V: 1})
        assert typed(updated) == typed({"id": "a", "x": 1, "y": 2, V: 2})
        assert typed(store.find({"id": "a"})) == typed(updated)
        assert store.update({"id": "a", V: 2}) == {"id": "a", "x": 1, "y": 2, V: 3}

    @pytest.mark.parametrize("version", [0, 1, 3, 10])
    def test_update_with_another_version_raises_and_changes_nothing(
        self, make_store: StoreFactory, version: int
    ) -> None:
        store = _versioned(make_store)
        store.create({"id": "a", "x": 1})
        stored = store.update({"id": "a", "x": 2})
        with pytest.raises(kvstore.ConditionFailed):
            store.update({"id": "a", "x": 3, "y": 1, V: version})
        assert store.find({"id": "a"}) == stored

    def test_update_without_a_version_is_not_checked_and_still_bumps_it(
        self, make_store: StoreFactory
    ) -> None:
        store = _versioned(make_store)
        store.create({"id": "a", "x": 1})
        assert store.update({"id": "a", "x": 2}) == {"id": "a", "x": 2, V: 2}
        assert store.update({"id": "a", "x": 3, V: None}) == {"id": "a", "x": 3, V: 3}
        # Every update sets the stored version plus one, even one changing no other field.
        assert store.update({"id": "a"}) == {"id": "a", "x": 3, V: 4}
        assert store.find({"id": "a"}) == {"id": "a", "x": 3, V: 4}

    @pytest.mark.parametrize("version", [None, 0, 1])
    def test_update_of_a_missing_key_stays_not_found(
        self, make_store: StoreFactory, version: int | None
    ) -> None:
        store = _versioned(make_store)
        store.create({"id": "other"})
        with pytest.raises(NotFound):
            store.update({"id": "a", "x": 1, V: version})
        assert store.find_all() == [{"id": "other", V: 1}]

    def test_a_stored_record_without_the_field_counts_as_version_zero(
        self, make_store: StoreFactory
    ) -> None:
        plain = make_store()
        plain.put_many([{"id": k, "x": 1} for k in "abcdef"])
        store = _versioned(make_store, kind=plain.kind, ensure=False)
        assert store.put({"id": "a", "x": 2, V: 0}) == {"id": "a", "x": 2, V: 1}
        assert store.update({"id": "b", "x": 2, V: 0}) == {"id": "b", "x": 2, V: 1}
        assert store.update({"id": "c", "x": 2}) == {"id": "c", "x": 2, V: 1}
        with pytest.raises(kvstore.ConditionFailed):
            store.put({"id": "d", "x": 2, V: 1})
        with pytest.raises(kvstore.ConditionFailed):
            store.update({"id": "e", "x": 2, V: 1})
        with pytest.raises(kvstore.ConditionFailed):
            store.put({"id": "f", "x": 2})  # the key has a record: a put needs its version
        assert plain.find_all() == [
            {"id": "a", "x": 2, V: 1},
            {"id": "b", "x": 2, V: 1},
            {"id": "c", "x": 2, V: 1},
            {"id": "d", "x": 1},
            {"id": "e", "x": 1},
            {"id": "f", "x": 1},
        ]

    def test_put_many_stores_versions_as_given_unchecked(self, make_store: StoreFactory) -> None:
        store = _versioned(make_store)
        store.create({"id": "a"})
        store.update({"id": "a", "x": 1})
        records: list[dict[str, Any]] = [
            {"id": "a", V: 7},
            {"id": "b", "y": 1, V: 3},
            {"id": "c", V: 0},
            {"id": "d"},
        ]
        assert store.put_many(records) == len(records)
        plain = make_store(kind=store.kind, ensure=False)
        assert plain.find_all() == records
        # The versions stored are the ones the next checked writes compare with.
        assert store.put({"id": "a", "z": 1, V: 7}) == {"id": "a", "z": 1, V: 8}
        with pytest.raises(kvstore.ConditionFailed):
            store.update({"id": "b", "y": 2, V: 1})
        assert store.update({"id": "b", "y": 2, V: 3}) == {"id": "b", "y": 2, V: 4}
        assert store.update({"id": "d", V: 0}) == {"id": "d", V: 1}

    def test_a_copy_with_put_many_keeps_the_versions(self, make_store: StoreFactory) -> None:
        source = _versioned(make_store)
        source.create({"id": "a"})
        source.create({"id": "b", "x": 1})
        for _ in range(3):
            source.update({"id": "b", "x": 1})
        target = _versioned(make_store)
        assert target.put_many(source.find_all()) == 2
        assert target.find_all() == [{"id": "a", V: 1}, {"id": "b", "x": 1, V: 4}]
        assert target.find_all() == source.find_all()

    @pytest.mark.parametrize("version", sorted(BAD_VERSIONS))
    def test_a_bad_version_is_invalid_before_any_io(
        self, make_store: StoreFactory, version: str
    ) -> None:
        store = _versioned(make_store, ensure=False)
        for write in _writes_with_version(store, BAD_VERSIONS[version]).values():
            with pytest.raises(InvalidArgument):
                write()

    def test_a_bad_version_changes_nothing(self, make_store: StoreFactory) -> None:
        store = _versioned(make_store)
        stored = store.create({"id": "a"})
        for version in BAD_VERSIONS.values():
            for write in _writes_with_version(store, version).values():
                with pytest.raises(InvalidArgument):
                    write()
        assert store.find_all() == [stored]

    def test_the_version_and_expect_must_both_hold(self, make_store: StoreFactory) -> None:
        store = _versioned(make_store)
        stored = store.create({"id": "a", "s": "open"})
        failing: list[Callable[[], Any]] = [
            lambda: store.put({"id": "a", "s": "x", V: 1}, expect={"s": "closed"}),
            lambda: store.put({"id": "a", "s": "x", V: 2}, expect={"s": "open"}),
            lambda: store.update({"id": "a", "s": "x", V: 1}, expect={"s": "closed"}),
            lambda: store.update({"id": "a", "s": "x", V: 0}, expect={"s": "open"}),
            lambda: store.update({"id": "a", "s": "x"}, expect={"s": "closed"}),
        ]
        for call in failing:
            with pytest.raises(kvstore.ConditionFailed):
                call()
            assert store.find({"id": "a"}) == stored
        assert store.put({"id": "a", "s": "x", V: 1}, expect={"s": "open"}) == {
            "id": "a",
            "s": "x",
            V: 2,
        }
        assert store.update({"id": "a", "s": "y", V: 2}, expect={V: 2}) == {
            "id": "a",
            "s": "y",
            V: 3,
        }

    def test_versions_on_a_compound_key(self, make_store: StoreFactory) -> None:
        store = _versioned(make_store, id_field=("team", "seq"), key_type=(str, int))
        assert store.create({"team": "t", "seq": 1}) == {"team": "t", "seq": 1, V: 1}
        assert store.put({"team": "t", "seq": 2}) == {"team": "t", "seq": 2, V: 1}
        assert store.put({"team": "t", "seq": 1, "x": 1, V: 1}) == {
            "team": "t",
            "seq": 1,
            "x": 1,
            V: 2,
        }
        with pytest.raises(kvstore.ConditionFailed):
            store.update({"team": "t", "seq": 2, V: 2})
        assert store.find_all() == [
            {"team": "t", "seq": 1, "x": 1, V: 2},
            {"team": "t", "seq": 2, V: 1},
        ]

    def test_increments_bump_the_version_too(self, make_store: StoreFactory) -> None:
        store = _versioned(make_store)
        store.create({"id": "a"})
        assert store.update({"id": "a", "n": kvstore.increment(5)}) == {"id": "a", "n": 5, V: 2}
        assert store.update({"id": "a", "n": kvstore.increment(1), V: 2}) == {
            "id": "a",
            "n": 6,
            V: 3,
        }
        with pytest.raises(kvstore.ConditionFailed):
            store.update({"id": "a", "n": kvstore.increment(1), V: 2})
        assert store.find({"id": "a"}) == {"id": "a", "n": 6, V: 3}

    def test_an_index_may_hold_the_version_as_a_number_never_as_a_string(
        self, make_store: StoreFactory
    ) -> None:
        with pytest.raises(InvalidArgument, match="version_field"):
            make_store(version_field=V, indexes=[kvstore.Index("by_v", V, key_type=str)])
        by_group = kvstore.Index("by_group", ("grp", V), key_type=(str, int))
        store = make_store(version_field=V, indexes=[by_group])
        # The store writes the version: a record need not carry the index's sort field itself.
        assert store.put({"id": "a", "grp": "g"}) == {"id": "a", "grp": "g", V: 1}
        assert store.create({"id": "b", "grp": "g"}) == {"id": "b", "grp": "g", V: 1}
        assert store.update({"id": "a", "n": 1}) == {"id": "a", "grp": "g", "n": 1, V: 2}
        assert store.explain({"grp": "g"}) == "index:by_group"
        found = store.find_all({"grp": "g", V: kvstore.ge(2)})
        assert found == [{"id": "a", "grp": "g", "n": 1, V: 2}]

    def test_the_validate_hook_sees_the_new_version_on_the_way_out(
        self, make_store: StoreFactory
    ) -> None:
        seen: list[dict[str, Any]] = []

        def hook(record: dict[str, Any]) -> dict[str, Any]:
            seen.append(dict(record))
            return record

        store = _versioned(make_store, validate=hook)
        store.put({"id": "a"})
        assert seen == [{"id": "a"}, {"id": "a", V: 1}]
        seen.clear()
        store.update({"id": "a", "x": 1, V: 1})
        assert seen == [{"id": "a", "x": 1, V: 1}, {"id": "a", "x": 1, V: 2}]

    def test_racing_version_checked_writes_lose_nothing(self, make_store: StoreFactory) -> None:
        self.require("atomic_conditional_writes")
        threads, rounds = 4, 5
        first = _versioned(make_store)
        first.create({"id": "c", "n": 0})
        stores = [first] * (threads // 2) + [
            _versioned(make_store, kind=first.kind, ensure=False)
            for _ in range(threads - threads // 2)
        ]

        def work(thread: int) -> list[tuple[int, int]]:
            """Read, add one, write back with the version read; retry when another won."""
            store = stores[thread]
            written: list[tuple[int, int]] = []
            for _ in range(rounds * threads * 10):  # a bound, never reached when writes are atomic
                if len(written) == rounds:
                    break
                seen = store.find({"id": "c"})
                change = {"id": "c", "n": seen["n"] + 1, V: seen[V]}
                try:
                    result = store.update(change) if thread % 2 else store.put(change)
                except kvstore.ConditionFailed:
                    continue
                written.append((result["n"], result[V]))
            return written

        results = in_threads(threads, work)
        assert [len(written) for written in results] == [rounds] * threads
        total = threads * rounds
        every = sorted(pair for written in results for pair in written)
        # Each write saw the one before it: n and the version moved in lock step, none repeated.
        assert every == [(n, n + 1) for n in range(1, total + 1)]
        assert first.find({"id": "c"}) == {"id": "c", "n": total, V: total + 1}

    def test_racing_puts_without_a_version_create_the_record_once(
        self, make_store: StoreFactory
    ) -> None:
        self.require("atomic_conditional_writes")
        threads = 4
        first = _versioned(make_store)
        stores = [first] + [
            _versioned(make_store, kind=first.kind, ensure=False) for _ in range(threads - 1)
        ]

        def work(thread: int) -> dict[str, Any] | None:
            try:
                return stores[thread].put({"id": "k", "by": thread})
            except kvstore.ConditionFailed:
                return None

        results = in_threads(threads, work)
        winners = [result for result in results if result is not None]
        assert len(winners) == 1, results
        assert winners[0][V] == 1
        assert first.find_all() == winners
