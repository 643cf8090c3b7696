"""The ``sqlite`` backend's driver: one table per kind, key columns plus the record as JSON text.

One connection per database file per process (``check_same_thread=False``, WAL mode), guarded by a
lock, so every store of the process shares it and each call is atomic between threads; other
processes are kept out by sqlite's own locking (``BEGIN IMMEDIATE`` for read-modify-write calls).
Equality is decided in Python by ``kvstore.records.matches``: SQL only narrows the rows (by key
columns, and by string/bool/absent fields through ``json_type``/``json_extract``), because sqlite's
JSON functions read ``true`` as ``1`` and its text-to-float parsing is not the contract's equality.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, NamedTuple

from kvstore.backend import Driver, Filters, Key, KindSchema, Record
from kvstore.config import sqlite_path
from kvstore.errors import AlreadyExists, NotFound
from kvstore.records import matches, matching
from kvstore.sqlite_errors import map_exceptions
from kvstore.values import value_identity

__all__ = ["SqliteDriver", "SqliteNative", "connection_for", "open_driver"]

PAGE_SIZE = 500
"""Rows read per lock hold while streaming, so a long iteration never blocks other calls."""
BUSY_TIMEOUT = 30.0
"""Seconds a call waits for another process's write lock before giving up."""


class _Connection(NamedTuple):
    connection: sqlite3.Connection
    lock: threading.RLock


_registry_lock = threading.Lock()
_connections: dict[str, _Connection] = {}
_pid = os.getpid()


def _open(path: str) -> sqlite3.Connection:
    # isolation_level=None: autocommit, so every transaction below is an explicit BEGIN.
    connection = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
    )
    if path != ":memory:":
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
    return connection


def connection_for(path: str) -> tuple[sqlite3.Connection, threading.RLock]:
    """The process's connection to the database at ``path`` and the lock that guards it."""
    global _pid
    key = path if path == ":memory:" else os.path.abspath(path)
    with _registry_lock:
        if _pid != os.getpid():
            # A forked child must not share its parent's connections.
            _connections.clear()
            _pid = os.getpid()
        entry = _connections.get(key)
        if entry is None:
            with map_exceptions(path=key):
                entry = _Connection(_open(key), threading.RLock())
            _connections[key] = entry
        return entry.connection, entry.lock


