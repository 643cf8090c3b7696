"""Contract part 2, "Transactions": buffered operations applied all together or not at all."""

# (The part-2 API, kvstore.transaction and its operations, is being built: remove the line above
# once it lands, so that mypy checks these calls too.)

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import kvstore
from kvstore import (
    AlreadyExists,
    ConfigError,
    InvalidArgument,
    NotFound,
    Store,
    StoreError,
    create_store,
)
from kvstore.testing.fixtures import StoreFactory, StoreFixtures, unique_kind
from kvstore.testing.suite.helpers import dynamo_string_record, in_threads, keys, typed
from kvstore.values import item_size

MAX_OPERATIONS = 100
MAX_BYTES = 4_194_304
"""4 MiB: the most a transaction may write in all, by the item-size rules."""

Operation = Callable[[Any, Store, Store], Any]
"""Adds one operation to ``tx`` on the two stores of a test: ``op(tx, a, b)``."""

# Valid operations, on keys no failing operation below touches: a put, an update, a create, a
# remove of an existing record and a check that holds.
VALID: list[Operation] = [
    lambda tx, a, b: tx.put(b, {"id": "p", "v": 1}),
    lambda tx, a, b: tx.update(a, {"id": "other", "x": 5}),
    lambda tx, a, b: tx.create(a, {"id": "new"}),
    lambda tx, a, b: tx.remove(b, {"id": "r"}),
    lambda tx, a, b: tx.check(b, {"id": "c"}, expect={"ok": True}),
]

FAILING: dict[str, tuple[type[StoreError] | str, Operation]] = {
    "create_of_a_taken_key": (AlreadyExists, lambda tx, a, b: tx.create(a, {"id": "taken"})),
    "update_of_a_missing_key": (
        NotFound,
        lambda tx, a, b: tx.update(a, {"id": "nobody", "x": 1}),
    ),
    "update_of_a_missing_key_with_a_holding_expect": (
        NotFound,
        lambda tx, a, b: tx.update(a, {"id": "nobody", "x": 1}, expect={"x": None}),
    ),
    "update_with_a_failing_expect": (
        "ConditionFailed",
        lambda tx, a, b: tx.update(a, {"id": "taken", "x": 2}, expect={"x": 2}),
    ),
    "increment_with_a_failing_expect": (
        "ConditionFailed",
        lambda tx, a, b: tx.update(
            b, {"id": "count", "n": kvstore.increment(-1)}, expect={"n": kvstore.ge(100)}
        ),
    ),
    "put_with_a_failing_expect": (
        "ConditionFailed",
        lambda tx, a, b: tx.put(a, {"id": "taken"}, expect={"x": None}),
    ),
    "put_on_a_missing_key_expecting_a_value": (
        "ConditionFailed",
        lambda tx, a, b: tx.put(a, {"id": "nobody"}, expect={"x": 1}),
    ),
    "check_that_fails": (
        "ConditionFailed",
        lambda tx, a, b: tx.check(a, {"id": "taken"}, expect={"x": 2}),
    ),
    "check_on_a_missing_key_expecting_a_value": (
        "ConditionFailed",
        lambda tx, a, b: tx.check(a, {"id": "nobody"}, expect={"x": 1}),
    ),
    "check_on_a_missing_key_expecting_a_field": (
        "ConditionFailed",
        lambda tx, a, b: tx.check(a, {"id": "nobody"}, expect={"x": kvstore.exists()}),
    ),
}
"""Operations that fail alone, with the error class they raise (a name: not importable yet)."""

