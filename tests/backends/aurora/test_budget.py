"""A call's time budget (KVSTORE_TIMEOUT / timeout=): the server-side limits each connection gets
in its startup packet, the URL's own settings kept, and a pooler that refuses them."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from kvstore import BackendUnavailable, create_store
from kvstore.testing import unique_kind
from kvstore_aurora.budget import KvConnection, connect_timeout
from kvstore_aurora.connection import get_pool
from kvstore_aurora.settings import PostgresSettings


def _show(store: Any, *names: str) -> list[str]:
    pool = store.driver.pool
    with pool.connection() as connection:
        return [str(connection.execute(f"SHOW {name}").fetchone()[0]) for name in names]


def test_each_connection_carries_the_budgets_limits(pg_settings: PostgresSettings) -> None:
    store = create_store(unique_kind("budget"), backend="aurora", settings=pg_settings, timeout=4)
    assert _show(store, "statement_timeout", "lock_timeout") == ["3600ms", "3200ms"]
    assert store.driver.pool.timeout == 4  # type: ignore[attr-defined]
    default = create_store(unique_kind("budget"), backend="aurora", settings=pg_settings)
    assert _show(default, "statement_timeout", "lock_timeout") == ["9s", "8s"]


def test_the_urls_options_are_kept_and_its_own_limits_win(pg_settings: PostgresSettings) -> None:
    url = (
        f"postgresql://{pg_settings.user}@{pg_settings.host}:{pg_settings.port}/"
        f"{pg_settings.dbname}?options=-c%20statement_timeout%3D1234%20-c%20work_mem%3D5MB"
        "&application_name=mine&keepalives_idle=77"
    )
    store = create_store(unique_kind("budget"), backend="aurora", dsn=url, timeout=3)
    shown = _show(store, "statement_timeout", "lock_timeout", "work_mem", "application_name")
    assert shown == ["1234ms", "2400ms", "5MB", "mine"]
    with store.driver.pool.connection() as connection:  # type: ignore[attr-defined]
        assert connection.info.get_parameters()["keepalives_idle"] == "77"


def test_a_pooler_refusing_startup_options_gets_none_and_the_deadline_stays(
    pg_settings: PostgresSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = KvConnection.connect.__func__  # type: ignore[attr-defined]
    refused: list[str] = []

    def connect(cls: type[KvConnection], /, conninfo: str, **options: Any) -> KvConnection:
        if "statement_timeout" in conninfo:
            refused.append(conninfo)
            raise psycopg.OperationalError("unsupported startup parameter: options")
        connection: KvConnection = real(cls, conninfo, **options)
        return connection

    monkeypatch.setattr(KvConnection, "connect", classmethod(connect))
    # A pool of its own (another budget), whose URL has options of its own.
    settings = pg_settings._replace(timeout=5.0, params=(("options", "-c work_mem=5MB"),))
    store = create_store(unique_kind("budget"), backend="aurora", settings=settings)
    store.ensure()
    assert store.count() == 0
    assert len(refused) == 1  # refused once; the pool no longer sends them
    assert _show(store, "statement_timeout", "work_mem") == ["0", "5MB"]  # the URL's kept
    with get_pool(settings).connection() as connection:
        assert isinstance(connection, KvConnection)
        assert connection.deadline is not None  # the client-side deadline still bounds calls


def test_a_statement_past_its_budget_is_ended_by_the_server(pg_settings: PostgresSettings) -> None:
    store = create_store(unique_kind("budget"), backend="aurora", settings=pg_settings, timeout=2)
    store.ensure()
    pool = store.driver.pool  # type: ignore[attr-defined]
    with pytest.raises(BackendUnavailable, match=r"statement timeout.*KVSTORE_TIMEOUT"):
        store.driver._run(  # type: ignore[attr-defined]
            lambda connection: connection.execute("SELECT pg_sleep(5)"), retry=True
        )
    assert store.count() == 0  # the connection is sound again (the server ended the statement)
    assert pool.opened == 1


@pytest.mark.parametrize(
    ("limit", "remaining", "expected"),
    [(15, 10.0, 10), (15, 2.9, 2), (15, 0.5, 2), (3, 10.0, 3), (15.9, 30.0, 15)],
)
def test_the_connect_timeout_fits_the_budget_left(
    limit: float, remaining: float, expected: int
) -> None:
    assert connect_timeout(limit, remaining) == expected
