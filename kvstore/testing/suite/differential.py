"""Random operation sequences on the backend under test and on the memory backend, compared.

The memory backend is the contract's reference: for any sequence of calls, valid or not, every
backend must return the same results and raise the same errors.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kvstore import Store, create_store
from kvstore.testing.fixtures import StoreFactory, StoreFixtures, unique_kind
from kvstore.testing.suite.helpers import outcome, typed

KEYS = st.sampled_from(["a", "b", "a", "b", "é"])  # few keys, so calls meet the same records
# Values that collide under loose equality: 1 / 1.0 / True / "1", 0 / False, [1] / [True]...
BASE_VALUES: list[Any] = [1, True, "1", 0, False, [1], [True], {"k": 1.5}]
BAD_VALUES = st.sampled_from([{1}, float("nan"), 2**64, b"x", (1, {2})])
# Writes come more often than reads, so that reads have something to find.
WEIGHTED = [*("put", "update", "put_many") * 3, "create", "find_or_create", "remove_in"]
NAMES = [
    *WEIGHTED,
    *("find", "find_all", "count", "iter_all", "remove", "find_in", "remove_in", "truncate"),
]


def twins(value: Any) -> list[Any]:
    """Values a loose comparison would confuse with ``value`` (``True`` and ``1``, ``1`` and
    ``"1"``, ``[1]`` and ``[True]``...), so reads probe what is stored with its look-alikes."""
    if isinstance(value, bool):
        return [int(value), float(value)]
    if isinstance(value, (int, float)):
        return [value, str(value), *([bool(value)] if value in (0, 1) else [])]
    if isinstance(value, list):
        return [[twin] for item in value[:1] for twin in twins(item)] + [list(reversed(value))]
    if isinstance(value, dict):
        return [{key: twin} for key, item in list(value.items())[:1] for twin in twins(item)]
    return [value]


def operations(seen: list[Any]) -> st.SearchStrategy[tuple[Any, ...]]:
    """One call, valid or not, whose values come from the base pool, ``seen`` and their twins."""
    pool = BASE_VALUES + [twin for value in seen for twin in (value, *twins(value))]
    values = st.sampled_from(pool)
    # None is "absent" in records and filters and "remove" in update: give it a fair share.
    some = st.one_of(values, values, values, st.none())
    fields = {"x": some, "y": some}
    records = st.one_of(
        st.fixed_dictionaries({"id": KEYS, "x": some}),
        st.fixed_dictionaries({"id": KEYS}, optional=fields),
    )
    changes = st.one_of(
        records, st.fixed_dictionaries({"id": KEYS, "x": st.none()}, optional={"y": some})
    )
    filters = st.one_of(
        st.fixed_dictionaries({"x": some}),
        st.fixed_dictionaries({}, optional={"id": KEYS, **fields}),
    )
    field_values = st.one_of(
        st.tuples(st.just("id"), st.lists(KEYS, min_size=1, max_size=4)),
        st.tuples(st.sampled_from(["x", "y"]), st.lists(some, min_size=1, max_size=4)),
    )
    arguments: dict[str, tuple[st.SearchStrategy[Any], ...]] = {
        "put": (records,),
        "create": (records,),
        "update": (changes,),
        "put_many": (st.lists(records, min_size=1, max_size=4),),
        "find_or_create": (filters, records),
        "find": (filters,),
        "find_all": (filters,),
        "count": (filters,),
        "iter_all": (filters,),
        "remove": (filters,),
        "find_in": (field_values,),
        "remove_in": (field_values,),
        "truncate": (st.booleans(),),
    }
    valid = st.sampled_from(NAMES).flatmap(lambda name: st.tuples(st.just(name), *arguments[name]))
    # Invalid calls: every backend must refuse them alike, and change nothing.
    bad_records = st.one_of(
        st.fixed_dictionaries({"x": some}),  # no key
        st.fixed_dictionaries({"id": KEYS, "x": BAD_VALUES}),
        st.fixed_dictionaries({"id": st.sampled_from([None, "", 5, True])}),
    )
    bad_filters = st.one_of(
        st.fixed_dictionaries({"x": BAD_VALUES}),
        st.fixed_dictionaries({"id": st.sampled_from([None, "", 5])}),
    )
    invalid = st.one_of(
        st.tuples(st.sampled_from(["put", "create", "update"]), bad_records),
        st.tuples(st.just("put_many"), st.tuples(records, bad_records)),
        st.tuples(st.just("find_or_create"), st.one_of(filters, bad_filters), bad_records),
        st.tuples(
            st.sampled_from(["find", "find_all", "count", "iter_all", "remove"]), bad_filters
        ),
        st.tuples(st.just("remove"), st.just({})),
        st.tuples(
            st.sampled_from(["find_in", "remove_in"]),
            st.tuples(st.just("x"), st.lists(BAD_VALUES, min_size=1, max_size=2)),
        ),
    )
    return st.one_of(valid, valid, valid, valid, valid, valid, invalid)


def stored_values(store: Store) -> list[Any]:
    """The non-key values ``store`` holds now."""
    return [value for record in store.find_all() for key, value in record.items() if key != "id"]


def apply(store: Store, operation: tuple[Any, ...]) -> tuple[str, Any]:
    """Run one generated operation on ``store`` and return its outcome."""
    name, *args = operation
    if name in ("find_in", "remove_in"):
        field, values = args[0]
        return outcome(lambda: getattr(store, name)(field, list(values)))
    if name == "truncate":
        return outcome(lambda: store.truncate(force=args[0]))
    if name == "put_many":
        return outcome(lambda: store.put_many(dict(record) for record in args[0]))
    return outcome(lambda: getattr(store, name)(*(dict(arg) for arg in args)))


class AbstractDifferentialTests(StoreFixtures):
    """The backend under test agrees with the memory backend on random call sequences."""

    def test_random_operation_sequences_match_the_memory_backend(
        self, make_store: StoreFactory
    ) -> None:
        store = make_store()
        oracle = create_store(unique_kind("oracle"), backend="memory")
        oracle.ensure()

        @settings(
            max_examples=self.differential_examples,
            deadline=timedelta(seconds=10),  # a bound per example, even on a slow server
            suppress_health_check=[HealthCheck.too_slow],
            database=None,
        )
        @given(st.data())
        def run(data: st.DataObject) -> None:
            store.truncate(force=True)
            oracle.truncate(force=True)
            steps = data.draw(st.integers(min_value=1, max_value=15), label="steps")
            for step in range(steps):
                operation = data.draw(operations(stored_values(oracle)), label=f"step {step}")
                got, expected = apply(store, operation), apply(oracle, operation)
                assert got == expected, f"step {step}: {operation!r}"
            assert typed(store.find_all()) == typed(oracle.find_all())

        run()
