"""Contract part 2, "Conditional writes": ``put``/``update`` with ``expect``, and ``ConditionFailed``."""

# (The part-2 API, kvstore.ConditionFailed and expect=..., is being built: remove the line above
# once it lands, so that mypy checks these calls too.)

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

import kvstore
from kvstore import InvalidArgument, NotFound, StoreError
from kvstore.testing.fixtures import StoreFactory, StoreFixtures
from kvstore.testing.suite.helpers import in_threads, typed

STORED: dict[str, Any] = {
    "id": "a",
    "n": 5,
    "f": 2.5,
    "s": "abc",
    "b": True,
    "l": [1, "a"],
    "m": {"k": {"n": None}},
    "z": 0,
}
"""The record the condition tests write first; their ``expect`` dicts are read against it."""

Expect = Callable[[], dict[str, Any]]
"""An ``expect`` built when the test runs (the condition objects are made then, not at import)."""

HOLDING: dict[str, Expect] = {
    "ne_other_number": lambda: {"n": kvstore.ne(4)},
    "ne_other_class": lambda: {"n": kvstore.ne("5")},
    "ne_bool_is_not_a_number": lambda: {"b": kvstore.ne(1)},
    "lt_int": lambda: {"n": kvstore.lt(6)},
    "lt_float_against_int": lambda: {"n": kvstore.lt(5.5)},
    "le_equal": lambda: {"n": kvstore.le(5)},
    "le_equal_float": lambda: {"n": kvstore.le(5.0)},
    "gt_int": lambda: {"n": kvstore.gt(4)},
    "gt_int_against_float": lambda: {"f": kvstore.gt(2)},
    "ge_equal": lambda: {"n": kvstore.ge(5)},
    "between_low_end_included": lambda: {"n": kvstore.between(5, 9)},
    "between_high_end_included": lambda: {"n": kvstore.between(1, 5)},
    "lt_string": lambda: {"s": kvstore.lt("abd")},
    "between_strings": lambda: {"s": kvstore.between("abc", "abd")},
    "begins_with_prefix": lambda: {"s": kvstore.begins_with("ab")},
    "begins_with_whole_string": lambda: {"s": kvstore.begins_with("abc")},
    "one_of_match": lambda: {"n": kvstore.one_of([1, 5])},
    "one_of_none_matches_absent": lambda: {"missing": kvstore.one_of([None, 1])},
    "exists_list": lambda: {"l": kvstore.exists()},
    "exists_bool": lambda: {"b": kvstore.exists()},
    "exists_zero": lambda: {"z": kvstore.exists()},
    "none_matches_absent": lambda: {"missing": None},
    "all_of_several": lambda: {
        "n": kvstore.gt(1),
        "s": kvstore.begins_with("a"),
        "b": True,
        "missing": None,
    },
}
"""Conditions that hold on ``STORED``, by the table of "Conditions in filters"."""

FAILING: dict[str, Expect] = {
    "ne_equal": lambda: {"n": kvstore.ne(5)},
    "ne_equal_float": lambda: {"n": kvstore.ne(5.0)},
    "ne_needs_the_field": lambda: {"missing": kvstore.ne(1)},
    "lt_equal": lambda: {"n": kvstore.lt(5)},
    "gt_equal": lambda: {"n": kvstore.gt(5)},
    "le_below": lambda: {"n": kvstore.le(4)},
    "ge_above": lambda: {"n": kvstore.ge(5.5)},
    "between_outside": lambda: {"n": kvstore.between(6, 9)},
    "range_string_against_number": lambda: {"n": kvstore.lt("z")},
    "range_number_against_string": lambda: {"s": kvstore.gt(0)},
    "range_on_a_bool": lambda: {"b": kvstore.ge(0)},
    "range_on_a_list": lambda: {"l": kvstore.gt(0)},
    "range_on_an_absent_field": lambda: {"missing": kvstore.lt(1)},
    "begins_with_other_prefix": lambda: {"s": kvstore.begins_with("b")},
    "begins_with_longer_than_value": lambda: {"s": kvstore.begins_with("abcd")},
    "begins_with_on_a_number": lambda: {"n": kvstore.begins_with("5")},
    "one_of_no_match": lambda: {"n": kvstore.one_of([1, "5"])},
    "one_of_bool_is_not_a_number": lambda: {"b": kvstore.one_of([1])},
    "one_of_none_on_a_present_field": lambda: {"n": kvstore.one_of([None])},
    "exists_on_an_absent_field": lambda: {"missing": kvstore.exists()},
    "one_of_several_fails": lambda: {"n": kvstore.gt(1), "s": kvstore.begins_with("b")},
}
"""Conditions that do not hold on ``STORED``."""

