"""Fixtures of the example apps' tests: every backend, selected by environment variables only.

``backend_env`` sets ``STORE_BACKEND`` and that backend's settings (a temp sqlite file, a dedicated
PostgreSQL database migrated with alembic, moto, DynamoDB Local with a per-test table prefix), as a
deployment would; the apps' code never names a backend.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from kvstore.testing._servers.dynamodb_local import DynamoDBLocal

BACKENDS = ["sqlite", "memory", "aurora", "dynamo-moto", "dynamo-local"]
FAKE_AWS = {
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "kvstore",
    "AWS_SECRET_ACCESS_KEY": "kvstore-example",
}


@pytest.fixture(scope="session")
def examples_database_url() -> Iterator[str]:
    """A fresh PostgreSQL database for the examples, migrated to head; dropped at the end."""
    from kvstore.testing._servers.postgres import create_database, drop_database, server_url
    from kvstore_aurora.connection import get_pool
    from kvstore_aurora.migrate import upgrade
    from kvstore_aurora.settings import postgres_settings

    name = f"kvstore_examples_{os.getpid()}"
    create_database(name)
    url = urlunsplit(urlsplit(server_url())._replace(path="/" + name))
    settings = postgres_settings({"DATABASE_URL": url, "DB_CONNECT_TIMEOUT": "10"})
    # The production path: alembic creates teams and members, from the repository's alembic.ini.
    upgrade(settings=settings, config=Path(__file__).resolve().parent.parent / "alembic.ini")
    yield url
    get_pool(settings).close()
    drop_database(name)


@pytest.fixture(scope="session")
def examples_dynamodb_local(dynamodb_local: DynamoDBLocal) -> str:
    """The run's DynamoDB Local endpoint (the root conftest starts one for every test dir)."""
    return dynamodb_local.endpoint


def _clear(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("DB_", "LOCAL_DB_", "AWS_", "DYNAMO_")) or name in (
            "STORE_BACKEND",
            "DATABASE_URL",
            "SLS_STAGE",
            "KVSTORE_SQLITE_PATH",
        ):
            monkeypatch.delenv(name)


@pytest.fixture(params=BACKENDS)
def backend_env(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[str]:
    """Point ``STORE_BACKEND`` (and its settings) at one backend; yield its name."""
    name: str = request.param
    _clear(monkeypatch)
    monkeypatch.setenv("STORE_BACKEND", name.split("-")[0])
    if name == "sqlite":
        monkeypatch.setenv("KVSTORE_SQLITE_PATH", str(tmp_path / "app.sqlite3"))
    elif name == "aurora":
        monkeypatch.setenv("DATABASE_URL", request.getfixturevalue("examples_database_url"))
        monkeypatch.setenv("DB_CONNECT_TIMEOUT", "10")
    elif name.startswith("dynamo"):
        for variable, value in FAKE_AWS.items():
            monkeypatch.setenv(variable, value)
        monkeypatch.setenv("DYNAMO_TABLE_PREFIX", f"ex{uuid.uuid4().hex[:10]}-")
        if name == "dynamo-local":
            endpoint = request.getfixturevalue("examples_dynamodb_local")
            monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", endpoint)
    if name == "dynamo-moto":
        from moto import mock_aws

        with mock_aws():
            yield name
        return
    yield name
