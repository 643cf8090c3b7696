"""Contract part 2, "counters": ``increment(n)`` in ``update`` changes adds atomically."""

# (The part-2 API, kvstore.increment and expect=..., is being built: remove the line above once
# it lands, so that mypy checks these calls too.)

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

import kvstore
from kvstore import InvalidArgument, NotFound, Store
from kvstore.testing.fixtures import StoreFactory, StoreFixtures
from kvstore.testing.suite.helpers import in_threads, normalised, typed

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)

Number = int | float | Decimal


def exact_sum(stored: Number, n: Number) -> int | float:
    """``stored + n`` computed exactly, then normalised (the cases pick binary-exact operands)."""
    return normalised(Decimal(stored) + Decimal(n))


SUMS: list[tuple[Number, Number]] = [
    (3, 1),
    (3, 0.5),
    (3, 1.0),
    (2.5, 0.5),
    (2.5, 1),
    (0.25, -0.25),
    (10, -10),
    (-5, 2),
    (1, Decimal("1.5")),
    (2**53, 2**53),
    (INT64_MAX - 1, 1),
    (INT64_MIN + 1, -1),
    (1.5e-130, -1.5e-130),
    (2**53, 0.5),  # more digits than a double holds: stored as the double nearest, an int
    (1e16, 0.5),
    (12345678901234567, 0.25),
]
"""(stored, n) pairs whose sum is valid; the expected result is computed by ``exact_sum``."""

OUT_OF_RANGE: list[tuple[Number, Number]] = [
    (INT64_MAX, 1),
    (INT64_MIN, -1),
    (2**62, 2**62),
    (9e125, 9e125),
    (-9e125, -9e125),
    (2e-130, -1.5e-130),
]
"""(stored, n) pairs whose sum breaks part 1's number rules: past int64 when both are ints,
magnitude 1E+126 or more, or nonzero under 1E-130."""

BAD_INCREMENTS: dict[str, Any] = {
    "true": True,
    "false": False,
    "string": "1",
    "none": None,
    "list": [1],
    "dict": {"n": 1},
    "nan": float("nan"),
    "inf": float("inf"),
    "minus_inf": float("-inf"),
    "decimal_nan": Decimal("NaN"),
    "past_int64": 2**63,
    "under_int64": -(2**63) - 1,
    "too_large": 1e126,
    "too_small": Decimal("1e-131"),
}
"""Arguments ``increment`` refuses: not a number, or a number outside part 1's rules."""

STORED_NON_NUMBERS: dict[str, Any] = {
    "s": "3",
    "empty": "",
    "t": True,
    "f": False,
    "l": [1],
    "m": {"k": 1},
}
"""Stored values an increment cannot add to (a bool is not a number)."""


def _increment_elsewhere(store: Store) -> dict[str, Callable[[], Any]]:
    """Calls placing an increment where only plain values are taken."""
    inc = kvstore.increment
    return {
        "put": lambda: store.put({"id": "a", "n": inc(1)}),
        "create": lambda: store.create({"id": "a", "n": inc(1)}),
        "put_many": lambda: store.put_many([{"id": "a", "n": inc(1)}]),
        "find_or_create": lambda: store.find_or_create({"id": "a"}, {"id": "a", "n": inc(1)}),
        "find": lambda: store.find({"n": inc(1)}),
        "count": lambda: store.count({"n": inc(1)}),
        "remove": lambda: store.remove({"n": inc(1)}),
        "expect": lambda: store.update({"id": "a", "x": 1}, expect={"n": inc(1)}),
        "update_key_field": lambda: store.update({"id": inc(1), "n": 1}),
        "update_nested_dict": lambda: store.update({"id": "a", "m": {"n": inc(1)}}),
        "update_nested_list": lambda: store.update({"id": "a", "l": [inc(1)]}),
    }


