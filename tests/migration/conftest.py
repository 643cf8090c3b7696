"""Fixtures of the migration tests: the ``flaky`` test backend registered, a fresh switch, the
process's migration counters reset, the events the hook receives."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from kvstore.hookspecs import hookimpl
from kvstore.migration import MigrationEvent, reset_migration_stats
from kvstore.testing import registered
from tests.migration import flaky


@pytest.fixture
def switch() -> Iterator[flaky.Switch]:
    """The flaky backend registered for the test, and the switch of the stores it makes."""
    with registered(flaky.plugin(), name="flaky"):
        yield flaky.Switch()


class _Recorder:
    def __init__(self) -> None:
        self.events: list[MigrationEvent] = []

    @hookimpl
    def kvstore_migration_event(self, event: MigrationEvent) -> None:
        self.events.append(event)


@pytest.fixture
def events() -> Iterator[list[MigrationEvent]]:
    """Every ``kvstore_migration_event`` of the test, through a plugin registered for it; the
    counters of ``migration_stats`` start from zero."""
    reset_migration_stats()
    recorder = _Recorder()
    with registered(recorder):
        yield recorder.events


def flaky_store(kind: str, switch: flaky.Switch, stage: str, **declaration: Any) -> Any:
    """A store moving ``kind`` from memory to the flaky backend at ``stage``, both sides made."""
    from kvstore import create_store

    store: Any = create_store(
        kind,
        backend="memory",
        migration=f"flaky:{stage}",
        migration_options={"switch": switch},
        **declaration,
    )
    store.old.ensure()
    store.new.ensure()
    return store
