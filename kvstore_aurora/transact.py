"""``transaction()`` on PostgreSQL: one transaction in one round trip.

The operations go out in one pipeline: BEGIN, one statement per operation made to fail (a
division by zero) when its guard does not hold (``kvstore_aurora.guarded``), COMMIT, then one
Sync. The pipeline is libpq's, driven by ``Wire.pipeline`` (psycopg's costs the client more than
the statements do), or psycopg's when the connection is in its caller's pipeline already. The
unconditional puts to one table share one statement (put_many's upsert of a JSON array, in key
order, at the first one's place): such a put cannot fail on a guard, and a statement costs both
sides more than a record in it. The server runs them in order; the first that fails aborts the
transaction, and its position is the first statement whose result is an error. The record that
explains the failure is read right after the ROLLBACK (a second round trip, on failure only). A
value the server refuses (a column's type, length or constraint) is the error of its operation,
with its ``index``: refused in a shared upsert, the transaction runs again with a statement a
put, to find which.

An update whose only fault was the size bound (``guarded.update_sql``), or a step refused by a
record that changed in between, makes the transaction run again; an update then goes in *checked*
mode, returning its merged record, and the COMMIT waits for core's exact size check. A deadlock
with another transaction (nothing was applied) is tried again too.
"""

from __future__ import annotations

import contextlib
import operator
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import errors as pg
from psycopg import sql

from kvstore.backend import Conflict, Record
from kvstore.errors import InvalidArgument, StoreError
from kvstore.values import check_item_size
from kvstore.writes import Delete, Put, Update, Write, apply, key_of
from kvstore_aurora.batch import transaction_sql
from kvstore_aurora.columns import dumps
from kvstore_aurora.connection import Connection, Pool, pipeline
from kvstore_aurora.guarded import Statement, check_sql, delete_sql, put_sql, update_sql
from kvstore_aurora.layout import check_rows, decode
from kvstore_aurora.wire import Stale, Wire

if TYPE_CHECKING:
    from kvstore_aurora.driver import AuroraDriver

__all__ = ["MAX_RUNS", "run_transaction", "statements", "step"]

MAX_RUNS = 3
"""Runs of one transaction at most (after a deadlock, a size bound, a record changed between)."""


class _Failed(Exception):
    """A run's step ``index`` refused (``current``: the record read after the rollback)."""

    def __init__(self, index: int, current: Record | None) -> None:
        super().__init__(index)
        self.index = index
        self.current = current


class _Again(Exception):
    """The run was rolled back for a reason that another run may not meet (a deadlock)."""


class _Split(Exception):
    """A shared upsert was refused (a value its column cannot hold): the next run gives each put
    its own statement, so that the refusal names its operation."""


class _Refused(Exception):
    """The server refused step ``index``'s value (a column's type, length or constraint)."""

    def __init__(self, index: int, error: psycopg.Error) -> None:
        super().__init__(index)
        self.index = index
        self.error = error


def step(
    driver: AuroraDriver, connection: Connection, op: Write, checked: bool
) -> tuple[bytes, list[Any]]:
    """``op`` as a statement of a transaction, which fails when its guard does not hold
    (``checked``: an update also returns the merged row)."""
    layout = driver._layout(connection)
    schema = driver.schema
    statement: Statement | None
    if isinstance(op, Put):
        check_rows(layout, (op.record,))
        if op.guard.unconditional:  # it always writes: the plain upsert, with nothing to check
            return driver.upsert(connection, op.record)
        statement = put_sql(layout, schema, op, step=True)
        if statement is None:  # its guard can hold on nothing
            statement = Statement(("never",), [], lambda: sql.SQL("SELECT 1 / 0"))
    elif isinstance(op, Update):
        mode = "checked" if checked else "step"
        statement = update_sql(layout, schema, op, mode, bounded=not checked)
    elif isinstance(op, Delete):
        statement = delete_sql(layout, schema, op, step=True)
    else:
        statement = check_sql(layout, schema, op)
    query = driver._statement(layout, statement.shape, connection, statement.build)
    return query, statement.params


def _plain_put(op: Write) -> bool:
    return isinstance(op, Put) and op.guard.unconditional


