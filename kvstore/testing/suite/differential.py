"""Random operation sequences on the backend under test and on the memory backend, compared.

The memory backend is the contract's reference: for any sequence of calls, valid or not, every
backend must return the same results and raise the same errors.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kvstore import Store, create_store
from kvstore.testing.fixtures import StoreFactory, StoreFixtures, unique_kind
from kvstore.testing.suite.helpers import outcome, typed

KEYS = st.sampled_from(["a", "b", "c", "é"])
# Values chosen to collide under loose equality: 1 / 1.0 / True / "1", lists vs their order...
VALUES = st.sampled_from(
    [1, 1.0, 2, 2.5, True, False, 0, "1", "a", "", None, [1], [1, 2], [2, 1], {"k": 1}, {"k": None}]
)
BAD_VALUES = st.sampled_from([{1}, float("nan"), 2**64, b"x"])
SOME_VALUES = st.one_of(VALUES, VALUES, VALUES, VALUES, VALUES, VALUES, BAD_VALUES)
FIELDS = {"x": SOME_VALUES, "y": SOME_VALUES}
RECORDS = st.one_of(
    st.fixed_dictionaries({"id": KEYS}, optional=FIELDS),
    st.fixed_dictionaries({"id": KEYS}, optional=FIELDS),
    st.fixed_dictionaries({}, optional=FIELDS),
)
FILTERS = st.fixed_dictionaries(
    {},
    optional={"id": st.one_of(KEYS, st.just(None)), "x": SOME_VALUES, "y": SOME_VALUES},
)
FIELD_VALUES = st.one_of(
    st.tuples(st.just("id"), st.lists(st.one_of(KEYS, KEYS, st.just(None)), max_size=4)),
    st.tuples(st.sampled_from(["x", "y"]), st.lists(SOME_VALUES, max_size=4)),
)
OPERATIONS = st.one_of(
    st.tuples(st.sampled_from(["put", "create", "update"]), RECORDS),
    st.tuples(st.sampled_from(["find", "find_all", "count", "remove", "iter_all"]), FILTERS),
    st.tuples(st.just("find_or_create"), FILTERS, RECORDS),
    st.tuples(st.sampled_from(["find_in", "remove_in"]), FIELD_VALUES),
    st.tuples(st.just("put_many"), st.lists(RECORDS, max_size=4)),
    st.tuples(st.just("truncate"), st.booleans()),
)


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
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
            database=None,
        )
        @given(st.lists(OPERATIONS, max_size=12))
        def run(operations: list[tuple[Any, ...]]) -> None:
            store.truncate(force=True)
            oracle.truncate(force=True)
            for step, operation in enumerate(operations):
                got, expected = apply(store, operation), apply(oracle, operation)
                assert got == expected, f"step {step}: {operation!r}"
            assert typed(store.find_all()) == typed(oracle.find_all())

        run()
