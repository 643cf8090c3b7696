"""The servers the benchmark runs on: PostgreSQL and DynamoDB Local, reused or started like the tests do.

When the environment names a server (``DATABASE_URL`` or ``DB_*``; ``AWS_ENDPOINT_URL_DYNAMODB``) it is
used as is; otherwise the test helpers in ``kvstore.testing`` provide one: a fresh ``kvstore_bench_<pid>``
database on the local PostgreSQL (dropped at exit), and a DynamoDB Local started in memory.
"""

from __future__ import annotations

import atexit
import os
from pathlib import Path
from typing import Any

__all__ = ["BENCH_DB", "dynamo_endpoint", "postgres_conninfo", "postgres_version"]

BENCH_DB = "kvstore_bench"
"""The prefix of the database the benchmark creates (and drops at exit) when none is given."""

_ROOT = Path(__file__).resolve().parent.parent


def postgres_conninfo() -> dict[str, Any]:
    """``psycopg.connect`` keywords: the environment's database as is, else a fresh one we create."""
    from kvstore_aurora.settings import postgres_settings

    if os.environ.get("DATABASE_URL") or os.environ.get("DB_HOST"):
        return dict(postgres_settings().conninfo())
    from kvstore.testing._servers.postgres import create_database, drop_database

    # One database per run: create_database drops any old one, and two runs must not collide.
    name = f"{BENCH_DB}_{os.getpid()}"
    settings = create_database(name)
    atexit.register(drop_database, name)
    return dict(settings.conninfo())


def database_url(conninfo: dict[str, Any]) -> str:
    """A ``postgresql://`` URL for ``conninfo`` (what kvstore's ``DATABASE_URL`` takes)."""
    from urllib.parse import quote

    user = quote(str(conninfo.get("user", "")))
    password = conninfo.get("password")
    auth = f"{user}:{quote(str(password))}@" if password else (f"{user}@" if user else "")
    host = conninfo.get("host", "localhost")
    return f"postgresql://{auth}{host}:{conninfo.get('port', 5432)}/{conninfo['dbname']}"


def postgres_version(conninfo: dict[str, Any]) -> str:
    """The server's version string."""
    import psycopg

    with psycopg.connect(**conninfo) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return f"PostgreSQL {row[0] if row else '?'}"


def dynamo_endpoint() -> tuple[str, str]:
    """(endpoint URL, description) of DynamoDB: the environment's, else a DynamoDB Local we start."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB")
    if endpoint:
        return endpoint, f"DynamoDB at {endpoint}"
    from kvstore.testing._servers.dynamodb_local import install, start

    cache = _ROOT / ".cache" / "dynamodb-local"
    server = start(cache)
    if server.process is None:
        return server.endpoint, f"DynamoDB Local at {server.endpoint}"
    version = install(cache).parent.name.removeprefix("dynamodb_local_")
    return server.endpoint, f"DynamoDB Local {version} (in memory)"
