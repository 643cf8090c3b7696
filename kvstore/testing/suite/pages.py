"""Contract, "Pages": find_page's order, page sizes and ends (its cursors: ``cursors.py``)."""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Any

import pytest

from kvstore import (  # type: ignore[attr-defined, unused-ignore]
    ConfigError,
    Index,
    InvalidArgument,
    OperationRejected,
    Page,
)
from kvstore.testing.fixtures import StoreFixtures
from kvstore.testing.suite.helpers import typed
from kvstore.testing.suite.matching import Cond, QueryStoreFactory, build, select

KEY: dict[str, Any] = {"id_field": ("team_id", "seq"), "key_type": (str, int)}
PK = ["team_id", "seq"]

URL_SAFE = frozenset(string.ascii_letters + string.digits + "-_.~=")
"""Characters a URL carries unescaped (RFC 3986 "unreserved"), plus base64's padding ``=``."""

SHORT_CURSOR = 150
"""The most characters the suite accepts for "about 100 for short keys"."""


def member_indexes() -> list[Any]:
    """A number sort field, no sort field, a string sort field."""
    return [
        Index("by_score", ("grp", "score"), key_type=(str, float)),
        Index("by_tag", "tag"),
        Index("by_label", ("lbl", "name"), key_type=(str, str)),
    ]


SCORES: list[Any] = [1, 2.5, 2.5, -3, 1e20, 1, 2**53 + 1, 0.5, 2.5]
NAMES = ["b", "a", "B", "\u00e9", "e\u0301", "\u4e2d", "\uffee", "\U0001f600", "ab", "a"]
META = {"a": 1, "b": [1, {"c": 2, "d": 3}]}


def _members() -> list[dict[str, Any]]:
    """Records of ``KEY`` and ``member_indexes``, with ties in every index sort field."""
    members: list[dict[str, Any]] = []
    teams = (("t1", range(-5, 18)), ("t2", range(5)), ("\u4e2d", range(3)), ("T1", range(3)))
    for team, seqs in teams:
        for seq in seqs:
            n = len(members)
            member: dict[str, Any] = {"team_id": team, "seq": seq, "n": n}
            member.update(odd=seq % 2 == 1, x=seq % 3)
            if n % 4 != 3:
                member.update(grp="g1" if n % 3 else "g2", score=SCORES[n % 9])
            if n % 2 == 0:
                member["tag"] = "even"
            if n % 5 != 0:
                member.update(lbl="L", name=NAMES[n % 10])
            if seq % 2 == 0:
                member["meta"] = META
            members.append(member)
    return members


MEMBERS = _members()

# Reads find_page serves, each with the fields that order it (before the primary key's).
READS: dict[str, tuple[dict[str, Any], list[str]]] = {
    "partition": ({"team_id": "t1"}, PK),
    "partition and a filter": ({"team_id": "t1", "odd": True}, PK),
    "partition and a sort key range": ({"team_id": "t1", "seq": Cond("between", -2, 9)}, PK),
    "partition and conditions": (
        {"team_id": "t1", "seq": Cond("ne", 3), "grp": None, "x": Cond("one_of", [0, 2])},
        PK,
    ),
    "index with ties": ({"grp": "g1"}, ["score", *PK]),
    "index and a sort field range": ({"grp": "g1", "score": Cond("ge", 1)}, ["score", *PK]),
    "index and filters": ({"grp": "g1", "x": Cond("ne", 1), "lbl": Cond("exists")}, ["score", *PK]),
    "index without a sort field": ({"tag": "even"}, PK),
    "index with a string sort field": ({"lbl": "L"}, ["name", *PK]),
    "index and a prefix": ({"lbl": "L", "name": Cond("begins_with", "a")}, ["name", *PK]),
    "index and a string range": (
        {"lbl": "L", "name": Cond("between", "B", "\u00e9")},
        ["name", *PK],
    ),
}


def expected(filters: dict[str, Any], order: list[str], descending: bool = False) -> list[Any]:
    """MEMBERS matching ``filters`` in paging order."""
    found = select(MEMBERS, filters, order)
    return found[::-1] if descending else found


