"""Contract, "Conditions in filters": ne, lt/le/gt/ge, between, begins_with, one_of, exists."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from kvstore import (  # type: ignore[attr-defined, unused-ignore]
    ConfigError,
    InvalidArgument,
    MultipleFound,
    NotFound,
    begins_with,
    between,
    exists,
    ge,
    gt,
    le,
    lt,
    one_of,
)
from kvstore.testing.fixtures import StoreFixtures
from kvstore.testing.suite.helpers import keys
from kvstore.testing.suite.matching import ABSENT, Cond, QueryStoreFactory, build, select

# Field ``v`` of each record, by key; ABSENT: the record has no ``v``. Numbers of both classes
# around the same values (ints against floats compare numerically), bools (which never match a
# range), strings whose code-point order differs from case-folded, collated or UTF-16 order
# ('Z' < 'a' < 'é' < '中' < '\uffee' < '𝄞' < '😀'), and values of no range class (lists, dicts).
VALUES: dict[str, Any] = {
    "i_min": -(2**63),
    "i_neg": -5,
    "i_zero": 0,
    "i_one": 1,
    "i_two": 2,
    "i_2p53_plus_1": 2**53 + 1,
    "i_max": 2**63 - 1,
    "f_neg": -1.5,
    "f_tiny": 1e-100,
    "f_half": 0.5,
    "f_one_half": 1.5,
    "f_2p53": float(2**53),
    "f_big": 1e20,
    "b_true": True,
    "b_false": False,
    "s_empty": "",
    "s_1": "1",
    "s_10": "10",
    "s_A": "A",
    "s_Z": "Z",
    "s_a": "a",
    "s_a_b": "a b",
    "s_ab": "ab",
    "s_abc": "abc",
    "s_b": "b",
    "s_e": "e",
    "s_e_combining": "e\u0301",
    "s_e_acute": "\u00e9",
    "s_zhong": "\u4e2d",
    "s_zhongwen": "\u4e2d\u6587",
    "s_ffee": "\uffee",
    "s_grin": "\U0001f600",
    "s_clef": "\U0001d11e",
    "l_one": [1],
    "l_a": ["a"],
    "l_empty": [],
    "d_a": {"a": 1},
    "d_empty": {},
    "absent": ABSENT,
}

RECORDS = [
    {"id": key} if value is ABSENT else {"id": key, "v": value} for key, value in VALUES.items()
]

# Each condition the tests run against VALUES; what it matches comes from Cond.holds (the rule).
CASES: dict[str, list[Cond]] = {
    "ne": [
        Cond("ne", 1),
        Cond("ne", 1.0),
        Cond("ne", True),
        Cond("ne", 0),
        Cond("ne", "a"),
        Cond("ne", ""),
        Cond("ne", [1]),
        Cond("ne", {"a": 1}),
        Cond("ne", "nowhere"),
    ],
    "lt": [
        Cond("lt", 1),
        Cond("lt", 1.5),
        Cond("lt", 0),
        Cond("lt", -(2**63) + 1),
        Cond("lt", float(2**53)),
        Cond("lt", 1e20),
        Cond("lt", "a"),
        Cond("lt", "\u00e9"),
        Cond("lt", "\U0001f600"),
        Cond("lt", ""),
    ],
    "le": [
        Cond("le", 1),
        Cond("le", 2.0),
        Cond("le", 1e-100),
        Cond("le", -(2**63)),
        Cond("le", "Z"),
        Cond("le", "e\u0301"),
        Cond("le", ""),
    ],
    "gt": [
        Cond("gt", 1),
        Cond("gt", 0.5),
        Cond("gt", -1.6),
        Cond("gt", float(2**53)),
        Cond("gt", 2**63 - 2),
        Cond("gt", "Z"),
        Cond("gt", "\u4e2d"),
        Cond("gt", "\uffee"),
        Cond("gt", ""),
        Cond("gt", "1"),
    ],
    "ge": [
        Cond("ge", 2),
        Cond("ge", 1.5),
        Cond("ge", 2**53 + 1),
        Cond("ge", 1e20),
        Cond("ge", 0),
        Cond("ge", "a"),
        Cond("ge", "\u00e9"),
        Cond("ge", ""),
    ],
    "between": [
        Cond("between", 1, 2),
        Cond("between", 0.5, 1.5),
        Cond("between", 1, 1),
        Cond("between", -5, -5),
        Cond("between", 0, 2.0),
        Cond("between", 1.5, 2**53 + 1),
        Cond("between", float(2**53), float(2**53)),
        Cond("between", -(2**63), 2**63 - 1),
        Cond("between", "a", "b"),
        Cond("between", "A", "Z"),
        Cond("between", "Z", "a"),
        Cond("between", "a", "a"),
        Cond("between", "\u00e9", "\U0001d11e"),
        Cond("between", "", "\U0010ffff"),
    ],
    "begins_with": [
        Cond("begins_with", "a"),
        Cond("begins_with", "ab"),
        Cond("begins_with", "abc"),
        Cond("begins_with", "abcd"),
        Cond("begins_with", "A"),
        Cond("begins_with", "e"),
        Cond("begins_with", "\u00e9"),
        Cond("begins_with", "\u4e2d"),
        Cond("begins_with", "\U0001d11e"),
        Cond("begins_with", "1"),
        Cond("begins_with", "a "),
    ],
    "one_of": [
        Cond("one_of", [1]),
        Cond("one_of", [1.0, "a"]),
        Cond("one_of", [True]),
        Cond("one_of", [0, False]),
        Cond("one_of", [None]),
        Cond("one_of", [None, "a"]),
        Cond("one_of", [[1], {"a": 1}]),
        Cond("one_of", [[], {}]),
        Cond("one_of", ["Z", "z", "\u00e9"]),
        Cond("one_of", ["nowhere"]),
        Cond("one_of", list(range(-50, 50))),  # 100 values: the most one_of takes
    ],
    "exists": [Cond("exists")],
}

ALL_CASES = [cond for conds in CASES.values() for cond in conds]

# Each makes (inside the call, so a constructor may raise too) a condition the contract refuses.
BAD_CONDITIONS: dict[str, Callable[[], Any]] = {
    "lt(True)": lambda: Cond("lt", True).build(),
    "le(False)": lambda: Cond("le", False).build(),
    "gt(None)": lambda: Cond("gt", None).build(),
    "ge([1])": lambda: Cond("ge", [1]).build(),
    "lt({'a': 1})": lambda: Cond("lt", {"a": 1}).build(),
    "lt(b'a')": lambda: Cond("lt", b"a").build(),
    "lt(nan)": lambda: Cond("lt", float("nan")).build(),
    "gt(inf)": lambda: Cond("gt", float("inf")).build(),
    "lt(2**64)": lambda: Cond("lt", 2**64).build(),
    "lt('a\\x00')": lambda: Cond("lt", "a\x00").build(),
    "ge(lone surrogate)": lambda: Cond("ge", "\ud800").build(),
    "between(1, 'a')": lambda: Cond("between", 1, "a").build(),
    "between('a', 1)": lambda: Cond("between", "a", 1).build(),
    "between(2, 1)": lambda: Cond("between", 2, 1).build(),
    "between(1.5, 1)": lambda: Cond("between", 1.5, 1).build(),
    "between('b', 'a')": lambda: Cond("between", "b", "a").build(),
    "between('a', 'Z')": lambda: Cond("between", "a", "Z").build(),  # 'Z' < 'a' by code point
    "between(True, 2)": lambda: Cond("between", True, 2).build(),
    "between(0, False)": lambda: Cond("between", 0, False).build(),
    "between(None, 1)": lambda: Cond("between", None, 1).build(),
    "between([1], [2])": lambda: Cond("between", [1], [2]).build(),
    "begins_with('')": lambda: Cond("begins_with", "").build(),
    "begins_with(1)": lambda: Cond("begins_with", 1).build(),
    "begins_with(None)": lambda: Cond("begins_with", None).build(),
    "begins_with(True)": lambda: Cond("begins_with", True).build(),
    "begins_with(['a'])": lambda: Cond("begins_with", ["a"]).build(),
    "one_of([])": lambda: Cond("one_of", []).build(),
    "one_of(101 values)": lambda: Cond("one_of", list(range(101))).build(),
    "one_of([nan])": lambda: Cond("one_of", [float("nan")]).build(),
    "one_of([b'x'])": lambda: Cond("one_of", [b"x"]).build(),
    "ne(nan)": lambda: Cond("ne", float("nan")).build(),
    "ne(b'x')": lambda: Cond("ne", b"x").build(),
    "ne({1, 2})": lambda: Cond("ne", {1, 2}).build(),
}

# Filters whose conditions sit where the contract allows none: below the top level.
NESTED_CONDITIONS: dict[str, Callable[[], dict[str, Any]]] = {
    "in a list": lambda: {"v": [gt(1)]},
    "in a dict": lambda: {"v": {"a": gt(1)}},
    "in one_of's values": lambda: {"v": one_of([gt(1)])},
}

# Edge operands the contract allows; on a missing table they get as far as the I/O.
GOOD_EDGE_CONDITIONS: list[Cond] = [
    Cond("between", 1, 2.5),  # one class: numbers
    Cond("between", 1, 1),
    Cond("between", "", ""),
    Cond("lt", ""),
    Cond("begins_with", "\U0001d11e"),
    Cond("one_of", [None]),
    Cond("one_of", list(range(100))),
    Cond("ne", [1, {"a": None}]),
    Cond("exists"),
]


class AbstractConditionTests(StoreFixtures):
    """Each condition matches exactly what its rule says, in every call that takes filters."""

    @pytest.fixture
    def values_store(self, make_store: QueryStoreFactory) -> Any:
        store = make_store()
        store.put_many(RECORDS)
        return store

    # -- what each condition matches ------------------------------------------------------------

    @pytest.mark.parametrize("cond", ALL_CASES, ids=repr)
    def test_a_condition_matches_what_its_rule_says(self, values_store: Any, cond: Cond) -> None:
        filters = {"v": cond}
        wanted = keys(select(RECORDS, filters, ["id"]))
        assert keys(values_store.find_all(build(filters))) == wanted
        assert values_store.count(build(filters)) == len(wanted)
        assert sorted(keys(values_store.iter_all(build(filters)))) == wanted

    @pytest.mark.parametrize("name", list(CASES), ids=str)
    def test_remove_with_a_condition_deletes_exactly_its_matches(
        self, make_store: QueryStoreFactory, name: str
    ) -> None:
        store = make_store()
        store.put_many(RECORDS)
        cond = CASES[name][0]
        gone = keys(select(RECORDS, {"v": cond}, ["id"]))
        assert gone, f"{cond!r} should match something here"
        assert store.remove(build({"v": cond})) == len(gone)
        assert keys(store.find_all()) == sorted(set(VALUES) - set(gone))
        assert store.remove(build({"v": cond})) == 0

    def test_a_bool_never_matches_a_range_condition(self, values_store: Any) -> None:
        bools = {"b_true", "b_false"}
        for cond in (ge(0), le(1), between(0, 1), gt(-1), lt(2), ge(-(2**63))):
            found = set(keys(values_store.find_all({"v": cond})))
            assert found, "the numbers around 0 and 1 match"
            assert not found & bools

    def test_strings_compare_by_code_point(self, values_store: Any) -> None:
        # Case-folding, collations and UTF-16 order each put some neighbour pair the other way.
        ordered = ["s_Z", "s_a", "s_e_acute", "s_zhong", "s_ffee", "s_clef", "s_grin"]
        for lower, upper in itertools.pairwise(ordered):
            above = keys(values_store.find_all({"v": gt(VALUES[lower])}))
            below = keys(values_store.find_all({"v": lt(VALUES[upper])}))
            assert upper in above, (lower, upper)
            assert lower not in above, (lower, upper)
            assert lower in below, (lower, upper)
            assert upper not in below, (lower, upper)
        assert keys(values_store.find_all({"v": between("e", "\u00e9")})) == sorted(
            ["s_e", "s_e_combining", "s_e_acute"]
        )

    def test_ints_and_floats_compare_numerically(self, values_store: Any) -> None:
        # 2**53 + 1 is not a float: a backend comparing as doubles gets these wrong.
        assert keys(values_store.find_all({"v": gt(float(2**53))})) == sorted(
            ["f_big", "i_2p53_plus_1", "i_max"]
        )
        assert keys(values_store.find_all({"v": between(float(2**53), float(2**53))})) == ["f_2p53"]
        assert keys(values_store.find_all({"v": ge(2**53 + 1)})) == sorted(
            ["f_big", "i_2p53_plus_1", "i_max"]
        )
        assert keys(values_store.find_all({"v": lt(1)})) == sorted(
            ["f_half", "f_neg", "f_tiny", "i_min", "i_neg", "i_zero"]
        )

    def test_a_string_never_matches_a_number_condition_nor_the_reverse(
        self, values_store: Any
    ) -> None:
        numbers = set(keys(values_store.find_all({"v": ge(-(2**63))})))
        strings = set(keys(values_store.find_all({"v": ge("")})))
        assert numbers == {key for key in VALUES if key.startswith(("i_", "f_"))}
        assert strings == {key for key in VALUES if key.startswith("s_")}
        assert "s_1" not in keys(values_store.find_all({"v": between(0, 100)}))
        assert "i_one" not in keys(values_store.find_all({"v": begins_with("1")}))

    # -- conditions on key fields, with plain values and None -----------------------------------

    def test_conditions_on_a_string_key(self, make_store: QueryStoreFactory) -> None:
        store = make_store()
        ids = ["A", "Z", "a", "ab", "b", "e\u0301", "\u00e9", "\u4e2d", "\uffee", "\U0001f600"]
        records = [{"id": key, "n": i} for i, key in enumerate(ids)]
        store.put_many(records)
        for cond in (
            Cond("gt", "a"),
            Cond("lt", "\uffee"),
            Cond("le", "Z"),
            Cond("between", "a", "\u4e2d"),
            Cond("begins_with", "a"),
            Cond("ne", "a"),
            Cond("one_of", ["a", "zz", "\U0001f600"]),
            Cond("exists"),
        ):
            wanted = select(records, {"id": cond}, ["id"])
            assert store.find_all(build({"id": cond})) == wanted, cond
            assert store.count(build({"id": cond})) == len(wanted), cond

    def test_conditions_on_an_int_key(self, make_store: QueryStoreFactory) -> None:
        store = make_store(key_type=int)
        ids = [-(2**63), -3, -1, 0, 1, 3, 2**53, 2**53 + 1, 2**63 - 1]
        records = [{"id": key} for key in ids]
        store.put_many(records)
        for cond in (
            Cond("between", -3, 3),
            Cond("gt", 2**53),
            Cond("lt", 0),
            Cond("ge", 2**63 - 1),
            Cond("le", -(2**63)),
            Cond("ne", 0),
            Cond("one_of", [1, 3, 4]),
        ):
            assert keys(store.find_all(build({"id": cond}))) == keys(
                select(records, {"id": cond}, ["id"])
            ), cond

    @pytest.mark.parametrize(
        "cond",
        [
            Cond("between", 3, 7),
            Cond("between", 3, 3),
            Cond("gt", 5),
            Cond("ge", 5),
            Cond("lt", 0),
            Cond("le", -2),
            Cond("ne", 4),
            Cond("one_of", [1, 4, 99]),
            Cond("exists"),
        ],
        ids=repr,
    )
    def test_conditions_on_the_sort_key_within_a_partition(
        self, make_store: QueryStoreFactory, cond: Cond
    ) -> None:
        store = make_store(id_field=("team_id", "seq"), key_type=(str, int))
        records = [
            {"team_id": team, "seq": seq, "odd": seq % 2 == 1}
            for team in ("t1", "t2", "T1", "\u4e2d")
            for seq in range(-3, 10)
        ]
        store.put_many(records)
        order = ["team_id", "seq"]
        filters: dict[str, Any] = {"team_id": "t1", "seq": cond}
        assert store.find_all(build(filters)) == select(records, filters, order)
        assert store.count(build(filters)) == len(select(records, filters, order))
        with_more: dict[str, Any] = {"team_id": "t1", "seq": cond, "odd": True}
        assert store.find_all(build(with_more)) == select(records, with_more, order)
        across: dict[str, Any] = {"seq": cond}
        assert store.find_all(build(across)) == select(records, across, order)

    def test_conditions_on_a_string_sort_key(self, make_store: QueryStoreFactory) -> None:
        store = make_store(id_field=("p", "s"), key_type=(str, str))
        sorts = ["B", "a", "b", "ba", "bb", "c", "e\u0301", "\u00e9", "\u4e2d", "\U0001d11e"]
        records = [{"p": p, "s": s} for p in ("x", "y") for s in sorts]
        store.put_many(records)
        for cond in (
            Cond("begins_with", "b"),
            Cond("lt", "\u00e9"),
            Cond("gt", "b"),
            Cond("between", "a", "bb"),
            Cond("between", "B", "B"),
            Cond("ge", "\u4e2d"),
        ):
            filters: dict[str, Any] = {"p": "x", "s": cond}
            assert store.find_all(build(filters)) == select(records, filters, ["p", "s"]), cond
        partition_cond: dict[str, Any] = {"p": Cond("begins_with", "x")}
        assert store.find_all(build(partition_cond)) == select(records, partition_cond, ["p", "s"])

    def test_conditions_combine_with_plain_values_and_none(
        self, make_store: QueryStoreFactory
    ) -> None:
        store = make_store()
        records = [
            {"id": f"r{i:02}", "n": i, "tag": tag, **({"note": "x"} if i % 3 == 0 else {})}
            for i, tag in enumerate(["a", "b", True, 1, "ab", "a"] * 3)
        ]
        store.put_many(records)
        for filters in (
            {"n": Cond("ge", 4), "tag": "a"},
            {"n": Cond("lt", 10), "note": None},
            {"n": Cond("between", 2, 12), "tag": Cond("begins_with", "a"), "note": "x"},
            {"tag": Cond("ne", "a"), "note": Cond("exists")},
            {"tag": Cond("one_of", [True, None]), "n": Cond("gt", 0)},
            {"tag": 1, "n": Cond("ne", 3)},
        ):
            wanted = select(records, filters, ["id"])
            assert wanted, f"{filters} should match something here"
            assert store.find_all(build(filters)) == wanted, filters
            assert store.count(build(filters)) == len(wanted), filters

    def test_find_with_a_condition_finds_one_or_raises(self, values_store: Any) -> None:
        assert values_store.find({"v": begins_with("abc")}) == {"id": "s_abc", "v": "abc"}
        assert values_store.find({"v": between(1.2, 1.7)}) == {"id": "f_one_half", "v": 1.5}
        with pytest.raises(NotFound):
            values_store.find({"v": gt(1e20)})
        with pytest.raises(MultipleFound):
            values_store.find({"v": ge(0)})
        with pytest.raises(NotFound):
            values_store.find({"nowhere": exists()})

    def test_none_among_one_of_values_matches_absent(self, values_store: Any) -> None:
        assert keys(values_store.find_all({"v": one_of([None])})) == ["absent"]
        assert keys(values_store.find_all({"v": None})) == ["absent"]
        assert keys(values_store.find_all({"v": one_of([None, 0])})) == ["absent", "i_zero"]

    def test_ne_and_exists_need_the_field_present(self, values_store: Any) -> None:
        present = keys(values_store.find_all({"v": exists()}))
        assert present == sorted(set(VALUES) - {"absent"})
        # exists() matches falsy values too: False, 0, "", [] and {} are present.
        for key in ("b_false", "i_zero", "s_empty", "l_empty", "d_empty"):
            assert key in present
        assert "absent" not in keys(values_store.find_all({"v": Cond("ne", 1).build()}))
        assert values_store.find_all({"nowhere": exists()}) == []
        assert values_store.find_all({"nowhere": Cond("ne", 1).build()}) == []
        assert values_store.count({"nowhere": Cond("ne", "x").build()}) == 0

    # -- argument errors --------------------------------------------------------------------------

    @pytest.mark.parametrize("name", list(BAD_CONDITIONS), ids=str)
    def test_a_bad_condition_is_invalid_before_any_io(
        self, make_store: QueryStoreFactory, name: str
    ) -> None:
        store = make_store(ensure=False)
        for call in _reads_of(store, lambda: {"v": BAD_CONDITIONS[name]()}).values():
            with pytest.raises(InvalidArgument):
                call()

    @pytest.mark.parametrize("name", list(BAD_CONDITIONS), ids=str)
    def test_a_bad_condition_changes_nothing(
        self, make_store: QueryStoreFactory, name: str
    ) -> None:
        store = make_store()
        store.put_many([{"id": "a", "v": 1}, {"id": "b", "v": "x"}])
        for call in _reads_of(store, lambda: {"v": BAD_CONDITIONS[name]()}).values():
            with pytest.raises(InvalidArgument):
                call()
        assert store.find_all() == [{"id": "a", "v": 1}, {"id": "b", "v": "x"}]

    @pytest.mark.parametrize("where", list(NESTED_CONDITIONS), ids=str)
    def test_conditions_apply_to_top_level_fields_only(
        self, make_store: QueryStoreFactory, where: str
    ) -> None:
        store = make_store(ensure=False)
        for call in _reads_of(store, NESTED_CONDITIONS[where]).values():
            with pytest.raises(InvalidArgument):
                call()

    def test_a_condition_on_a_bad_field_name_is_invalid(
        self, make_store: QueryStoreFactory
    ) -> None:
        store = make_store(ensure=False)
        for call in _reads_of(store, lambda: {"bad-name": gt(1)}).values():
            with pytest.raises(InvalidArgument):
                call()

    @pytest.mark.parametrize("cond", GOOD_EDGE_CONDITIONS, ids=repr)
    def test_edge_operands_the_contract_allows_are_accepted(
        self, make_store: QueryStoreFactory, cond: Cond
    ) -> None:
        # On a missing table a valid call gets past its argument checks to the ConfigError.
        missing = make_store(ensure=False)
        for call in _reads_of(missing, lambda: {"v": cond.build()}).values():
            with pytest.raises(ConfigError):
                call()
        store = make_store()
        store.put_many(RECORDS)
        assert keys(store.find_all({"v": cond.build()})) == keys(
            select(RECORDS, {"v": cond}, ["id"])
        )


def _reads_of(
    store: Any, make_filters: Callable[[], dict[str, Any]]
) -> dict[str, Callable[[], Any]]:
    """Every call that takes filters, each making its filters itself (a constructor may raise)."""
    return {
        "find": lambda: store.find(make_filters()),
        "find_all": lambda: store.find_all(make_filters()),
        "count": lambda: store.count(make_filters()),
        "remove": lambda: store.remove(make_filters()),
        "iter_all": lambda: list(store.iter_all(make_filters())),
    }
