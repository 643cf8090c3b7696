"""The process's PostgreSQL connections: one pool per configuration, opened at first use, reused,
at most ``max_connections`` of them (``DB_MAX_CONNECTIONS``), every call bounded in time.

A ``Pool`` hands out a connection for the length of one call. In a single-threaded process (an
AWS Lambda container) that is always the same connection; a second one is only opened while the
first is busy (another thread, or a call made while an ``iter_all`` streams), up to the cap; past
it a caller waits for a free one within its time budget, then gets ``BackendUnavailable``. At most
``MAX_IDLE`` stay open when idle. A connection found dead before use (the server or a proxy
dropped it while idle) is replaced without a round trip.

Each call has a deadline (``settings.timeout`` from its start, ``kvstore_aurora.budget``) that
bounds waiting for a connection, connecting and every round trip, retries included. A call that
loses its connection midway is run once more on a fresh connection, within the same deadline,
when that is safe (``Pool.run``): the caller says the operation is idempotent, or the request
never left (libpq failed to send it).
"""

from __future__ import annotations

import logging
import re
import select
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from time import monotonic
from typing import Any, TypeVar

import psycopg
from psycopg.types.json import set_json_dumps, set_json_loads

from kvstore.backend import forget, shared
from kvstore.errors import BackendUnavailable, StoreError
from kvstore_aurora.budget import (
    DeadlineExceeded,
    KvConnection,
    connect_timeout,
    session_options,
    session_params,
)
from kvstore_aurora.columns import DocLoader, dumps, loads
from kvstore_aurora.errors import (
    is_connection_lost,
    login_refused,
    may_have_been_applied,
    raise_mapped,
)
from kvstore_aurora.settings import PostgresSettings
from kvstore_aurora.wire import Wire

__all__ = [
    "MAX_IDLE",
    "Connection",
    "Pool",
    "get_pool",
    "injected_pool",
    "interruption",
    "pipeline",
    "unsent",
]

Connection = psycopg.Connection[tuple[Any, ...]]
T = TypeVar("T")
logger = logging.getLogger("kvstore.aurora")

_BAD = psycopg.pq.ConnStatus.BAD
MAX_IDLE = 4
"""Connections a pool keeps open when nobody uses them."""
_UNSENT = ("sending ", "flushing failed", "the connection is closed")
"""How psycopg's errors begin when libpq could not send a request at all (the server cannot
have run it)."""
_STARTUP_REFUSED = re.compile(r"startup parameter|unrecognized configuration parameter", re.I)
"""What a server or a pooler in front of it says when it refuses the ``options`` in a startup
packet (PgBouncer: "unsupported startup parameter: options")."""


def unsent(exc: BaseException) -> bool:
    """Whether ``exc`` says the request could not be sent (so it never reached the server)."""
    return str(exc).startswith(_UNSENT)


def interruption(exc: BaseException) -> BaseException | None:
    """The caller's own exception that ``exc`` (psycopg's) replaced, if any.

    An exception raised while psycopg waits for the server inside ``Pipeline.__exit__`` (a
    signal handler's, a KeyboardInterrupt) leaves the pipeline busy; psycopg then fails to leave
    pipeline mode and raises that failure instead, the caller's exception in its ``__context__``.
    """
    found = exc.__context__
    if found is None or isinstance(found, (psycopg.Error, StoreError, OSError)):
        return None
    return found


