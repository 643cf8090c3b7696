"""The process's PostgreSQL connections: one per configuration, opened at first use, reused.

A ``Pool`` hands out a connection for the length of one operation. In a single-threaded process
(an AWS Lambda container) that is always the same connection; a second one is only opened while the
first is busy (another thread, or a call made while an ``iter_all`` streams), and at most ``MAX_IDLE``
stay open. A connection found dead before use (the server or a proxy dropped it while idle) is
replaced without a round trip; a call that loses its connection midway is retried once on a fresh
one when the caller says that is safe (see ``Pool.run``).
"""

from __future__ import annotations

import json
import logging
import select
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from decimal import Decimal
from typing import Any, TypeVar

import psycopg
from psycopg.types.json import set_json_dumps, set_json_loads

from kvstore.config import PostgresSettings
from kvstore.errors import BackendUnavailable
from kvstore.values import INT64_MAX, INT64_MIN
from kvstore_aurora.errors import is_connection_lost, map_exceptions

__all__ = ["MAX_IDLE", "Connection", "Pool", "dumps", "get_pool", "loads"]

Connection = psycopg.Connection[tuple[Any, ...]]
T = TypeVar("T")
logger = logging.getLogger("kvstore.aurora")

MAX_IDLE = 4
"""Connections a pool keeps open when nobody uses them."""
TCP_USER_TIMEOUT_MS = 30_000
"""How long sent data may stay unacknowledged before the connection counts as lost."""


def _int(text: str) -> int | float:
    value = int(text)
    return value if INT64_MIN <= value <= INT64_MAX else float(value)


def _float(text: str) -> int | float:
    value = float(text)
    if value.is_integer():
        # "2.0" (written by another tool) reads back as 2, exactly: through Decimal, so that
        # "9007199254740993.0" is not rounded to 2**53.
        exact = Decimal(text)
        if exact == exact.to_integral_value() and INT64_MIN <= exact <= INT64_MAX:
            return int(exact)
    return value


_decode = json.JSONDecoder(parse_int=_int, parse_float=_float).decode
"""One decoder for every document: ``json.loads`` with hooks builds a new decoder per call."""


def loads(text: str | bytes) -> Any:
    """JSON to canonical values: integral numbers in the int64 range as ints, others as floats."""
    # psycopg hands over bytes or a memoryview; the decoder takes only str (str() decodes either
    # without copying a memoryview to bytes first).
    return _decode(text if isinstance(text, str) else str(text, "utf-8"))


dumps: Callable[[Any], str] = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":")
).encode
"""Canonical values to JSON (``repr`` of a float is exact, so floats round-trip).

One encoder for every document: ``json.dumps`` with options builds a new encoder per call."""


_pollers: dict[int, Any] = {}


def _alive(connection: Connection) -> bool:
    """Whether an idle connection still looks usable, without a round trip.

    An idle connection has nothing to read; when its socket is readable, the server sent a FATAL
    message (pg_terminate_backend, restart, idle timeout) or the peer closed it.
    """
    if connection.closed or connection.broken:
        return False
    try:
        fileno = connection.fileno()
        if hasattr(select, "poll"):  # select() cannot watch a descriptor past FD_SETSIZE
            # One poll object a descriptor number, made once (a connection is checked before each
            # call). A descriptor reused by a later connection is the same number: still right.
            poller = _pollers.get(fileno)
            if poller is None:
                poller = _pollers[fileno] = select.poll()
                poller.register(fileno, select.POLLIN)
            return not poller.poll(0)
        readable, _, _ = select.select([fileno], [], [], 0)
    except (OSError, ValueError, psycopg.Error):
        return False
    return not readable


