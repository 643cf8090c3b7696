"""Helpers of the aurora tests: admin statements, killing sessions, counting statements."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from kvstore.config import PostgresSettings

_SENT = re.compile(r"^F\t\d+\t(Query|Execute)\b", re.MULTILINE)
_WAITS = re.compile(r"^F\t\d+\t(Query|Sync)\b", re.MULTILINE)


def connect(settings: PostgresSettings) -> psycopg.Connection[Any]:
    """A new autocommit connection to the test database."""
    return psycopg.connect(**settings.conninfo(), autocommit=True)  # type: ignore[arg-type]


def kill_store_sessions(settings: PostgresSettings) -> int:
    """Terminate every kvstore session on the test database (as a proxy or restart would)."""
    with connect(settings) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
            " WHERE datname = %s AND application_name = 'kvstore' AND pid <> pg_backend_pid()",
            (settings.dbname,),
        ).fetchall()
    return len(rows)


class StatementCounter:
    """Counts the statements a connection sends, from libpq's protocol trace."""

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self.connection = connection

    @contextmanager
    def counting(self) -> Iterator[list[int]]:
        """Yield a list that holds, after the block, the statements sent in it and the round
        trips (a Sync or simple Query is where the client waits for the server)."""
        result = [0, 0]
        pgconn = self.connection.pgconn
        with tempfile.TemporaryFile() as trace:
            pgconn.trace(trace.fileno())
            pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
            try:
                yield result
            finally:
                pgconn.untrace()
                trace.seek(0)
                text = trace.read().decode("utf-8", "replace")
                result[:] = [len(_SENT.findall(text)), len(_WAITS.findall(text))]
