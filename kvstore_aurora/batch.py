"""``put_many``: records as JSON arrays, each written by one upsert statement, and the batch
writer that sends a put_many of many chunks through one pipeline.

A slice of records is encoded with one ``dumps`` call into one JSON array (two or more only past
``MAX_BATCH_BYTES``) in key order, so concurrent batches lock rows in the same order and cannot
deadlock each other; the server splits each record into its columns and ``doc``
(``kvstore_aurora.statements.json_insert_sql``).
"""

from __future__ import annotations

import contextlib
import logging
import operator
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import psycopg
from psycopg.pq import TransactionStatus

from kvstore.backend import Record
from kvstore.errors import StoreError
from kvstore_aurora.columns import dumps
from kvstore_aurora.connection import Connection, pipeline
from kvstore_aurora.layout import check_rows

if TYPE_CHECKING:
    from kvstore_aurora.driver import AuroraDriver

__all__ = [
    "MAX_BATCH_BYTES",
    "MAX_UNCONFIRMED",
    "DirectWriter",
    "PipelinedWriter",
    "encode",
    "pipelined",
    "transaction_sql",
]

logger = logging.getLogger("kvstore.aurora")

MAX_BATCH_BYTES = 8 << 20
"""A put_many statement carries at most about this many characters of JSON (then a second one)."""

Batch = list[str]
"""One slice of records, encoded: its JSON arrays (usually one)."""


def transaction_sql(connection: Connection, savepoint: str) -> tuple[str, str, str]:
    """The statements that begin, commit and roll back a unit of work on ``connection``: a
    transaction of its own, or a savepoint inside a caller's transaction (an injected connection,
    a call made during an ``iter_all``)."""
    if connection.info.transaction_status == TransactionStatus.IDLE:
        return "BEGIN", "COMMIT", "ROLLBACK"
    return (
        f"SAVEPOINT {savepoint}",
        f"RELEASE SAVEPOINT {savepoint}",
        f"ROLLBACK TO SAVEPOINT {savepoint}",
    )


def _by_size(parts: list[str]) -> Iterator[tuple[int, int]]:
    """Slices (start, end) of ``parts``, about MAX_BATCH_BYTES of text each."""
    start, total = 0, 0
    for index, part in enumerate(parts):
        if total + len(part) > MAX_BATCH_BYTES and index > start:
            yield start, index
            start, total = index, 0
        total += len(part)
    yield start, len(parts)


def encode(driver: AuroraDriver, records: Sequence[Record]) -> Batch:
    """``records`` as JSON arrays of about MAX_BATCH_BYTES (usually one), in key order; a value
    that does not fit its column raises ``InvalidArgument``."""
    ordered = sorted(records, key=operator.itemgetter(*driver.schema.id_fields))
    # The cached layout without taking a connection: a pipelined put_many holds one.
    check_rows(driver.cached_layout() or driver.layout(), ordered)
    text = dumps(ordered)
    if len(text) <= MAX_BATCH_BYTES:
        return [text]
    parts = [dumps(record) for record in ordered]
    return ["[" + ",".join(parts[start:end]) + "]" for start, end in _by_size(parts)]


class DirectWriter:
    """Each chunk written as it comes, in its own call (one statement for a usual slice)."""

    def __init__(self, driver: AuroraDriver) -> None:
        self._driver = driver
        self.stored = 0
        """Chunks written (each returns once stored)."""

    def encode(self, records: Sequence[Record]) -> Batch:
        """See ``encode``."""
        return encode(self._driver, records)

    def write(self, batches: list[Batch]) -> None:
        """Store one chunk's slices, each in one statement (a slice split by size: in one
        transaction)."""
        for batch in batches:
            self._driver.write_batch(batch)
        self.stored += 1


MAX_UNCONFIRMED = 2
"""Chunks sent whose COMMIT the server has not confirmed yet, at most: a third waits for them
(their texts are kept to be sent again if the connection is lost, so this bounds that memory)."""


