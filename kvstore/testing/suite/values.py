"""Contract, "Records and values": every value type round trips; bad values are refused."""

from __future__ import annotations

import datetime
import decimal
import enum
from collections.abc import Callable
from typing import Any

import pytest

from kvstore import InvalidArgument
from kvstore.testing.fixtures import StoreFactory, StoreFixtures
from kvstore.testing.suite.helpers import nest, typed

ROUND_TRIP_VALUES: list[Any] = [
    "",
    "plain",
    "é ü ß 漢字 \U0001f600 \u2028 \t\n\r",
    " padded ",
    True,
    False,
    0,
    -1,
    42,
    2**53 + 1,  # past a double's exact range
    1.5,
    -2.25,
    0.1,
    1e20,
    -1e-100,
    [],
    {},
    [1, "a", True, 2.5, None, [], {}],
    {"a": 1, "b": [1, {"c": None}], "d": {"e": "f"}},
    [None],
    {"n": None},
    [[[[]]]],
]

BAD_VALUES: list[Any] = [
    b"bytes",
    bytearray(b"x"),
    {1, 2},
    frozenset({1}),
    datetime.datetime(2020, 1, 1),
    datetime.date(2020, 1, 1),
    object(),
    1j,
    float("nan"),
    float("inf"),
    float("-inf"),
    decimal.Decimal("NaN"),
    decimal.Decimal("Infinity"),
    decimal.Decimal("-Infinity"),
]


