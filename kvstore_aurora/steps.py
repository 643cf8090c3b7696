"""A transaction's operations as the statements of one run (``kvstore_aurora.transact`` runs
them): a statement each, or one shared by operations of one table.

Each statement is made as the pipeline sends it (``Steps``), so the server runs one while the
client makes the next: the updates' statements, the costliest to make, are made after the puts
before them went out. A value its column cannot hold, found while they are made, is
``InvalidArgument`` with its operation's ``index``.

Operations of one table may share a statement, at the first one's place, because a statement
costs both sides more than a row in it (the server starts every statement's plan anew):

- the unconditional puts: put_many's upsert of a JSON array, in key order (such a put cannot
  fail on a guard);
- the updates whose guards bind no value and whose statements have one shape
  (``updates.shared_update``): their rows in one ``VALUES`` list, in key order, a step that fails
  unless every one wrote. A transaction names each key of a kind once, so no two of them meet one
  row; in key order, concurrent transactions lock their rows in one order.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from psycopg import sql

from kvstore.errors import InvalidArgument
from kvstore.schema import KindSchema
from kvstore.writes import Delete, Put, Update, Write, key_of
from kvstore_aurora.columns import dumps
from kvstore_aurora.connection import Connection
from kvstore_aurora.guarded import Statement, check_sql, delete_sql, put_sql
from kvstore_aurora.layout import Layout, check_rows
from kvstore_aurora.updates import shared_update, update_sql

if TYPE_CHECKING:
    from kvstore_aurora.driver import AuroraDriver

__all__ = ["Layouts", "Steps", "layouts_of", "statements", "step"]


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


def _statement(
    layout: Layout, schema: KindSchema, op: Write, checked: bool, optimistic: bool = False
) -> Statement:
    if isinstance(op, Put):
        found = put_sql(layout, schema, op, step=True)
        # None: its guard can hold on nothing.
        return found or Statement(("never",), [], lambda: sql.SQL("SELECT 1 / 0"))
    if isinstance(op, Update):
        mode = "checked" if checked else "step"
        return update_sql(layout, schema, op, mode, bounded=not checked, optimistic=optimistic)
    if isinstance(op, Delete):
        return delete_sql(layout, schema, op, step=True)
    return check_sql(layout, schema, op)


Layouts = dict[int, Layout]
"""The layout of each driver's table, by ``id(driver)``: read before a run's pipeline opens
(nothing else can be sent on the connection while it is open)."""


def layouts_of(connection: Connection, ops: Sequence[tuple[AuroraDriver, Write]]) -> Layouts:
    """The layouts of the tables ``ops`` write (a missing table fails here, before anything is
    sent)."""
    found: Layouts = {}
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
    found: Layouts,
    ops: Sequence[tuple[AuroraDriver, Write]],
    made: dict[int, Statement],
    optimistic: bool,
) -> dict[int, list[int]]:
    """The updates of one table that ``shared_update`` puts in one statement (their statements
    shareable and of one shape), by the index of the first; each update's statement goes in
    ``made``, by index (``optimistic``: increments may be summed in bigint)."""
    updates: dict[tuple[int, Any], list[int]] = {}  # (id(driver), shape) -> its updates
    for index, (driver, op) in enumerate(ops):
        if isinstance(op, Update):
            try:
                made[index] = statement = update_sql(
                    found[id(driver)], driver.schema, op, "step", optimistic=optimistic
                )
            except InvalidArgument as exc:
                exc.index = index
                raise
            if statement.shareable:
                updates.setdefault((id(driver), statement.shape), []).append(index)
    return {group[0]: group for group in updates.values() if len(group) > 1}


class Steps:
    """A run's steps, made one at a time as its pipeline sends them (the server runs each while
    the next is made), and for each step made, the index of the operation it stands for (of a
    shared step, its first one's) and whether it is shared (see the module's docstring).

    Operations share a step when ``share`` and not ``checked`` (a checked run's updates each
    return their merged record); ``optimistic``: updates' increments may be summed in bigint. A
    value its column cannot hold is ``InvalidArgument`` with the operation's ``index``."""

    def __init__(
        self,
        connection: Connection,
        ops: Sequence[tuple[AuroraDriver, Write]],
        found: Layouts,
        checked: bool,
        share: bool,
        optimistic: bool = False,
    ) -> None:
        self.connection, self.ops, self.layouts = connection, ops, found
        self.checked, self.share, self.optimistic = checked, share, optimistic
        self.owners: list[int] = []
        self.sharing: set[int] = set()
        """The positions of the shared steps."""
        self.summed = False
        """Whether a step made so far sums increments in bigint (``Statement.summed``): the run
        may then fail where the full form of the number rules would not."""

    def __iter__(self) -> Iterator[tuple[bytes, list[Any]]]:
        connection, ops, found, checked = self.connection, self.ops, self.layouts, self.checked
        optimistic = self.optimistic
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
                        updates = _update_groups(found, ops, made, optimistic)
                        skipped.update(i for members in updates.values() for i in members[1:])
                        if index in skipped:
                            continue
                    group = updates.get(index)
                if group is None:
                    statement = made.get(index)
                    if statement is None and isinstance(op, Update):
                        statement = _statement(layout, driver.schema, op, checked, optimistic)
                    if statement is not None and statement.summed:
                        self.summed = True
                    found_step = step(driver, layout, connection, op, checked, statement)
                elif isinstance(op, Put):
                    found_step = _upsert_all(driver, layout, connection, ops, group)
                else:
                    # One shape, so the first's statement answers for every one's.
                    self.summed = self.summed or made[group[0]].summed
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
    """The run's statements, all made at once (see ``Steps``), for each the index of the
    operation it stands for, and the positions of the shared steps."""
    made = Steps(connection, ops, layouts_of(connection, ops), checked, share)
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
    members = [made[i] for i in ordered]
    # One shape, so the first's answer is every one's.
    statement = shared_update(layout, driver.schema, first, members, members[0].summed)
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