def read_pages(
    store: Any,
    filters: dict[str, Any],
    limits: Sequence[int],
    *,
    cursor: str | None = None,
    descending: bool = False,
    most: int = 1000,
) -> tuple[list[dict[str, Any]], list[int]]:
    """Every record of the pages from ``cursor`` on, and each page's size, checking that each page
    but the last is full and that a cursor is given exactly when a further record matches.

    ``filters`` may hold ``Cond``s: each call builds its own condition objects, as a client
    handling one request a page would.
    """
    records: list[dict[str, Any]] = []
    sizes: list[int] = []
    for number in range(most):
        limit = limits[number % len(limits)]
        page = store.find_page(build(filters), limit=limit, cursor=cursor, descending=descending)
        assert isinstance(page.records, list)
        if page.cursor is None:
            assert len(page.records) <= limit
        else:
            assert isinstance(page.cursor, str)
            assert len(page.records) == limit, "only the last page may hold fewer than limit"
        if cursor is not None:
            assert page.records, "a cursor was given although no further record matched"
        records.extend(page.records)
        sizes.append(len(page.records))
        cursor = page.cursor
        if cursor is None:
            return records, sizes
    raise AssertionError(f"find_page gave a cursor {most} times over")


def sizes_of(count: int, limit: int) -> list[int]:
    """The page sizes of ``count`` records paged ``limit`` at a time."""
    sizes = [limit] * (count // limit) + ([count % limit] if count % limit else [])
    return sizes or [0]


def url_safe(cursor: str) -> bool:
    """Whether ``cursor`` goes into a URL unescaped."""
    return bool(cursor) and set(cursor) <= URL_SAFE


def _changed(cursor: str) -> list[str]:
    """``cursor`` with one character replaced, at every position, in two ways."""
    variants = []
    for i, char in enumerate(cursor):
        for other in ("A" if char != "A" else "B", "-" if char != "-" else "_"):
            variants.append(cursor[:i] + other + cursor[i + 1 :])
        if char.swapcase() != char:
            variants.append(cursor[:i] + char.swapcase() + cursor[i + 1 :])
    return variants


def _cut(cursor: str) -> list[str]:
    third = len(cursor) // 3
    return [
        cursor[:-1],
        cursor[1:],
        cursor[:-2],
        cursor[: len(cursor) // 2],
        cursor[:third] + cursor[third + 1 :],
        cursor[: 2 * third] + cursor[2 * third + 1 :],
        "",
    ]


def _added(cursor: str) -> list[str]:
    half = len(cursor) // 2
    return [
        cursor + "A",
        "A" + cursor,
        cursor[:half] + "A" + cursor[half:],
        cursor + "=",
        cursor + "==",
        cursor + ".",
        cursor + cursor,
        cursor + "\n",
        " " + cursor,
        cursor + "%",
        cursor + "+",
        cursor + "/",
    ]


class PageFixtures(StoreFixtures):
    """A kind of team members with indexes, and its first pages (for the page and cursor tests)."""

    @pytest.fixture
    def members(self, make_store: QueryStoreFactory) -> Any:
        store = make_store(indexes=member_indexes(), **KEY)
        assert store.put_many(MEMBERS) == len(MEMBERS)
        return store

    def _first_page(self, store: Any, filters: dict[str, Any], limit: int, **kw: Any) -> Any:
        page = store.find_page(build(filters), limit=limit, **kw)
        assert page.cursor is not None, "the test needs a read of more than one page"
        return page


class AbstractPageTests(PageFixtures):
    """``find_page`` on partition and index reads: order, sizes, ends, cursors and their checks."""

    # -- the page ---------------------------------------------------------------------------------

    def test_a_page_is_a_named_tuple_of_records_and_cursor(self, members: Any) -> None:
        page = members.find_page({"team_id": "t1"}, limit=5)
        assert isinstance(page, Page)
        assert issubclass(type(page), tuple)
        assert Page._fields == ("records", "cursor")
        records, cursor = page
        assert records is page.records
        assert cursor is page.cursor
        assert typed(records) == typed(expected({"team_id": "t1"}, PK)[:5])
        assert isinstance(cursor, str)
        again = members.find_page({"team_id": "t1"}, limit=5, cursor=None, descending=False)
        assert typed(again.records) == typed(records)

    @pytest.mark.parametrize("read", list(READS), ids=str)
    def test_pages_follow_the_serving_keys_order(self, members: Any, read: str) -> None:
        filters, order = READS[read]
        for descending in (False, True):
            wanted = expected(filters, order, descending)
            assert len(wanted) >= 3, "the test needs a few matches"
            for limit in (1, 2, 5, len(wanted) - 1, len(wanted), len(wanted) + 1, 1000):
                found, sizes = read_pages(members, filters, [limit], descending=descending)
                assert typed(found) == typed(wanted), (descending, limit)
                assert sizes == sizes_of(len(wanted), limit), (descending, limit)

    def test_descending_is_the_exact_reverse_ties_included(self, members: Any) -> None:
        for filters, order in (READS["index with ties"], READS["index with a string sort field"]):
            ascending, _ = read_pages(members, filters, [4])
            descending, _ = read_pages(members, filters, [4], descending=True)
            assert typed(descending) == typed(ascending[::-1])
            # Ties (equal sort values) exist, and come in primary key order.
            values = [record[order[0]] for record in ascending]
            assert len(set(values)) < len(values)
            assert typed(ascending) == typed(expected(filters, order))

    def test_the_last_page_ends_the_read_even_when_it_is_full(self, members: Any) -> None:
        filters: dict[str, Any] = {"team_id": "t1", "seq": Cond("between", 0, 9)}
        assert len(expected(filters, PK)) == 10
        for limit, sizes in ((5, [5, 5]), (10, [10]), (2, [2] * 5), (1, [1] * 10)):
            for descending in (False, True):
                found, got = read_pages(members, filters, [limit], descending=descending)
                assert got == sizes
                assert typed(found) == typed(expected(filters, PK, descending))

    def test_a_key_read_is_one_page(self, members: Any) -> None:
        record = next(m for m in MEMBERS if m["team_id"] == "t1" and m["seq"] == 3)
        for limit in (1, 5):
            for descending in (False, True):
                page = members.find_page(
                    {"team_id": "t1", "seq": 3}, limit=limit, descending=descending
                )
                assert typed(page.records) == typed([record])
                assert page.cursor is None
        for filters in ({"team_id": "t1", "seq": 3, "x": 99}, {"team_id": "t1", "seq": 99}):
            assert tuple(members.find_page(filters, limit=1)) == ([], None)

    def test_no_match_is_one_empty_page(self, members: Any) -> None:
        for filters in (
            {"team_id": "nobody"},
            {"team_id": "t1", "x": 99},
            {"grp": "nope"},
            {"grp": "g1", "score": Cond("gt", 1e20)},
            {"lbl": "L", "name": Cond("begins_with", "zzz")},
        ):
            for descending in (False, True):
                page = members.find_page(build(filters), limit=3, descending=descending)
                assert page.records == []
                assert page.cursor is None

    def test_filters_dropping_records_do_not_shrink_pages(self, members: Any) -> None:
        last = max((m for m in MEMBERS if m["team_id"] == "t1"), key=lambda m: m["seq"])
        first = min((m for m in MEMBERS if m["team_id"] == "t1"), key=lambda m: m["seq"])
        for found_one, descending in ((last, False), (first, True)):
            page = members.find_page(
                {"team_id": "t1", "n": found_one["n"]}, limit=5, descending=descending
            )
            assert typed(page.records) == typed([found_one])
            assert page.cursor is None
        filters: dict[str, Any] = {"team_id": "t1", "x": 0, "odd": True}
        wanted = expected(filters, PK)
        found, sizes = read_pages(members, filters, [2])
        assert typed(found) == typed(wanted)
        assert sizes == sizes_of(len(wanted), 2)

    def test_the_limit_may_change_from_one_page_to_the_next(self, members: Any) -> None:
        for read in ("partition", "index with ties", "index and a prefix"):
            filters, order = READS[read]
            for descending in (False, True):
                found, sizes = read_pages(members, filters, [3, 1, 7, 2], descending=descending)
                assert typed(found) == typed(expected(filters, order, descending)), read
                assert len(sizes) > 2, "the test needs a read of a few pages"

    def test_a_page_may_hold_more_than_a_megabyte(self, make_store: QueryStoreFactory) -> None:
        # DynamoDB answers at most 1 MB a request: a page of more must take several.
        store = make_store(**KEY)
        count = self.many_records
        pad = "p" * max(1000, 1_100_000 // count + 1)
        records = [
            {"team_id": "big", "seq": i, "pad": pad, "odd": i % 2 == 1} for i in range(count)
        ]
        store.put_many(records)
        limit = min(1000, count)
        page = store.find_page({"team_id": "big"}, limit=limit)
        assert [r["seq"] for r in page.records] == list(range(limit))
        assert (page.cursor is None) == (limit == count)
        odd, _ = read_pages(store, {"team_id": "big", "odd": True}, [1000])
        assert [r["seq"] for r in odd] == list(range(1, count, 2))
        for descending in (False, True):
            found, sizes = read_pages(store, {"team_id": "big"}, [64], descending=descending)
            seqs = list(range(count))
            assert [r["seq"] for r in found] == (seqs[::-1] if descending else seqs)
            assert sizes == sizes_of(count, 64)

    # -- arguments --------------------------------------------------------------------------------

    @pytest.mark.parametrize("limit", [0, -1, 1001, 10**6, 1.5, "5", None], ids=repr)
    def test_a_limit_out_of_1_to_1000_is_invalid_before_any_io(
        self, make_store: QueryStoreFactory, limit: Any
    ) -> None:
        store = make_store(ensure=False, **KEY)
        with pytest.raises(InvalidArgument):
            store.find_page({"team_id": "t1"}, limit=limit)

    def test_limits_of_1_and_1000_are_valid(self, make_store: QueryStoreFactory) -> None:
        store = make_store(ensure=False, **KEY)
        for limit in (1, 1000):
            with pytest.raises(ConfigError):  # past the argument checks, at the missing table
                store.find_page({"team_id": "t1"}, limit=limit)

    def test_limit_is_a_required_keyword(self, members: Any) -> None:
        with pytest.raises(TypeError):
            members.find_page({"team_id": "t1"}, 5)
        with pytest.raises(TypeError):
            members.find_page({"team_id": "t1"})

    def test_bad_filters_are_invalid_before_any_io(self, make_store: QueryStoreFactory) -> None:
        store = make_store(ensure=False, **KEY)
        for filters in (
            {"team_id": "t1", "bad-name": 1},
            {"team_id": 1},
            {"team_id": "t1", "x": float("nan")},
            {"team_id": "t1", "seq": Cond("lt", True)},
        ):
            with pytest.raises(InvalidArgument):
                store.find_page(build(filters), limit=5)

    def test_only_key_partition_and_index_reads_are_paged(
        self, make_store: QueryStoreFactory
    ) -> None:
        missing = make_store(ensure=False, indexes=member_indexes(), **KEY)
        scans: list[dict[str, Any]] = [
            {},
            {"x": 1},
            {"seq": 1},
            {"team_id": Cond("begins_with", "t")},
            {"grp": None},
            {"grp": Cond("one_of", ["g1"])},
            {"score": 1},
            {"name": Cond("gt", "a")},
        ]
        for filters in scans:
            assert missing.explain(build(filters)) == "scan"
            for descending in (False, True):
                with pytest.raises(OperationRejected):  # before any I/O
                    missing.find_page(build(filters), limit=10, descending=descending)
        for filters, _ in READS.values():
            assert missing.explain(build(filters)) != "scan"
            with pytest.raises(ConfigError):
                missing.find_page(build(filters), limit=10)

    def test_scans_are_rejected_on_a_kind_with_records(self, members: Any) -> None:
        for filters in ({}, {"odd": True}, {"seq": 3}, {"tag": None}):
            with pytest.raises(OperationRejected):
                members.find_page(filters, limit=1000)

    def test_pages_on_a_store_without_scans(self, make_store: QueryStoreFactory) -> None:
        store = make_store(indexes=member_indexes(), scan=False, **KEY)
        store.put_many(MEMBERS)
        for read in ("partition and a filter", "index with ties", "index without a sort field"):
            filters, order = READS[read]
            found, _ = read_pages(store, filters, [4])
            assert typed(found) == typed(expected(filters, order)), read
        with pytest.raises(OperationRejected):
            store.find_page({"odd": True}, limit=10)