@contextmanager
def pipeline(connection: Connection) -> Iterator[psycopg.Pipeline]:
    """``connection.pipeline()``, except that an exception of the caller's interrupting its exit
    comes out unchanged (see ``interruption``), and the connection, whose conversation with the
    server stopped midway, is closed."""
    caller: BaseException | None = None
    try:
        with connection.pipeline() as found:
            yield found
    except psycopg.Error as exc:
        caller = interruption(exc)
        if caller is None:
            raise
        connection.close()
    if caller is not None:
        raise caller


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
        self.timeout = settings.timeout
        """A call's time budget, seconds."""
        self.cap = settings.max_connections
        """Connections open at most (idle or in use)."""
        self._injected = connection
        self._idle: list[Connection] = []
        self._wires: dict[int, Wire] = {}
        self._step_cursors: dict[int, list[psycopg.Cursor[tuple[Any, ...]]]] = {}
        self._lock = threading.Lock()
        self._free = threading.Condition(self._lock)
        self._open = 0
        self._waiting = 0
        self._injected_lock = threading.RLock()
        self._session_limits = True
        """Whether new connections carry the budget's server-side limits in their startup
        packet (``False`` once the server or a pooler in front of it refused them)."""
        self.opened = 0
        """How many connections this pool has opened (tests and measurements read it)."""
        if connection is not None:
            self._configure(connection)

    def __repr__(self) -> str:
        return f"<Pool {self.settings.describe()} idle={len(self._idle)} open={self._open}>"

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

    def deadline(self) -> float:
        """The deadline of a call (or a round trip) starting now."""
        return monotonic() + self.timeout

    def arm(self, connection: Connection, deadline: float | None = None) -> None:
        """Give ``connection``'s next round trips ``deadline`` (default: a budget from now)."""
        if isinstance(connection, KvConnection):
            connection.deadline = self.deadline() if deadline is None else deadline

    # -- opening ----------------------------------------------------------------------------------

    def _configure(self, connection: Connection) -> None:
        set_json_loads(loads, connection)  # binary results too (kvstore reads text)
        for name in ("json", "jsonb"):
            connection.adapters.register_loader(name, DocLoader)
        set_json_dumps(dumps, connection)
        if not self.settings.prepare:
            connection.prepare_threshold = None  # RDS Proxy pins sessions that prepare

    def _connect(self, deadline: float) -> Connection:
        """A new connection; with a secret or IAM auth, a refused login is tried once more with
        the secret read again and a new token (the secret may have been rotated)."""
        settings = self.settings
        renewable = settings.secret_arn is not None or settings.iam_auth
        if not renewable:
            return self._open_session(settings.conninfo(), deadline)
        from kvstore_aurora import credentials

        for attempt in (0, 1):
            login = credentials.login(settings, renew=attempt > 0)
            params = settings.conninfo()
            params.pop("password", None)
            for name, value in login._asdict().items():
                if value:
                    params[name] = value.reveal() if name == "password" else value
            try:
                return self._open_session(params, deadline, refusal=attempt == 0)
            except _LoginRefused:
                logger.info("login to %s refused: reading its credentials again", self)
        raise AssertionError("unreachable")  # pragma: no cover

    def _open_session(
        self, params: dict[str, Any], deadline: float, refusal: bool = False
    ) -> Connection:
        """Connect with ``params`` (libpq's), the budget's limits added where the settings do not
        set them; ``refusal``: raise ``_LoginRefused`` for a refused login."""
        settings = self.settings
        budget = self.timeout
        params = {**session_params(budget), "application_name": "kvstore", **params}
        seconds = connect_timeout(settings.connect_timeout, deadline - monotonic())
        params["connect_timeout"] = seconds
        own_options = params.get("options")  # the URL's
        if self._session_limits:
            # The budget's first, so that the URL's own -c statement_timeout=... wins.
            params["options"] = " ".join(filter(None, (session_options(budget), own_options)))
        password = str(params.get("password") or "")
        where = settings.describe()
        try:
            connection = KvConnection.connect(
                psycopg.conninfo.make_conninfo("", **params),
                autocommit=True,
                prepare_threshold=5 if settings.prepare else None,
            )
        except psycopg.errors.ConnectionTimeout:
            raise BackendUnavailable(
                f"could not connect to PostgreSQL at {where} within the connect timeout of "
                f"{seconds} s (DB_CONNECT_TIMEOUT, at most the time budget KVSTORE_TIMEOUT="
                f"{budget:g} s)"
            ) from None
        except psycopg.Error as exc:
            if self._session_limits and _STARTUP_REFUSED.search(str(exc)):
                # A pooler that refuses startup options (PgBouncer): the client-side deadline
                # alone bounds calls; a SET would leak to other clients of a pooler.
                logger.info(
                    "%s refused the session's time limits; the client deadline stays", where
                )
                self._session_limits = False
                without = {k: v for k, v in params.items() if k != "options"}
                if own_options:
                    without["options"] = own_options
                try:
                    return self._open_session(without, deadline, refusal)
                except BaseException:
                    self._session_limits = True  # it was not our options that were refused
                    raise
            if refusal and login_refused(exc):
                raise _LoginRefused() from None
            raise_mapped(exc, where, secret=password, connecting=True)
        connection.budget = budget
        self._configure(connection)
        self.opened += 1
        return connection

    # -- taking and giving back ----------------------------------------------------------------

    def _wait_for_free(self, deadline: float) -> None:
        """Wait (holding ``_lock``, which the wait releases) until a connection is given back or
        closed, or raise ``BackendUnavailable`` at the deadline."""
        remaining = deadline - monotonic()
        if remaining > 0:
            self._waiting += 1
            try:
                self._free.wait(remaining)
            finally:
                self._waiting -= 1
            if deadline - monotonic() > 0:
                return
        raise BackendUnavailable(
            f"no free connection to PostgreSQL at {self.settings.describe()} within the time "
            f"budget of {self.timeout:g} s (KVSTORE_TIMEOUT): all {self.cap} "
            "(DB_MAX_CONNECTIONS) are in use"
        )

    def _take(self, deadline: float, fresh: bool) -> Connection:
        """A connection for one call: an idle one that looks alive (unless ``fresh``: the idle
        ones are dropped), else a new one while fewer than ``cap`` are open, else the first
        given back before the deadline."""
        stale: list[Connection] = []
        try:
            with self._lock:
                if fresh:
                    stale, self._idle = self._idle, []
                    self._open -= len(stale)
                while True:
                    while self._idle:
                        candidate = self._idle.pop()
                        if _alive(candidate):
                            return candidate
                        stale.append(candidate)
                        self._open -= 1
                    if self._open < self.cap:
                        self._open += 1
                        break
                    self._wait_for_free(deadline)
                if len(stale) > 1 and self._waiting:
                    self._free.notify(len(stale) - 1)  # this call takes one of the slots
        finally:
            for connection in stale:  # outside the lock
                self._forget_cursor(connection)
                connection.close()
        try:
            return self._connect(deadline)
        except BaseException:
            self._closed_one()
            raise

    def _acquire(self, deadline: float, fresh: bool = False) -> Connection:
        """``_take`` and the deadline set on the connection; the injected connection's lock."""
        injected = self._injected
        if injected is None:
            connection = self._take(deadline, fresh)
            connection.deadline = deadline  # type: ignore[attr-defined]  # a KvConnection
            return connection
        if injected.pgconn.status == _BAD:  # closed or broken, without two properties' calls
            raise BackendUnavailable(
                f"the injected connection to {self.settings.describe()} is closed"
            )
        lock = self._injected_lock
        # Free almost always: the blocking acquire's timeout costs more than the whole check.
        if not lock.acquire(False) and not lock.acquire(timeout=max(0.0, deadline - monotonic())):
            raise BackendUnavailable(
                f"the injected connection to {self.settings.describe()} stayed busy past the "
                f"time budget of {self.timeout:g} s (KVSTORE_TIMEOUT)"
            )
        return injected

    def _closed_one(self) -> None:
        with self._lock:
            self._open -= 1
            if self._waiting:
                self._free.notify()

    def _forget_cursor(self, connection: Connection) -> None:
        self._wires.pop(id(connection), None)
        self._step_cursors.pop(id(connection), None)

    def _discard(self, connection: Connection) -> None:
        self._forget_cursor(connection)
        connection.close()
        self._closed_one()

    def _release(self, connection: Connection) -> None:
        """Give ``connection`` back: idle again, or closed when it is unusable (or too many are
        idle); the injected connection's lock released."""
        if connection is self._injected:
            self._injected_lock.release()
            return
        # pgconn's status, not connection.info's: info builds an object and an enum on each read.
        if connection.closed or connection.broken or connection.pgconn.transaction_status != 0:
            self._discard(connection)
            return
        with self._lock:
            if len(self._idle) < MAX_IDLE:
                self._idle.append(connection)
                if self._waiting:
                    self._free.notify()
                return
        self._discard(connection)

    def wire(self, connection: Connection) -> Wire:
        """What calls of one statement (find by key, a page, put, update, count) send it with on
        ``connection``: one ``Wire`` a connection, reused from call to call."""
        wire = self._wires.get(id(connection))
        if wire is None or wire.connection is not connection:
            # A connection closed since may have left its id to this one.
            wire = self._wires[id(connection)] = Wire(connection)
        return wire

    def cursor(self, connection: Connection) -> psycopg.Cursor[tuple[Any, ...]]:
        """The cursor that calls of one row reuse on ``connection`` (the wire's).

        Each fetches its row before the connection's next call, so one cursor serves them all,
        and saves making the cursor that each ``connection.execute`` makes (see
        docs/PERFORMANCE.md). Not for calls that fetch many rows: a cursor keeps its last result.
        """
        return self.wire(connection).cursor

    def step_cursors(self, connection: Connection, count: int) -> list[psycopg.Cursor[Any]]:
        """``count`` cursors of ``connection`` for the statements of one pipeline, which each
        keep their own result (a transaction's steps), reused from one pipeline to the next as
        ``cursor`` is."""
        cursors = self._step_cursors.get(id(connection))
        if cursors is None or (cursors and cursors[0].connection is not connection):
            cursors = self._step_cursors[id(connection)] = []
        while len(cursors) < count:
            cursors.append(connection.cursor())
        return cursors[:count]

    @contextmanager
    def connection(
        self, fresh: bool = False, deadline: float | None = None
    ) -> Iterator[Connection]:
        """A connection for the block's exclusive use (``fresh``: newly opened), its round trips
        bounded by ``deadline`` (default: a budget from now; ``arm`` sets a new one)."""
        connection = self._acquire(self.deadline() if deadline is None else deadline, fresh)
        try:
            yield connection
        finally:
            self._release(connection)

    def retryable(self, exc: psycopg.Error, connection: Connection, idempotent: bool) -> bool:
        """Whether a call that failed with ``exc`` on ``connection`` may run again on a fresh
        connection: the connection was lost (not by the deadline), it can be replaced, and the
        operation is ``idempotent`` or its request never left."""
        return (
            self._injected is None
            and not isinstance(exc, DeadlineExceeded)
            and is_connection_lost(exc, connection)
            and (idempotent or unsent(exc))
        )

    def run(self, operation: Callable[[Connection], T], *, retry: bool) -> T:
        """Run ``operation`` on a connection within one time budget; when the connection is lost
        midway and that is safe (see ``retryable``: ``retry`` says whether running it twice
        stores the same thing), run it once more on a fresh connection.

        Otherwise a lost connection raises ``BackendUnavailable``; when the request of an
        operation that is not run twice (``retry`` false: a write) was sent, its error says the
        write may have been applied.
        """
        # What ``self.connection()`` does, without a generator context manager (a call's hot path).
        deadline = monotonic() + self.timeout
        if self._injected is None:  # _acquire's pooled case, one call less
            connection = self._take(deadline, False)
            connection.deadline = deadline  # type: ignore[attr-defined]  # a KvConnection
        else:
            connection = self._acquire(deadline)
        try:
            return operation(connection)
        except psycopg.Error as exc:
            if not self.retryable(exc, connection, retry) or monotonic() >= deadline:
                if not retry and is_connection_lost(exc, connection) and not unsent(exc):
                    may_have_been_applied(exc)
                raise
            logger.info(
                "connection to %s lost (%s); retrying once on a new connection",
                self.settings.describe(),
                type(exc).__name__,
            )
        finally:
            self._release(connection)
        connection = self._acquire(deadline, fresh=True)
        try:
            return operation(connection)
        finally:
            self._release(connection)

    def close(self) -> None:
        """Close the idle connections (the pool opens new ones when used again)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            self._discard(connection)


class _LoginRefused(Exception):
    """A login with read credentials was refused: read them again."""


def get_pool(settings: PostgresSettings) -> Pool:
    """The process's pool for ``settings``' database (created empty: connections open at first
    use; a forked child makes its own)."""
    key = settings.database
    return shared("kvstore_aurora.pool", key, lambda: Pool(key))


def injected_pool(settings: PostgresSettings, connection: Connection) -> Pool:
    """The pool of an injected connection: one for every store given that connection, so they
    share its lock (one call at a time) and its reused cursor."""
    pool = shared("kvstore_aurora.injected", id(connection), lambda: Pool(settings, connection))
    if pool._injected is not connection:  # a connection since closed left its id to this one
        forget("kvstore_aurora.injected", id(connection))
        pool = shared("kvstore_aurora.injected", id(connection), lambda: Pool(settings, connection))
    return pool
