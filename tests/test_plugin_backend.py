"""A third-party backend, registered through pluggy, runs the contract suite; broken ones fail it."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

import pytest

from kvstore import ConfigError, create_store
from kvstore.backend import Backend, Driver, Filters, Key, KindSchema, Record
from kvstore.errors import AlreadyExists, NotFound
from kvstore.hookspecs import hookimpl
from kvstore.records import matches
from kvstore.testing import BackendFixtures, ContractTests, registered

pytest_plugins = ["pytester"]


class TinyDriver(Driver):
    """A minimal correct driver: one dict of key -> record per kind, under one lock."""

    tables: ClassVar[dict[str, dict[Key, Record]]] = {}
    lock = threading.RLock()
    batch_size = 3  # small, so batch calls really work in several chunks

    def _table(self) -> dict[Key, Record]:
        if self.schema.kind not in self.tables:
            raise ConfigError(f"no table for {self.schema.kind!r}: call store.ensure()")
        return self.tables[self.schema.kind]

    def _keys(self, filters: Filters) -> list[Key]:
        return [key for key, record in self._table().items() if matches(record, filters)]

    def ensure(self) -> None:
        with self.lock:
            self.tables.setdefault(self.schema.kind, {})

    def select(self, filters: Filters, limit: int | None = None) -> Iterator[Record]:
        with self.lock:
            found = [copy.deepcopy(self._table()[key]) for key in self._keys(filters)]
        yield from found[:limit]

    def count(self, filters: Filters) -> int:
        with self.lock:
            return len(self._keys(filters))

    def find_in(self, field: str, values: Sequence[Any]) -> Iterator[Record]:
        with self.lock:
            table = self._table()
            found = [r for r in table.values() if any(matches(r, {field: v}) for v in values)]
            return iter(copy.deepcopy(found))

    def put(self, record: Record) -> None:
        with self.lock:
            self._table()[self.schema.key_of(record)] = copy.deepcopy(record)

    def create(self, record: Record) -> None:
        with self.lock:
            if self.schema.key_of(record) in self._table():
                raise AlreadyExists("taken")
            self.put(record)

    def update(
        self, key: Key, sets: Record, removes: Sequence[str], check: Callable[[Record], None]
    ) -> Record:
        with self.lock:
            if key not in self._table():
                raise NotFound("no such key")
            merged = copy.deepcopy(self._table()[key]) | copy.deepcopy(sets)
            for name in removes:
                merged.pop(name, None)
            check(merged)
            self._table()[key] = merged
            return copy.deepcopy(merged)

    def remove(self, filters: Filters) -> int:
        with self.lock:
            doomed = self._keys(filters)
            for key in doomed:
                del self._table()[key]
            return len(doomed)

    def remove_in(self, field: str, values: Sequence[Any]) -> int:
        with self.lock:
            return sum(self.remove({field: value}) for value in values)

    def truncate(self) -> int:
        with self.lock:
            count = len(self._table())
            self._table().clear()
            return count

    def put_many(self, records: Sequence[Record]) -> None:
        with self.lock:
            for record in records:
                self.put(record)

    def native(self) -> dict[Key, Record]:
        return self._table()


class UpdateReplaces(TinyDriver):
    """Broken: ``update`` replaces the record with the changes instead of merging them."""

    def update(
        self, key: Key, sets: Record, removes: Sequence[str], check: Callable[[Record], None]
    ) -> Record:
        with self.lock:
            if key not in self._table():
                raise NotFound("no such key")
            replaced = dict(zip(self.schema.id_fields, key, strict=True)) | copy.deepcopy(sets)
            self._table()[key] = replaced
            return copy.deepcopy(replaced)


class CreateOverwrites(TinyDriver):
    """Broken: ``create`` overwrites a taken key instead of raising ``AlreadyExists``."""

    def create(self, record: Record) -> None:
        self.put(record)


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
            raise TypeError(f"the {self.name} backend takes no options, got {sorted(options)}")
        return self.driver(schema)


BROKEN = {"tiny_update_replaces": UpdateReplaces, "tiny_create_overwrites": CreateOverwrites}
BROKEN["tiny_no_table_check"] = NoTableCheck


class TinyPlugin:
    """The plugin object, registered as a third party would be (pluggy, not core edits)."""

    @hookimpl
    def kvstore_register_backends(self, register: Callable[[Backend], None]) -> None:
        register(TinyBackend("tiny", TinyDriver))
        for name, driver in BROKEN.items():
            register(TinyBackend(name, driver))


@pytest.fixture(scope="module", autouse=True)
def tiny_plugin() -> Iterator[None]:
    """Register the tiny backends for this module's tests, and forget them after."""
    with registered(TinyPlugin(), "tiny-test-plugin"):
        yield


class TestTinyBackendContract(ContractTests, BackendFixtures):
    """The correct tiny backend passes the whole contract suite."""

    backend = "tiny"


def test_the_plugin_backend_is_listed_among_installed_backends() -> None:
    with pytest.raises(ConfigError) as info:
        create_store("abc", backend="nope")
    assert "tiny" in str(info.value)
    assert "memory" in str(info.value)
    assert create_store("abc", backend="tiny").backend == "tiny"  # type: ignore[attr-defined]


SUITE_ON = """
from kvstore.testing import BackendFixtures, ContractTests


class TestBroken(ContractTests, BackendFixtures):
    backend = {name!r}
"""


@pytest.mark.parametrize(
    ("name", "must_fail"),
    [
        ("tiny_update_replaces", "test_update_merges_sets_removes_and_keeps"),
        ("tiny_create_overwrites", "test_create_raises_already_exists_and_changes_nothing"),
        ("tiny_no_table_check", "test_every_call_on_a_missing_table_raises_config_error"),
    ],
)
def test_a_broken_backend_fails_the_suite(
    pytester: pytest.Pytester, name: str, must_fail: str
) -> None:
    pytester.makepyfile(test_broken=SUITE_ON.format(name=name))
    result = pytester.runpytest_inprocess("-p", "kvstore.testing.plugin", "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) > 0
    assert outcomes.get("passed", 0) > 0  # the suite ran; only the broken rules fail
    failed = [line for line in result.outlines if line.startswith("FAILED")]
    assert any(must_fail in line for line in failed), failed
