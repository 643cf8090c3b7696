"""The ``sqlite`` driver: one table per kind, key columns plus the record as JSON text.

One connection per database file per process (``check_same_thread=False``, WAL mode), guarded by a
lock, so every store of the process shares it and each call is atomic between threads; other
processes are kept out by sqlite's own locking (``BEGIN IMMEDIATE`` for read-modify-write calls).
SQL narrows a plan's rows (``kvstore.backends.sqlite.sql``); each row is then checked with
``Plan.selects``, and writes are evaluated with ``kvstore.writes.apply`` inside a transaction.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, NamedTuple, TypeVar

from kvstore.backend import (
    Conflict,
    Driver,
    Index,
    Key,
    KindSchema,
    Plan,
    Record,
    missing_table,
    shared,
)
from kvstore.backends.sqlite.errors import is_busy, map_exceptions
from kvstore.backends.sqlite.settings import sqlite_path
from kvstore.backends.sqlite.sql import (
    after_sql,
    index_sql,
    order_sql,
    plan_clauses,
    quote,
)
from kvstore.errors import InvalidArgument, changed_index
from kvstore.plan import segment_of
from kvstore.writes import Check, Put, Update, Write, apply, key_of

__all__ = ["SqliteDriver", "SqliteNative", "open_driver"]

T = TypeVar("T")

PAGE_SIZE = 500
"""Rows read per lock hold while streaming, so a long iteration never blocks other calls."""
BUSY_TIMEOUT = 30.0
"""Seconds a call waits for another process's write lock before giving up."""


class _Connection(NamedTuple):
    connection: sqlite3.Connection
    lock: threading.RLock