PLAIN_HOLDING: list[dict[str, Any]] = [
    {"n": 5},
    {"n": 5.0},
    {"n": Decimal("5")},
    {"f": 2.5},
    {"s": "abc"},
    {"b": True},
    {"l": [1, "a"]},
    {"m": {"k": {"n": None}}},
    {"z": 0},
    {"z": 0.0},
    {"missing": None},
    {"id": "a"},
    {"n": 5, "s": "abc", "missing": None},
]
"""Plain ``expect`` values equal to ``STORED``'s by the typed equality of part 1."""

PLAIN_FAILING: list[dict[str, Any]] = [
    {"n": 4},
    {"n": "5"},
    {"b": 1},
    {"z": False},
    {"f": 2},
    {"s": "ABC"},
    {"s": "ab"},
    {"l": ["a", 1]},
    {"l": [1]},
    {"m": {"k": {}}},
    {"m": {"k": {"n": None}, "x": 1}},
    {"n": None},
    {"missing": 1},
    {"id": "b"},
    {"n": 5, "s": "abd"},
]
"""Plain ``expect`` values that differ from ``STORED``'s: bools are not numbers, order counts."""


BAD_EXPECTS: dict[str, Callable[[], Any]] = {
    "not_a_dict": lambda: "n",
    "a_list_of_pairs": lambda: [("n", 5)],
    "bad_field_name": lambda: {"bad-name": 1},
    "nan": lambda: {"n": float("nan")},
    "a_set": lambda: {"n": {1, 2}},
    "bytes": lambda: {"n": b"5"},
    "wrong_key_type": lambda: {"id": 5},
    "empty_key": lambda: {"id": ""},
    "none_for_a_key_field": lambda: {"id": None},
    "an_increment": lambda: {"n": kvstore.increment(1)},
    "a_condition_in_a_nested_value": lambda: {"m": {"k": kvstore.gt(1)}},
}
"""``expect`` arguments that are invalid whatever is stored (filters' rules: names, values, keys)."""