class AbstractValueTests(StoreFixtures):
    """Value types, nesting depth, strings, nested keys and refused values."""

    @pytest.mark.parametrize("value", ROUND_TRIP_VALUES, ids=repr)
    def test_a_value_reads_back_equal_and_of_the_same_type(
        self, make_store: StoreFactory, value: Any
    ) -> None:
        store = make_store()
        record = {"id": "a", "v": value}
        assert typed(store.put(record)) == typed(record)
        assert typed(store.find({"id": "a"})) == typed(record)
        assert typed(store.find_all()) == typed([record])

    def test_a_record_of_every_type_at_once_round_trips(self, make_store: StoreFactory) -> None:
        store = make_store()
        record = {"id": "a"} | {f"f{i}": value for i, value in enumerate(ROUND_TRIP_VALUES)}
        store.create(record)
        assert typed(store.find({"id": "a"})) == typed(record)

    def test_tuples_come_back_as_lists(self, make_store: StoreFactory) -> None:
        store = make_store()
        written = store.put({"id": "a", "t": (1, ("x", None), {"k": (True,)})})
        expected = {"id": "a", "t": [1, ["x", None], {"k": [True]}]}
        assert typed(written) == typed(expected)
        assert typed(store.find({"id": "a"})) == typed(expected)

    @pytest.mark.parametrize("container", ["list", "dict"])
    def test_a_value_may_nest_31_levels_but_not_32(
        self, make_store: StoreFactory, container: str
    ) -> None:
        store = make_store()
        deepest = {"id": "a", "v": nest(31, container=container)}
        assert store.put(deepest) == deepest
        assert store.find({"id": "a"}) == deepest
        with pytest.raises(InvalidArgument) as info:
            store.put({"id": "b", "v": nest(32, container=container)})
        assert "v" in str(info.value)
        assert store.count() == 1

    def test_mixed_nesting_counts_lists_and_dicts_alike(self, make_store: StoreFactory) -> None:
        store = make_store()
        mixed_31: Any = 1
        for level in range(31):
            mixed_31 = [mixed_31] if level % 2 else {"k": mixed_31}
        store.put({"id": "a", "v": mixed_31})
        assert store.find({"id": "a"})["v"] == mixed_31
        with pytest.raises(InvalidArgument):
            store.put({"id": "b", "v": [mixed_31]})

    @pytest.mark.parametrize(
        "record",
        [
            {"id": "a", "v": "nul\x00inside"},
            {"id": "a", "v": ["ok", "\x00"]},
            {"id": "a", "v": {"k": "x\x00"}},
            {"id": "a", "v": {"bad\x00key": 1}},
            {"id": "a", "v": "lone \ud800 surrogate"},
            {"id": "a", "v": ["\udfff"]},
            {"id": "a", "v": {"\ud83d": 1}},
            {"id": "a\x00", "v": 1},
            {"id": "\udc00", "v": 1},
        ],
        ids=repr,
    )
    def test_strings_with_nul_or_lone_surrogates_are_refused(
        self, make_store: StoreFactory, record: dict[str, Any]
    ) -> None:
        store = make_store()
        with pytest.raises(InvalidArgument):
            store.put(record)
        assert store.count() == 0

    def test_nested_keys_may_be_any_non_empty_string(self, make_store: StoreFactory) -> None:
        store = make_store()
        nested = {"with space": 1, "a.b": 2, "1": 3, "é-ü": 4, "-": 5, "\U0001f600": {"x y": 6}}
        store.put({"id": "a", "m": nested})
        assert store.find({"id": "a"})["m"] == nested

    @pytest.mark.parametrize(
        "nested", [{"": 1}, {1: "a"}, {None: 1}, {("t",): 1}, {"ok": {"": 1}}], ids=repr
    )
    def test_nested_keys_must_be_non_empty_strings(
        self, make_store: StoreFactory, nested: Any
    ) -> None:
        store = make_store()
        with pytest.raises(InvalidArgument) as info:
            store.put({"id": "a", "m": nested})
        assert "m" in str(info.value)
        assert store.count() == 0

    @pytest.mark.parametrize("value", BAD_VALUES, ids=repr)
    def test_other_values_are_refused_naming_the_field(
        self, make_store: StoreFactory, value: Any
    ) -> None:
        store = make_store()
        for where in (value, [1, value], {"k": value}, [{"k": [value]}]):
            with pytest.raises(InvalidArgument) as info:
                store.put({"id": "a", "the_field": where})
            assert "the_field" in str(info.value)
        assert store.count() == 0

    @pytest.mark.parametrize("value", BAD_VALUES[:4], ids=repr)
    def test_bad_values_are_refused_by_every_write_and_filter(
        self, make_store: StoreFactory, value: Any
    ) -> None:
        store = make_store()
        store.put({"id": "a", "v": 1})
        calls: list[Callable[[], Any]] = [
            lambda: store.create({"id": "b", "v": value}),
            lambda: store.update({"id": "a", "v": value}),
            lambda: store.put_many([{"id": "b", "v": value}]),
            lambda: store.find_or_create({"id": "b"}, {"id": "b", "v": value}),
            lambda: store.find({"v": value}),
            lambda: store.find_all({"v": value}),
            lambda: store.count({"v": value}),
            lambda: store.remove({"v": value}),
            lambda: store.iter_all({"v": value}),
            lambda: store.find_in("v", [value]),
            lambda: store.remove_in("v", [value]),
        ]
        for call in calls:
            with pytest.raises(InvalidArgument):
                call()
        assert store.find_all() == [{"id": "a", "v": 1}]

    def test_subclasses_of_value_types_read_back_as_the_plain_types(
        self, make_store: StoreFactory
    ) -> None:
        class Text(str):
            def __str__(self) -> str:
                return "masked"

        class Level(enum.IntEnum):
            HIGH = 3

        class Ratio(float):
            pass

        store = make_store()
        record = {
            "id": Text("a"),
            "s": Text("x"),
            "e": Level.HIGH,
            "f": Ratio(1.5),
            "l": [Text("y")],
        }
        expected = {"id": "a", "s": "x", "e": 3, "f": 1.5, "l": ["y"]}
        assert typed(store.put(record)) == typed(expected)
        assert typed(store.find({"id": "a"})) == typed(expected)
        assert typed(store.find({"s": Text("x"), "e": Level.HIGH})) == typed(expected)