def statements(
    connection: Connection,
    ops: Sequence[tuple[AuroraDriver, Write]],
    checked: bool,
    share: bool = True,
) -> tuple[list[tuple[bytes, list[Any]]], list[int], set[int]]:
    """The run's statements (see the module's docstring; ``share``: the unconditional puts to
    one table share one), for each the index of the operation it stands for (of a shared upsert,
    its first put's), and the positions of the shared upserts. A value its column cannot hold
    is ``InvalidArgument`` with the operation's ``index``."""
    shared: dict[int, list[int]] = {}  # id(driver) -> the indexes of its unconditional puts
    for index, (driver, op) in enumerate(ops):
        if share and _plain_put(op):
            shared.setdefault(id(driver), []).append(index)
    found: list[tuple[bytes, list[Any]]] = []
    owners: list[int] = []
    sharing: set[int] = set()
    for index, (driver, op) in enumerate(ops):
        group = shared.get(id(driver)) if share and _plain_put(op) else None
        try:
            if group is None or len(group) == 1:
                found.append(step(driver, connection, op, checked))
            else:
                assert isinstance(op, Put)
                check_rows(driver._layout(connection), (op.record,))
                if group[0] != index:
                    continue
                sharing.add(len(found))
                found.append(_upsert_all(driver, connection, [ops[i][1] for i in group]))
        except InvalidArgument as exc:
            exc.index = index
            raise
        owners.append(index)
    return found, owners, sharing


def _upsert_all(
    driver: AuroraDriver, connection: Connection, puts: list[Write]
) -> tuple[bytes, list[Any]]:
    """One upsert of the records of ``puts`` (unconditional puts to ``driver``'s table, checked
    by ``check_rows``), in key order: concurrent transactions then lock their rows in one order."""
    records = [op.record for op in puts if isinstance(op, Put)]
    records.sort(key=operator.itemgetter(*driver.schema.id_fields))
    return driver.insert_sql(connection, many=True), [dumps(records)]


def _roll_back(connection: Connection, statement: str) -> None:
    if connection.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        with contextlib.suppress(psycopg.Error):  # else the pool drops the connection
            connection.execute(statement, prepare=False)


class _Outcome:
    """What a run's pipeline gave: its error (``None``: every statement ran), the position of
    the step that failed (``len(steps)`` when no step did: the BEGIN, the COMMIT, the
    connection), and each step's first row (``row``: for a checked update)."""

    def __init__(
        self, failed: psycopg.Error | None, at: int, row: Callable[[int], tuple[Any, ...] | None]
    ) -> None:
        self.failed, self.at, self.row = failed, at, row


def _wired(
    connection: Connection,
    wire: Wire,
    sent: list[tuple[str | bytes, Sequence[Any], bool]],
    steps: int,
) -> _Outcome | None:
    """The run's statements (the BEGIN, ``steps`` steps, maybe the COMMIT) through ``wire``'s
    pipeline; ``None``: psycopg's must send them."""
    try:
        results = wire.pipeline(sent)
    except Stale:
        raise _Again() from None  # the caller rolls back
    if results is None:
        return None
    for position, result in enumerate(results):
        if result.status == psycopg.pq.ExecStatus.FATAL_ERROR:
            error = pg.error_from_result(result, encoding=connection.info.encoding)
            at = position - 1 if 0 < position <= steps else steps
            return _Outcome(error, at, lambda i: None)
    return _Outcome(None, steps, lambda i: wire.first_row(results[i + 1]))


def _through_psycopg(
    connection: Connection,
    pool: Pool,
    begin: str,
    steps: list[tuple[bytes, list[Any]]],
    commit: str | None,
) -> _Outcome:
    """The run's statements through psycopg's pipeline (a connection in its caller's pipeline
    already), none of them prepared."""
    control, reused = pool.cursor(connection), pool.step_cursors(connection, len(steps))
    cursors: list[psycopg.Cursor[Any]] = []
    failed: psycopg.Error | None = None
    try:
        with pipeline(connection):
            try:
                control.execute(begin, prepare=False)
                for cursor, (query, params) in zip(reused, steps, strict=True):
                    cursors.append(cursor.execute(query, params, prepare=False))
                if commit is not None:
                    control.execute(commit, prepare=False)
            except psycopg.Error as exc:  # a result read early: the pipeline's exit raises next
                failed = exc
    except psycopg.Error as exc:
        failed = failed or exc
    # The failing step: the first sent without a result, or the one whose sending raised.
    at = next((i for i, cursor in enumerate(cursors) if cursor.pgresult is None), len(cursors))
    return _Outcome(failed, at, lambda i: cursors[i].fetchone())


