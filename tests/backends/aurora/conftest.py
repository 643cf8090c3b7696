"""A dedicated PostgreSQL database for the aurora tests (a real server: never skipped)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from kvstore.testing._servers.postgres import create_database, drop_database, drop_stale_databases
from kvstore_aurora.settings import PostgresSettings


@pytest.fixture(scope="session")
def pg_settings() -> Iterator[PostgresSettings]:
    """Settings of a fresh database for this test run, dropped at the end."""
    drop_stale_databases("kvstore_test_")
    name = f"kvstore_test_{os.getpid()}"
    settings = create_database(name)
    yield settings
    from kvstore_aurora.connection import get_pool

    get_pool(settings).close()
    drop_database(name)


@pytest.fixture
def aurora_options(pg_settings: PostgresSettings) -> dict[str, object]:
    """``create_store`` options pointing the aurora backend at the test database."""
    return {"settings": pg_settings}
