"""The aurora driver's guarded writes and updates: one statement each (``kvstore_aurora.guarded``
and ``kvstore_aurora.updates`` write them), and when it wrote nothing, the record that says why
(``Conflict``, which core turns into the contract's error).

- a guarded put or delete returns whether it wrote and, when it did not, the key's record as the
  statement saw it;
- an update returns the merged record; when it wrote nothing, the record read then says why: the
  guard or an increment (``Conflict``), a value its column cannot hold (``InvalidArgument``), or
  the statement's size bound, and then it runs again without the bound in a transaction committed
  only once core's exact size check passed (``updates``' docstring says why).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.errors import DivisionByZero
from psycopg.pq import TransactionStatus

from kvstore.backend import Conflict, Record
from kvstore.errors import InvalidArgument
from kvstore.values import check_item_size
from kvstore.writes import Delete, Put, Update, apply, key_of
from kvstore_aurora.connection import Connection, pipeline
from kvstore_aurora.guarded import delete_sql, put_sql
from kvstore_aurora.layout import Layout, check_rows, decode
from kvstore_aurora.updates import update_sql

if TYPE_CHECKING:
    from kvstore_aurora.driver import AuroraDriver

__all__ = ["guarded", "update"]


def guarded(driver: AuroraDriver, op: Put | Delete) -> None:
    """A guarded put or delete: one statement that writes when the guard holds, else
    ``Conflict`` with the record it found."""
    attempts = [0]
    schema = driver.schema
    key = key_of(schema, op)

    def run(connection: Connection) -> tuple[bool, Record | None]:
        attempts[0] += 1
        layout = driver._layout(connection)
        if isinstance(op, Put):
            check_rows(layout, (op.record,))
            statement = put_sql(layout, schema, op, step=False)
        else:
            statement = delete_sql(layout, schema, op, step=False)
        if statement is None:  # no record can let it write
            return False, driver._current(connection, layout, key)
        query = driver._statement(layout, statement.shape, connection, statement.build)
        row = driver.pool.wire(connection).one(query, statement.params)
        assert row is not None
        if row[0]:
            return True, None
        return False, None if row[1] is None else decode(layout, row[1:])

    # A retried write that had gone through reports a conflict with itself: core knows.
    written, current = driver._run(run, retry=True)
    if written:
        return
    if isinstance(op, Delete) and op.guard.holds(schema, current):
        return  # nothing to delete, and that is allowed
    raise Conflict(current, retried=attempts[0] > 1)


def update(driver: AuroraDriver, op: Update) -> Record:
    """One autocommit statement that returns the merged record; when it wrote nothing, the
    record read then says why (see the module's docstring)."""
    attempts = [0]
    schema = driver.schema
    # Merging the same changes twice gives the same record; an increment or a condition
    # could see the first attempt's own write.
    retry = not op.increments and not op.expect

    def run(connection: Connection) -> tuple[bool, Record, Layout] | None:
        attempts[0] += 1
        layout = driver._layout(connection)
        # A failed statement aborts nothing else only outside any transaction and outside the
        # caller's pipeline (whose statements up to its next Sync are one transaction).
        pgconn = connection.pgconn
        idle = not pgconn.pipeline_status and pgconn.transaction_status == TransactionStatus.IDLE
        row = _write_update(driver, connection, layout, op, idle, optimistic=idle)
        if row is not None:
            return True, decode(layout, row), layout
        # Why it wrote nothing is judged on the record as it is now (the rare path: a
        # statement that also returned it cost every update more than this read).
        current = driver._current(connection, layout, op.key)
        return None if current is None else (False, current, layout)

    found = driver._run(run, retry=retry)
    if found is None:
        raise Conflict(None, retried=attempts[0] > 1)
    written, record, layout = found
    if written:
        return record
    try:
        merged = apply(schema, op, record)
    except (Conflict, InvalidArgument):
        raise Conflict(record, retried=attempts[0] > 1) from None
    assert merged is not None
    check_rows(layout, (merged,))  # a value its column cannot hold
    return _update_checked(driver, op, retry)


def _write_update(
    driver: AuroraDriver,
    connection: Connection,
    layout: Layout,
    op: Update,
    idle: bool,
    optimistic: bool,
) -> tuple[Any, ...] | None:
    """The merged row ``op``'s statement returned (``None``: it wrote nothing). ``optimistic``
    first sums the increments in ``bigint`` where it can; where that fails, the full form runs."""
    statement = update_sql(layout, driver.schema, op, "write", idle=idle, optimistic=optimistic)
    query = driver._statement(layout, statement.shape, connection, statement.build)
    try:
        return driver.pool.wire(connection).one(query, statement.params)
    except DivisionByZero:
        if not idle:
            raise
        return None  # an increment broke the number rules: nothing was written
    except psycopg.DataError:
        if not statement.summed:
            raise
    # A stored value or a sum that bigint cannot hold, which wrote nothing (the connection was
    # idle): the number rules in numeric say what it makes.
    return _write_update(driver, connection, layout, op, idle, optimistic=False)


def _update_checked(driver: AuroraDriver, op: Update, retry: bool) -> Record:
    """The update without the size bound, in a transaction committed only once core's exact size
    check passed on the merged record."""
    from kvstore_aurora.batch import transaction_sql

    def run(connection: Connection) -> Record:
        layout = driver._layout(connection)
        statement = update_sql(layout, driver.schema, op, "write", bounded=False)
        query = driver._statement(layout, statement.shape, connection, statement.build)
        begin, commit, roll_back = transaction_sql(connection, "kvstore_update")
        done = False
        try:
            with pipeline(connection):  # BEGIN and UPDATE in one round trip
                connection.execute(begin)
                cursor = connection.execute(query, statement.params)
            row = cursor.fetchone()
            if row is None:
                raise Conflict(driver._current(connection, layout, op.key))
            merged = decode(layout, row)
            check_item_size(merged)
            connection.execute(commit)
            done = True
            return merged
        finally:
            if not done and not connection.closed:
                with contextlib.suppress(psycopg.Error):  # else the pool drops it
                    connection.execute(roll_back)

    return driver._run(run, retry=retry)
