"""``transaction()`` on PostgreSQL: one transaction in one round trip.

The operations go out in one pipeline: one statement per operation made to fail (a division by
zero) when its guard does not hold (``kvstore_aurora.guarded``), then one Sync. The server runs
the statements before a Sync as one transaction, which it commits at the Sync, or rolls back
whole when a statement failed; BEGIN and COMMIT go around them only when the transaction must
stay open past the Sync (a checked run, below) or is a savepoint in the caller's transaction.
The pipeline is libpq's, driven by ``Wire.pipeline`` (psycopg's costs the client more than the
statements do), or psycopg's, with BEGIN and COMMIT, when the connection is in its caller's
pipeline already.

Each statement is made as the pipeline sends it (``_Steps``), so the server runs one while the
client makes the next: the updates' statements, the costliest to make, are made after the puts
before them went out. A value its column cannot hold, found while they are made, ends the
pipeline with a statement that fails (nothing is applied) and is the error of the first such
operation in the block.

Operations of one table may share a statement, at the first one's place, because a statement
costs both sides more than a row in it (the server starts every statement's plan anew):

- the unconditional puts: put_many's upsert of a JSON array, in key order (such a put cannot
  fail on a guard);
- the updates whose guards bind no value and whose statements have one shape
  (``updates.shared_update``): their rows in one ``VALUES`` list, in key order, a step that fails
  unless every one wrote. A transaction names each key of a kind once, so no two of them meet one
  row; in key order, concurrent transactions lock their rows in one order.

The server runs the statements in order; the first that fails aborts the transaction, and its
position is the first statement whose result is an error. The record that explains the failure
is read right after the ROLLBACK (a second round trip, on failure only). A value the server
refuses (a column's type, length or constraint) is the error of its operation, with its
``index``. When a shared statement fails, the transaction runs again with a statement an
operation, to find which one failed.

An update whose only fault was the size bound (``updates.update_sql``), or a step refused by a
record that changed in between, makes the transaction run again; an update then goes in *checked*
mode, returning its merged record, and the COMMIT waits for core's exact size check. A deadlock
with another transaction (nothing was applied) is tried again too.
"""

from __future__ import annotations

import contextlib
import itertools
import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import errors as pg
from psycopg import sql

from kvstore.backend import Conflict, Record
from kvstore.errors import InvalidArgument, StoreError
from kvstore.schema import KindSchema
from kvstore.values import check_item_size
from kvstore.writes import Delete, Put, Update, Write, apply, key_of
from kvstore_aurora.batch import transaction_sql
from kvstore_aurora.columns import dumps
from kvstore_aurora.connection import Connection, Pool, pipeline
from kvstore_aurora.guarded import Statement, check_sql, delete_sql, put_sql
from kvstore_aurora.layout import Layout, check_rows, decode
from kvstore_aurora.updates import shared_update, update_sql
from kvstore_aurora.wire import Stale, Wire

if TYPE_CHECKING:
    from kvstore_aurora.driver import AuroraDriver

__all__ = ["MAX_RUNS", "run_transaction", "statements", "step"]

MAX_RUNS = 4
"""Runs of one transaction at most (after a shared statement failed, a deadlock, a size bound, a
record changed between)."""


class _Failed(Exception):
    """A run's step ``index`` refused (``current``: the record read after the rollback)."""

    def __init__(self, index: int, current: Record | None) -> None:
        super().__init__(index)
        self.index = index
        self.current = current


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


def step(
    driver: AuroraDriver,
    layout: Layout,
    connection: Connection,
    op: Write,
    checked: bool,
    statement: Statement | None = None,
) -> tuple[bytes, list[Any]]:
    """``op`` as a statement of a transaction on ``driver``'s table (of ``layout``), which fails
    when its guard does not hold (``checked``: an update also returns the merged row;
    ``statement``: the one made for it already)."""
    if statement is None:
        if isinstance(op, Put):
            check_rows(layout, (op.record,))
            if op.guard.unconditional:  # it always writes: the plain upsert, nothing to check
                return driver.upsert(connection, op.record, layout)
        statement = _statement(layout, driver.schema, op, checked)
    query = driver._statement(layout, statement.shape, connection, statement.build)
    return query, statement.params


def _statement(layout: Layout, schema: KindSchema, op: Write, checked: bool) -> Statement:
    if isinstance(op, Put):
        found = put_sql(layout, schema, op, step=True)
        # None: its guard can hold on nothing.
        return found or Statement(("never",), [], lambda: sql.SQL("SELECT 1 / 0"))
    if isinstance(op, Update):
        mode = "checked" if checked else "step"
        return update_sql(layout, schema, op, mode, bounded=not checked)
    if isinstance(op, Delete):
        return delete_sql(layout, schema, op, step=True)
    return check_sql(layout, schema, op)


_Layouts = dict[int, Layout]
"""The layout of each driver's table, by ``id(driver)``: read before a run's pipeline opens
(nothing else can be sent on the connection while it is open)."""


def _layouts(connection: Connection, ops: Sequence[tuple[AuroraDriver, Write]]) -> _Layouts:
    """The layouts of the tables ``ops`` write (a missing table fails here, before anything is
    sent)."""
    found: _Layouts = {}
    for driver, _op in ops:
        if id(driver) not in found:
            found[id(driver)] = driver._layout(connection)
    return found


def _put_groups(ops: Sequence[tuple[AuroraDriver, Write]]) -> dict[int, list[int]]:
    """The unconditional puts to one table, by the index of the first (two or more a table)."""
    puts: dict[int, list[int]] = {}  # id(driver) -> the indexes of its unconditional puts
    for index, (driver, op) in enumerate(ops):
        if isinstance(op, Put) and op.guard.unconditional:
            puts.setdefault(id(driver), []).append(index)
    return {group[0]: group for group in puts.values() if len(group) > 1}


