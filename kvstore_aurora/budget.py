"""A call's time budget on PostgreSQL (``KVSTORE_TIMEOUT``): the limits each connection carries
from its start, and the client-side deadline for a peer that stops answering.

A call (or each round trip of a batch or a stream) may take ``timeout`` seconds in all: getting a
connection (waiting for a pooled one, or connecting), waiting on locks, the statement, retries.
The limits, from the innermost:

- ``lock_timeout`` (80% of the budget) and ``statement_timeout`` (90%), set once per connection
  in its startup packet (libpq's ``options``: no round trip, no ``SET``), so a server that is
  alive ends a statement stuck behind a row lock, or too slow, with an error of its own;
- ``connect_timeout``: the smaller of ``DB_CONNECT_TIMEOUT`` and what is left of the budget (libpq
  counts whole seconds, 2 at least);
- TCP keepalives and ``tcp_user_timeout`` (the budget), so a peer that vanished is noticed;
- the deadline itself, on the client (``KvConnection.wait``): a server or network that accepts the
  request and then sends nothing (keepalives are answered, so TCP sees nothing wrong) is given
  up at the deadline, and the connection is closed.

Each ends in ``BackendUnavailable`` whose message names the limit hit.
"""

from __future__ import annotations

import logging
import math
from time import monotonic
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg
from psycopg.abc import PQGen

__all__ = [
    "DeadlineExceeded",
    "KvConnection",
    "connect_timeout",
    "lock_timeout_ms",
    "session_options",
    "session_params",
    "statement_timeout_ms",
]

RV = TypeVar("RV")
logger = logging.getLogger("kvstore.aurora")

LOCK_SHARE = 0.8
"""The part of the budget a statement may wait on a lock (then the server says "lock timeout")."""
STATEMENT_SHARE = 0.9
"""The part of the budget a statement may run (the rest is for the round trip and retries)."""


class DeadlineExceeded(psycopg.OperationalError):
    """A call's time budget ran out while it waited for the server (raised by
    ``KvConnection.wait``; the connection is closed). Its message names the budget."""


class KvConnection(psycopg.Connection[tuple[Any, ...]]):
    """A psycopg connection that gives up waiting for the server at ``deadline`` (a
    ``time.monotonic()`` value; ``None``: no deadline), which each call sets once."""

    deadline: float | None = None
    budget: float = 0.0
    """The budget the deadline comes from (seconds), for the message."""

    def wait(self, gen: PQGen[RV], interval: float = 0.1, timeout: float | None = None) -> RV:
        """psycopg's wait (every round trip goes through it), bounded by the deadline."""
        deadline = self.deadline
        if deadline is None or timeout is not None:
            return _wait(self, gen, interval, timeout)
        remaining = deadline - monotonic()
        try:
            return _wait(self, gen, interval, remaining if remaining > 0.0 else 0.0)
        except pg._WaitTimeout:
            self.close()  # half a conversation: the connection cannot be used again
            raise DeadlineExceeded(
                f"no answer from the server within the time budget of {self.budget:g} s "
                "(KVSTORE_TIMEOUT); the connection was closed"
            ) from None


_wait = psycopg.Connection.wait
"""psycopg's own wait, called without making a ``super()`` object on each round trip."""


def statement_timeout_ms(budget: float) -> int:
    """The session's ``statement_timeout`` for a call budget of ``budget`` seconds."""
    return max(1, int(budget * STATEMENT_SHARE * 1000))


def lock_timeout_ms(budget: float) -> int:
    """The session's ``lock_timeout`` for a call budget of ``budget`` seconds."""
    return max(1, int(budget * LOCK_SHARE * 1000))


def session_options(budget: float) -> str:
    """libpq's ``options`` that set the server-side limits of ``budget`` for the session."""
    return (
        f"-c statement_timeout={statement_timeout_ms(budget)} "
        f"-c lock_timeout={lock_timeout_ms(budget)}"
    )


def session_params(budget: float) -> dict[str, int]:
    """The TCP settings of a connection for a call budget of ``budget`` seconds: keepalives on an
    idle connection (a peer that vanished is found dead before the next call uses it) and how
    long sent data may stay unacknowledged."""
    return {
        "keepalives": 1,
        "keepalives_idle": max(1, math.ceil(budget)),
        "keepalives_interval": max(1, math.ceil(budget / 3)),
        "keepalives_count": 3,
        "tcp_user_timeout": max(1, math.ceil(budget * 1000)),
    }


def connect_timeout(limit: float, remaining: float) -> int:
    """libpq's ``connect_timeout`` (whole seconds, 2 at least) for a connection that may take
    ``limit`` seconds (``DB_CONNECT_TIMEOUT``) within ``remaining`` seconds of a budget."""
    return max(2, int(min(limit, remaining)))


class _QuietPipelineExit(logging.Filter):
    """Drops psycopg's "error ignored terminating/exiting <Pipeline>" warnings about kvstore's own
    connections: kvstore raises the error that made it leave the pipeline (or the caller's own
    exception) and closes the connection, so the warning would only reach a Lambda's stderr
    (Python's last-resort handler) as noise. Other connections' warnings are kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith("error ignored "):
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        pipeline = args[0] if args else None
        if isinstance(getattr(pipeline, "_conn", None), KvConnection):
            logger.debug("psycopg: " + str(record.msg), *args)
            return False
        return True


logging.getLogger("psycopg").addFilter(_QuietPipelineExit())
