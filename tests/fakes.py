"""Fake drivers and backends shared by the tests: a minimal correct in-memory driver as a
third-party backend would write it, variants broken on purpose (the contract suite must fail them),
and one whose answers are lost after the write was applied."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

from kvstore.backend import (
    Driver,
    Key,
    KindSchema,
    Plan,
    Record,
    UnknownOption,
    keep_indexes,
    missing_table,
)
from kvstore.errors import InvalidArgument
from kvstore.writes import Check, Conflict, Put, Update, Write, apply, key_of


class TinyDriver(Driver):
    """A minimal correct driver: one dict of key -> record per kind, under one lock.

    What a third-party backend that keeps records in memory needs: ``Plan.selects`` decides what a
    read selects and ``kvstore.writes.apply`` what a write leaves, so every rule stays in core.
    """

    tables: ClassVar[dict[str, dict[Key, Record]]] = {}
    indexes: ClassVar[dict[str, dict[str, tuple[str, ...]]]] = {}
    lock = threading.RLock()
    batch_size = 3  # small, so batch calls really work in several chunks

    @property
    def transaction_scope(self) -> str:
        return "tiny"

    def _table(self) -> dict[Key, Record]:
        if self.schema.kind not in self.tables:
            raise missing_table(self.schema.kind, "the tiny backend", "create it")
        return self.tables[self.schema.kind]

    def _selected(self, plan: Plan) -> list[Key]:
        table = self._table()
        keys = [key for key, record in table.items() if plan.selects(record)]
        if plan.descending is not None:
            keys.sort(key=lambda key: plan.position(table[key]), reverse=plan.descending)
            keys = [key for key in keys if plan.after_start(table[key])]
        return keys

    def ensure(self) -> None:
        with self.lock:
            keep_indexes(self.indexes.setdefault(self.schema.kind, {}), self.schema, "tiny")
            self.tables.setdefault(self.schema.kind, {})

    def read(self, plan: Plan) -> Iterator[Record]:
        with self.lock:
            found = [copy.deepcopy(self._table()[key]) for key in self._selected(plan)]
        yield from found

    def count(self, plan: Plan) -> int:
        with self.lock:
            return len(self._selected(plan))

    def delete(self, plan: Plan) -> int:
        with self.lock:
            doomed = self._selected(plan)
            for key in doomed:
                del self._table()[key]
            return len(doomed)

    def write(self, op: Write) -> Record | None:
        key = key_of(self.schema, op)
        with self.lock:
            after = apply(self.schema, op, copy.deepcopy(self._table().get(key)))
            self._store(key, op, after)
        return copy.deepcopy(after) if isinstance(op, Update) else None

    def _store(self, key: Key, op: Write, after: Record | None) -> None:
        if after is None:
            self._table().pop(key, None)
        else:
            self._table()[key] = copy.deepcopy(after)

    def put_many(self, records: Sequence[Record]) -> None:
        with self.lock:
            for record in records:
                self._table()[self.schema.key_of(record)] = copy.deepcopy(record)

    def transact(self, ops: Sequence[tuple[Driver, Write]]) -> None:
        with self.lock:
            done = []
            for index, (driver, op) in enumerate(ops):
                assert isinstance(driver, TinyDriver)
                key = key_of(driver.schema, op)
                current = copy.deepcopy(driver._table().get(key))
                try:
                    after = apply(driver.schema, op, current)
                except (Conflict, InvalidArgument):
                    raise Conflict(current, index=index) from None
                if not isinstance(op, Check):
                    done.append((driver, key, op, after))
            for driver, key, op, after in done:
                driver._store(key, op, after)

    def native(self) -> dict[Key, Record]:
        return self._table()


class UpdateReplaces(TinyDriver):
    """Broken: ``update`` replaces the record with the changes instead of merging them."""

    def _store(self, key: Key, op: Write, after: Record | None) -> None:
        if isinstance(op, Update) and after is not None:
            after = dict(zip(self.schema.id_fields, key, strict=True)) | op.sets
        super()._store(key, op, after)


class CreateOverwrites(TinyDriver):
    """Broken: ``create`` overwrites a taken key instead of raising ``AlreadyExists``."""

    def write(self, op: Write) -> Record | None:
        if isinstance(op, Put):
            op = Put(op.record)  # the guard dropped
        return super().write(op)


class NoTableCheck(TinyDriver):
    """Broken: a missing table silently reads as empty instead of raising ``ConfigError``."""

    def _table(self) -> dict[Key, Record]:
        with self.lock:
            return self.tables.setdefault(self.schema.kind, {})


class TinyBackend:
    """A ``Backend`` opening one of the drivers above."""

    extra: str | None = None

    def __init__(self, name: str, driver: type[TinyDriver]) -> None:
        self.name = name
        self.driver = driver

    def open(self, schema: KindSchema, options: Mapping[str, Any]) -> Driver:
        if options:
            raise UnknownOption(self.name, sorted(options), ())
        return self.driver(schema)

    def describe(self, options: Mapping[str, Any]) -> dict[str, Any]:
        return {}

    def migrate(self, kinds: Sequence[Driver], options: Mapping[str, Any]) -> str:
        for driver in kinds:
            driver.ensure()
        return "ensured"


class LostAnswers(TinyDriver):
    """Applies a put, then answers as a resent request would: refused, the key holding the
    record the first attempt wrote."""

    def write(self, op: Write) -> Record | None:
        if isinstance(op, Put) and op.guard is not None and not op.guard.unconditional:
            super().write(Put(op.record))  # the first attempt, whose answer is lost
            raise Conflict(dict(op.record), retried=True)
        return super().write(op)
