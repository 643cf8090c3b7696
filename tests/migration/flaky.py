"""A test backend, ``flaky``: the memory backend's rules in tables of its own, whose calls fail or
slow down while the test says so (``Switch``). Registered with ``kvstore.testing.registered``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from kvstore.backend import (
    Backend,
    Driver,
    Key,
    KindSchema,
    LazyBackend,
    Plan,
    Record,
    missing_table,
)
from kvstore.backends.memory import driver as memory
from kvstore.errors import BackendUnavailable
from kvstore.hookspecs import hookimpl
from kvstore.writes import Write

_tables: dict[str, dict[Key, Record]] = {}


class Switch:
    """What the test wants of a flaky driver: ``down`` (every call raises BackendUnavailable),
    ``read_delay`` (seconds each read waits first); ``calls`` counts calls by method name."""

    def __init__(self) -> None:
        self.down = False
        self.read_delay = 0.0
        self.calls: dict[str, int] = {}
        self.threads: set[str] = set()
        self.lock = threading.Lock()

    def enter(self, method: str) -> None:
        with self.lock:
            self.calls[method] = self.calls.get(method, 0) + 1
            self.threads.add(threading.current_thread().name)
        if self.down:
            raise BackendUnavailable(f"flaky: {method} while down")


class FlakyDriver(memory.MemoryDriver):
    """A memory driver over ``_tables`` (not the memory backend's), watched by ``switch``."""

    def __init__(self, schema: KindSchema, switch: Switch) -> None:
        super().__init__(schema)
        self.switch = switch

    @property
    def transaction_scope(self) -> str:
        return "flaky"

    def _table(self) -> dict[Key, Record]:
        table = _tables.get(self.schema.kind)
        if table is None:
            raise missing_table(self.schema.kind, "the flaky backend", "create it")
        return table

    def ensure(self) -> None:
        with memory._lock:
            _tables.setdefault(self.schema.kind, {})

    def read(self, plan: Plan) -> Iterator[Record]:
        self.switch.enter("read")
        if self.switch.read_delay:
            time.sleep(self.switch.read_delay)
        return super().read(plan)

    def count(self, plan: Plan) -> int:
        self.switch.enter("count")
        if self.switch.read_delay:
            time.sleep(self.switch.read_delay)
        return super().count(plan)

    def delete(self, plan: Plan) -> int:
        self.switch.enter("delete")
        return super().delete(plan)

    def write(self, op: Write) -> Record | None:
        self.switch.enter("write")
        return super().write(op)

    def put_many(self, records: Sequence[Record]) -> None:
        self.switch.enter("put_many")
        super().put_many(records)

    def transact(self, ops: Sequence[tuple[Driver, Write]]) -> None:
        self.switch.enter("transact")
        super().transact(ops)


DEFAULT = Switch()


def open_driver(schema: KindSchema, *, switch: Switch | None = None) -> Driver:
    """A flaky driver for ``schema``'s kind, watched by ``switch`` (default: ``DEFAULT``)."""
    return FlakyDriver(schema, switch or DEFAULT)


@hookimpl
def kvstore_register_backends(register: Callable[[Backend], None]) -> None:
    """Register the ``flaky`` backend."""
    register(LazyBackend("flaky", "tests.migration.flaky:open_driver"))


def plugin() -> Any:
    """This module, as the plugin to register."""
    import sys

    return sys.modules[__name__]
