"""``transaction()`` on PostgreSQL: one transaction in one round trip.

The operations go out in one pipeline: one statement per operation made to fail (a division by
zero) when its guard does not hold (``kvstore_aurora.guarded``), then one Sync. The server runs
the statements before a Sync as one transaction, which it commits at the Sync, or rolls back
whole when a statement failed; BEGIN and COMMIT go around them only when the transaction must
stay open past the Sync (a checked run, below) or is a savepoint in the caller's transaction.
The pipeline is libpq's, driven by ``Wire.pipeline`` (psycopg's costs the client more than the
statements do), or psycopg's, with BEGIN and COMMIT, when the connection is in its caller's
pipeline already.

The statements are ``kvstore_aurora.steps``' (operations of one table may share one), each made
as the pipeline sends it. A value its column cannot hold, found while they are made, ends the
pipeline with a statement that fails (nothing is applied) and is the error of the first such
operation in the block.

The server runs the statements in order; the first that fails aborts the transaction, and its
position is the first statement whose result is an error. The record that explains the failure
is read right after the ROLLBACK (a second round trip, on failure only). A value the server
refuses (a column's type, length or constraint) is the error of its operation, with its
``index``. When a shared statement fails, the transaction runs again with a statement an
operation, to find which one failed.

An update whose only fault was the size bound (``updates.update_sql``), or a step refused by a
record that changed in between, makes the transaction run again; an update then goes in *checked*
mode, returning its merged record, and the COMMIT waits for core's exact size check. A deadlock
with another transaction (nothing was applied) is tried again too. Int increments of ints in
``doc`` are summed in ``bigint`` (``Statement.summed``); a run that failed with a data exception
then runs again with the full form of the number rules, which says what the rules say.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import errors as pg

from kvstore.backend import Conflict, Record
from kvstore.errors import InvalidArgument, StoreError
from kvstore.values import check_item_size
from kvstore.writes import Update, Write, apply, key_of
from kvstore_aurora.batch import transaction_sql
from kvstore_aurora.connection import Connection, Pool, pipeline
from kvstore_aurora.layout import check_rows, decode
from kvstore_aurora.steps import Steps, layouts_of, statements
from kvstore_aurora.wire import Stale, Wire

if TYPE_CHECKING:
    from kvstore_aurora.driver import AuroraDriver

__all__ = ["MAX_RUNS", "run_transaction"]

MAX_RUNS = 5
"""Runs of one transaction at most (after a shared statement failed, a deadlock, a size bound, a
record changed between, an increment summed in bigint)."""


class _Failed(Exception):
    """A run's step ``index`` refused (``current``: the record read after the rollback)."""

    def __init__(self, index: int, current: Record | None) -> None:
        super().__init__(index)
        self.index = index
        self.current = current


class _Summed(Exception):
    """A run whose increments were summed in bigint failed with a data exception: it rolled
    back, and runs again with the full form of the number rules."""


class _Again(Exception):
    """The run was rolled back for a reason that another run may not meet (a deadlock)."""


class _Split(Exception):
    """A shared statement failed: the next run gives each operation its own statement, so that
    the failure names its operation."""


class _Refused(Exception):
    """The server refused step ``index``'s value (a column's type, length or constraint)."""

    def __init__(self, index: int, error: psycopg.Error) -> None:
        super().__init__(index)
        self.index = index
        self.error = error


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
    sent: Iterable[tuple[str | bytes, Sequence[Any], bool]],
    first: int,
    owners: list[int],
) -> _Outcome | None:
    """The run's statements (its steps from position ``first``, maybe a BEGIN before them and a
    COMMIT after; ``owners``: the steps' operations, filled as they are sent) through ``wire``'s
    pipeline; ``None``: psycopg's must send them."""
    try:
        results = wire.pipeline(sent)
    except Stale:
        raise _Again() from None  # the caller rolls back
    if results is None:
        return None
    count = len(owners)
    for position, result in enumerate(results):
        if result.status == psycopg.pq.ExecStatus.FATAL_ERROR:
            error = pg.error_from_result(result, encoding=connection.info.encoding)
            at = position - first if first <= position < first + count else count
            return _Outcome(error, at, lambda i: None)
    return _Outcome(None, count, lambda i: wire.first_row(results[i + first]))


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


