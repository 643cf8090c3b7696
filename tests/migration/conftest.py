"""Fixtures of the migration tests: the ``flaky`` test backend registered, a fresh switch, the
process's migration counters reset, the events the hook receives; and the real servers of a move
from DynamoDB Local to PostgreSQL (``servers``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

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


# -- the real servers: DynamoDB Local (the old side) and PostgreSQL (the new side, "aurora") -------

REGION = "us-east-1"


class Servers(NamedTuple):
    """The two real servers of a move from DynamoDB Local to PostgreSQL: DynamoDB Local's
    ``endpoint``, and the migration tests' own database on the PostgreSQL server."""

    endpoint: str
    pg_host: str
    pg_port: int
    pg_database: str
    pg_settings: Any

    def dsn(self, port: int | None = None) -> str:
        """A ``postgresql://`` URL to the database, on ``port`` (a proxy's) when given."""
        return f"postgresql://postgres@{self.pg_host}:{port or self.pg_port}/{self.pg_database}"

    def dynamo_spec(self) -> str:
        """The CLI's ``--from``/``--to`` of the old side."""
        return f"dynamo:endpoint_url={self.endpoint},region={REGION}"

    def aurora_spec(self, port: int | None = None) -> str:
        """The CLI's ``--from``/``--to`` of the new side (through ``port`` when given)."""
        return f"aurora:dsn={self.dsn(port)}"


@pytest.fixture(scope="session")
def servers(dynamodb_local: Any) -> Iterator[Servers]:
    """DynamoDB Local, and a fresh PostgreSQL database for this run (dropped at the end)."""
    from kvstore.testing._servers.postgres import tcp_database
    from kvstore_aurora.connection import get_pool

    with tcp_database("kvstore_migration_", "the migration tests") as database:
        yield Servers(
            dynamodb_local.endpoint,
            database.host,
            database.port,
            database.name,
            database.settings,
        )
        get_pool(database.settings).close()


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake AWS credentials and region (DynamoDB Local takes any), no endpoint from the shell."""
    for name in (
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_DYNAMODB",
        "DYNAMO_TABLE_PREFIX",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "kvstore")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "kvstore-test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