class _Sent(NamedTuple):
    """A chunk: its slices (to send again) and the cursor of its COMMIT (``None`` until sent;
    its result is set once the server confirmed it)."""

    batches: list[Batch]
    commit: psycopg.Cursor[Any] | None


class PipelinedWriter:
    """A put_many of many chunks on one connection in pipeline mode, each chunk in a transaction
    of its own (a savepoint inside the caller's): a chunk is sent at once and the server writes it
    while core prepares the next, with no thread.

    What a loop of chunks would give: nothing is read or sent before the first chunk passed core's
    checks (an invalid record wins over a missing table), an error rolls back its own chunk only,
    and a failed chunk's error is raised before one raised while preparing a later chunk.

    ``stored`` counts the chunks whose COMMIT the server confirmed (the first ones). When the
    connection is lost, the chunks not confirmed are sent again on a fresh connection (an upsert
    applied twice stores the same thing), once for each point reached. Each round trip has the
    call's time budget. An exception that interrupts the writer while it talks to the server (the
    caller's own, from a signal handler) closes the connection, which is then in an unknown
    state, and passes unchanged.
    """

    def __init__(self, driver: AuroraDriver) -> None:
        self._driver = driver
        self._pool = driver.pool
        self._session: contextlib.ExitStack | None = None
        self._connection: Connection | None = None
        self._current: Connection | None = None
        """The last session's connection (a lost one is still judged after its session ended)."""
        self._pipeline: psycopg.Pipeline | None = None
        self._statements: tuple[str, bytes, str] = ("", b"", "")
        self._sent: deque[_Sent] = deque()
        self._resent_at = -1
        self.stored = 0
        """Chunks the server confirmed stored."""
        self.interrupted = False
        """An exception not kvstore's nor psycopg's came out of a call to the server."""

    def encode(self, records: Sequence[Record]) -> Batch:
        """See ``encode``."""
        return encode(self._driver, records)

    # -- the session: a connection in pipeline mode ------------------------------------------------

    def _open(self) -> Connection:
        """A connection in pipeline mode (released, after a failed chunk's transaction is rolled
        back, when the session ends); a fresh one after a lost connection."""
        session = self._session = contextlib.ExitStack()
        connection = session.enter_context(self._pool.connection(fresh=self._resent_at >= 0))
        begin, commit, roll_back = transaction_sql(connection, "kvstore_put_many")
        query = self._driver.insert_sql(connection, many=True)

        def roll_back_failed() -> None:
            if not connection.closed and (
                connection.info.transaction_status == TransactionStatus.INERROR
            ):
                self._pool.arm(connection)
                with contextlib.suppress(psycopg.Error):  # else the pool drops the connection
                    connection.execute(roll_back, prepare=False)

        session.callback(roll_back_failed)  # runs after the pipeline's exit, before the release
        self._pipeline = session.enter_context(pipeline(connection))
        self._connection = self._current = connection
        self._statements = (begin, query, commit)
        return connection

    def end(self, exc: BaseException | None = None) -> None:
        """End the session: leave pipeline mode (which waits for every chunk sent, raising the
        first one's error) and give the connection back. ``exc``: the exception ending it,
        which psycopg must not replace."""
        session, self._session = self._session, None
        self._connection = self._pipeline = None
        if session is None:
            return
        if exc is None:
            session.close()
        else:
            session.__exit__(type(exc), exc, exc.__traceback__)

    # -- talking to the server -------------------------------------------------------------------

    def _send(self, batches: list[Batch]) -> psycopg.Cursor[Any]:
        """Send one chunk (BEGIN, its upserts, COMMIT) without waiting for the server; the
        COMMIT's cursor."""
        connection = self._connection or self._open()
        self._pool.arm(connection)  # each round trip has the budget
        begin, query, commit = self._statements
        # Never prepared in the pipeline: a statement psycopg prepares after a chunk that fails
        # is skipped by the server, yet psycopg would take it as prepared from then on.
        connection.execute(begin, prepare=False)
        for batch in batches:
            for text in batch:
                connection.execute(query, (text,), prepare=False)
        return connection.execute(commit, prepare=False)

    def _confirmed(self) -> None:
        """Count the chunks whose COMMIT's result arrived (psycopg reads results as it sends)."""
        sent = self._sent
        while sent and sent[0].commit is not None and sent[0].commit.pgresult is not None:
            sent.popleft()
            self.stored += 1

    def _send_last(self) -> None:
        last = self._sent[-1]
        if last.commit is None:
            self._sent[-1] = _Sent(last.batches, self._send(last.batches))
        self._confirmed()

    def _make_room(self) -> None:
        self._confirmed()
        if len(self._sent) >= MAX_UNCONFIRMED:
            self._sync()

    def _sync(self) -> None:
        if self._connection is not None and self._pipeline is not None:
            self._pool.arm(self._connection)
            self._pipeline.sync()
        self._confirmed()

    def _talk(self, step: Callable[[], None]) -> None:
        """Run ``step``; when the connection is lost, send every chunk not confirmed again on a
        fresh connection (once for each point reached), and run ``step`` again."""
        while True:
            try:
                step()
                return
            except psycopg.Error as exc:
                connection = self._current
                if (
                    connection is None
                    or self._resent_at == self.stored
                    or not self._pool.retryable(exc, connection, idempotent=True)
                ):
                    raise
                logger.info(
                    "connection to %s lost during put_many (%s); sending %d chunks again",
                    self._pool.settings.describe(),
                    type(exc).__name__,
                    len(self._sent),
                )
                self._resent_at = self.stored
                self.end(exc)
                again, self._sent = list(self._sent), deque()
                for chunk in again:
                    self._sent.append(_Sent(chunk.batches, self._send(chunk.batches)))
            except StoreError:
                raise
            except BaseException:
                self.interrupted = True
                if self._connection is not None:
                    self._connection.close()  # stopped mid-conversation: its state is unknown
                raise

    def write(self, batches: list[Batch]) -> None:
        """Send one chunk without waiting for the server (unless ``MAX_UNCONFIRMED`` chunks are
        waiting to be confirmed: then for them first)."""
        self._talk(self._make_room)
        self._sent.append(_Sent(batches, None))
        self._talk(self._send_last)

    def sync(self) -> None:
        """Wait for the chunks sent (their error first, if any)."""
        if self._sent:
            self._talk(self._sync)

    def finish(self) -> None:
        """Leave pipeline mode once every chunk sent is stored (one round trip; their error
        first, if any)."""

        def step() -> None:
            if self._session is None:
                return
            assert self._current is not None
            self._pool.arm(self._current)
            self.end()
            self.stored += len(self._sent)
            self._sent.clear()

        self._talk(step)


