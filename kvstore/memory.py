"""The ``memory`` backend: the contract's reference implementation, dicts in the process.

Every store of a kind shares one table for the life of the process (``ensure`` creates it); a lock
makes each call atomic, so it is safe from several threads. Records are deep-copied on the way in
and out, so nobody shares a mutable value with the store.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from kvstore.backend import Backend, Driver, Filters, Key, KindSchema, LazyBackend, Record
from kvstore.errors import AlreadyExists, ConfigError, NotFound
from kvstore.hookspecs import hookimpl
from kvstore.records import copy_record, matches

__all__ = ["MemoryDriver", "kvstore_register_backends", "open_driver"]

PAGE_SIZE = 100
"""Records copied out per lock hold while streaming, so a long iteration never blocks writers."""

_lock = threading.RLock()
_tables: dict[str, dict[Key, Record]] = {}


class MemoryDriver(Driver):
    """A kind's records in a process-wide dict keyed by record key."""

    def _table(self) -> dict[Key, Record]:
        table = _tables.get(self.schema.kind)
        if table is None:
            raise ConfigError(
                f"kind {self.schema.kind!r} has no table in the memory backend: "
                "call store.ensure() first"
            )
        return table

    def ensure(self) -> None:
        with _lock:
            _tables.setdefault(self.schema.kind, {})

    def _matching(self, filters: Filters) -> list[Key]:
        table = self._table()
        key = self.schema.key_filters(filters)
        if key is not None:
            record = table.get(key)
            return [key] if record is not None and matches(record, filters) else []
        return [k for k, record in table.items() if matches(record, filters)]

    def select(self, filters: Filters, limit: int | None = None) -> Iterator[Record]:
        with _lock:
            keys = self._matching(filters)[:limit]
        for start in range(0, len(keys), PAGE_SIZE):
            with _lock:
                table = self._table()
                # A record removed since the keys were read is skipped, not resurrected.
                page = [
                    copy_record(table[key])
                    for key in keys[start : start + PAGE_SIZE]
                    if key in table and matches(table[key], filters)
                ]
            yield from page

    def count(self, filters: Filters) -> int:
        with _lock:
            return len(self._matching(filters))

    def _in(self, field: str, values: Sequence[Any]) -> list[Key]:
        return [
            key
            for key, record in self._table().items()
            if any(matches(record, {field: value}) for value in values)
        ]

    def find_in(self, field: str, values: Sequence[Any]) -> Iterator[Record]:
        with _lock:
            table = self._table()
            return iter([copy_record(table[key]) for key in self._in(field, values)])

    def put(self, record: Record) -> None:
        with _lock:
            self._table()[self.schema.key_of(record)] = copy_record(record)

    def create(self, record: Record) -> None:
        key = self.schema.key_of(record)
        with _lock:
            table = self._table()
            if key in table:
                raise AlreadyExists(
                    f"a {self.schema.kind} record with key {key!r} exists",
                    existing=copy_record(table[key]),
                )
            table[key] = copy_record(record)

    def update(
        self, key: Key, sets: Record, removes: Sequence[str], check: Callable[[Record], None]
    ) -> Record:
        with _lock:
            table = self._table()
            current = table.get(key)
            if current is None:
                raise NotFound(f"no {self.schema.kind} record has key {key!r}")
            merged = copy_record(current)
            merged.update(copy_record(sets))
            for name in removes:
                merged.pop(name, None)
            check(merged)
            table[key] = merged
            return copy_record(merged)

    def _delete(self, keys: list[Key]) -> int:
        table = self._table()
        for key in keys:
            del table[key]
        return len(keys)

    def remove(self, filters: Filters) -> int:
        with _lock:
            return self._delete(self._matching(filters))

    def remove_in(self, field: str, values: Sequence[Any]) -> int:
        with _lock:
            return self._delete(self._in(field, values))

    def truncate(self) -> int:
        with _lock:
            table = self._table()
            removed = len(table)
            table.clear()
            return removed

    def put_many(self, records: Sequence[Record]) -> None:
        with _lock:
            table = self._table()
            for record in records:
                table[self.schema.key_of(record)] = copy_record(record)

    def native(self) -> dict[Key, Record]:
        """The kind's dict of key -> record itself (mutate it at your own risk)."""
        with _lock:
            return self._table()


def open_driver(schema: KindSchema, options: Mapping[str, Any]) -> Driver:
    """A memory driver for ``schema``'s kind; the memory backend takes no options."""
    if options:
        raise TypeError(f"the memory backend takes no options, got {sorted(options)}")
    return MemoryDriver(schema)


@hookimpl
def kvstore_register_backends(register: Callable[[Backend], None]) -> None:
    """Register the ``memory`` backend."""
    register(LazyBackend("memory", "kvstore.memory:open_driver"))
