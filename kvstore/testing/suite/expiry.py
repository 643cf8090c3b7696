"""Contract part 2, "Expiry": a ``ttl_field`` past the caller's clock makes a record absent."""

# (The part-2 API, ttl_field=..., purge_expired() and find_page(), is being built: remove the
# line above once it lands, so that mypy checks these calls too.)

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest

import kvstore
from kvstore import AlreadyExists, ConfigError, InvalidArgument, NotFound, OperationRejected, Store
from kvstore.testing.fixtures import StoreFactory, StoreFixtures
from kvstore.testing.suite.helpers import keys, normalised, typed

TTL = "expires_at"
"""The expiry field of every store made here."""

BAD_TTLS: dict[str, Any] = {
    "date_string": "2030-01-01T00:00:00Z",
    "numeric_string": "1700000000",
    "true": True,
    "false": False,
    "list": [1700000000],
    "dict": {"at": 1700000000},
}
"""Values the expiry field may not hold: it holds a number (a bool is not one)."""


def past() -> float:
    """A time well before now (never near the boundary), as a float with a fraction."""
    return int(time.time()) - 100 + 0.5


def future() -> float:
    """A time well after now (an hour), as a float with a fraction."""
    return int(time.time()) + 3600 + 0.5


def _expiring(make_store: StoreFactory, **kwargs: Any) -> Store:
    return make_store(ttl_field=TTL, **kwargs)


def _raw(make_store: StoreFactory, store: Store) -> Store:
    """A store of the same kind without ``ttl_field``: it sees expired records as plain ones."""
    return make_store(kind=store.kind, ensure=False)