class Pool:
    """The connections of one configuration (settings), or one injected connection."""

    def __init__(self, settings: PostgresSettings, connection: Connection | None = None) -> None:
        self.settings = settings
        self._injected = connection
        self._idle: list[Connection] = []
        self._cursors: dict[int, psycopg.Cursor[tuple[Any, ...]]] = {}
        self._lock = threading.Lock()
        self._injected_lock = threading.RLock()
        self.opened = 0
        """How many connections this pool has opened (tests and measurements read it)."""
        if connection is not None:
            self._configure(connection)

    def __repr__(self) -> str:
        return f"<Pool {self.settings.describe()} idle={len(self._idle)}>"

    @property
    def cache_key(self) -> object:
        """What identifies the database behind this pool (for caches of table layouts)."""
        if self._injected is not None:
            return ("injected", id(self._injected))
        return self.settings.database

    @property
    def replaceable(self) -> bool:
        """Whether a lost connection can be replaced (not for an injected connection)."""
        return self._injected is None

    def _configure(self, connection: Connection) -> None:
        set_json_loads(loads, connection)
        set_json_dumps(dumps, connection)
        if not self.settings.prepare:
            connection.prepare_threshold = None  # RDS Proxy pins sessions that prepare

    def _connect(self) -> Connection:
        settings = self.settings
        with map_exceptions(
            settings.describe(), secret=settings.password.reveal(), connecting=True
        ):
            connection = psycopg.connect(
                psycopg.conninfo.make_conninfo("", **settings.conninfo()),
                autocommit=True,
                prepare_threshold=5 if settings.prepare else None,
                application_name="kvstore",
                # A peer that vanished without a word (a NAT or proxy dropping a frozen Lambda's
                # connection) is noticed in seconds, not after TCP's ~15 minutes of retries.
                keepalives=1,
                keepalives_idle=30,
                keepalives_interval=10,
                keepalives_count=3,
                tcp_user_timeout=TCP_USER_TIMEOUT_MS,
            )
        self._configure(connection)
        self.opened += 1
        return connection

    def _take(self, fresh: bool) -> Connection:
        if self._injected is not None:
            if self._injected.closed or self._injected.broken:
                raise BackendUnavailable(
                    f"the injected connection to {self.settings.describe()} is closed"
                )
            return self._injected
        with self._lock:
            if fresh:
                stale, self._idle = self._idle, []
            else:
                stale = []
                while self._idle:
                    candidate = self._idle.pop()
                    if _alive(candidate):
                        break
                    stale.append(candidate)
                else:
                    candidate = None
        for connection in stale:
            self._close(connection)
        if not fresh and candidate is not None:
            return candidate
        return self._connect()

    def cursor(self, connection: Connection) -> psycopg.Cursor[tuple[Any, ...]]:
        """The cursor that calls of one row (find by key, put, count) reuse on ``connection``.

        Each fetches its row before the connection's next call, so one cursor serves them all,
        and saves the cursor a call ``connection.execute`` makes: measured here, a find by key
        took 16% less time (a call's own work between round trips lengthens each round trip on
        a virtual machine). Not for calls that fetch many rows: a cursor keeps its last result.
        """
        cursor = self._cursors.get(id(connection))
        if cursor is None or cursor.connection is not connection:
            # A connection closed since may have left its id to this one.
            cursor = self._cursors[id(connection)] = connection.cursor()
        return cursor

    def _close(self, connection: Connection) -> None:
        self._cursors.pop(id(connection), None)
        connection.close()

    def _give_back(self, connection: Connection) -> None:
        if connection is self._injected:
            return
        # pgconn's status, not connection.info's: info builds an object and an enum on each read.
        if connection.closed or connection.broken or connection.pgconn.transaction_status != 0:
            self._close(connection)
            return
        with self._lock:
            if len(self._idle) < MAX_IDLE:
                self._idle.append(connection)
                return
        self._close(connection)

    @contextmanager
    def connection(self, fresh: bool = False) -> Iterator[Connection]:
        """A connection for the block's exclusive use (``fresh``: newly opened)."""
        connection = self._take(fresh)
        # A pooled connection is already exclusive; an injected one is shared by every thread.
        lock = self._injected_lock if connection is self._injected else nullcontext()
        with lock:
            try:
                yield connection
            finally:
                self._give_back(connection)

    def run(self, operation: Callable[[Connection], T], *, retry: bool) -> T:
        """Run ``operation`` on a connection; when the connection is lost midway and ``retry``
        says a second run cannot apply anything twice, run it once more on a fresh connection.

        Without ``retry`` a lost connection raises ``BackendUnavailable``: the write may or may
        not have been applied.
        """
        # What ``self.connection()`` does, without a generator context manager (a call's hot path).
        connection = self._take(False)
        lock = self._injected_lock if connection is self._injected else None
        if lock is not None:
            lock.acquire()
        try:
            return operation(connection)
        except psycopg.Error as exc:
            if not (retry and self.replaceable and is_connection_lost(exc, connection)):
                raise
            logger.info(
                "connection to %s lost (%s); retrying once on a new connection",
                self.settings.describe(),
                type(exc).__name__,
            )
        finally:
            self._give_back(connection)
            if lock is not None:
                lock.release()
        with self.connection(fresh=True) as connection:
            return operation(connection)

    def close(self) -> None:
        """Close the idle connections (the pool opens new ones when used again)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            self._close(connection)


_pools: dict[PostgresSettings, Pool] = {}
_pools_lock = threading.Lock()


def get_pool(settings: PostgresSettings) -> Pool:
    """The process's pool for ``settings`` (created empty: connections open at first use)."""
    key = settings.database
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = Pool(settings)
        return pool