def _update_groups(
    found: _Layouts, ops: Sequence[tuple[AuroraDriver, Write]], made: dict[int, Statement]
) -> dict[int, list[int]]:
    """The updates of one table that ``shared_update`` puts in one statement (their statements
    shareable and of one shape), by the index of the first; each update's statement goes in
    ``made``, by index."""
    updates: dict[tuple[int, Any], list[int]] = {}  # (id(driver), shape) -> its updates
    for index, (driver, op) in enumerate(ops):
        if isinstance(op, Update):
            try:
                made[index] = statement = update_sql(found[id(driver)], driver.schema, op, "step")
            except InvalidArgument as exc:
                exc.index = index
                raise
            if statement.shareable:
                updates.setdefault((id(driver), statement.shape), []).append(index)
    return {group[0]: group for group in updates.values() if len(group) > 1}


class _Steps:
    """A run's steps, made one at a time as its pipeline sends them (the server runs each while
    the next is made), and for each step made, the index of the operation it stands for (of a
    shared step, its first one's) and whether it is shared (see the module's docstring).

    Operations share a step when ``share`` and not ``checked`` (a checked run's updates each
    return their merged record). A value its column cannot hold is ``InvalidArgument`` with
    the operation's ``index``."""

    def __init__(
        self,
        connection: Connection,
        ops: Sequence[tuple[AuroraDriver, Write]],
        found: _Layouts,
        checked: bool,
        share: bool,
    ) -> None:
        self.connection, self.ops, self.layouts = connection, ops, found
        self.checked, self.share = checked, share
        self.owners: list[int] = []
        self.sharing: set[int] = set()
        """The positions of the shared steps."""

    def __iter__(self) -> Iterator[tuple[bytes, list[Any]]]:
        connection, ops, found, checked = self.connection, self.ops, self.layouts, self.checked
        puts = _put_groups(ops) if self.share else {}
        updates: dict[int, list[int]] | None = None if self.share and not checked else {}
        made: dict[int, Statement] = {}
        skipped = {i for members in puts.values() for i in members[1:]}
        for index, (driver, op) in enumerate(ops):
            if index in skipped:
                continue
            layout = found[id(driver)]
            try:
                group = puts.get(index)
                if group is None and isinstance(op, Update):
                    if updates is None:  # made once the puts before them are on their way
                        updates = _update_groups(found, ops, made)
                        skipped.update(i for members in updates.values() for i in members[1:])
                        if index in skipped:
                            continue
                    group = updates.get(index)
                if group is None:
                    found_step = step(driver, layout, connection, op, checked, made.get(index))
                elif isinstance(op, Put):
                    found_step = _upsert_all(driver, layout, connection, ops, group)
                else:
                    found_step = _shared_update(driver, layout, connection, ops, group, made)
            except InvalidArgument as exc:
                if exc.index is None:
                    exc.index = index
                raise
            if group is not None:
                self.sharing.add(len(self.owners))
            self.owners.append(index)
            yield found_step


def statements(
    connection: Connection,
    ops: Sequence[tuple[AuroraDriver, Write]],
    checked: bool,
    share: bool = True,
) -> tuple[list[tuple[bytes, list[Any]]], list[int], set[int]]:
    """The run's statements, all made at once (see ``_Steps``), for each the index of the
    operation it stands for, and the positions of the shared steps."""
    made = _Steps(connection, ops, _layouts(connection, ops), checked, share)
    found = list(made)
    return found, made.owners, made.sharing


def _shared_update(
    driver: AuroraDriver,
    layout: Layout,
    connection: Connection,
    ops: Sequence[tuple[AuroraDriver, Write]],
    group: list[int],
    made: dict[int, Statement],
) -> tuple[bytes, list[Any]]:
    """The one step of the updates of ``group`` (see ``_update_groups``; ``made``: their
    statements), its rows in key order: concurrent transactions then lock them in one order."""
    first = ops[group[0]][1]
    assert isinstance(first, Update)
    ordered = sorted(group, key=lambda index: key_of(driver.schema, ops[index][1]))
    statement = shared_update(layout, driver.schema, first, [made[i] for i in ordered])
    query = driver._statement(layout, statement.shape, connection, statement.build)
    return query, statement.params


def _upsert_all(
    driver: AuroraDriver,
    layout: Layout,
    connection: Connection,
    ops: Sequence[tuple[AuroraDriver, Write]],
    group: list[int],
) -> tuple[bytes, list[Any]]:
    """One upsert of the records of the unconditional puts of ``group`` (to ``driver``'s
    table), in key order: concurrent transactions then lock their rows in one order."""
    records = []
    for index in group:
        op = ops[index][1]
        assert isinstance(op, Put)
        try:
            check_rows(layout, (op.record,))
        except InvalidArgument as exc:
            exc.index = index
            raise
        records.append(op.record)
    records.sort(key=operator.itemgetter(*driver.schema.id_fields))
    return driver.insert_sql(connection, many=True, layout=layout), [dumps(records)]


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


def _run(
    connection: Connection, ops: Sequence[tuple[AuroraDriver, Write]], checked: bool, share: bool
) -> None:
    """One run of the transaction on ``connection``: ``_Failed``, ``_Again``, ``_Split`` or
    ``_Refused`` when it rolled back."""
    made = _Steps(connection, ops, _layouts(connection, ops), checked, share)
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