class AbstractExpiryTests(StoreFixtures):
    """``create_store(..., ttl_field="expires_at")`` and ``purge_expired()``."""

    @pytest.mark.parametrize("value", sorted(BAD_TTLS))
    def test_an_expiry_that_is_not_a_number_is_invalid_before_any_io(
        self, make_store: StoreFactory, value: str
    ) -> None:
        store = _expiring(make_store, ensure=False)
        bad = BAD_TTLS[value]
        for call in (
            lambda: store.put({"id": "a", TTL: bad}),
            lambda: store.create({"id": "a", TTL: bad}),
            lambda: store.update({"id": "a", TTL: bad}),
            lambda: store.put_many([{"id": "a", TTL: bad}]),
            lambda: store.find_or_create({"id": "a"}, {"id": "a", TTL: bad}),
        ):
            with pytest.raises(InvalidArgument):
                call()

    def test_an_expiry_that_is_not_a_number_changes_nothing(self, make_store: StoreFactory) -> None:
        store = _expiring(make_store)
        stored = store.put({"id": "a", "x": 1})
        for bad in BAD_TTLS.values():
            with pytest.raises(InvalidArgument):
                store.update({"id": "a", "x": 2, TTL: bad})
            with pytest.raises(InvalidArgument):
                store.put({"id": "a", TTL: bad})
        assert store.find_all() == [stored]

    def test_any_number_is_an_expiry_time(self, make_store: StoreFactory) -> None:
        store = _expiring(make_store)
        now = int(time.time())
        live: list[dict[str, Any]] = [
            {"id": "l_int", TTL: now + 3600},
            {"id": "l_float", TTL: now + 3600.5},
            {"id": "l_decimal", TTL: Decimal(now + 3600)},
            {"id": "l_decimal_fraction", TTL: Decimal(f"{now + 3600}.25")},
        ]
        expired: list[dict[str, Any]] = [
            {"id": "x_int", TTL: now - 100},
            {"id": "x_float", TTL: now - 99.5},
            {"id": "x_decimal", TTL: Decimal(now - 100)},
            {"id": "x_zero", TTL: 0},
            {"id": "x_negative", TTL: -1},
        ]
        forever: list[dict[str, Any]] = [{"id": "n_absent"}, {"id": "n_none", TTL: None}]
        assert store.put_many(live + expired + forever) == len(live + expired + forever)
        expected = [{"id": r["id"], TTL: normalised(r[TTL])} for r in live] + [
            {"id": "n_absent"},
            {"id": "n_none"},
        ]
        assert typed(store.find_all()) == typed(sorted(expected, key=lambda r: r["id"]))

    def test_every_read_treats_expired_records_as_absent(self, make_store: StoreFactory) -> None:
        store = _expiring(make_store)
        gone = past()
        b = {"id": "b", "g": 1, TTL: future()}
        d = {"id": "d", "g": 2}
        store.put_many([{"id": "a", "g": 1, TTL: gone}, b, {"id": "c", "g": 2, TTL: gone}, d])
        for filters in ({"id": "a"}, {"id": "c", "g": 2}, {TTL: gone}, {"g": 3}):
            with pytest.raises(NotFound):
                store.find(filters)
        assert store.find({"g": 1}) == b  # not MultipleFound: "a" is absent
        assert store.find({"g": 2}) == d
        assert store.find_all() == [b, d]
        assert store.find_all({"g": 1}) == [b]
        assert store.find_all({TTL: gone}) == []
        assert store.find_all({TTL: None}) == [d]
        assert store.count() == 2
        assert store.count({"g": 1}) == 1
        assert store.count({TTL: kvstore.exists()}) == 1
        assert sorted(store.iter_all(), key=lambda r: r["id"]) == [b, d]
        assert list(store.iter_all({"g": 2})) == [d]
        assert store.find_in("id", ["a", "b", "c", "d"]) == [b, d]
        assert store.find_in("g", [1, 2]) == [b, d]
        assert store.find_or_create({"g": 1}, {"id": "z", "g": 1}) == b
        assert store.find_all() == [b, d]

    def test_find_page_treats_expired_records_as_absent(self, make_store: StoreFactory) -> None:
        store = _expiring(make_store, id_field=("p", "s"), key_type=(str, int))
        gone, later = past(), future()
        store.put_many({"p": "x", "s": s, TTL: gone if s % 2 else later} for s in range(1, 8))
        live = [{"p": "x", "s": s, TTL: later} for s in (2, 4, 6)]
        # Records 1, 3, 5 and 7 have expired: the last live record ends the read.
        page = store.find_page({"p": "x"}, limit=3)
        assert (page.records, page.cursor) == (live, None)
        first = store.find_page({"p": "x"}, limit=2)
        assert first.records == live[:2]
        assert first.cursor is not None
        second = store.find_page({"p": "x"}, limit=2, cursor=first.cursor)
        assert (second.records, second.cursor) == (live[2:], None)
        seen, cursor = [], None
        for _ in range(len(live)):
            one = store.find_page({"p": "x"}, limit=1, cursor=cursor, descending=True)
            assert len(one.records) == 1
            seen += one.records
            cursor = one.cursor
        assert cursor is None
        assert seen == live[::-1]
        assert store.find_page({"p": "x", "s": 3}, limit=5).records == []

    def test_expiry_reads_the_callers_clock_at_each_call(
        self, make_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        store = _expiring(make_store)
        now = time.time()
        soon = {"id": "soon", TTL: int(now) + 3600}
        later = {"id": "later", TTL: int(now) + 3 * 3600}
        store.put_many([soon, later])
        assert store.find_all() == [later, soon]
        real = time.time
        with monkeypatch.context() as patch:
            # Two hours on: "soon" is at or before the caller's clock, "later" is not.
            patch.setattr(time, "time", lambda: real() + 2 * 3600)
            assert store.find_all() == [later]
            with pytest.raises(NotFound):
                store.find({"id": "soon"})
            assert store.count() == 1
            assert store.create({"id": "soon", "new": 1}) == {"id": "soon", "new": 1}
        assert store.find_all() == [later, {"id": "soon", "new": 1}]

    def test_create_may_take_an_expired_key(self, make_store: StoreFactory) -> None:
        store = _expiring(make_store)
        store.put({"id": "a", "old": 1, TTL: past()})
        assert store.create({"id": "a", "new": 1}) == {"id": "a", "new": 1}
        assert store.find({"id": "a"}) == {"id": "a", "new": 1}
        # The new record replaced the expired one whole: no field of it is left.
        assert _raw(make_store, store).find_all() == [{"id": "a", "new": 1}]

    def test_create_on_a_live_key_still_raises_already_exists(
        self, make_store: StoreFactory
    ) -> None:
        store = _expiring(make_store)
        stored = store.put({"id": "a", "old": 1, TTL: future()})
        with pytest.raises(AlreadyExists):
            store.create({"id": "a", "new": 1})
        assert store.find_all() == [stored]

    def test_find_or_create_may_take_an_expired_key(self, make_store: StoreFactory) -> None:
        store = _expiring(make_store)
        gone = past()
        store.put_many(
            [
                {"id": "a", "name": "x", TTL: gone},
                {"id": "b", "name": "y", TTL: gone},
                {"id": "c", "name": "z", TTL: gone},
            ]
        )
        by_key = store.find_or_create({"id": "a"}, {"id": "a", "v": 1})
        assert by_key == {"id": "a", "v": 1}
        by_field = store.find_or_create({"name": "y"}, {"id": "b", "name": "y", "v": 2})
        assert by_field == {"id": "b", "name": "y", "v": 2}
        # Nothing live matches and the key is only held by an expired record: no AlreadyExists.
        other = store.find_or_create({"name": "w"}, {"id": "c", "name": "w"})
        assert other == {"id": "c", "name": "w"}
        assert store.find_all() == [by_key, by_field, other]
        assert _raw(make_store, store).find_all() == [by_key, by_field, other]

    def test_update_of_an_expired_record_raises_not_found(self, make_store: StoreFactory) -> None:
        store = _expiring(make_store)
        original = {"id": "a", "x": 1, TTL: past()}
        store.put(original)
        for changes in (
            {"id": "a", "x": 2},
            {"id": "a", TTL: future()},
            {"id": "a", TTL: None},
            {"id": "a", "n": kvstore.increment(1)},
        ):
            with pytest.raises(NotFound):
                store.update(changes)
        with pytest.raises(NotFound):
            store.update({"id": "a", "x": 2}, expect={"x": 1})
        with pytest.raises(NotFound):
            store.find({"id": "a"})
        assert store.count() == 0
        # Not changed nor revived (a backend may have deleted it meanwhile).
        assert _raw(make_store, store).find_all() in ([], [original])

    def test_put_expect_sees_an_empty_record_for_an_expired_key(
        self, make_store: StoreFactory
    ) -> None:
        store = _expiring(make_store)
        original = {"id": "a", "x": 1, TTL: past()}
        store.put(original)
        for expect in ({"x": 1}, {"x": kvstore.exists()}, {TTL: kvstore.exists()}, {"id": "a"}):
            with pytest.raises(kvstore.ConditionFailed):
                store.put({"id": "a", "x": 2}, expect=expect)
        with pytest.raises(NotFound):
            store.find({"id": "a"})
        assert _raw(make_store, store).find_all() in ([], [original])
        assert store.put({"id": "a", "x": 2}, expect={"x": None}) == {"id": "a", "x": 2}
        assert store.find({"id": "a"}) == {"id": "a", "x": 2}
        store.put({"id": "b", "x": 1, TTL: past()})
        assert store.put({"id": "b", "y": 1}, expect={}) == {"id": "b", "y": 1}
        assert _raw(make_store, store).find_all() == [{"id": "a", "x": 2}, {"id": "b", "y": 1}]

    def test_put_replaces_an_expired_record_whole(self, make_store: StoreFactory) -> None:
        store = _expiring(make_store)
        store.put({"id": "a", "old": 1, TTL: past()})
        assert store.put({"id": "a", "new": 1}) == {"id": "a", "new": 1}
        assert _raw(make_store, store).find_all() == [{"id": "a", "new": 1}]

    def test_update_can_set_move_and_clear_the_expiry(self, make_store: StoreFactory) -> None:
        store = _expiring(make_store)
        store.put_many([{"id": "a", "x": 1}, {"id": "b", TTL: future()}])
        gone = past()
        assert typed(store.update({"id": "a", TTL: gone})) == typed({"id": "a", "x": 1, TTL: gone})
        with pytest.raises(NotFound):
            store.find({"id": "a"})
        assert store.update({"id": "b", TTL: None}) == {"id": "b"}
        later = future()
        assert typed(store.update({"id": "b", TTL: later})) == typed({"id": "b", TTL: later})
        assert typed(store.find_all()) == typed([{"id": "b", TTL: later}])

    def test_remove_counts_only_unexpired_records(self, make_store: StoreFactory) -> None:
        store = _expiring(make_store)
        gone, later = past(), future()
        store.put_many(
            [
                {"id": "e1", "g": 1, TTL: gone},
                {"id": "e2", "g": 1, TTL: gone},
                {"id": "l1", "g": 1, TTL: later},
                {"id": "l2", "g": 1},
                {"id": "l3", "g": 1, TTL: later},
                {"id": "other", "g": 2},
                {"id": "e3", "g": 2, TTL: gone},
            ]
        )
        assert store.remove({"id": "e3"}) == 0
        assert store.remove({"g": 1}) == 3
        assert store.find_all() == [{"id": "other", "g": 2}]
        assert store.remove({"g": 2}) == 1
        assert store.count() == 0

    def test_remove_in_counts_only_unexpired_records(self, make_store: StoreFactory) -> None:
        store = _expiring(make_store)
        gone, later = past(), future()
        store.put_many(
            [
                {"id": "e1", "g": 1, TTL: gone},
                {"id": "e2", "g": 2, TTL: gone},
                {"id": "l1", "g": 1, TTL: later},
                {"id": "l2", "g": 2},
                {"id": "l3", "g": 3},
            ]
        )
        assert store.remove_in("id", ["e1", "e2", "l1", "nobody"]) == 1
        assert store.remove_in("g", [2, 3]) == 2
        assert store.count() == 0

    def test_truncate_counts_only_unexpired_records(self, make_store: StoreFactory) -> None:
        store = _expiring(make_store)
        gone = past()
        store.put_many(
            [{"id": f"e{i}", TTL: gone} for i in range(4)]
            + [{"id": "l1", TTL: future()}, {"id": "l2"}]
        )
        assert store.truncate(force=True) == 2
        assert store.count() == 0
        assert store.find_all() == []

    def test_purge_expired_deletes_expired_records_and_returns_how_many(
        self, make_store: StoreFactory
    ) -> None:
        store = _expiring(make_store)
        raw = _raw(make_store, store)
        gone, later = past(), future()
        # Written without ttl_field, so nothing could treat them as expired before the purge.
        expired: list[dict[str, Any]] = [{"id": f"e{i:02}", TTL: int(gone) - i} for i in range(30)]
        expired += [{"id": "f_float", TTL: gone}, {"id": "f_zero", TTL: 0}]
        live: list[dict[str, Any]] = [
            {"id": "l_float", TTL: later},
            {"id": "l_int", TTL: int(later)},
            {"id": "n"},
        ]
        raw.put_many(expired + live)
        assert store.purge_expired() == len(expired)
        assert raw.find_all() == live
        assert store.purge_expired() == 0
        assert store.find_all() == live

    def test_purge_expired_on_an_empty_kind_returns_zero(self, make_store: StoreFactory) -> None:
        store = _expiring(make_store)
        assert store.purge_expired() == 0
        store.put({"id": "a", TTL: future()})
        assert store.purge_expired() == 0
        assert store.count() == 1

    def test_purge_expired_without_ttl_field_is_rejected(self, make_store: StoreFactory) -> None:
        plain = make_store()
        plain.put({"id": "a", TTL: past()})
        with pytest.raises(OperationRejected) as info:
            plain.purge_expired()
        assert info.value.code == "OPERATION_REJECTED"
        assert keys(plain.find_all()) == ["a"]
        # Decided by the store's options alone, before any I/O: a missing table does not matter.
        with pytest.raises(OperationRejected):
            make_store(ensure=False).purge_expired()

    def test_purge_expired_on_a_missing_table_raises_config_error(
        self, make_store: StoreFactory
    ) -> None:
        store = _expiring(make_store, ensure=False)
        with pytest.raises(ConfigError):
            store.purge_expired()
