"""Reads of any size: one statement when the read holds at most a page, else a server-side
cursor, ``PAGE_SIZE`` rows a round trip, in memory bounded by the page however large the kind.

The cursor reads in a resumable order (the key's, or an index read's order): when its connection
is lost midway, the read goes on from a new cursor on a fresh connection, strictly after the last
record it yielded, so every record that exists unchanged meanwhile is yielded exactly once. Each
round trip has the call's time budget (``kvstore_aurora.budget``), not the whole iteration.

The cursor's connection is held until the iteration ends; calls made meanwhile use another of the
pool's connections (or, on an injected connection, run inside the cursor's transaction).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

from kvstore.backend import Record
from kvstore_aurora.connection import Connection, Pool, pipeline

__all__ = ["PAGE_SIZE", "Opened", "stream"]

logger = logging.getLogger("kvstore.aurora")

PAGE_SIZE = 1000
"""Rows fetched per round trip from the server-side cursor of an unbounded read."""

_cursor_ids = itertools.count()

Opened = tuple[bytes, list[Any], Callable[[tuple[Any, ...]], Record]]
"""What a read streams: its SELECT (rendered), the SELECT's parameters, and how to decode a
row."""
Resume = Callable[[Connection, Record | None], Opened | None]
"""The SELECT of a read in its resumable order, strictly after a record (``None``: from the
start); ``None``: no record can match."""


def _fetch(name: bytes) -> bytes:
    return b"FETCH FORWARD %d FROM %s" % (PAGE_SIZE, name)


def _end(pool: Pool, connection: Connection, owned: bool, name: bytes) -> None:
    """End the cursor's transaction (or, in the caller's transaction, close the cursor)."""
    if connection.closed:
        return
    status = connection.info.transaction_status
    if status == TransactionStatus.IDLE:
        return
    pool.arm(connection)  # a round trip of its own: the caller may have paused between pages
    # When even this fails, the pool closes the unusable connection.
    with contextlib.suppress(Exception):
        if not owned:
            connection.execute(b"CLOSE " + name)
        elif status == TransactionStatus.INTRANS:
            # Commit, not roll back: on an injected connection, calls made while iterating
            # ran in this transaction.
            connection.execute("COMMIT")
        else:
            connection.execute("ROLLBACK")


def _first_page(
    connection: Connection, prepare: Callable[[Connection], Opened | None]
) -> list[Record] | bool | None:
    """The whole read in one plain statement when it holds at most ``PAGE_SIZE`` rows (the
    records; ``None``: no record can match), else ``True``: open a cursor."""
    opened = prepare(connection)
    if opened is None:
        return None
    query, params, decode = opened
    # A literal limit, not a parameter: costed for an unknown LIMIT $n, the generic plan of the
    # prepared statement read the whole table (see statements.limit_of).
    rows = connection.execute(query + b" LIMIT %d" % (PAGE_SIZE + 1), params).fetchall()
    return True if len(rows) > PAGE_SIZE else [decode(row) for row in rows]


def stream(
    pool: Pool,
    errors: Callable[[], AbstractContextManager[None]],
    prepare: Callable[[Connection], Opened | None],
    resume: Resume,
) -> Iterator[Record]:
    """The records of the SELECT ``prepare(connection)`` gives (``None``: no record can match);
    ``errors()`` maps psycopg's exceptions.

    A read of at most ``PAGE_SIZE`` rows is one plain statement (with ``LIMIT PAGE_SIZE + 1``,
    which says whether there are more), run again on a fresh connection when the connection was
    lost. A larger one goes through a server-side cursor on ``resume``'s SELECT from the start (a
    snapshot of its own; the first statement's rows are dropped): BEGIN, DECLARE and the first
    FETCH in one round trip. A connection lost midway resumes after the last record yielded.
    """
    with errors():
        first = pool.run(lambda connection: _first_page(connection, prepare), retry=True)
    if first is None:
        return
    if first is not True:
        assert isinstance(first, list)
        yield from first
        return
    yield from _cursor(pool, errors, resume)


def _cursor(
    pool: Pool, errors: Callable[[], AbstractContextManager[None]], resume: Resume
) -> Iterator[Record]:
    """``stream``'s read of more than a page, through a server-side cursor, resumed on a fresh
    connection (once for each position reached) when its connection is lost."""
    name = b"kvstore_cursor_%d" % next(_cursor_ids)
    last: Record | None = None
    resumed_after: list[Record | None] = []  # where the read was resumed (once a position)
    with errors():
        while True:
            fresh = bool(resumed_after)
            with pool.connection(fresh=fresh) as connection:
                # An injected connection may already be in a transaction (nested iterations).
                owned = connection.info.transaction_status == TransactionStatus.IDLE
                try:
                    opened = resume(connection, last)
                    if opened is None:
                        return
                    query, params, decode = opened
                    declare = b"DECLARE " + name + b" NO SCROLL CURSOR FOR " + query
                    with pipeline(connection):
                        if owned:
                            connection.execute("BEGIN", prepare=False)
                        connection.execute(declare, params, prepare=False)
                        cursor = connection.execute(_fetch(name), prepare=False)
                    rows = cursor.fetchall()
                    while True:
                        for row in rows:
                            last = decode(row)
                            yield last
                        if len(rows) < PAGE_SIZE:
                            return
                        pool.arm(connection)  # each round trip has the budget
                        rows = connection.execute(_fetch(name)).fetchall()
                except psycopg.Error as exc:
                    if not pool.retryable(exc, connection, idempotent=True) or any(
                        position is last for position in resumed_after
                    ):
                        raise
                    logger.info(
                        "connection to %s lost while streaming (%s); resuming after the last "
                        "record read, on a new connection",
                        pool.settings.describe(),
                        type(exc).__name__,
                    )
                    resumed_after.append(last)
                finally:
                    _end(pool, connection, owned, name)
