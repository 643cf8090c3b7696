"""Contract, "Pages": a cursor is a short URL-safe string naming a position, checksummed (any
change, other filters, order or kind: ``InvalidArgument``), and portable across backends."""

from __future__ import annotations

from typing import Any

import pytest

from kvstore import (  # type: ignore[attr-defined, unused-ignore]
    Index,
    InvalidArgument,
    create_store,
)
from kvstore.testing.suite.helpers import typed
from kvstore.testing.suite.matching import Cond, QueryStoreFactory, build, select
from kvstore.testing.suite.pages import (
    KEY,
    MEMBERS,
    META,
    PK,
    READS,
    SHORT_CURSOR,
    PageFixtures,
    _added,
    _changed,
    _cut,
    expected,
    member_indexes,
    read_pages,
    url_safe,
)


class AbstractCursorTests(PageFixtures):
    """``find_page``'s cursors: their form, their checks, and what they continue."""

    def test_a_cursor_is_a_short_url_safe_string(self, members: Any) -> None:
        for read in (
            "partition",
            "partition and conditions",
            "index with ties",
            "index and a prefix",
        ):
            filters, _ = READS[read]
            for descending in (False, True):
                cursor = self._first_page(members, filters, 1, descending=descending).cursor
                assert isinstance(cursor, str)
                assert url_safe(cursor), cursor
                assert len(cursor) <= SHORT_CURSOR, (read, len(cursor))

    @pytest.mark.parametrize(
        "char", ["x", "\U0001d11e", '"\\\x01'], ids=["ascii", "four_bytes", "json_escapes"]
    )
    def test_a_cursor_of_the_longest_keys_fits_in_8192_characters(
        self, make_store: QueryStoreFactory, char: str
    ) -> None:
        store = make_store(
            id_field=("p", "s"),
            key_type=(str, str),
            indexes=[Index("by_g", ("g", "h"), key_type=(str, str))],
        )

        def longest(tail: str) -> str:
            """A string of exactly 1024 UTF-8 bytes of ``char`` ending with ``tail``."""
            room = 1024 - len(tail.encode("utf-8"))
            text = char * (room // len(char.encode("utf-8")))
            return text + "~" * (room - len(text.encode("utf-8"))) + tail

        p, g = longest("p"), longest("g")
        records = [{"p": p, "s": longest(str(i)), "g": g, "h": longest(str(i))} for i in range(3)]
        assert all(len(v.encode("utf-8")) == 1024 for r in records for v in r.values())
        store.put_many(records)
        for filters, order in (({"p": p}, ["p", "s"]), ({"g": g}, ["h", "p", "s"])):
            for descending in (False, True):
                wanted = select(records, filters, order)
                wanted = wanted[::-1] if descending else wanted
                page = store.find_page(filters, limit=1, descending=descending)
                assert isinstance(page.cursor, str)
                assert len(page.cursor) <= 8192
                assert url_safe(page.cursor)
                rest, _ = read_pages(store, filters, [1], cursor=page.cursor, descending=descending)
                assert typed(page.records + rest) == typed(wanted)

    @pytest.fixture(params=["partition", "index with ties"])
    def paged(self, members: Any, request: pytest.FixtureRequest) -> tuple[Any, str, str, Any]:
        """(store, read name, a cursor after the first 3 records of the read, expected rest)."""
        filters, order = READS[request.param]
        page = self._first_page(members, filters, 3)
        return members, request.param, page.cursor, expected(filters, order)[3:]

    def _rejects(self, paged: tuple[Any, str, str, Any], cursors: list[str]) -> None:
        store, read, cursor, rest = paged
        filters, _ = READS[read]
        for bad in cursors:
            assert bad != cursor
            with pytest.raises(InvalidArgument):
                store.find_page(build(filters), limit=3, cursor=bad)
        # The cursor itself still continues the read.
        found, _ = read_pages(store, filters, [3], cursor=cursor)
        assert typed(found) == typed(rest)

    def test_a_cursor_with_a_character_changed_is_invalid(
        self, paged: tuple[Any, str, str, Any]
    ) -> None:
        self._rejects(paged, _changed(paged[2]))

    def test_a_cut_cursor_is_invalid(self, paged: tuple[Any, str, str, Any]) -> None:
        self._rejects(paged, _cut(paged[2]))

    def test_a_cursor_with_a_character_added_is_invalid(
        self, paged: tuple[Any, str, str, Any]
    ) -> None:
        self._rejects(paged, _added(paged[2]))

    def test_a_cursor_not_made_by_find_page_is_invalid_before_any_io(
        self, make_store: QueryStoreFactory
    ) -> None:
        store = make_store(ensure=False, indexes=member_indexes(), **KEY)
        bad_cursors: list[Any] = ["", "x", "A" * 100, "%%%", "null", "eyJ9", 5, b"abc", ["x"], {}]
        for bad in bad_cursors:
            with pytest.raises(InvalidArgument):
                store.find_page({"team_id": "t1"}, limit=3, cursor=bad)

    def test_a_forged_cursor_of_a_position_no_record_has_is_invalid(
        self, make_store: QueryStoreFactory
    ) -> None:
        # The checksum only catches accidents: a cursor made with kvstore's own encoder, for the
        # same query but at a position no stored record can hold, is refused too, the same on
        # every backend.
        import base64

        from kvstore import pages

        store = make_store(indexes=member_indexes(), **KEY)
        store.put_many(
            {"team_id": "t1", "seq": n, "grp": "g", "score": n, "lbl": "x", "name": f"n{n}"}
            for n in range(3)
        )
        by_score, by_name = ({"grp": "g"}, [0, "t1", 0]), ({"lbl": "x"}, ["n0", "t1", 0])
        forged: list[tuple[tuple[dict[str, Any], list[Any]], list[Any]]] = [
            (by_score, [float("nan"), "t1", 1]),
            (by_score, [float("inf"), "t1", 1]),
            (by_score, [2.0, "t1", 1]),  # 2.0 reads back as the int 2
            (by_score, [1e200, "t1", 1]),
            (by_score, [1, "t\x00", 1]),
            (by_name, ["n\x00", "t1", 1]),
        ]
        for (filters, real_position), position in forged:
            real = store.find_page(filters, limit=1).cursor
            assert real is not None
            payload = base64.urlsafe_b64decode(real + "=" * (-len(real) % 4))
            digest = payload[1:10].hex()  # after the version byte: the query's digest
            # The same query at a real position continues: only the position is forged.
            control = store.find_page(
                filters, limit=2, cursor=pages.encode_cursor(digest, real_position)
            )
            assert [r["seq"] for r in control.records] == [1, 2]
            with pytest.raises(InvalidArgument):
                store.find_page(filters, limit=2, cursor=pages.encode_cursor(digest, position))

    def _other_filters_rejected(
        self, store: Any, filters: dict[str, Any], others: list[dict[str, Any]], order: list[str]
    ) -> None:
        page = self._first_page(store, filters, 2)
        for other in others:
            with pytest.raises(InvalidArgument):
                store.find_page(build(other), limit=2, cursor=page.cursor)
        found, _ = read_pages(store, filters, [2], cursor=page.cursor)
        assert typed(page.records + found) == typed(expected(filters, order))

    def test_a_cursor_with_other_filters_is_invalid(self, members: Any) -> None:
        filters: dict[str, Any] = {"team_id": "t1", "odd": True}
        self._other_filters_rejected(
            members,
            filters,
            [
                {"team_id": "t2", "odd": True},
                {"team_id": "t1"},
                {"team_id": "t1", "odd": False},
                {"team_id": "t1", "odd": 1},
                {"team_id": "t1", "odd": None},
                {"team_id": "t1", "odd": True, "x": 1},
                {"team_id": "t1", "odd": True, "grp": None},
                {"team_id": "t1", "odd": Cond("one_of", [True])},
                {"team_id": "t1", "odd": True, "seq": Cond("gt", -100)},
                {"grp": "g1", "odd": True},
            ],
            PK,
        )

    def test_a_cursor_with_other_conditions_is_invalid(self, members: Any) -> None:
        filters: dict[str, Any] = {"team_id": "t1", "seq": Cond("gt", -3)}
        self._other_filters_rejected(
            members,
            filters,
            [
                {"team_id": "t1", "seq": Cond("gt", -2)},
                {"team_id": "t1", "seq": Cond("ge", -3)},
                {"team_id": "t1", "seq": Cond("between", -3, 100)},
                {"team_id": "t1", "seq": Cond("ne", -3)},
                {"team_id": "t1"},
                {"team_id": "t1", "seq": Cond("gt", -3), "x": Cond("exists")},
            ],
            PK,
        )

    def test_a_cursor_of_an_index_read_with_other_filters_is_invalid(self, members: Any) -> None:
        filters, order = READS["index with ties"]
        self._other_filters_rejected(
            members,
            filters,
            [
                {"grp": "g2"},
                {"grp": "g1", "score": Cond("ge", -100)},
                {"grp": "g1", "score": Cond("exists")},
                {"tag": "even"},
                {"team_id": "t1"},
                {"lbl": "L"},
            ],
            order,
        )

    def test_the_order_of_filter_entries_does_not_matter(self, members: Any) -> None:
        filters: dict[str, Any] = {"team_id": "t1", "odd": True, "seq": Cond("gt", -4)}
        reordered = dict(reversed(list(filters.items())))
        assert list(reordered) != list(filters)
        page = self._first_page(members, filters, 2)
        rest, _ = read_pages(members, reordered, [2], cursor=page.cursor)
        assert typed(page.records + rest) == typed(expected(filters, PK))

    def test_the_order_of_entries_of_a_nested_dict_filter_does_not_matter(
        self, members: Any
    ) -> None:
        # Dicts compare by their entries, so a filter value's entries in another order are
        # the same filters.
        filters: dict[str, Any] = {"team_id": "t1", "meta": META}
        reordered = {"meta": {"b": [1, {"d": 3, "c": 2}], "a": 1}, "team_id": "t1"}
        page = self._first_page(members, filters, 2)
        rest, _ = read_pages(members, reordered, [2], cursor=page.cursor)
        assert typed(page.records + rest) == typed(expected(filters, PK))

    def test_a_cursor_used_with_the_other_order_is_invalid(self, members: Any) -> None:
        for read in ("partition", "index with ties"):
            filters, _ = READS[read]
            up = self._first_page(members, filters, 2)
            down = self._first_page(members, filters, 2, descending=True)
            with pytest.raises(InvalidArgument):
                members.find_page(build(filters), limit=2, cursor=up.cursor, descending=True)
            with pytest.raises(InvalidArgument):
                members.find_page(build(filters), limit=2, cursor=down.cursor)
            with pytest.raises(InvalidArgument):
                members.find_page(build(filters), limit=2, cursor=down.cursor, descending=False)

    def test_a_cursor_of_another_kind_is_invalid(
        self, members: Any, make_store: QueryStoreFactory
    ) -> None:
        other = make_store(indexes=member_indexes(), **KEY)
        other.put_many(MEMBERS)
        missing = make_store(ensure=False, indexes=member_indexes(), **KEY)
        for read in ("partition", "index with ties"):
            filters, _ = READS[read]
            cursor = self._first_page(members, filters, 2).cursor
            for store in (other, missing):  # the missing table: refused before any I/O
                with pytest.raises(InvalidArgument):
                    store.find_page(build(filters), limit=2, cursor=cursor)

    # -- paging while records change ------------------------------------------------------------

    @pytest.mark.parametrize("descending", [False, True], ids=["ascending", "descending"])
    def test_records_unchanged_while_paging_are_returned_once(
        self, make_store: QueryStoreFactory, descending: bool
    ) -> None:
        store = make_store(**KEY)
        base: list[dict[str, Any]] = [
            {"team_id": "t1", "seq": seq, "x": 0} for seq in range(0, 60, 2)
        ]
        store.put_many(base)
        unchanged = {record["seq"] for record in base}
        ahead = -1 if descending else 1
        seen: list[int] = []
        cursor = None
        for _ in range(len(base) + 1):
            page = store.find_page({"team_id": "t1"}, limit=4, cursor=cursor, descending=descending)
            seen.extend(record["seq"] for record in page.records)
            if page.cursor is None:
                break
            last = page.records[-1]["seq"]
            # New records behind and ahead of the position, a change and a removal ahead of it.
            store.put({"team_id": "t1", "seq": last - ahead, "x": 1})
            store.put({"team_id": "t1", "seq": last + ahead, "x": 1})
            if last + 4 * ahead in unchanged:
                store.update({"team_id": "t1", "seq": last + 4 * ahead, "x": 2})
                unchanged.discard(last + 4 * ahead)
            if last + 6 * ahead in unchanged:
                assert store.remove({"team_id": "t1", "seq": last + 6 * ahead}) == 1
                unchanged.discard(last + 6 * ahead)
            cursor = page.cursor
        else:
            raise AssertionError("the read never ended")
        assert unchanged
        for seq in unchanged:
            assert seen.count(seq) == 1, seq
        # A cursor names a position: each page goes on strictly after the last record returned.
        assert seen == sorted(set(seen), reverse=descending)

    @pytest.mark.parametrize("descending", [False, True], ids=["ascending", "descending"])
    def test_removing_the_record_a_cursor_points_at_loses_no_record(
        self, members: Any, descending: bool
    ) -> None:
        for read in ("partition", "index with ties", "index with a string sort field"):
            filters, order = READS[read]
            wanted = expected(filters, order, descending)
            page = self._first_page(members, filters, 5, descending=descending)
            last = page.records[-1]
            assert members.remove({"team_id": last["team_id"], "seq": last["seq"]}) == 1
            rest, _ = read_pages(members, filters, [4], cursor=page.cursor, descending=descending)
            assert typed(rest) == typed(wanted[5:]), read
            members.put(last)

    def test_changing_the_sort_value_of_the_cursors_record_loses_no_record(
        self, members: Any
    ) -> None:
        filters, order = READS["index with ties"]
        for descending in (False, True):
            wanted = expected(filters, order, descending)
            page = self._first_page(members, filters, 5, descending=descending)
            last = page.records[-1]
            moved = {"team_id": last["team_id"], "seq": last["seq"]}
            members.update({**moved, "score": -last["score"] + 0.25})
            rest, _ = read_pages(members, filters, [3], cursor=page.cursor, descending=descending)
            others = [
                r for r in rest if (r["team_id"], r["seq"]) != (moved["team_id"], moved["seq"])
            ]
            assert typed(others) == typed(wanted[5:])
            members.put(last)

    # -- cursors across backends ----------------------------------------------------------------

    @pytest.mark.parametrize("first", ["memory", "tested"], ids=lambda s: f"{s}_first")
    def test_a_cursor_continues_the_read_on_another_backend(
        self, make_store: QueryStoreFactory, first: str
    ) -> None:
        tested = make_store(indexes=member_indexes(), **KEY)
        memory: Any = create_store(tested.kind, backend="memory", indexes=member_indexes(), **KEY)
        memory.ensure()
        for store in (tested, memory):
            assert store.put_many(MEMBERS) == len(MEMBERS)
        source, target = (memory, tested) if first == "memory" else (tested, memory)
        for read in ("partition and conditions", "index with ties", "index and a prefix"):
            filters, order = READS[read]
            for descending in (False, True):
                wanted = expected(filters, order, descending)
                page = self._first_page(source, filters, 1, descending=descending)
                rest, _ = read_pages(
                    target, filters, [2], cursor=page.cursor, descending=descending
                )
                assert typed(page.records + rest) == typed(wanted), (read, descending)
                # Pages alternating between the two backends make the same read.
                found: list[Any] = []
                cursor = None
                for turn in range(len(wanted) + 1):
                    store = (source, target)[turn % 2]
                    step = store.find_page(
                        build(filters), limit=2, cursor=cursor, descending=descending
                    )
                    found.extend(step.records)
                    cursor = step.cursor
                    if cursor is None:
                        break
                assert typed(found) == typed(wanted), (read, descending)