class AbstractIncrementTests(StoreFixtures):
    """``increment(n)``: from 0, normalised results, range errors, races, with expect and sets."""

    def test_an_absent_field_counts_as_zero(self, make_store: StoreFactory) -> None:
        store = make_store()
        store.put({"id": "a", "other": 1})
        inc = kvstore.increment
        updated = store.update({"id": "a", "n": inc(5), "z": inc(0), "neg": inc(-2), "f": inc(0.5)})
        expected = {"id": "a", "other": 1, "n": 5, "z": 0, "neg": -2, "f": 0.5}
        assert typed(updated) == typed(expected)
        assert typed(store.find({"id": "a"})) == typed(expected)

    def test_increments_add_to_the_stored_value_each_time(self, make_store: StoreFactory) -> None:
        store = make_store()
        store.put({"id": "a", "n": 10})
        total = 10
        for n in (5, -20, 1, 0, 7):
            total += n
            assert typed(store.update({"id": "a", "n": kvstore.increment(n)})) == typed(
                {"id": "a", "n": total}
            )
        assert typed(store.find({"id": "a"})) == typed({"id": "a", "n": total})

    @pytest.mark.parametrize(("stored", "n"), SUMS, ids=lambda v: repr(v))
    def test_the_result_is_normalised_like_every_stored_number(
        self, make_store: StoreFactory, stored: Number, n: Number
    ) -> None:
        store = make_store()
        store.put({"id": "a", "v": stored})
        expected = {"id": "a", "v": exact_sum(stored, n)}
        assert typed(store.update({"id": "a", "v": kvstore.increment(n)})) == typed(expected)
        assert typed(store.find({"id": "a"})) == typed(expected)
        # Stored as read: a filter (evaluated by the server) finds it by its normalised value.
        assert typed(store.find_all({"v": expected["v"]})) == typed([expected])

    def test_three_plus_a_half_and_three_plus_one_point_zero(
        self, make_store: StoreFactory
    ) -> None:
        # The contract's own examples, spelt out.
        store = make_store()
        store.put_many([{"id": "a", "v": 3}, {"id": "b", "v": 3}])
        assert typed(store.update({"id": "a", "v": kvstore.increment(0.5)})["v"]) == typed(3.5)
        assert typed(store.update({"id": "b", "v": kvstore.increment(1.0)})["v"]) == typed(4)
        assert typed(store.find_all()) == typed([{"id": "a", "v": 3.5}, {"id": "b", "v": 4}])

    def test_a_float_operand_may_take_an_int_past_int64(self, make_store: StoreFactory) -> None:
        # Only an int plus an int must stay within int64; any other sum is a float when it is
        # integral but outside int64, like every stored number.
        store = make_store()
        store.put({"id": "a", "v": INT64_MAX})
        expected = {"id": "a", "v": exact_sum(INT64_MAX, 1.0)}
        assert typed(expected["v"]) == typed(float(2**63))
        assert typed(store.update({"id": "a", "v": kvstore.increment(1.0)})) == typed(expected)
        assert typed(store.find({"id": "a"})) == typed(expected)

    @pytest.mark.parametrize(("stored", "n"), OUT_OF_RANGE, ids=lambda v: repr(v))
    def test_a_result_outside_the_number_rules_raises_and_changes_nothing(
        self, make_store: StoreFactory, stored: Number, n: Number
    ) -> None:
        store = make_store()
        original = {"id": "a", "v": stored, "other": 1}
        store.put(original)
        before = store.find({"id": "a"})
        with pytest.raises(InvalidArgument):
            store.update({"id": "a", "v": kvstore.increment(n)})
        with pytest.raises(InvalidArgument):
            # The other changes of the same update are not applied either.
            store.update({"id": "a", "other": 2, "new": 1, "v": kvstore.increment(n)})
        assert typed(store.find({"id": "a"})) == typed(before)

    @pytest.mark.parametrize("field", sorted(STORED_NON_NUMBERS))
    def test_a_stored_value_that_is_not_a_number_raises_and_changes_nothing(
        self, make_store: StoreFactory, field: str
    ) -> None:
        store = make_store()
        original = {"id": "a", field: STORED_NON_NUMBERS[field], "other": 1}
        store.put(original)
        with pytest.raises(InvalidArgument):
            store.update({"id": "a", field: kvstore.increment(1)})
        with pytest.raises(InvalidArgument):
            store.update({"id": "a", "other": 2, field: kvstore.increment(1)})
        assert typed(store.find({"id": "a"})) == typed(original)

    @pytest.mark.parametrize("argument", sorted(BAD_INCREMENTS))
    def test_a_bad_increment_is_invalid_before_any_io(
        self, make_store: StoreFactory, argument: str
    ) -> None:
        store = make_store(ensure=False)
        # increment() may refuse its argument when made or when the update is checked: either
        # way it is InvalidArgument, and the store never reaches its (missing) table.
        with pytest.raises(InvalidArgument):
            store.update({"id": "a", "n": kvstore.increment(BAD_INCREMENTS[argument])})

    def test_an_increment_is_only_a_value_of_update_changes(self, make_store: StoreFactory) -> None:
        store = make_store(ensure=False)
        for call in _increment_elsewhere(store).values():
            with pytest.raises(InvalidArgument):
                call()
        existing = make_store()
        existing.put({"id": "a", "n": 1, "m": {"n": 1}, "l": [1]})
        for call in _increment_elsewhere(existing).values():
            with pytest.raises(InvalidArgument):
                call()
        assert existing.find_all() == [{"id": "a", "n": 1, "m": {"n": 1}, "l": [1]}]

    def test_an_increment_on_a_missing_key_raises_not_found(self, make_store: StoreFactory) -> None:
        store = make_store()
        store.put({"id": "a"})
        with pytest.raises(NotFound):
            store.update({"id": "b", "n": kvstore.increment(1)})
        assert store.find_all() == [{"id": "a"}]

    def test_increments_with_plain_sets_and_removals_in_one_update(
        self, make_store: StoreFactory
    ) -> None:
        store = make_store()
        store.put({"id": "a", "n": 1, "f": 2.5, "keep": "k", "drop": 1})
        inc = kvstore.increment
        updated = store.update(
            {
                "id": "a",
                "n": inc(1),
                "f": inc(-0.5),
                "new": inc(3),
                "name": "x",
                "drop": None,
            }
        )
        expected = {"id": "a", "n": 2, "f": 2, "new": 3, "keep": "k", "name": "x"}
        assert typed(updated) == typed(expected)
        assert typed(store.find({"id": "a"})) == typed(expected)

    def test_one_update_may_increment_many_fields(self, make_store: StoreFactory) -> None:
        # As many as one DynamoDB condition expression holds (4 KB, 300 operators); the odd
        # ones start absent.
        store = make_store(version_field="version")
        store.put({"id": "a", **{f"n{i}": i for i in range(0, 36, 2)}})
        changes: dict[str, Any] = {f"n{i}": kvstore.increment(i) for i in range(36)}
        sums = {f"n{i}": 2 * i if i % 2 == 0 else i for i in range(36)}
        assert store.update({"id": "a", **changes}) == {"id": "a", "version": 2, **sums}
        with kvstore.transaction() as tx:
            tx.update(store, {"id": "a", **changes})
        again = {name: total + int(name[1:]) for name, total in sums.items()}
        assert store.find({"id": "a"}) == {"id": "a", "version": 3, **again}

    def test_an_increment_with_expect(self, make_store: StoreFactory) -> None:
        store = make_store()
        store.put({"id": "sku", "qty": 2})
        take = {"id": "sku", "qty": kvstore.increment(-1), "taken": kvstore.increment(1)}
        assert store.update(take, expect={"qty": kvstore.ge(1)}) == {
            "id": "sku",
            "qty": 1,
            "taken": 1,
        }
        assert store.update(take, expect={"qty": kvstore.ge(1)}) == {
            "id": "sku",
            "qty": 0,
            "taken": 2,
        }
        with pytest.raises(kvstore.ConditionFailed):
            store.update(take, expect={"qty": kvstore.ge(1)})
        assert store.find({"id": "sku"}) == {"id": "sku", "qty": 0, "taken": 2}
        # A plain expect on the field being incremented reads the value before the change.
        assert store.update({"id": "sku", "qty": kvstore.increment(5)}, expect={"qty": 0}) == {
            "id": "sku",
            "qty": 5,
            "taken": 2,
        }

    def test_racing_increments_lose_nothing(self, make_store: StoreFactory) -> None:
        self.require("atomic_conditional_writes")
        threads, rounds = 4, 10
        first = make_store()
        first.put({"id": "c"})
        stores = [first] * (threads // 2) + [
            make_store(kind=first.kind, ensure=False) for _ in range(threads - threads // 2)
        ]
        change = {"id": "c", "n": kvstore.increment(1), "half": kvstore.increment(0.5)}

        def work(thread: int) -> list[int]:
            return [stores[thread].update(change)["n"] for _ in range(rounds)]

        results = in_threads(threads, work)
        total = threads * rounds
        # Each update returned the record right after its own change: every count once.
        assert sorted(n for counts in results for n in counts) == list(range(1, total + 1))
        expected = {"id": "c", "n": total, "half": normalised(Decimal(total) / 2)}
        assert typed(first.find({"id": "c"})) == typed(expected)