BAD_OPERATIONS: dict[str, Operation] = {
    "put_without_the_key": lambda tx, s, pair: tx.put(s, {"x": 1}),
    "put_of_a_bad_value": lambda tx, s, pair: tx.put(s, {"id": "a", "v": {1, 2}}),
    "put_of_a_bad_key_type": lambda tx, s, pair: tx.put(s, {"id": 5}),
    "put_of_an_increment": lambda tx, s, pair: tx.put(s, {"id": "a", "n": kvstore.increment(1)}),
    "put_too_big": lambda tx, s, pair: tx.put(s, {"id": "a", "blob": "x" * 409_600}),
    "put_with_a_bad_expect": lambda tx, s, pair: tx.put(s, {"id": "a"}, expect={"bad-name": 1}),
    "create_without_the_key": lambda tx, s, pair: tx.create(s, {"x": 1}),
    "create_of_a_bad_value": lambda tx, s, pair: tx.create(s, {"id": "a", "v": b"x"}),
    "update_without_the_key": lambda tx, s, pair: tx.update(s, {"x": 1}),
    "update_of_a_bad_value": lambda tx, s, pair: tx.update(s, {"id": "a", "x": float("nan")}),
    "update_of_a_bad_increment": lambda tx, s, pair: tx.update(
        s, {"id": "a", "n": kvstore.increment(True)}
    ),
    "update_with_a_bad_expect": lambda tx, s, pair: tx.update(
        s, {"id": "a", "x": 1}, expect={"x": {1}}
    ),
    "remove_by_a_field_that_is_not_the_key": lambda tx, s, pair: tx.remove(s, {"x": 1}),
    "remove_of_empty_filters": lambda tx, s, pair: tx.remove(s, {}),
    "remove_of_a_bad_key": lambda tx, s, pair: tx.remove(s, {"id": 5}),
    "remove_by_a_partial_key": lambda tx, s, pair: tx.remove(pair, {"team": "t"}),
    "check_by_a_field_that_is_not_the_key": lambda tx, s, pair: tx.check(
        s, {"x": 1}, expect={"x": 1}
    ),
    "check_by_a_partial_key": lambda tx, s, pair: tx.check(pair, {"team": "t"}, expect={}),
    "check_with_a_bad_expect": lambda tx, s, pair: tx.check(s, {"id": "a"}, expect={"bad-name": 1}),
}
"""Operations whose arguments are wrong: ``op(tx, store, compound_key_store)``."""


def _error_class(spec: type[StoreError] | str) -> type[StoreError]:
    return getattr(kvstore, spec) if isinstance(spec, str) else spec


def _backend_of(store: Store) -> str | None:
    """The backend name a store reports (``RecordStore.backend``), when it reports one."""
    name = getattr(store, "backend", None)
    return name if isinstance(name, str) else None


TxOperation = Callable[[Any], Any]
"""Adds one operation to the transaction ``tx`` it is given."""


def _bind(operation: Operation, a: Store, b: Store) -> TxOperation:
    return lambda tx: operation(tx, a, b)


def _put(store: Store, record: dict[str, Any]) -> TxOperation:
    return lambda tx: tx.put(store, record)


class Block:
    """A ``with transaction() as tx`` block a test runs: its steps in order, each given ``tx``.

    ``added`` counts the steps that returned, so a test can tell which one raised.
    """

    def __init__(self, *steps: TxOperation) -> None:
        self.steps = steps
        self.added = 0

    @classmethod
    def on(cls, a: Store, b: Store, *operations: Operation) -> Block:
        """A block of ``operations`` on the stores ``a`` and ``b``."""
        return cls(*(_bind(operation, a, b) for operation in operations))

    def __call__(self) -> None:
        """Run the block: add each step to one transaction, which commits when the block ends."""
        with kvstore.transaction() as tx:
            for step in self.steps:
                step(tx)
                self.added += 1


class Boom(Exception):
    """What a test raises inside a transaction block: it must come out unchanged."""