def _settle(connection: Connection) -> None:
    """In the caller's pipeline, wait for the statements in flight (the caller's, or the ROLLBACK
    of a run that failed): whether a transaction is open after them decides between BEGIN and a
    savepoint. A nested pipeline's entry and exit sync it."""
    if (
        connection.pgconn.pipeline_status
        and connection.info.transaction_status == psycopg.pq.TransactionStatus.ACTIVE
    ):
        with pipeline(connection):
            pass


def _run(
    connection: Connection,
    ops: Sequence[tuple[AuroraDriver, Write]],
    checked: bool,
    share: bool,
    optimistic: bool = False,
) -> None:
    """One run of the transaction on ``connection``: ``_Failed``, ``_Again``, ``_Split``,
    ``_Summed`` or ``_Refused`` when it rolled back."""
    _settle(connection)
    made = Steps(connection, ops, layouts_of(connection, ops), checked, share, optimistic)
    own = connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    begin, commit, roll_back = transaction_sql(connection, "kvstore_transaction")
    pool = ops[0][0].pool
    # The steps of one pipeline, with no BEGIN before them, are one transaction already: the
    # server commits it at the Sync, or rolls all of it back after a step that failed. A BEGIN
    # (and a COMMIT after the steps) is sent when the transaction must outlive the Sync (a
    # checked run) or is a savepoint in the caller's transaction.
    implicit = own and not checked
    first = 0 if implicit else 1
    opening: list[tuple[str | bytes, Sequence[Any], bool]] = (
        [] if implicit else [(begin, (), False)]
    )
    closing = [] if checked or implicit else [(commit, (), False)]
    sent = itertools.chain(opening, ((query, params, True) for query, params in made), closing)
    try:
        outcome = _wired(connection, pool.wire(connection), sent, first, made.owners)
    except _Again:
        _roll_back(connection, roll_back)
        raise
    except InvalidArgument as exc:
        # A value its column cannot hold, found as the steps went out (none was applied): the
        # error of the first such operation in the block, as a run with a step each finds it.
        _roll_back(connection, roll_back)
        raise _first_invalid(connection, ops, checked) or exc from None
    except Exception:
        _roll_back(connection, roll_back)
        raise
    if outcome is None:
        steps = list(made)
        outcome = _through_psycopg(connection, pool, begin, steps, None if checked else commit)
    owners, sharing = made.owners, made.sharing
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
    if (
        made.summed
        and isinstance(failed, pg.DataError)
        and not isinstance(failed, pg.DivisionByZero)
    ):
        raise _Summed() from failed  # maybe an increment the bigint sum could not make
    at = outcome.at
    if at >= len(owners):
        raise failed
    # A step's guard fails it by a division by zero; the server refuses a value by another.
    guarded = isinstance(failed, pg.DivisionByZero)
    refused = not guarded and isinstance(failed, (pg.DataError, pg.IntegrityError))
    if not guarded and not refused:
        raise failed
    if at in sharing:  # which of its operations failed, a run with a step each tells
        raise _Split() from failed
    if refused:
        raise _Refused(owners[at], failed) from failed
    index = owners[at]
    driver, op = ops[index]
    raise _Failed(index, driver.current(connection, key_of(driver.schema, op)))


def _first_invalid(
    connection: Connection, ops: Sequence[tuple[AuroraDriver, Write]], checked: bool
) -> InvalidArgument | None:
    """The ``InvalidArgument`` of the first operation whose value its column cannot hold."""
    try:
        statements(connection, ops, checked, share=False)
    except InvalidArgument as exc:
        return exc
    return None


def run_transaction(owner: AuroraDriver, ops: Sequence[tuple[AuroraDriver, Write]]) -> None:
    """Apply ``ops`` all together or not at all (see the module's docstring); ``Conflict`` with
    ``index`` for the first operation whose guard does not hold."""

    def run(connection: Connection) -> None:
        checked, share, optimistic = False, True, True
        last: _Failed | None = None
        for _attempt in range(MAX_RUNS):
            try:
                _run(connection, ops, checked, share, optimistic)
                return
            except _Again:
                continue
            except _Summed:
                optimistic = False
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
