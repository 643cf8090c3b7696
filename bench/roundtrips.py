"""Round-trip counters: libpq's protocol trace for psycopg, botocore's events for boto3.

PostgreSQL: every psycopg connection the process opens (kvstore's included, whatever pool or engine
holds it) is remembered, and while counting each one writes libpq's protocol trace to a file; a round
trip is a turn of the conversation, the client sending then the server answering (a pipeline of many
statements is one). DynamoDB: one per API call (``before-call``), retries not counted.
"""

from __future__ import annotations

import os
import tempfile
import weakref
from typing import Any

__all__ = ["BotoCounter", "Counters", "PgCounter", "track_psycopg_connections"]

_connections: weakref.WeakSet[Any] = weakref.WeakSet()


def track_psycopg_connections() -> None:
    """Remember every psycopg connection opened from now on (call before kvstore connects)."""
    import psycopg

    if getattr(psycopg.Connection.connect, "_bench_tracked", False):
        return
    original = psycopg.Connection.connect.__func__  # type: ignore[attr-defined]

    def connect(cls: Any, *args: Any, **kwargs: Any) -> Any:
        conn = original(cls, *args, **kwargs)
        _connections.add(conn)
        return conn

    connect._bench_tracked = True  # type: ignore[attr-defined]
    psycopg.Connection.connect = classmethod(connect)  # type: ignore[method-assign,assignment]
    psycopg.connect = psycopg.Connection.connect  # the module keeps its own reference


def count_turns(trace: str) -> tuple[int, int]:
    """(round trips, statements) in a libpq trace: client-to-server turns, Execute/Query messages."""
    turns = statements = 0
    previous = ""
    for line in trace.splitlines():
        direction, _, rest = line.partition("\t")
        message = rest.partition("\t")[2].split(" ", 1)[0].split("\t", 1)[0]
        if direction == "F" and message in ("Execute", "Query"):
            statements += 1
        if direction == "B" and previous == "F":
            turns += 1
        if direction in ("F", "B"):
            previous = direction
    return turns, statements


class PgCounter:
    """Counts round trips on every tracked psycopg connection (see ``track_psycopg_connections``)."""

    def __init__(self) -> None:
        self._files: list[tuple[Any, Any]] = []
        self.statements = 0

    def start(self) -> None:
        """Start tracing every open tracked connection."""
        from psycopg import pq

        for conn in list(_connections):
            if conn.closed:
                continue
            handle = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
            conn.pgconn.trace(handle.fileno())
            conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
            self._files.append((conn, handle))

    def stop(self) -> int:
        """Stop tracing; return the round trips seen (``statements`` keeps the statement count)."""
        turns = statements = 0
        for conn, handle in self._files:
            if not conn.closed:
                conn.pgconn.untrace()
            handle.flush()
            os.fsync(handle.fileno())
            handle.seek(0)
            found = count_turns(handle.read().decode("utf-8", "replace"))
            handle.close()
            turns += found[0]
            statements += found[1]
        self._files = []
        self.statements = statements
        return turns


class BotoCounter:
    """Counts DynamoDB API calls made by the clients it is attached to."""

    def __init__(self) -> None:
        self._counting = False
        self._count = 0

    def attach(self, client: Any) -> None:
        """Count ``client``'s calls (a boto3 low-level client)."""
        client.meta.events.register("before-call.dynamodb", self._seen)

    def _seen(self, **_: Any) -> None:
        if self._counting:
            self._count += 1

    def start(self) -> None:
        """Begin counting."""
        self._count = 0
        self._counting = True

    def stop(self) -> int:
        """Stop counting; return the number of API calls."""
        self._counting = False
        return self._count


class Counters:
    """Sums the round trips of several counters: a kind on two servers (PostgreSQL turns plus
    DynamoDB API calls)."""

    def __init__(self, *counters: PgCounter | BotoCounter) -> None:
        self.counters = counters

    def start(self) -> None:
        """Begin counting on every counter."""
        for counter in self.counters:
            counter.start()

    def stop(self) -> int:
        """Stop every counter; return their sum."""
        return sum(counter.stop() for counter in self.counters)