@contextlib.contextmanager
def pipelined(
    driver: AuroraDriver, errors: Callable[[], contextlib.AbstractContextManager[None]]
) -> Iterator[PipelinedWriter]:
    """A ``PipelinedWriter`` for the block; psycopg's errors mapped by ``errors()``.

    The block's exit waits for every chunk sent. When the block raises: a chunk's own error
    passes (what follows it was skipped); an exception raised between the writer's calls (core
    checking the next chunk, a ``validate`` hook) first waits for the chunks sent, whose error
    comes first; one that interrupted the writer talking to the server passes unchanged.
    """
    writer = PipelinedWriter(driver)
    with errors():
        try:
            yield writer
            writer.finish()
        except psycopg.Error as exc:
            writer.end(exc)
            raise  # a chunk's own error (what follows it was skipped)
        except BaseException as exc:
            if not writer.interrupted:
                try:
                    writer.sync()  # the chunks sent are stored, or their error comes first
                except BaseException as first:
                    writer.end(first)
                    raise
            writer.end(exc)
            raise


def write_texts(connection: Connection, query: bytes, batch: Batch) -> None:
    """One slice's arrays, each by ``query``; several in one transaction, so a slice split by size
    is still written whole."""
    if len(batch) == 1:
        connection.execute(query, (batch[0],))
        return
    with connection.transaction():
        for text in batch:
            connection.execute(query, (text,))