def _open(path: str) -> _Connection:
    # isolation_level=None: autocommit, so every transaction below is an explicit BEGIN.
    connection = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
    )
    if path != ":memory:":
        # Switching a new file to WAL takes a lock that the busy timeout does not wait for:
        # several processes opening one new file at once wait here in turn.
        deadline = time.monotonic() + BUSY_TIMEOUT
        while True:
            try:
                connection.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                if not is_busy(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        connection.execute("PRAGMA synchronous=NORMAL")
    # A resumable scan's segment of a row, from its key columns (the last argument: how many).
    connection.create_function(
        "kvstore_segment", -1, lambda *args: segment_of(args[:-1], args[-1]), deterministic=True
    )
    return _Connection(connection, threading.RLock())


class SqliteNative(NamedTuple):
    """What ``store.native()`` returns on sqlite: the connection, the kind's table and its lock."""

    connection: sqlite3.Connection
    table: str
    json_column: str
    path: str
    lock: threading.RLock


def _dumps(record: Record) -> str:
    return json.dumps(record, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _json_column(schema: KindSchema) -> str:
    name = "doc"
    while name in schema.id_fields:  # an id field may be called "doc"
        name += "_"
    return name


class SqliteDriver(Driver):
    """A kind's records in the table named after it, in the sqlite file at ``path``.

    A resumable scan's segments are ``segment_of`` the key columns (the ``kvstore_segment`` SQL
    function), its stable order the key order (the primary key's index).
    """

    scan_segments = 1000

    def __init__(self, schema: KindSchema, path: str) -> None:
        super().__init__(schema)
        self.path = path
        self._key = path if path == ":memory:" else os.path.abspath(path)
        self._table = quote(schema.kind)
        self._doc = quote(_json_column(schema))
        self._keys = [quote(field) for field in schema.id_fields]
        self._key_where = " AND ".join(f"{key} = ?" for key in self._keys)
        marks = ",".join("?" * (len(self._keys) + 1))
        columns = f"{', '.join(self._keys)}, {self._doc}"
        self._insert = f"INSERT INTO {self._table} ({columns}) VALUES ({marks})"
        # An upsert keeps the row's rowid, so a record rewritten during a scan is seen once.
        self._upsert = (
            f"{self._insert} ON CONFLICT ({', '.join(self._keys)}) "
            f"DO UPDATE SET {self._doc} = excluded.{self._doc}"
        )

    @property
    def transaction_scope(self) -> tuple[str, str]:
        return ("sqlite", self._key)

    # -- plumbing -------------------------------------------------------------------------------

    def _connect(self, create: bool = False) -> _Connection:
        """The process's connection to the file; only ``ensure`` (``create``) makes a new file,
        so a read of a database that does not exist creates none."""

        def make() -> _Connection:
            if not create and self._key != ":memory:" and not os.path.exists(self._key):
                raise missing_table(
                    self.schema.kind,
                    f"the sqlite database {self.path!r} (no such file)",
                )
            return _open(self._key)

        with map_exceptions(path=self._key):
            return shared("sqlite", self._key, make)

    def _errors(self) -> AbstractContextManager[None]:
        return map_exceptions(kind=self.schema.kind, path=self.path)

    def _decode(self, text: str) -> Record:
        record: Record = json.loads(text)
        return record

    def _locked(self, body: Callable[[sqlite3.Connection], T], create: bool = False) -> T:
        connection, lock = self._connect(create)
        with lock, self._errors():
            return body(connection)

    def _transaction(self, body: Callable[[sqlite3.Connection], T], create: bool = False) -> T:
        """``body`` in one write transaction: ``BEGIN IMMEDIATE`` takes the write lock at once, so
        a read-modify-write cannot interleave with another process's."""

        def run(connection: sqlite3.Connection) -> T:
            connection.execute("BEGIN IMMEDIATE")
            try:
                result = body(connection)
            except BaseException:
                if connection.in_transaction:  # sqlite may have rolled back already
                    connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
            return result

        return self._locked(run, create)

    def _fetch(self, sql: str, params: Sequence[Any]) -> list[Any]:
        return self._locked(lambda connection: connection.execute(sql, params).fetchall())

    def _get(self, connection: sqlite3.Connection, key: Key) -> Record | None:
        row = connection.execute(
            f"SELECT {self._doc} FROM {self._table} WHERE {self._key_where}", key
        ).fetchone()
        return None if row is None else self._decode(row[0])

    def _row(self, record: Record) -> list[Any]:
        return [*self.schema.key_of(record), _dumps(record)]

    # -- reads ----------------------------------------------------------------------------------

    def ensure(self) -> None:
        columns = ", ".join(
            f"{key} {'INTEGER' if kind is int else 'TEXT'} NOT NULL"
            for key, kind in zip(self._keys, self.schema.key_types, strict=True)
        )
        statements = [
            f"CREATE TABLE IF NOT EXISTS {self._table} "
            f"({columns}, {self._doc} TEXT NOT NULL, PRIMARY KEY ({', '.join(self._keys)}))"
        ]
        statements += [
            index_sql(self.schema, self._table, self._doc, index) for index in self.schema.indexes
        ]

        def run(connection: sqlite3.Connection) -> None:
            for index, statement in zip(self.schema.indexes, statements[1:], strict=True):
                self._check_index(connection, index, statement)
            for statement in statements:
                connection.execute(statement)

        self._transaction(run, create=True)

    def _check_index(self, connection: sqlite3.Connection, index: Index, statement: str) -> None:
        """``ConfigError`` when an index of ``index``'s name exists on other fields (sqlite keeps
        each index's ``CREATE`` statement, as written, less ``IF NOT EXISTS``)."""
        name = f"{self.schema.kind}__{index.name}"
        row = connection.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (name,)
        ).fetchone()
        if row is not None and row[0] != statement.replace(" IF NOT EXISTS", "", 1):
            raise changed_index(self.schema.kind, index.name, None, index.fields, self.path)

    def _pages(self, plan: Plan) -> Iterator[list[tuple[int, Record]]]:
        """``(rowid, record)`` of the rows the plan selects, a page per lock hold: by rowid for
        an unordered read, by the plan's order (from its start) for an ordered one."""
        ordered = plan.descending is not None or plan.stable
        exprs, order = order_sql(plan, self._doc) if ordered else ([], "rowid")
        segment = ""
        if plan.segments > 1:
            segment = f" AND kvstore_segment({', '.join(self._keys)}, ?) = ?"
        for clause in plan_clauses(plan, self._doc):
            last: tuple[Any, ...] | None = None
            if ordered:
                last = plan.after if plan.stable else plan.start
            size = min(plan.limit, PAGE_SIZE) if plan.limit and clause.exact else PAGE_SIZE
            selected = ", ".join(exprs) or "rowid"
            while True:
                sql = (
                    f"SELECT rowid, {self._doc}, {selected} FROM {self._table} "
                    f"WHERE ({clause.sql}){segment}"
                )
                params = list(clause.params)
                if segment:
                    params += [plan.segments, plan.segment]
                if last is not None:
                    sql += " AND " + (after_sql(exprs, plan.descending) if ordered else "rowid > ?")
                    params += list(last)
                sql += f" ORDER BY {order} LIMIT {size}"
                rows = self._fetch(sql, params)
                page = []
                for rowid, text, *_position in rows:
                    record = self._decode(text)
                    if plan.selects(record):
                        page.append((rowid, record))
                if page:
                    yield page
                if len(rows) < size:
                    break
                last = tuple(rows[-1][2:]) if ordered else (rows[-1][0],)

    def read(self, plan: Plan) -> Iterator[Record]:
        for page in self._pages(plan):
            for _rowid, record in page:
                yield record

    def count(self, plan: Plan) -> int:
        clauses = plan_clauses(plan, self._doc)
        if all(clause.exact for clause in clauses):

            def run(connection: sqlite3.Connection) -> int:
                return sum(
                    int(
                        connection.execute(
                            f"SELECT count(*) FROM {self._table} WHERE {clause.sql}", clause.params
                        ).fetchone()[0]
                    )
                    for clause in clauses
                )

            return self._locked(run)
        return sum(len(page) for page in self._pages(plan))

    def delete(self, plan: Plan) -> int:
        def run(connection: sqlite3.Connection) -> int:
            rowids = []
            for clause in plan_clauses(plan, self._doc):
                rows = connection.execute(
                    f"SELECT rowid, {self._doc} FROM {self._table} WHERE {clause.sql}",
                    clause.params,
                ).fetchall()
                rowids += [rowid for rowid, text in rows if plan.selects(self._decode(text))]
            for start in range(0, len(rowids), PAGE_SIZE):
                chunk = rowids[start : start + PAGE_SIZE]
                marks = ",".join("?" * len(chunk))
                connection.execute(f"DELETE FROM {self._table} WHERE rowid IN ({marks})", chunk)
            return len(rowids)

        return self._transaction(run)

    # -- writes ---------------------------------------------------------------------------------

    def _apply(self, connection: sqlite3.Connection, op: Write) -> Record | None:
        key = key_of(self.schema, op)
        current = self._get(connection, key)
        after = apply(self.schema, op, current)
        if isinstance(op, Check):
            return None
        if after is None:
            if current is not None:
                connection.execute(f"DELETE FROM {self._table} WHERE {self._key_where}", key)
        elif current is None:
            connection.execute(self._insert, self._row(after))
        else:
            connection.execute(
                f"UPDATE {self._table} SET {self._doc} = ? WHERE {self._key_where}",
                [_dumps(after), *key],
            )
        return after if isinstance(op, Update) else None

    def write(self, op: Write) -> Record | None:
        if isinstance(op, Put) and op.guard.unconditional:
            row = self._row(op.record)
            self._locked(lambda connection: connection.execute(self._upsert, row))
            return None
        return self._transaction(lambda connection: self._apply(connection, op))

    def put_many(self, records: Sequence[Record]) -> None:
        rows = [self._row(record) for record in records]
        self._transaction(lambda connection: connection.executemany(self._upsert, rows))

    def transact(self, ops: Sequence[tuple[Driver, Write]]) -> None:
        def run(connection: sqlite3.Connection) -> None:
            for index, (driver, op) in enumerate(ops):
                assert isinstance(driver, SqliteDriver)
                try:
                    with driver._errors():  # a missing table is its kind's
                        driver._apply(connection, op)
                except Conflict as conflict:
                    raise Conflict(conflict.current, index=index) from None
                except InvalidArgument:
                    current = driver._get(connection, key_of(driver.schema, op))
                    raise Conflict(current, index=index) from None  # core says which error

        self._transaction(run)

    def native(self) -> SqliteNative:
        """The shared connection, the kind's table name, its JSON column, the file and the lock."""
        connection, lock = self._connect()
        return SqliteNative(
            connection, self.schema.kind, _json_column(self.schema), self.path, lock
        )


def open_driver(schema: KindSchema, *, path: str | os.PathLike[str] | None = None) -> Driver:
    """A sqlite driver for ``schema``'s kind; ``path`` overrides ``KVSTORE_SQLITE_PATH``."""
    return SqliteDriver(schema, sqlite_path(path=path))
