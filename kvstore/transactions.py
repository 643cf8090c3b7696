"""``transaction()``: writes to several records, of one or several kinds, applied all or nothing.

Operations are checked as they are added (arguments, and the limits: 100 operations, each key of a
kind once, one backend and configuration, 4 MiB in all by DynamoDB's item-size rules) and buffered;
the block's end hands them to the backend's driver in one ``Driver.transact``. A failure raises the
error the failing operation would raise alone, with ``.index``, its position in the block.

A store with an ``after_transaction(op)`` method (a ``kvstore.migration.MigratingStore``) hands its
authoritative side's driver and ops to the transaction, and gets back, for each op, an action run
once the transaction has committed (its second write).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from kvstore.errors import InvalidArgument, StoreError
from kvstore.schema import Key, KindSchema
from kvstore.values import item_size
from kvstore.writes import Conflict, Put, Update, Write, failure, key_of

__all__ = ["MAX_OPERATIONS", "MAX_TRANSACTION_BYTES", "Transaction", "transaction"]

MAX_OPERATIONS = 100
"""Operations a transaction holds at most (DynamoDB's TransactWriteItems limit)."""
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024
"""The size of a transaction's records in all, by the item-size rules (DynamoDB's limit)."""
MAX_ATTEMPTS = 3


class Transaction:
    """The operations of one ``transaction()`` block; see the module docstring."""

    def __init__(self) -> None:
        self._ops: list[tuple[Any, Write]] = []
        self._keys: set[tuple[Hashable, str, Key]] = set()
        self._scope: Hashable = None
        self._bytes = 0
        self._exact = False
        """``_bytes`` is the exact size of the records so far (else a sum of upper bounds)."""
        self._after: list[Callable[[], None]] = []

    def __len__(self) -> int:
        return len(self._ops)

    def _add(self, store: Any, make: Callable[[], Write]) -> None:
        driver = getattr(store, "driver", None)
        if driver is None or not hasattr(store, "put_op"):
            raise InvalidArgument(f"a transaction takes stores made by create_store, not {store!r}")
        if len(self._ops) >= MAX_OPERATIONS:
            raise InvalidArgument(f"a transaction holds at most {MAX_OPERATIONS} operations")
        scope = driver.transaction_scope
        if scope is None:
            raise InvalidArgument(f"the {store.backend} backend has no transactions")
        if self._ops and scope != self._scope:
            raise InvalidArgument(
                "every store of a transaction must be of one backend and configuration "
                f"(this one is {store.backend}, the first was another)"
            )
        op = make()
        schema: KindSchema = driver.schema
        key = key_of(schema, op)
        taken = (scope, schema.kind, key)
        if taken in self._keys:
            raise InvalidArgument(
                f"a transaction names each key of a kind once: {schema.kind} key {key!r} twice"
            )
        size = _size(schema, op, self._exact)
        if self._bytes + size > MAX_TRANSACTION_BYTES and not self._exact:
            # The bounds no longer show that it fits: every record sized exactly from now on.
            self._exact = True
            self._bytes = sum(_size(d.schema, earlier, True) for d, earlier in self._ops)
            size = _size(schema, op, True)
        if self._bytes + size > MAX_TRANSACTION_BYTES:
            raise InvalidArgument(
                f"a transaction holds at most {MAX_TRANSACTION_BYTES} bytes of records"
            )
        self._scope = scope
        self._keys.add(taken)
        self._bytes += size
        self._ops.append((driver, op))
        follow = getattr(store, "after_transaction", None)
        if follow is not None:
            # A migrating store: its op applies to its authoritative side here, and its second
            # write follows the commit.
            action = follow(op)
            if action is not None:
                self.after_commit(action)

    def put(
        self, store: Any, record: Mapping[str, Any], *, expect: Mapping[str, Any] | None = None
    ) -> None:
        """Store ``record`` whole (with ``expect``: only when the stored record matches)."""
        self._add(store, lambda: store.put_op(record, expect))

    def create(self, store: Any, record: Mapping[str, Any]) -> None:
        """Store ``record`` unless its key is taken (``AlreadyExists``)."""
        self._add(store, lambda: store.create_op(record))

    def update(
        self, store: Any, changes: Mapping[str, Any], *, expect: Mapping[str, Any] | None = None
    ) -> None:
        """Merge ``changes`` into the record with their key (``NotFound`` when there is none)."""
        self._add(store, lambda: store.update_op(changes, expect))

    def remove(self, store: Any, key: Mapping[str, Any]) -> None:
        """Delete the record at ``key`` (filters naming the whole key); a missing one is fine."""
        self._add(store, lambda: store.remove_op(key))

    def check(self, store: Any, key: Mapping[str, Any], *, expect: Mapping[str, Any]) -> None:
        """Write nothing, but fail the transaction unless the record at ``key`` (an empty record
        when there is none) matches ``expect``."""
        self._add(store, lambda: store.check_op(key, expect))

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run ``action`` once the transaction is applied (a migrating store mirrors its
        writes to its second side this way)."""
        self._after.append(action)

    def commit(self) -> None:
        """Apply every operation, all together or not at all."""
        if not self._ops:
            return
        driver = self._ops[0][0]
        for _attempt in range(MAX_ATTEMPTS):
            try:
                driver.transact(self._ops)
                break
            except Conflict as conflict:
                index = conflict.index
                if index is None or not 0 <= index < len(self._ops):
                    raise StoreError(
                        "the backend refused the transaction without saying why"
                    ) from None
                failed_driver, op = self._ops[index]
                error = failure(failed_driver.schema, op, conflict.current)
                if error is None:
                    continue  # the record changed since the refusal: try again
                error.index = index
                raise error from None
        else:
            raise StoreError(
                "the transaction kept being refused by records that changed; try again"
            )
        for action in self._after:
            action()


def _size(schema: KindSchema, op: Write, exact: bool) -> int:
    """What ``op`` counts toward the transaction's 4 MiB: its record, changes or key (unless
    ``exact``, a put's or an update's size bound when it has one: sizing a record costs as much
    as encoding it)."""
    if isinstance(op, (Put, Update)) and not exact and op.size_bound is not None:
        return op.size_bound
    if isinstance(op, Put):
        return item_size(op.record)
    key = dict(zip(schema.id_fields, key_of(schema, op), strict=True))
    if isinstance(op, Update):
        return item_size({**key, **op.sets, **op.increments})
    return item_size(key)


@contextmanager
def transaction() -> Iterator[Transaction]:
    """A block whose writes (``tx.put``, ``create``, ``update``, ``remove``, ``check``) are
    applied together at its end, or not at all; an exception in the block applies nothing."""
    tx = Transaction()
    yield tx
    tx.commit()