def _run(
    connection: Connection, ops: Sequence[tuple[AuroraDriver, Write]], checked: bool, share: bool
) -> None:
    """One run of the transaction on ``connection``: ``_Failed``, ``_Again``, ``_Split`` or
    ``_Refused`` when it rolled back."""
    # Every layout and statement first: a missing table fails before anything is sent.
    steps, owners, sharing = statements(connection, ops, checked, share)
    begin, commit, roll_back = transaction_sql(connection, "kvstore_transaction")
    pool = ops[0][0].pool
    sent: list[tuple[str | bytes, Sequence[Any], bool]] = [(begin, (), False)]
    sent += [(query, params, True) for query, params in steps]
    if not checked:
        sent.append((commit, (), False))
    try:
        outcome = _wired(connection, pool.wire(connection), sent, len(steps))
    except _Again:
        _roll_back(connection, roll_back)
        raise
    if outcome is None:
        outcome = _through_psycopg(connection, pool, begin, steps, None if checked else commit)
    failed = outcome.failed
    if failed is None and checked:
        # Core's exact size check of every merged record, before the COMMIT.
        for position, index in enumerate(owners):
            driver, op = ops[index]
            if isinstance(op, Update):
                row = outcome.row(position)
                assert row is not None
                try:
                    check_item_size(decode(driver._layout(connection), row[1:]))
                except InvalidArgument:
                    _roll_back(connection, roll_back)
                    raise _Failed(index, driver.current(connection, op.key)) from None
        connection.execute(commit, prepare=False)
        return
    if failed is None:
        return
    _roll_back(connection, roll_back)
    if isinstance(failed, (pg.DeadlockDetected, pg.SerializationFailure)):
        raise _Again() from failed
    at = outcome.at
    if at >= len(steps):
        raise failed
    if not isinstance(failed, pg.DivisionByZero):
        if not isinstance(failed, (pg.DataError, pg.IntegrityError)):
            raise failed
        if at in sharing:
            raise _Split() from failed
        raise _Refused(owners[at], failed) from failed
    index = owners[at]
    driver, op = ops[index]
    raise _Failed(index, driver.current(connection, key_of(driver.schema, op)))


def run_transaction(owner: AuroraDriver, ops: Sequence[tuple[AuroraDriver, Write]]) -> None:
    """Apply ``ops`` all together or not at all (see the module's docstring); ``Conflict`` with
    ``index`` for the first operation whose guard does not hold."""

    def run(connection: Connection) -> None:
        checked, share = False, True
        last: _Failed | None = None
        for _attempt in range(MAX_RUNS):
            try:
                _run(connection, ops, checked, share)
                return
            except _Again:
                continue
            except _Split:
                share = False
                continue
            except _Failed as failure:
                last = failure
                driver, op = ops[failure.index]
                try:
                    merged = apply(driver.schema, op, failure.current)
                except (Conflict, InvalidArgument):
                    raise Conflict(failure.current, index=failure.index) from None
                if merged is not None:
                    try:
                        check_rows(driver._layout(connection), (merged,))
                    except InvalidArgument as exc:  # a value its column cannot hold
                        exc.index = failure.index
                        raise
                # The guard holds on the record now: the size bound, or a change in between.
                checked = checked or isinstance(op, Update)
        if last is not None:
            raise Conflict(last.current, index=last.index)
        raise pg.DeadlockDetected("the transaction kept meeting deadlocks")

    try:
        owner.pool.run(run, retry=False)
    except psycopg.Error as exc:
        owner._mapped(exc, _kind_of(exc, ops))
    except _Refused as refused:
        try:
            ops[refused.index][0]._mapped(refused.error)
        except StoreError as error:
            error.index = refused.index
            raise


def _kind_of(exc: psycopg.Error, ops: Sequence[tuple[AuroraDriver, Write]]) -> str | None:
    """The kind a missing table's error is about (the table named in the server's message)."""
    if isinstance(exc, pg.UndefinedTable):
        message = exc.diag.message_primary or ""
        for driver, _op in ops:
            if f'"{driver.schema.kind}"' in message:
                return driver.schema.kind
    return None