class AbstractConditionalWriteTests(StoreFixtures):
    """``expect`` on ``put`` and ``update``: what holds, what fails, and that failing changes nothing."""

    def test_condition_failed_is_a_store_error_with_its_code(self) -> None:
        cls = kvstore.ConditionFailed
        assert issubclass(cls, StoreError)
        assert cls.code == "CONDITION_FAILED"
        error = cls("message")
        assert error.code == "CONDITION_FAILED"
        assert str(error) == "message"
        # The errors table names no other base class for it.
        assert not issubclass(cls, (LookupError, ValueError))

    def test_put_with_a_holding_expect_replaces_the_whole_record(
        self, make_store: StoreFactory
    ) -> None:
        store = make_store()
        store.put({"id": "a", "x": 1, "y": 2})
        written = store.put({"id": "a", "z": 3.0}, expect={"x": 1, "y": 2})
        assert typed(written) == typed({"id": "a", "z": 3})
        assert typed(store.find({"id": "a"})) == typed({"id": "a", "z": 3})

    def test_put_with_a_failing_expect_raises_and_changes_nothing(
        self, make_store: StoreFactory
    ) -> None:
        store = make_store()
        original = {"id": "a", "x": 1, "m": {"k": [1]}}
        store.put(original)
        for expect in ({"x": 2}, {"x": None}, {"y": 1}, {"x": 1, "m": {"k": [2]}}):
            with pytest.raises(kvstore.ConditionFailed) as info:
                store.put({"id": "a", "x": 1, "new": 1}, expect=expect)
            assert info.value.code == "CONDITION_FAILED"
            assert type(info.value) is kvstore.ConditionFailed
            assert store.find({"id": "a"}) == original
        assert store.count() == 1

    def test_update_with_a_holding_expect_merges(self, make_store: StoreFactory) -> None:
        store = make_store()
        store.put({"id": "a", "x": 1, "drop": True, "keep": "k"})
        updated = store.update({"id": "a", "x": 2, "drop": None, "new": [1]}, expect={"x": 1})
        expected = {"id": "a", "x": 2, "keep": "k", "new": [1]}
        assert typed(updated) == typed(expected)
        assert typed(store.find({"id": "a"})) == typed(expected)

    def test_update_with_a_failing_expect_raises_and_changes_nothing(
        self, make_store: StoreFactory
    ) -> None:
        store = make_store()
        original = {"id": "a", "x": 1, "keep": "k"}
        store.put(original)
        for expect in ({"x": 2}, {"x": None}, {"keep": "K"}, {"x": 1, "other": 1}):
            with pytest.raises(kvstore.ConditionFailed) as info:
                store.update({"id": "a", "x": 5, "keep": None}, expect=expect)
            assert info.value.code == "CONDITION_FAILED"
            assert store.find({"id": "a"}) == original

    def test_plain_expect_values_use_typed_equality(self, make_store: StoreFactory) -> None:
        store = make_store()
        store.put(STORED)
        for number, expect in enumerate(PLAIN_HOLDING):
            changed = STORED | {"seen": number}
            assert store.update({"id": "a", "seen": number}, expect=expect) == changed, expect
            assert store.put(STORED, expect=expect) == STORED, expect
        for expect in PLAIN_FAILING:
            with pytest.raises(kvstore.ConditionFailed):
                store.update({"id": "a", "seen": -1}, expect=expect)
            assert store.find({"id": "a"}) == STORED, expect
            with pytest.raises(kvstore.ConditionFailed):
                store.put({"id": "a"}, expect=expect)
            assert store.find({"id": "a"}) == STORED, expect

    @pytest.mark.parametrize("case", sorted(HOLDING))
    def test_a_holding_condition_lets_the_write_happen(
        self, make_store: StoreFactory, case: str
    ) -> None:
        store = make_store()
        store.put(STORED)
        touched = STORED | {"touched": True}
        assert store.update({"id": "a", "touched": True}, expect=HOLDING[case]()) == touched
        assert store.find({"id": "a"}) == touched
        replaced = STORED | {"replaced": True}
        assert store.put(replaced, expect=HOLDING[case]()) == replaced
        assert store.find({"id": "a"}) == replaced

    @pytest.mark.parametrize("case", sorted(FAILING))
    def test_a_failing_condition_raises_and_changes_nothing(
        self, make_store: StoreFactory, case: str
    ) -> None:
        store = make_store()
        store.put(STORED)
        with pytest.raises(kvstore.ConditionFailed):
            store.update({"id": "a", "touched": True, "n": None}, expect=FAILING[case]())
        assert store.find({"id": "a"}) == STORED
        with pytest.raises(kvstore.ConditionFailed):
            store.put({"id": "a", "replaced": True}, expect=FAILING[case]())
        assert store.find({"id": "a"}) == STORED

    def test_an_empty_or_none_expect_always_holds(self, make_store: StoreFactory) -> None:
        store = make_store()
        store.put({"id": "a", "x": 1})
        assert store.put({"id": "a", "x": 2}, expect={}) == {"id": "a", "x": 2}
        assert store.put({"id": "a", "x": 3}, expect=None) == {"id": "a", "x": 3}
        assert store.update({"id": "a", "y": 1}, expect={}) == {"id": "a", "x": 3, "y": 1}
        assert store.update({"id": "a", "y": 2}, expect=None) == {"id": "a", "x": 3, "y": 2}
        assert store.put({"id": "new"}, expect={}) == {"id": "new"}
        assert store.find_all() == [{"id": "a", "x": 3, "y": 2}, {"id": "new"}]

    def test_put_on_a_missing_key_evaluates_expect_against_an_empty_record(
        self, make_store: StoreFactory
    ) -> None:
        store = make_store()
        holding: list[dict[str, Any]] = [
            {"x": None},
            {"x": None, "y": None},
            {"x": kvstore.one_of([None, 1])},
        ]
        for number, expect in enumerate(holding):
            record = {"id": f"h{number}", "x": number}
            assert store.put(record, expect=expect) == record, expect
            assert store.find({"id": f"h{number}"}) == record
        failing: list[dict[str, Any]] = [
            {"x": 1},
            {"x": kvstore.exists()},
            {"x": kvstore.ne(1)},
            {"x": kvstore.lt(1)},
            {"x": kvstore.begins_with("a")},
            {"x": kvstore.one_of([1, 2])},
            {"x": None, "y": 1},
            # The empty record has no key fields either.
            {"id": "f"},
        ]
        for expect in failing:
            with pytest.raises(kvstore.ConditionFailed):
                store.put({"id": "f", "x": 1}, expect=expect)
            with pytest.raises(NotFound):
                store.find({"id": "f"})
        assert store.count() == len(holding)

    def test_update_on_a_missing_key_stays_not_found(self, make_store: StoreFactory) -> None:
        store = make_store()
        store.put({"id": "a", "x": 1})
        expects: list[dict[str, Any]] = [
            {"x": 1},
            {"x": None},
            {},
            {"x": kvstore.exists()},
            {"x": kvstore.one_of([None])},
        ]
        for expect in expects:
            with pytest.raises(NotFound) as info:
                store.update({"id": "b", "x": 1}, expect=expect)
            assert type(info.value) is NotFound
        assert store.find_all() == [{"id": "a", "x": 1}]

    def test_expect_is_read_against_the_record_before_the_write(
        self, make_store: StoreFactory
    ) -> None:
        store = make_store()
        store.put({"id": "job", "state": "new"})
        assert store.update({"id": "job", "state": "done"}, expect={"state": "new"}) == {
            "id": "job",
            "state": "done",
        }
        with pytest.raises(kvstore.ConditionFailed):
            store.update({"id": "job", "state": "done"}, expect={"state": "new"})
        with pytest.raises(kvstore.ConditionFailed):
            store.put({"id": "job", "state": "new"}, expect={"state": "new"})
        assert store.find({"id": "job"}) == {"id": "job", "state": "done"}

    def test_conditional_writes_on_a_compound_key(self, make_store: StoreFactory) -> None:
        store = make_store(id_field=("team", "seq"), key_type=(str, int))
        store.put_many([{"team": "t", "seq": 1, "n": 1}, {"team": "t", "seq": 2, "n": 1}])
        assert store.update({"team": "t", "seq": 1, "n": 2}, expect={"n": 1}) == {
            "team": "t",
            "seq": 1,
            "n": 2,
        }
        with pytest.raises(kvstore.ConditionFailed):
            store.update({"team": "t", "seq": 1, "n": 3}, expect={"n": 1})
        with pytest.raises(kvstore.ConditionFailed):
            store.put({"team": "t", "seq": 2}, expect={"seq": 1})
        assert store.put({"team": "t", "seq": 2}, expect={"team": "t", "seq": 2, "n": 1}) == {
            "team": "t",
            "seq": 2,
        }
        assert store.find_all() == [{"team": "t", "seq": 1, "n": 2}, {"team": "t", "seq": 2}]

    @pytest.mark.parametrize("case", sorted(BAD_EXPECTS))
    def test_a_bad_expect_is_invalid_before_any_io(
        self, make_store: StoreFactory, case: str
    ) -> None:
        store = make_store(ensure=False)
        with pytest.raises(InvalidArgument):
            store.put({"id": "a"}, expect=BAD_EXPECTS[case]())
        with pytest.raises(InvalidArgument):
            store.update({"id": "a", "x": 1}, expect=BAD_EXPECTS[case]())

    def test_bad_condition_operands_are_invalid_before_any_io(
        self, make_store: StoreFactory
    ) -> None:
        store = make_store(ensure=False)
        makers: list[Callable[[], Any]] = [
            lambda: kvstore.lt(True),
            lambda: kvstore.ge([1]),
            lambda: kvstore.gt(None),
            lambda: kvstore.le(float("nan")),
            lambda: kvstore.between(2, 1),
            lambda: kvstore.between(1, "z"),
            lambda: kvstore.begins_with(""),
            lambda: kvstore.begins_with(1),  # type: ignore[arg-type]
            lambda: kvstore.one_of([]),
            lambda: kvstore.one_of(list(range(101))),
        ]
        for make in makers:
            # The condition may refuse its operand when made or when used: either way it is
            # InvalidArgument, and the store never reaches its (missing) table.
            with pytest.raises(InvalidArgument):
                store.put({"id": "a"}, expect={"x": make()})
            with pytest.raises(InvalidArgument):
                store.update({"id": "a", "y": 1}, expect={"x": make()})

    def test_bad_arguments_win_over_a_failing_condition_and_change_nothing(
        self, make_store: StoreFactory
    ) -> None:
        store = make_store()
        store.put({"id": "a", "x": 1})
        calls: list[Callable[[], Any]] = [
            lambda: store.put({"id": "a", "x": {1}}, expect={"x": 2}),
            lambda: store.put({"x": 2}, expect={"x": 2}),
            lambda: store.update({"id": "a", "x": b"2"}, expect={"x": 2}),
            lambda: store.update({"id": "missing", "x": float("inf")}, expect={"x": 2}),
            lambda: store.update({"id": "a", "x": 2}, expect={"bad-name": 1}),
        ]
        for call in calls:
            with pytest.raises(InvalidArgument):
                call()
        for make_expect in BAD_EXPECTS.values():
            with pytest.raises(InvalidArgument):
                store.put({"id": "a", "x": 2}, expect=make_expect())
        assert store.find_all() == [{"id": "a", "x": 1}]

    def test_the_validate_hook_runs_on_conditional_writes(self, make_store: StoreFactory) -> None:
        seen: list[dict[str, Any]] = []

        def lower_name(record: dict[str, Any]) -> dict[str, Any]:
            seen.append(dict(record))
            if record.get("name") == "REJECT":
                raise Rejected("no rejects")
            if isinstance(record.get("name"), str):
                return record | {"name": record["name"].lower()}
            return record

        store = make_store(validate=lower_name)
        store.put({"id": "a", "name": "ADA"})
        seen.clear()
        assert store.put({"id": "a", "name": "BOB"}, expect={"name": "ada"}) == {
            "id": "a",
            "name": "bob",
        }
        assert seen == [{"id": "a", "name": "BOB"}, {"id": "a", "name": "bob"}]
        seen.clear()
        assert store.update({"id": "a", "name": "CY"}, expect={"name": "bob"}) == {
            "id": "a",
            "name": "cy",
        }
        assert seen == [{"id": "a", "name": "CY"}, {"id": "a", "name": "cy"}]
        # expect is a filter: it matches the stored values, it is not passed through the hook.
        with pytest.raises(kvstore.ConditionFailed):
            store.update({"id": "a", "name": "DI"}, expect={"name": "CY"})
        seen.clear()
        with pytest.raises(kvstore.ConditionFailed):
            store.put({"id": "a", "name": "DI"}, expect={"name": "CY"})
        assert seen[0] == {"id": "a", "name": "DI"}
        # The hook runs on the argument first: its error wins over a condition that would fail.
        with pytest.raises(Rejected):
            store.put({"id": "a", "name": "REJECT"}, expect={"name": "nobody"})
        with pytest.raises(Rejected):
            store.update({"id": "a", "name": "REJECT"}, expect={"name": "nobody"})
        plain = make_store(kind=store.kind, ensure=False)
        assert plain.find_all() == [{"id": "a", "name": "cy"}]

    def test_racing_compare_and_swap_loses_no_write(self, make_store: StoreFactory) -> None:
        self.require("atomic_conditional_writes")
        threads, rounds = 4, 10
        first = make_store()
        first.put({"id": "c", "n": 0})
        # Half the threads share one store object, the others each have their own.
        stores = [first] * (threads // 2) + [
            make_store(kind=first.kind, ensure=False) for _ in range(threads - threads // 2)
        ]

        def work(thread: int) -> list[int]:
            store = stores[thread]
            written: list[int] = []
            for _ in range(rounds * threads * 10):  # a bound, never reached when writes are atomic
                if len(written) == rounds:
                    break
                seen = store.find({"id": "c"})["n"]
                try:
                    if thread % 2:
                        result = store.update({"id": "c", "n": seen + 1}, expect={"n": seen})
                    else:
                        result = store.put({"id": "c", "n": seen + 1}, expect={"n": seen})
                except kvstore.ConditionFailed:
                    continue
                written.append(result["n"])
            return written

        results = in_threads(threads, work)
        assert [len(written) for written in results] == [rounds] * threads
        every = sorted(n for written in results for n in written)
        # Each successful swap wrote a value no other one wrote: none was lost or repeated.
        assert every == list(range(1, threads * rounds + 1))
        assert first.find({"id": "c"}) == {"id": "c", "n": threads * rounds}


class Rejected(Exception):
    """What the test hook raises: it must reach the caller unchanged."""
