"""The ``memory`` driver: a kind's records in a process-wide dict, each call atomic under one lock.

Every store of a kind shares one table for the life of the process (``ensure`` creates it). Plans
are evaluated with ``Plan.selects`` and writes with ``kvstore.writes.apply``, so this driver is
the contract's rules and nothing else. Records are deep-copied on the way in and out, so nobody
shares a mutable value with the store.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

from kvstore.backend import (
    Conflict,
    Driver,
    Key,
    KindSchema,
    Plan,
    Record,
    keep_indexes,
    missing_table,
)
from kvstore.errors import InvalidArgument
from kvstore.records import copy_record
from kvstore.writes import Check, Update, Write, apply, key_of

__all__ = ["MemoryDriver", "open_driver"]

PAGE_SIZE = 100
"""Records copied out per lock hold while streaming, so a long iteration never blocks writers."""

_lock = threading.RLock()
_tables: dict[str, dict[Key, Record]] = {}
_indexes: dict[str, dict[str, tuple[str, ...]]] = {}
"""The fields of each kind's indexes, as ``ensure()`` first made them."""


class MemoryDriver(Driver):
    """A kind's records in a process-wide dict keyed by record key.

    A resumable scan's segments are ``segment_of`` the key, its stable order the key order.
    """

    scan_segments = 1000

    @property
    def transaction_scope(self) -> str:
        return "memory"

    def _table(self) -> dict[Key, Record]:
        table = _tables.get(self.schema.kind)
        if table is None:
            raise missing_table(self.schema.kind, "the memory backend")
        return table

    def ensure(self) -> None:
        kind = self.schema.kind
        with _lock:
            keep_indexes(_indexes.setdefault(kind, {}), self.schema, "memory")
            _tables.setdefault(kind, {})

    def _selected(self, plan: Plan) -> list[Key]:
        """The keys of the records ``plan`` selects, in its order, after its start, at most its
        limit (call holding the lock)."""
        table = self._table()
        if plan.access == "key":
            keys = [key for key in plan.keys if key in table and plan.selects(table[key])]
        else:
            keys = [key for key, record in table.items() if plan.selects(record)]
        if plan.stable:
            after = plan.after
            keys = [k for k in keys if plan.in_segment(k) and (after is None or k > after)]
            keys.sort()
        elif plan.descending is not None:
            keys.sort(key=lambda key: plan.position(table[key]), reverse=plan.descending)
            keys = [key for key in keys if plan.after_start(table[key])]
        return keys if plan.limit is None else keys[: plan.limit]

    def read(self, plan: Plan) -> Iterator[Record]:
        with _lock:
            keys = self._selected(plan)
        for start in range(0, len(keys), PAGE_SIZE):
            with _lock:
                table = self._table()
                # A record removed or changed since the keys were read is skipped, not resurrected.
                page = [
                    copy_record(table[key])
                    for key in keys[start : start + PAGE_SIZE]
                    if key in table and plan.selects(table[key])
                ]
            yield from page

    def count(self, plan: Plan) -> int:
        with _lock:
            return len(self._selected(plan))

    def delete(self, plan: Plan) -> int:
        with _lock:
            table = self._table()
            keys = self._selected(plan)
            for key in keys:
                del table[key]
            return len(keys)

    def write(self, op: Write) -> Record | None:
        key = key_of(self.schema, op)
        with _lock:
            table = self._table()
            after = apply(self.schema, op, table.get(key))
            if after is None:
                table.pop(key, None)
            else:
                table[key] = copy_record(after)
        return copy_record(after) if isinstance(op, Update) and after is not None else None

    def put_many(self, records: Sequence[Record]) -> None:
        with _lock:
            table = self._table()
            for record in records:
                table[self.schema.key_of(record)] = copy_record(record)

    def transact(self, ops: Sequence[tuple[Driver, Write]]) -> None:
        with _lock:
            results: list[tuple[dict[Key, Record], Key, Record | None]] = []
            for index, (driver, op) in enumerate(ops):
                assert isinstance(driver, MemoryDriver)
                table = driver._table()
                key = key_of(driver.schema, op)
                current = table.get(key)
                try:
                    after = apply(driver.schema, op, current)
                except (Conflict, InvalidArgument):
                    raise Conflict(current, index=index) from None  # core says which error
                if not isinstance(op, Check):
                    results.append((table, key, after))
            for table, key, after in results:  # every op holds: apply them all
                if after is None:
                    table.pop(key, None)
                else:
                    table[key] = copy_record(after)

    def native(self) -> dict[Key, Record]:
        """The kind's dict of key -> record itself (mutate it at your own risk)."""
        with _lock:
            return self._table()


def open_driver(schema: KindSchema) -> Driver:
    """A memory driver for ``schema``'s kind (the memory backend takes no options)."""
    return MemoryDriver(schema)
