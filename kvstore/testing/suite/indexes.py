"""Contract, "Indexes and how a read is served": declarations, explain, sparse and typed indexes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from kvstore import (  # type: ignore[attr-defined, unused-ignore]
    ConfigError,
    Index,
    InvalidArgument,
    MultipleFound,
    NotFound,
)
from kvstore.testing.fixtures import StoreFixtures
from kvstore.testing.suite.helpers import keys, typed
from kvstore.testing.suite.index_cases import (
    BAD_INDEXED,
    BAD_INDEXES,
    EQUALITY_READS,
    EXPLAINED,
    FILTERED_READS,
    GOOD_INDEXED,
    GOOD_INDEXES,
    KEY_READS,
    SCAN_READS,
    SORT_FIELD_READS,
    USERS,
    _explain_id,
    user_indexes,
)
from kvstore.testing.suite.matching import Cond, QueryStoreFactory, build, select


def _writes(store: Any, record: dict[str, Any]) -> dict[str, Callable[[], Any]]:
    """Every write of ``record`` (whose key is ``id``)."""
    return {
        "put": lambda: store.put(record),
        "create": lambda: store.create(record),
        "put_many": lambda: store.put_many([{"id": "zz_first_of_chunk"}, record]),
        "find_or_create": lambda: store.find_or_create({"id": record["id"]}, record),
    }


class AbstractIndexTests(StoreFixtures):
    """Index declarations, ``explain``, sparse and typed indexes (``scan=False``: ``scans.py``).

    Reads served by an index return exactly what a scan returns: each test compares with the
    test's own records filtered in Python and with a store of the same kind declaring no index.
    """

    @pytest.fixture
    def users(self, make_store: QueryStoreFactory) -> tuple[Any, Any]:
        """(a store declaring ``user_indexes``, a store of the same kind declaring none)."""
        store = make_store(indexes=user_indexes())
        plain = make_store(kind=store.kind, ensure=False)
        assert store.put_many(USERS) == len(USERS)
        return store, plain

    def _check_reads(self, users: tuple[Any, Any], cases: list[tuple[dict[str, Any], str]]) -> None:
        store, plain = users
        for filters, how in cases:
            wanted = select(USERS, filters, ["id"])
            assert store.explain(build(filters)) == how, filters
            assert plain.explain(build(filters)) in ("key", "scan"), filters
            assert typed(store.find_all(build(filters))) == typed(wanted), filters
            assert typed(plain.find_all(build(filters))) == typed(wanted), filters
            assert store.count(build(filters)) == len(wanted), filters
            streamed = sorted(store.iter_all(build(filters)), key=lambda r: r["id"])
            assert typed(streamed) == typed(wanted), filters

    # -- declarations ---------------------------------------------------------------------------

    @pytest.mark.parametrize("name", list(BAD_INDEXES), ids=str)
    def test_create_store_refuses_a_bad_index_declaration(
        self, make_store: QueryStoreFactory, name: str
    ) -> None:
        with pytest.raises(InvalidArgument):
            make_store(ensure=False, indexes=BAD_INDEXES[name]())

    @pytest.mark.parametrize("name", list(GOOD_INDEXES), ids=str)
    def test_create_store_takes_a_good_index_declaration(
        self, make_store: QueryStoreFactory, name: str
    ) -> None:
        store = make_store(ensure=False, indexes=GOOD_INDEXES[name]())
        assert store.explain({}) == "scan"

    def test_ensure_creates_the_indexes_and_is_idempotent(
        self, make_store: QueryStoreFactory
    ) -> None:
        store = make_store(indexes=user_indexes())
        store.ensure()
        store.put_many(USERS)
        store.ensure()
        filters = {"team": "t1", "joined": Cond("ge", 2024)}
        assert store.explain(build(filters)) == "index:by_team"
        assert store.find_all(build(filters)) == select(USERS, filters, ["id"])

    def test_ensure_adds_missing_indexes_to_an_existing_kind(
        self, make_store: QueryStoreFactory
    ) -> None:
        plain = make_store()
        plain.put_many(USERS)
        store = make_store(kind=plain.kind, indexes=user_indexes())  # ensure() adds the indexes
        for filters in (
            {"email": "ada@example.com"},
            {"team": "t2", "joined": Cond("lt", 2024)},
            {"level": -1},
            {"country": "de", "city": Cond("begins_with", "Z")},
        ):
            wanted = select(USERS, filters, ["id"])
            assert wanted, filters
            assert store.find_all(build(filters)) == wanted, filters

    def test_ensure_refuses_an_index_of_the_same_name_on_other_fields(
        self, make_store: QueryStoreFactory
    ) -> None:
        first = make_store(indexes=[Index("by_x", "email")])
        first.put({"id": "a", "email": "ada@example.com", "team": "t1"})
        changed = make_store(kind=first.kind, ensure=False, indexes=[Index("by_x", "team")])
        with pytest.raises(ConfigError, match="by_x"):
            changed.ensure()
        # The same declaration again is fine, and the index still serves its reads.
        make_store(kind=first.kind, indexes=[Index("by_x", "email")])
        assert first.find({"email": "ada@example.com"})["id"] == "a"

    # -- explain --------------------------------------------------------------------------------

    @pytest.mark.parametrize("case", EXPLAINED, ids=_explain_id)
    def test_explain_names_the_first_way_that_applies(
        self, make_store: QueryStoreFactory, case: tuple[Any, Any, dict[str, Any], str]
    ) -> None:
        id_field, key_type, filters, how = case
        indexes = [
            Index("by_email", "email"),
            Index("by_team", ("team", "joined"), key_type=(str, float)),
        ]
        # No table: explain decides from the filters and the declarations alone, without I/O.
        store = make_store(ensure=False, id_field=id_field, key_type=key_type, indexes=indexes)
        answer = store.explain(build(filters))
        assert isinstance(answer, str)
        assert answer == how

    def test_explain_without_indexes_knows_only_key_partition_and_scan(
        self, make_store: QueryStoreFactory
    ) -> None:
        store = make_store(ensure=False, id_field=("team_id", "seq"), key_type=(str, int))
        assert store.explain({"team_id": "t", "seq": 1}) == "key"
        assert store.explain({"team_id": "t", "email": "x"}) == "partition"
        assert store.explain({"email": "x"}) == "scan"
        assert store.explain({}) == "scan"

    def test_the_first_declared_index_wins(self, make_store: QueryStoreFactory) -> None:
        a_first = make_store(ensure=False, indexes=[Index("by_a", "a"), Index("by_b", "b")])
        b_first = make_store(ensure=False, indexes=[Index("by_b", "b"), Index("by_a", "a")])
        for filters in ({"a": "x", "b": "y"}, {"b": "y", "a": "x"}):
            assert a_first.explain(filters) == "index:by_a"
            assert b_first.explain(filters) == "index:by_b"
        assert a_first.explain({"b": "y", "a": None}) == "index:by_b"
        assert a_first.explain({"b": "y", "a": Cond("exists").build()}) == "index:by_b"

    def test_the_first_declared_index_wins_even_when_another_has_the_sort_field(
        self, make_store: QueryStoreFactory
    ) -> None:
        indexes = [
            Index("first", ("g", "x"), key_type=(str, int)),
            Index("second", ("g", "y"), key_type=(str, int)),
        ]
        store = make_store(indexes=indexes)
        records = [
            {"id": f"r{i:02}", "g": "ab"[i % 2], "x": i % 3, "y": i % 4 - 1} for i in range(24)
        ]
        store.put_many(records)
        for filters in (
            {"g": "a", "y": 1},
            {"g": "a", "y": Cond("gt", 0)},
            {"g": "b", "x": Cond("le", 1), "y": Cond("ne", 2)},
        ):
            assert store.explain(build(filters)) == "index:first"
            assert store.find_all(build(filters)) == select(records, filters, ["id"])

    def test_explain_checks_its_filters(self, make_store: QueryStoreFactory) -> None:
        store = make_store(ensure=False, indexes=[Index("by_email", "email")])
        for filters in (
            {"bad-name": 1},
            {"id": 5},
            {"id": None},
            {"email": float("nan")},
            {"email": Cond("lt", True)},
        ):
            with pytest.raises(InvalidArgument):
                store.explain(build(filters))

    def test_explain_of_an_equality_of_the_wrong_type_for_the_index(
        self, make_store: QueryStoreFactory
    ) -> None:
        # Plain equality on the partition field selects the index whatever the value; no record
        # can hold a non-string there, so the read finds none, as a scan would.
        store = make_store(indexes=[Index("by_email", "email")])
        store.put_many([{"id": "a", "email": "5"}, {"id": "b", "email": "x"}])
        for value in (5, True, ["x"], {"a": "x"}):
            assert store.explain({"email": value}) == "index:by_email"
            assert store.find_all({"email": value}) == []
            assert store.count({"email": value}) == 0

    # -- reads served by an index return exactly what a scan would ------------------------------

    def test_equality_on_an_index_partition_field(self, users: tuple[Any, Any]) -> None:
        self._check_reads(users, EQUALITY_READS)

    def test_conditions_on_an_index_sort_field_narrow_the_read(
        self, users: tuple[Any, Any]
    ) -> None:
        self._check_reads(users, SORT_FIELD_READS)

    def test_other_filters_apply_on_top_of_an_index_read(self, users: tuple[Any, Any]) -> None:
        self._check_reads(users, FILTERED_READS)

    def test_reads_no_index_serves_scan(self, users: tuple[Any, Any]) -> None:
        self._check_reads(users, SCAN_READS)

    def test_key_reads_win_over_indexes(self, users: tuple[Any, Any]) -> None:
        self._check_reads(users, KEY_READS)

    def test_find_through_an_index(self, users: tuple[Any, Any]) -> None:
        store, _ = users
        only = select(USERS, {"team": "t2", "joined": 2**53 + 1}, ["id"])
        assert len(only) == 1
        assert typed(store.find({"team": "t2", "joined": 2**53 + 1})) == typed(only[0])
        with pytest.raises(MultipleFound):
            store.find({"email": "ada@example.com"})
        with pytest.raises(NotFound):
            store.find({"email": "nobody@example.com"})
        with pytest.raises(NotFound):
            store.find({"team": "t1", "joined": Cond("gt", 1e20).build()})

    def test_find_in_and_remove_in_on_an_index_partition_field(
        self, users: tuple[Any, Any]
    ) -> None:
        store, _ = users
        values = ["bob@example.com", "\u00e9mile@example.com", "nobody@example.com"]
        wanted = [u for u in USERS if u.get("email") in values]
        assert typed(store.find_in("email", values)) == typed(wanted)
        assert store.remove_in("email", values) == len(wanted)
        left = [u for u in USERS if u.get("email") not in values]
        assert typed(store.find_all()) == typed(left)
        assert store.find_all({"email": "bob@example.com"}) == []

    def test_remove_through_an_index(self, users: tuple[Any, Any]) -> None:
        store, _ = users
        filters = {"team": "t1", "joined": Cond("ge", 2024)}
        gone = select(USERS, filters, ["id"])
        assert gone
        assert store.remove(build(filters)) == len(gone)
        assert keys(store.find_all()) == sorted(set(keys(USERS)) - set(keys(gone)))
        assert store.find_all(build(filters)) == []

    def test_index_reads_follow_writes(self, make_store: QueryStoreFactory) -> None:
        store = make_store(indexes=user_indexes())
        store.put({"id": "a", "email": "x@example.com"})
        assert store.find({"email": "x@example.com"})["id"] == "a"
        store.update({"id": "a", "email": "y@example.com"})
        assert store.find_all({"email": "x@example.com"}) == []
        assert store.find({"email": "y@example.com"})["id"] == "a"
        store.update({"id": "a", "email": None})
        assert store.find_all({"email": "y@example.com"}) == []
        assert keys(store.find_all({"email": None})) == ["a"]
        store.put({"id": "a", "email": "z@example.com", "team": "t1", "joined": 1})
        assert keys(store.find_all({"team": "t1", "joined": Cond("lt", 2).build()})) == ["a"]
        store.update({"id": "a", "joined": 2.5})
        assert store.find_all({"team": "t1", "joined": Cond("lt", 2).build()}) == []
        assert keys(store.find_all({"team": "t1", "joined": Cond("gt", 2).build()})) == ["a"]
        store.put({"id": "a", "team": "t2", "joined": 2.5})
        assert store.find_all({"team": "t1"}) == []
        assert store.find_all({"email": "z@example.com"}) == []
        assert store.remove({"team": "t2"}) == 1
        assert store.find_all({"team": "t2"}) == []
        assert store.count() == 0

    # -- sparse indexes -------------------------------------------------------------------------

    def test_a_record_without_the_partition_field_is_in_no_index_but_still_read(
        self, users: tuple[Any, Any]
    ) -> None:
        store, _ = users
        without = [u for u in USERS if "email" not in u]
        assert without
        assert typed(store.find_all({"email": None})) == typed(without)
        assert store.count() == len(USERS)
        assert typed(store.find_all()) == typed(USERS)
        for user in without:
            assert typed(store.find({"id": user["id"]})) == typed(user)

    # -- the index typing rule on writes ---------------------------------------------------------

    @pytest.mark.parametrize("name", list(BAD_INDEXED), ids=str)
    def test_a_badly_typed_index_field_is_invalid_before_any_io(
        self, make_store: QueryStoreFactory, name: str
    ) -> None:
        fields, in_changes = BAD_INDEXED[name]
        store = make_store(ensure=False, indexes=user_indexes())
        record = {"id": "a", **fields}
        calls = _writes(store, record)
        if in_changes:
            calls["update"] = lambda: store.update(record)
        for call in calls.values():
            with pytest.raises(InvalidArgument):
                call()

    @pytest.mark.parametrize("name", list(BAD_INDEXED), ids=str)
    def test_a_badly_typed_index_field_changes_nothing(
        self, make_store: QueryStoreFactory, name: str
    ) -> None:
        fields, in_changes = BAD_INDEXED[name]
        store = make_store(indexes=user_indexes())
        before = {"id": "a", "email": "a@example.com", "team": "t9", "joined": 7}
        store.put(before)
        record = {"id": "a", **fields}
        calls = _writes(store, record)
        if in_changes:
            calls["update"] = lambda: store.update(record)
        for call in calls.values():
            with pytest.raises(InvalidArgument):
                call()
        assert typed(store.find_all()) == typed([before])  # nothing of put_many's chunk either

    def test_removing_the_sort_field_of_an_indexed_record_in_one_update_is_invalid(
        self, make_store: QueryStoreFactory
    ) -> None:
        store = make_store(ensure=False, indexes=user_indexes())
        for changes in (
            {"id": "a", "team": "t1", "joined": None},
            {"id": "a", "level": 1, "rank": None},
        ):
            with pytest.raises(InvalidArgument):
                store.update(changes)

    def test_a_badly_typed_sort_field_is_invalid_even_without_the_partition_field(
        self, make_store: QueryStoreFactory
    ) -> None:
        # "every index field must hold a value of its declared type"; DynamoDB refuses a wrongly
        # typed index attribute whether or not the item has the index's other attribute.
        store = make_store(ensure=False, indexes=user_indexes())
        for fields in ({"joined": "soon"}, {"rank": 1.5}, {"city": ""}, {"city": 3}):
            with pytest.raises(InvalidArgument):
                store.put({"id": "a", **fields})

    @pytest.mark.parametrize("name", list(GOOD_INDEXED), ids=str)
    def test_a_well_typed_index_field_is_written_and_found(
        self, make_store: QueryStoreFactory, name: str
    ) -> None:
        fields, read = GOOD_INDEXED[name]
        store = make_store(indexes=user_indexes())
        record = {"id": "a", **fields}
        stored = {key: value for key, value in record.items() if value is not None}
        assert typed(store.put(record)) == typed(stored)
        store.put({"id": "b", "other": 2})
        assert typed(store.find_all()) == typed([stored, {"id": "b", "other": 2}])
        if read is not None:
            assert store.explain(build(read)).startswith("index:")
            assert typed(store.find_all(build(read))) == typed([stored])
        store.remove({"id": "a"})
        assert typed(store.create(record)) == typed(stored)
        assert typed(store.update(record)) == typed(stored)