class SqliteNative(NamedTuple):
    """What ``store.native()`` returns on sqlite: the connection, the kind's table and its lock."""

    connection: sqlite3.Connection
    table: str
    json_column: str
    path: str
    lock: threading.RLock


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _dumps(record: Record) -> str:
    return json.dumps(record, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _json_column(schema: KindSchema) -> str:
    name = "doc"
    while name in schema.id_fields:  # an id field may be called "doc"
        name += "_"
    return name


class SqliteDriver(Driver):
    """A kind's records in the table named after it, in the sqlite file at ``path``."""

    def __init__(self, schema: KindSchema, path: str) -> None:
        super().__init__(schema)
        self.path = path
        self._table = _quote(schema.kind)
        self._doc = _quote(_json_column(schema))
        self._keys = [_quote(field) for field in schema.id_fields]

    # -- plumbing -------------------------------------------------------------------------------

    def _connect(self) -> tuple[sqlite3.Connection, threading.RLock]:
        return connection_for(self.path)

    def _errors(self) -> AbstractContextManager[None]:
        return map_exceptions(kind=self.schema.kind, path=self.path)

    def _where(self, filters: Filters) -> tuple[str, list[Any], bool]:
        """SQL narrowing ``filters`` (a superset of the matches), its parameters, and whether it
        is exact (then SQL alone may count and delete)."""
        clauses: list[str] = []
        params: list[Any] = []
        exact = True
        for name, value in filters.items():
            if name in self.schema.id_fields:
                clauses.append(f"{_quote(name)} = ?")
                params.append(value)
                continue
            path = f"$.{name}"  # field names are [A-Za-z_][A-Za-z0-9_]*: safe in a JSON path
            if value is None:
                clauses.append(f"json_type({self._doc}, ?) IS NULL")
                params.append(path)
            elif isinstance(value, bool):
                clauses.append(f"json_type({self._doc}, ?) = ?")
                params += [path, "true" if value else "false"]
            elif isinstance(value, str):
                clauses.append(
                    f"json_type({self._doc}, ?) = 'text' AND json_extract({self._doc}, ?) = ?"
                )
                params += [path, path, value]
            else:
                exact = False
        return (" AND ".join(clauses) or "1"), params, exact

    def _decode(self, text: str) -> Record:
        record: Record = json.loads(text)
        return record

    def _rows(self, where: str, params: Sequence[Any]) -> Iterator[tuple[int, Record]]:
        """(rowid, record) of every row satisfying ``where``, a page per lock hold."""
        connection, lock = self._connect()
        last = None
        while True:
            with lock, self._errors():
                sql = f"SELECT rowid, {self._doc} FROM {self._table} WHERE ({where})"
                args = list(params)
                if last is not None:
                    sql += " AND rowid > ?"
                    args.append(last)
                page = connection.execute(
                    sql + f" ORDER BY rowid LIMIT {PAGE_SIZE}", args
                ).fetchall()
            if not page:
                return
            last, full = page[-1][0], len(page) == PAGE_SIZE
            for rowid, text in page:
                yield rowid, self._decode(text)
            del page  # let the page go before the next one is read: one page in memory at a time
            if not full:
                return

    def _matching_rowids(self, connection: sqlite3.Connection, filters: Filters) -> list[int]:
        where, params, exact = self._where(filters)
        sql = f"SELECT rowid, {self._doc} FROM {self._table} WHERE {where}"
        rows = connection.execute(sql, params).fetchall()
        if exact:
            return [rowid for rowid, _ in rows]
        return [rowid for rowid, text in rows if matches(self._decode(text), filters)]

    def _delete_rowids(self, connection: sqlite3.Connection, rowids: Sequence[int]) -> None:
        for start in range(0, len(rowids), PAGE_SIZE):
            chunk = rowids[start : start + PAGE_SIZE]
            marks = ",".join("?" * len(chunk))
            connection.execute(f"DELETE FROM {self._table} WHERE rowid IN ({marks})", chunk)

    def _row(self, record: Record) -> list[Any]:
        return [*self.schema.key_of(record), _dumps(record)]

    def _transaction(self, connection: sqlite3.Connection, body: Callable[[], Any]) -> Any:
        # BEGIN IMMEDIATE takes the write lock at once, so a read-modify-write cannot interleave
        # with another process's.
        connection.execute("BEGIN IMMEDIATE")
        try:
            result = body()
        except BaseException:
            if connection.in_transaction:  # sqlite may have rolled back already
                connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        return result

    # -- the Driver API -------------------------------------------------------------------------

    def ensure(self) -> None:
        columns = ", ".join(
            f"{key} {'INTEGER' if kind is int else 'TEXT'} NOT NULL"
            for key, kind in zip(self._keys, self.schema.key_types, strict=True)
        )
        sql = (
            f"CREATE TABLE IF NOT EXISTS {self._table} "
            f"({columns}, {self._doc} TEXT NOT NULL, PRIMARY KEY ({', '.join(self._keys)}))"
        )
        connection, lock = self._connect()
        with lock, self._errors():
            connection.execute(sql)

    def select(self, filters: Filters, limit: int | None = None) -> Iterator[Record]:
        where, params, _exact = self._where(filters)
        yield from matching((record for _, record in self._rows(where, params)), filters, limit)

    def count(self, filters: Filters) -> int:
        connection, lock = self._connect()
        where, params, exact = self._where(filters)
        if exact:
            with lock, self._errors():
                row = connection.execute(
                    f"SELECT COUNT(*) FROM {self._table} WHERE {where}", params
                ).fetchone()
            return int(row[0])
        return sum(1 for _ in self.select(filters))

    def _in_clauses(self, field: str, values: Sequence[Any]) -> Iterator[tuple[str, list[Any]]]:
        """SQL narrowing to ``field IN values``: by key column a chunk at a time (sqlite caps the
        number of parameters), else every row."""
        if field not in self.schema.id_fields:
            yield "1", []
            return
        for start in range(0, len(values), PAGE_SIZE):
            chunk = list(values[start : start + PAGE_SIZE])
            yield f"{_quote(field)} IN ({','.join('?' * len(chunk))})", chunk

    def _in_matcher(self, field: str, values: Sequence[Any]) -> Callable[[Record], bool]:
        """Whether a record's ``field`` equals one of ``values`` (None: absent), by typed identity."""
        wanted = {value_identity(value) for value in values if value is not None}
        absent = any(value is None for value in values)

        def hit(record: Record) -> bool:
            if field not in record:
                return absent
            return value_identity(record[field]) in wanted

        return hit

    def find_in(self, field: str, values: Sequence[Any]) -> Iterator[Record]:
        hit = self._in_matcher(field, values)
        return iter(
            [
                record
                for where, params in self._in_clauses(field, values)
                for _, record in self._rows(where, params)
                if hit(record)
            ]
        )

    def put(self, record: Record) -> None:
        self.put_many([record])

    def create(self, record: Record) -> None:
        connection, lock = self._connect()
        marks = ",".join("?" * (len(self._keys) + 1))
        sql = f"INSERT INTO {self._table} ({', '.join(self._keys)}, {self._doc}) VALUES ({marks})"
        with lock:
            try:
                with self._errors():
                    connection.execute(sql, self._row(record))
            except AlreadyExists:
                key = self.schema.key_of(record)
                existing = self._get(connection, key)
                raise AlreadyExists(
                    f"a {self.schema.kind} record with key {key!r} exists", existing=existing
                ) from None

    def _key_where(self) -> str:
        return " AND ".join(f"{key} = ?" for key in self._keys)

    def _get(self, connection: sqlite3.Connection, key: Key) -> Record | None:
        with self._errors():
            row = connection.execute(
                f"SELECT {self._doc} FROM {self._table} WHERE {self._key_where()}", key
            ).fetchone()
        return None if row is None else self._decode(row[0])

    def update(
        self, key: Key, sets: Record, removes: Sequence[str], check: Callable[[Record], None]
    ) -> Record:
        connection, lock = self._connect()

        def body() -> Record:
            current = self._get(connection, key)
            if current is None:
                raise NotFound(f"no {self.schema.kind} record has key {key!r}")
            current.update(sets)
            for name in removes:
                current.pop(name, None)
            check(current)
            connection.execute(
                f"UPDATE {self._table} SET {self._doc} = ? WHERE {self._key_where()}",
                [_dumps(current), *key],
            )
            return current

        with lock, self._errors():
            result: Record = self._transaction(connection, body)
        return result

    def remove(self, filters: Filters) -> int:
        connection, lock = self._connect()

        def body() -> int:
            rowids = self._matching_rowids(connection, filters)
            self._delete_rowids(connection, rowids)
            return len(rowids)

        with lock, self._errors():
            removed: int = self._transaction(connection, body)
        return removed

    def remove_in(self, field: str, values: Sequence[Any]) -> int:
        connection, lock = self._connect()
        hit = self._in_matcher(field, values)

        def body() -> int:
            rowids = []
            for where, params in self._in_clauses(field, values):
                rows = connection.execute(
                    f"SELECT rowid, {self._doc} FROM {self._table} WHERE {where}", params
                ).fetchall()
                rowids += [rowid for rowid, text in rows if hit(self._decode(text))]
            self._delete_rowids(connection, rowids)
            return len(rowids)

        with lock, self._errors():
            removed: int = self._transaction(connection, body)
        return removed

    def truncate(self) -> int:
        connection, lock = self._connect()
        with lock, self._errors():
            cursor = connection.execute(f"DELETE FROM {self._table}")
            return int(cursor.rowcount)

    def put_many(self, records: Sequence[Record]) -> None:
        connection, lock = self._connect()
        marks = ",".join("?" * (len(self._keys) + 1))
        # An upsert keeps the row's rowid, so a record rewritten during a scan is seen once.
        sql = (
            f"INSERT INTO {self._table} ({', '.join(self._keys)}, {self._doc}) VALUES ({marks}) "
            f"ON CONFLICT ({', '.join(self._keys)}) DO UPDATE SET {self._doc} = excluded.{self._doc}"
        )
        rows = [self._row(record) for record in records]
        with lock, self._errors():
            self._transaction(connection, lambda: connection.executemany(sql, rows))

    def native(self) -> SqliteNative:
        """The shared connection, the kind's table name, its JSON column, the file and the lock."""
        connection, lock = self._connect()
        return SqliteNative(
            connection, self.schema.kind, _json_column(self.schema), self.path, lock
        )


def open_driver(schema: KindSchema, options: Mapping[str, Any]) -> Driver:
    """A sqlite driver for ``schema``'s kind; the option ``path`` overrides ``KVSTORE_SQLITE_PATH``."""
    unknown = sorted(set(options) - {"path"})
    if unknown:
        raise TypeError(f"the sqlite backend takes only the option 'path', got {unknown}")
    path = options.get("path")
    if path is None:
        path = sqlite_path()
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"the sqlite option path must be a str or path, not {type(path).__name__}")
    return SqliteDriver(schema, os.fspath(path))