class AbstractTransactionTests(StoreFixtures):
    """``with transaction() as tx``: all or nothing, errors with ``.index``, limits as added."""

    def _two_stores(self, make_store: StoreFactory) -> tuple[Store, Store]:
        """Store ``a`` and store ``b`` holding the records ``VALID`` and ``FAILING`` expect."""
        a, b = make_store(), make_store()
        a.put_many([{"id": "taken", "x": 1}, {"id": "other", "x": 1}])
        b.put_many([{"id": "count", "n": 1}, {"id": "r"}, {"id": "c", "ok": True}])
        return a, b

    def test_the_operations_apply_together_at_the_end_of_the_block(
        self, make_store: StoreFactory
    ) -> None:
        orders, stock = make_store(), make_store()
        orders.put_many([{"id": "o0", "x": 1}, {"id": "c1"}])
        stock.put_many([{"id": "a", "qty": 3}, {"id": "u1", "status": "active"}, {"id": "old"}])
        with kvstore.transaction() as tx:
            tx.create(orders, {"id": "o1", "sku": "a"})
            tx.put(orders, {"id": "o0", "y": 2.0})
            tx.update(
                stock, {"id": "a", "qty": kvstore.increment(-1)}, expect={"qty": kvstore.ge(1)}
            )
            tx.remove(orders, {"id": "c1"})
            tx.check(stock, {"id": "u1"}, expect={"status": "active"})
            tx.remove(stock, {"id": "old"})
        assert typed(orders.find_all()) == typed([{"id": "o0", "y": 2}, {"id": "o1", "sku": "a"}])
        assert stock.find_all() == [{"id": "a", "qty": 2}, {"id": "u1", "status": "active"}]

    def test_reads_inside_the_block_are_outside_the_transaction(
        self, make_store: StoreFactory
    ) -> None:
        store = make_store()
        before: list[dict[str, Any]] = [{"id": "a", "x": 1}, {"id": "b"}]
        store.put_many(before)
        with kvstore.transaction() as tx:
            tx.put(store, {"id": "new"})
            tx.update(store, {"id": "a", "x": 2})
            tx.remove(store, {"id": "b"})
            # Buffered: nothing is visible before the block ends.
            assert store.find_all() == before
            assert store.count() == 2
            with pytest.raises(NotFound):
                store.find({"id": "new"})
        assert store.find_all() == [{"id": "a", "x": 2}, {"id": "new"}]

    def test_an_empty_transaction_does_nothing(self, make_store: StoreFactory) -> None:
        store = make_store()
        store.put({"id": "a"})
        with kvstore.transaction() as tx:
            assert tx is not None
        assert store.find_all() == [{"id": "a"}]

    @pytest.mark.parametrize("case", sorted(FAILING))
    def test_a_failing_operation_fails_the_whole_transaction_with_its_index(
        self, make_store: StoreFactory, case: str
    ) -> None:
        a, b = self._two_stores(make_store)
        before = (a.find_all(), b.find_all())
        spec, failing = FAILING[case]
        cls = _error_class(spec)
        for position in (0, 2, len(VALID)):
            block = Block.on(a, b, *VALID[:position], failing, *VALID[position:])
            with pytest.raises(StoreError) as info:
                block()
            assert type(info.value) is cls, (position, info.value)
            assert info.value.code == cls.code
            assert info.value.index == position
            assert (a.find_all(), b.find_all()) == before
        # The same valid operations without the failing one all apply.
        Block.on(a, b, *VALID)()
        assert a.find_all() == [{"id": "new"}, {"id": "other", "x": 5}, {"id": "taken", "x": 1}]
        assert b.find_all() == [
            {"id": "c", "ok": True},
            {"id": "count", "n": 1},
            {"id": "p", "v": 1},
        ]

    def test_each_failing_operation_raises_the_same_error_alone(
        self, make_store: StoreFactory
    ) -> None:
        # What a transaction reports is what the operation would raise outside one.
        a, _ = self._two_stores(make_store)
        alone: dict[str, Callable[[], Any]] = {
            "create_of_a_taken_key": lambda: a.create({"id": "taken"}),
            "update_of_a_missing_key": lambda: a.update({"id": "nobody", "x": 1}),
            "update_with_a_failing_expect": lambda: a.update(
                {"id": "taken", "x": 2}, expect={"x": 2}
            ),
            "put_with_a_failing_expect": lambda: a.put({"id": "taken"}, expect={"x": None}),
            "put_on_a_missing_key_expecting_a_value": lambda: a.put(
                {"id": "nobody"}, expect={"x": 1}
            ),
        }
        for case, call in alone.items():
            with pytest.raises(StoreError) as info:
                call()
            assert type(info.value) is _error_class(FAILING[case][0]), case

    def test_an_exception_inside_the_block_applies_nothing_and_propagates(
        self, make_store: StoreFactory
    ) -> None:
        a, b = self._two_stores(make_store)
        before = (a.find_all(), b.find_all())
        error = Boom("stop")

        def fail(tx: Any) -> None:
            raise error

        valid = Block.on(a, b, *VALID).steps
        block = Block(*valid, fail)
        with pytest.raises(Boom) as info:
            block()
        assert info.value is error
        assert block.added == len(VALID)
        assert (a.find_all(), b.find_all()) == before
        # A store error raised by a read inside the block is no different.
        block = Block(*valid, lambda tx: a.find({"id": "nobody"}))
        with pytest.raises(NotFound):
            block()
        assert block.added == len(VALID)
        assert (a.find_all(), b.find_all()) == before

    def test_remove_of_a_missing_key_is_not_an_error(self, make_store: StoreFactory) -> None:
        store = make_store()
        store.put({"id": "a"})
        with kvstore.transaction() as tx:
            tx.remove(store, {"id": "nobody"})
            tx.put(store, {"id": "b"})
            tx.remove(store, {"id": "a"})
        assert store.find_all() == [{"id": "b"}]

    def test_check_on_a_missing_key_evaluates_expect_against_an_empty_record(
        self, make_store: StoreFactory
    ) -> None:
        store = make_store()
        holding: list[dict[str, Any]] = [{"x": None}, {}, {"x": kvstore.one_of([None, 1])}]
        for number, expect in enumerate(holding):
            with kvstore.transaction() as tx:
                tx.check(store, {"id": f"nobody{number}"}, expect=expect)
                tx.put(store, {"id": f"w{number}"})
        assert keys(store.find_all()) == [f"w{number}" for number in range(len(holding))]

    def test_check_writes_nothing(self, make_store: StoreFactory) -> None:
        store = make_store(version_field="version")
        checked = store.create({"id": "a", "x": 1})
        with kvstore.transaction() as tx:
            tx.check(store, {"id": "a"}, expect={"x": 1, "version": 1})
            tx.put(store, {"id": "b"})
        assert store.find_all() == [checked, {"id": "b", "version": 1}]

    def test_at_most_100_operations(self, make_store: StoreFactory) -> None:
        a, b = make_store(), make_store()
        with kvstore.transaction() as tx:
            for number in range(MAX_OPERATIONS):
                tx.put(a if number % 2 else b, {"id": f"k{number:03}"})
        assert (a.count(), b.count()) == (MAX_OPERATIONS // 2, MAX_OPERATIONS // 2)
        block = Block(
            *(_put(a if n % 2 else b, {"id": f"n{n:03}"}) for n in range(MAX_OPERATIONS + 1))
        )
        with pytest.raises(InvalidArgument):
            block()
        assert block.added == MAX_OPERATIONS  # refused as the 101st was added, not at the end
        assert (a.count(), b.count()) == (MAX_OPERATIONS // 2, MAX_OPERATIONS // 2)

    def test_each_key_of_a_kind_at_most_once(self, make_store: StoreFactory) -> None:
        store = make_store()
        store.put_many([{"id": "a", "x": 1}, {"id": "b"}])
        twin = make_store(kind=store.kind, ensure=False)
        pairs: list[tuple[Callable[[Any], Any], Callable[[Any], Any]]] = [
            (lambda tx: tx.put(store, {"id": "a"}), lambda tx: tx.put(store, {"id": "a"})),
            (lambda tx: tx.put(store, {"id": "a"}), lambda tx: tx.update(store, {"id": "a"})),
            (lambda tx: tx.create(store, {"id": "c"}), lambda tx: tx.remove(store, {"id": "c"})),
            (
                lambda tx: tx.check(store, {"id": "a"}, expect={"x": 1}),
                lambda tx: tx.update(store, {"id": "a", "x": 2}),
            ),
            (lambda tx: tx.remove(store, {"id": "b"}), lambda tx: tx.remove(store, {"id": "b"})),
            (lambda tx: tx.put(store, {"id": "a"}), lambda tx: tx.put(twin, {"id": "a", "y": 1})),
        ]
        for first, second in pairs:
            block = Block(first, second)
            with pytest.raises(InvalidArgument):
                block()
            assert block.added == 1
        assert store.find_all() == [{"id": "a", "x": 1}, {"id": "b"}]

    def test_one_key_in_several_kinds_or_sort_keys_is_fine(self, make_store: StoreFactory) -> None:
        first, second = make_store(), make_store()
        pairs = make_store(id_field=("team", "seq"), key_type=(str, int))
        with kvstore.transaction() as tx:
            tx.put(first, {"id": "a", "n": 1})
            tx.put(second, {"id": "a", "n": 2})
            tx.put(pairs, {"team": "a", "seq": 1})
            tx.create(pairs, {"team": "a", "seq": 2})
            tx.put(pairs, {"team": "b", "seq": 1})
        assert first.find_all() == [{"id": "a", "n": 1}]
        assert second.find_all() == [{"id": "a", "n": 2}]
        assert pairs.find_all() == [
            {"team": "a", "seq": 1},
            {"team": "a", "seq": 2},
            {"team": "b", "seq": 1},
        ]

    def test_every_store_of_one_backend_and_configuration(self, make_store: StoreFactory) -> None:
        store = make_store()
        if _backend_of(store) == "memory":
            pytest.skip("the backend under test is memory: a memory store is not another one")
        other = create_store(unique_kind(), backend="memory")
        other.ensure()
        for first, second in ((store, other), (other, store)):
            block = Block(_put(first, {"id": "a"}), _put(second, {"id": "b"}))
            with pytest.raises(InvalidArgument):
                block()
            assert block.added == 1
        assert store.count() == 0
        assert other.count() == 0

    def test_more_than_4_mib_in_all_is_refused_as_operations_are_added(
        self, make_store: StoreFactory
    ) -> None:
        store = make_store()
        # Ten records of 400,000 bytes fit (4,000,000); an eleventh does not.
        big = [dynamo_string_record(400_000, key=f"b{n:02}") for n in range(11)]
        assert [item_size(record) for record in big] == [400_000] * 11
        block = Block(*(_put(store, record) for record in big))
        with pytest.raises(InvalidArgument):
            block()
        assert block.added == 10
        # Exactly 4 MiB in all is allowed; one more record of any size is not.
        exact = [*big[:10], dynamo_string_record(MAX_BYTES - 10 * 400_000, key="rest")]
        assert sum(item_size(record) for record in exact) == MAX_BYTES
        block = Block(*(_put(store, record) for record in [*exact, {"id": "z"}]))
        with pytest.raises(InvalidArgument):
            block()
        assert block.added == len(exact)
        assert store.count() == 0

    def test_exactly_4_mib_in_all_is_written(self, make_store: StoreFactory) -> None:
        self.require("exact_item_size")
        store = make_store()
        records = [dynamo_string_record(400_000, key=f"b{n:02}") for n in range(10)]
        records.append(dynamo_string_record(MAX_BYTES - 10 * 400_000, key="rest"))
        assert sum(item_size(record) for record in records) == MAX_BYTES
        with kvstore.transaction() as tx:
            for record in records:
                tx.put(store, record)
        assert store.count() == len(records)
        assert store.find({"id": "rest"}) == records[-1]

    @pytest.mark.parametrize("case", sorted(BAD_OPERATIONS))
    def test_arguments_are_checked_as_operations_are_added(
        self, make_store: StoreFactory, case: str
    ) -> None:
        # Tables that do not exist: the check needs no I/O, and comes before the block ends.
        store = make_store(ensure=False)
        pair = make_store(ensure=False, id_field=("team", "seq"), key_type=(str, int))
        block = Block.on(store, pair, BAD_OPERATIONS[case])
        with pytest.raises(InvalidArgument):
            block()
        assert block.added == 0

    def test_a_missing_table_fails_the_transaction_and_applies_nothing(
        self, make_store: StoreFactory
    ) -> None:
        store = make_store()
        missing = make_store(ensure=False)
        block = Block(_put(store, {"id": "a"}), _put(missing, {"id": "b"}))
        with pytest.raises(ConfigError) as info:
            block()
        assert missing.kind in str(info.value)  # the kind to ensure (DynamoDB may name both)
        assert store.count() == 0

    def test_versions_inside_a_transaction(self, make_store: StoreFactory) -> None:
        store = make_store(version_field="version")
        store.create({"id": "a"})
        store.create({"id": "b"})
        store.update({"id": "b", "y": 0})
        with kvstore.transaction() as tx:
            tx.put(store, {"id": "a", "x": 1, "version": 1})
            tx.update(store, {"id": "b", "y": 1})
            tx.create(store, {"id": "c"})
            tx.put(store, {"id": "d"})
        after = [
            {"id": "a", "x": 1, "version": 2},
            {"id": "b", "y": 1, "version": 3},
            {"id": "c", "version": 1},
            {"id": "d", "version": 1},
        ]
        assert store.find_all() == after
        stale: list[tuple[type[StoreError] | str, Callable[[Any], Any]]] = [
            ("ConditionFailed", lambda tx: tx.put(store, {"id": "a", "version": 1})),
            ("ConditionFailed", lambda tx: tx.put(store, {"id": "a", "x": 2})),
            ("ConditionFailed", lambda tx: tx.update(store, {"id": "b", "version": 2})),
            ("ConditionFailed", lambda tx: tx.put(store, {"id": "n", "version": 3})),
            (AlreadyExists, lambda tx: tx.create(store, {"id": "c"})),
        ]
        for spec, operation in stale:
            with pytest.raises(StoreError) as info:
                Block(_put(store, {"id": "fresh"}), operation)()
            assert type(info.value) is _error_class(spec)
            assert info.value.index == 1
            assert store.find_all() == after

    def test_increments_and_expect_inside_a_transaction(self, make_store: StoreFactory) -> None:
        orders, stock = make_store(), make_store()
        stock.put({"id": "sku", "qty": 1})

        def order(number: int) -> None:
            with kvstore.transaction() as tx:
                tx.create(orders, {"id": f"o{number}", "sku": "sku"})
                tx.update(
                    stock,
                    {"id": "sku", "qty": kvstore.increment(-1), "sold": kvstore.increment(1)},
                    expect={"qty": kvstore.ge(1)},
                )

        order(1)
        with pytest.raises(kvstore.ConditionFailed) as info:
            order(2)
        assert info.value.index == 1
        assert orders.find_all() == [{"id": "o1", "sku": "sku"}]
        assert stock.find_all() == [{"id": "sku", "qty": 0, "sold": 1}]

    def test_racing_transfers_keep_the_total(self, make_store: StoreFactory) -> None:
        self.require("atomic_conditional_writes")
        threads, attempts, units = 4, 10, 20
        accounts = make_store()
        accounts.put_many([{"id": "from", "n": units}, {"id": "to", "n": 0}])

        def work(thread: int) -> int:
            """Move one unit at a time while "from" has one; count the moves that committed."""
            moved = 0
            for _ in range(attempts):
                try:
                    with kvstore.transaction() as tx:
                        tx.update(
                            accounts,
                            {"id": "from", "n": kvstore.increment(-1)},
                            expect={"n": kvstore.ge(1)},
                        )
                        tx.update(accounts, {"id": "to", "n": kvstore.increment(1)})
                except kvstore.ConditionFailed:
                    continue
                moved += 1
            return moved

        moved = sum(in_threads(threads, work))
        # 40 attempts for 20 units: a transfer fails only once "from" is empty.
        assert moved == units
        assert accounts.find_all() == [{"id": "from", "n": 0}, {"id": "to", "n": units}]
