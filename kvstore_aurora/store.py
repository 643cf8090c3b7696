"""The ``aurora`` driver: a kind's records in a PostgreSQL table, each call in the fewest statements.

``open_driver`` reads the settings and does no I/O; the first call opens the process's connection
for that configuration (``kvstore_aurora.connection``) and reads the kind's layout once
(``kvstore_aurora.layout``). SQL is built with ``psycopg.sql``: every identifier quoted, every value
a bound parameter.
"""

from __future__ import annotations

import contextlib
import itertools
import operator
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus
from psycopg.types.json import Jsonb

from kvstore.backend import Driver, Filters, Key, KindSchema, Record
from kvstore.config import PostgresSettings, postgres_settings
from kvstore.errors import AlreadyExists, ConfigError, NotFound
from kvstore_aurora import layout as layouts
from kvstore_aurora.connection import Connection, Pool, dumps, get_pool
from kvstore_aurora.errors import is_connection_lost, map_exceptions, missing_table, raise_mapped
from kvstore_aurora.layout import UNFIT, Layout, check_rows, decode
from kvstore_aurora.sql import (
    Where,
    find_in_clause,
    json_insert_sql,
    where_clause,
    where_plan,
    where_sql,
)

__all__ = ["PAGE_SIZE", "AuroraDriver", "open_driver"]

T = TypeVar("T")

PAGE_SIZE = 1000
"""Rows fetched per round trip from the server-side cursor of an unbounded select."""
MAX_STATEMENTS = 256
"""Rendered statements a driver keeps (one per shape of call: which fields a filter names)."""
MAX_BATCH_BYTES = 8 << 20
"""A put_many statement carries at most about this many characters of JSON (then a second one)."""

_cursor_ids = itertools.count()


def _transaction(connection: Connection, savepoint: str) -> tuple[str, str, str]:
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


Chunk = list[list[str]]
"""One chunk of a put_many: its ``encode_many`` batches."""


class _Pipeline:
    """A pipelined put_many's connection, pipeline and statements (see ``AuroraDriver.writer``)."""

    __slots__ = ("begin", "commit", "connection", "pipeline", "query")  # see layout.Column

    def __init__(
        self,
        connection: Connection,
        pipeline: psycopg.Pipeline,
        begin: str,
        query: bytes,
        commit: str,
    ) -> None:
        self.connection = connection
        self.pipeline = pipeline
        self.begin = begin
        self.query = query
        self.commit = commit


class AuroraDriver(Driver):
    """One kind's table on one PostgreSQL database."""

    batch_size = 1000

    def __init__(self, schema: KindSchema, pool: Pool, db_schema: str | None) -> None:
        super().__init__(schema)
        self.pool = pool
        self.db_schema = db_schema
        self._layout_key = (pool.cache_key, db_schema, schema)
        self._statements: dict[Hashable, bytes] = {}
        self._statements_layout: Layout | None = None

    def __repr__(self) -> str:
        return f"<AuroraDriver kind={self.schema.kind!r} on {self.pool.settings.describe()}>"

    # -- plumbing -------------------------------------------------------------------------------

    def _run(self, operation: Callable[[Connection], T], *, retry: bool) -> T:
        # One try, not a context manager: entering one costs more per call than this whole frame.
        try:
            return self.pool.run(operation, retry=retry)
        except psycopg.Error as exc:
            if isinstance(exc, psycopg.ProgrammingError):
                # The table was dropped or altered since its layout was read: read it again.
                layouts.forget(self._layout_key)
            settings = self.pool.settings
            raise_mapped(
                exc,
                settings.describe(),
                secret=settings.password.reveal(),
                kind=self.schema.kind,
                schema=self.db_schema,
            )

    def _statement(
        self, layout: Layout, shape: Hashable, connection: Connection, build: Callable[[], Any]
    ) -> bytes:
        """``build()`` (a ``psycopg.sql`` statement) rendered once per shape and layout.

        Composing and rendering costs more than a key lookup's round trip to a near server, and
        the same bytes each time let psycopg prepare the statement. A layout read anew (its table
        changed) starts a new cache.
        """
        cache = self._statements
        if layout is not self._statements_layout or len(cache) >= MAX_STATEMENTS:
            cache = self._statements = {}
            self._statements_layout = layout
        found = cache.get(shape)
        if found is None:
            found = cache[shape] = build().as_bytes(connection)
        return found

    def _read_layout(self, connection: Connection) -> Layout | None:
        cached = layouts.read_layout(self._layout_key)
        if cached is not None:
            return cached
        rows = connection.execute(
            layouts.LAYOUT_QUERY, (self.db_schema, self.schema.kind), prepare=False
        ).fetchall()
        found = layouts.build_layout(self.schema, rows)
        if found is not None:
            layouts.remember(self._layout_key, found)
        return found

    def _layout(self, connection: Connection) -> Layout:
        found = self._read_layout(connection)
        if found is None:
            raise missing_table(self.schema.kind, self.db_schema)
        return found

    def layout(self) -> Layout:
        """The kind's table layout (read once, then cached for the process)."""
        return self._run(self._layout, retry=True)

    def _select_sql(self, layout: Layout, where: Where) -> sql.Composed:
        columns = sql.SQL(", ").join(map(sql.Identifier, layout.selected))
        return sql.SQL("SELECT {} FROM {} WHERE {}").format(columns, layout.table, where.clause)

    def _key_where(self, layout: Layout, key: Key) -> Where:
        return where_clause(layout, dict(zip(self.schema.id_fields, key, strict=True)))

    # -- reads ----------------------------------------------------------------------------------

    def ensure(self) -> None:
        from kvstore_aurora.migrate import ensure_table

        def run(connection: Connection) -> None:
            if self._read_layout(connection) is None:
                ensure_table(connection, self.schema, self.db_schema)
                self._layout(connection)

        self._run(run, retry=True)

    def select(self, filters: Filters, limit: int | None = None) -> Iterator[Record]:
        if limit is not None:

            def bounded(connection: Connection) -> list[Record]:
                layout = self._layout(connection)
                plan = where_plan(layout, filters)
                if plan is None:
                    return []
                shape, params = plan
                query = self._statement(
                    layout,
                    ("select", limit, shape),
                    connection,
                    lambda: sql.SQL("{} LIMIT {}").format(
                        self._select_sql(layout, Where(where_sql(layout, shape), params)),
                        sql.Literal(limit),
                    ),
                )
                # One call, not one a row; at most ``limit`` rows (find: 2), so the reused cursor.
                rows = self.pool.cursor(connection).execute(query, params).fetchall()
                return [decode(layout, row) for row in rows]

            return iter(self._run(bounded, retry=True))
        return self._stream(filters)

    def _probe(self, connection: Connection, key: Key) -> tuple[Record | None] | None:
        """A first ``get`` on a table whose layout is not cached yet, in one statement
        (``layouts.probe_sql``): ``(record or None,)``, or ``None`` when the layout must be read
        (a table other than the default layout, a missing one, or a connection inside a
        transaction, which a failed probe would abort)."""
        if (
            not connection.autocommit
            or connection.pgconn.transaction_status != TransactionStatus.IDLE
        ):
            return None
        try:
            cursor = connection.execute(
                layouts.probe_sql(self.schema, self.db_schema), key, prepare=False
            )
            row = cursor.fetchone()
        except psycopg.ProgrammingError:  # no such table or column: LAYOUT_QUERY says which
            return None
        result = cursor.pgresult
        assert row is not None  # the LEFT JOIN's one row
        assert result is not None
        probed = layouts.read_probe(self.schema, result, row)
        if probed is None:
            return None
        layout, found = probed
        layouts.remember(self._layout_key, layout)
        return (None if found is None else decode(layout, found),)

    def get(self, key: Key) -> Record | None:
        def run(connection: Connection) -> Record | None:
            layout = layouts.read_layout(self._layout_key)
            if layout is None:
                probed = self._probe(connection, key)
                if probed is not None:
                    return probed[0]
                layout = self._layout(connection)
            if layout.checked and any(
                column.encode(value) is UNFIT
                for column, value in zip(layout.keys, key, strict=True)
            ):
                return None  # a key its column cannot hold names no record
            query = self._statement(
                layout,
                ("get",),
                connection,
                lambda: self._select_sql(layout, self._key_where(layout, key)),
            )
            row = self.pool.cursor(connection).execute(query, key).fetchone()
            return None if row is None else decode(layout, row)

        return self._run(run, retry=True)

    def _errors(self) -> Any:
        settings = self.pool.settings
        return map_exceptions(
            settings.describe(),
            secret=settings.password.reveal(),
            kind=self.schema.kind,
            schema=self.db_schema,
        )

    def _declare(
        self, connection: Connection, name: sql.Identifier, filters: Filters, begin: bool
    ) -> tuple[Layout, list[tuple[Any, ...]]] | None:
        """Open the cursor (in a new transaction when ``begin``) and fetch its first page, in one
        round trip (a pipeline)."""
        layout = self._layout(connection)
        where = where_clause(layout, filters)
        if where.never:
            return None
        declare = sql.SQL("DECLARE {} NO SCROLL CURSOR FOR {}").format(
            name, self._select_sql(layout, where)
        )
        with connection.pipeline():
            if begin:
                connection.execute("BEGIN")
            connection.execute(declare, where.params)
            cursor = connection.execute(self._fetch(name))
        return layout, cursor.fetchall()

    @staticmethod
    def _fetch(name: sql.Identifier) -> sql.Composed:
        return sql.SQL("FETCH FORWARD {} FROM {}").format(sql.Literal(PAGE_SIZE), name)

    @staticmethod
    def _end(connection: Connection, owned: bool, name: sql.Identifier) -> None:
        """End the cursor's transaction (or, in the caller's transaction, close the cursor)."""
        status = connection.info.transaction_status
        if connection.closed or status == TransactionStatus.IDLE:
            return
        # When even this fails, the pool closes the unusable connection.
        with contextlib.suppress(Exception):
            if not owned:
                connection.execute(sql.SQL("CLOSE {}").format(name))
            elif status == TransactionStatus.INTRANS:
                # Commit, not roll back: on an injected connection, calls made while iterating
                # ran in this transaction.
                connection.execute("COMMIT")
            else:
                connection.execute("ROLLBACK")

    def _stream(self, filters: Filters) -> Iterator[Record]:
        """Every match through a server-side cursor, PAGE_SIZE rows a round trip.

        The cursor's connection is held until the iteration ends; calls made meanwhile use another
        of the pool's connections. Opening the cursor is retried once on a fresh connection when
        the connection was lost; a connection lost midway raises ``BackendUnavailable``.
        """
        name = sql.Identifier(f"kvstore_cursor_{next(_cursor_ids)}")
        with self._errors():
            for attempt in (0, 1):
                with self.pool.connection(fresh=attempt > 0) as connection:
                    # An injected connection may already be in a transaction (nested iterations).
                    owned = connection.info.transaction_status == TransactionStatus.IDLE
                    try:
                        opened = self._declare(connection, name, filters, begin=owned)
                    except psycopg.Error as exc:
                        self._end(connection, owned, name)
                        lost = is_connection_lost(exc, connection)
                        if attempt or not lost or not self.pool.replaceable:
                            raise
                        continue
                    if opened is None:
                        return
                    layout, rows = opened
                    try:
                        while True:
                            for row in rows:
                                yield decode(layout, row)
                            if len(rows) < PAGE_SIZE:
                                break
                            rows = connection.execute(self._fetch(name)).fetchall()
                    finally:
                        self._end(connection, owned, name)
                    return

    def count(self, filters: Filters) -> int:
        def run(connection: Connection) -> int:
            layout = self._layout(connection)
            plan = where_plan(layout, filters)
            if plan is None:
                return 0
            shape, params = plan
            query = self._statement(
                layout,
                ("count", shape),
                connection,
                lambda: sql.SQL("SELECT count(*) FROM {} WHERE {}").format(
                    layout.table, where_sql(layout, shape)
                ),
            )
            row = self.pool.cursor(connection).execute(query, params).fetchone()
            return int(row[0]) if row else 0

        return self._run(run, retry=True)

    def find_in(self, field: str, values: Sequence[Any]) -> Iterator[Record]:
        def run(connection: Connection) -> list[Record]:
            layout = self._layout(connection)
            where = find_in_clause(layout, field, values)
            if where.never:
                return []
            query = self._statement(
                layout,
                ("find_in", where.shape),
                connection,
                lambda: self._select_sql(layout, where),
            )
            rows = connection.execute(query, where.params).fetchall()
            return [decode(layout, row) for row in rows]

        return iter(self._run(run, retry=True))

    # -- writes ---------------------------------------------------------------------------------

    def _insert(self, connection: Connection, upsert: bool, many: bool) -> bytes:
        """The statement inserting one record, or (``many``) a JSON array of them."""
        layout = self._layout(connection)
        return self._statement(
            layout,
            ("insert", upsert, many),
            connection,
            lambda: json_insert_sql(layout, upsert, many),
        )

    def _write_one(self, record: Record, upsert: bool) -> int:
        def run(connection: Connection) -> int:
            check_rows(self._layout(connection), (record,))
            query = self._insert(connection, upsert, many=False)
            return self.pool.cursor(connection).execute(query, (dumps(record),)).rowcount

        # An upsert applied twice stores the same thing; an insert retried could clash with itself.
        return self._run(run, retry=upsert)

    def put(self, record: Record) -> None:
        self._write_one(record, upsert=True)

    def create(self, record: Record) -> None:
        if self._write_one(record, upsert=False) == 0:
            raise AlreadyExists(
                f"a {self.schema.kind} record with key {self.schema.key_of(record)!r} exists"
            )

    def update(
        self, key: Key, sets: Record, removes: Sequence[str], check: Callable[[Record], None]
    ) -> Record:
        def run(connection: Connection) -> Record:
            layout = self._layout(connection)
            assignments: list[sql.Composable] = []
            params: list[Any] = []
            doc_sets: dict[str, Any] = {}
            doc_removes: list[str] = []
            for field, value in sets.items():
                if layout.column(field) is not None or not layout.has_doc:
                    assignments.append(sql.SQL("{} = %s").format(sql.Identifier(field)))
                    params.append(layout.encode(field, value))
                else:
                    doc_sets[field] = value
            for field in removes:
                if layout.column(field) is not None:
                    assignments.append(sql.SQL("{} = NULL").format(sql.Identifier(field)))
                elif layout.has_doc:
                    doc_removes.append(field)
            if doc_sets or doc_removes:
                assignments.append(sql.SQL("doc = (doc || %s::jsonb) - %s::text[]"))
                params += [Jsonb(doc_sets), doc_removes]
            if not assignments:
                first = sql.Identifier(self.schema.id_fields[0])
                assignments.append(sql.SQL("{0} = {0}").format(first))
            where = self._key_where(layout, key)
            query = sql.SQL("UPDATE {} SET {} WHERE {} RETURNING {}").format(
                layout.table,
                sql.SQL(", ").join(assignments),
                where.clause,
                sql.SQL(", ").join(map(sql.Identifier, layout.selected)),
            )
            begin, commit, roll_back = _transaction(connection, "kvstore_update")
            done = False
            try:
                # BEGIN and UPDATE in one round trip; COMMIT (or ROLLBACK) in a second.
                with connection.pipeline():
                    connection.execute(begin)
                    cursor = connection.execute(query, params + where.params)
                row = cursor.fetchone()
                if row is None:
                    raise NotFound(f"no {self.schema.kind} record has key {key!r}")
                merged = decode(layout, row)
                check(merged)
                connection.execute(commit)
                done = True
            finally:
                if not done and not connection.closed:
                    with contextlib.suppress(psycopg.Error):  # else the pool drops the connection
                        connection.execute(roll_back)
            return merged

        # Merging the same changes twice gives the same record.
        return self._run(run, retry=True)

    def _delete(self, build: Callable[[Layout], Where]) -> int:
        def run(connection: Connection) -> int:
            layout = self._layout(connection)
            where = build(layout)
            if where.never:
                return 0
            query = sql.SQL("DELETE FROM {} WHERE {}").format(layout.table, where.clause)
            return connection.execute(query, where.params).rowcount

        # Not retried: a delete that went through before the connection dropped would count 0.
        return self._run(run, retry=False)

    def remove(self, filters: Filters) -> int:
        return self._delete(lambda layout: where_clause(layout, filters))

    def remove_in(self, field: str, values: Sequence[Any]) -> int:
        return self._delete(lambda layout: find_in_clause(layout, field, values))

    def truncate(self) -> int:
        return self._delete(lambda layout: where_clause(layout, {}))

    def encode_many(self, records: Sequence[Record]) -> list[str]:
        """``records`` as JSON arrays of about MAX_BATCH_BYTES (usually one), in key order; a value
        that does not fit its column raises ``InvalidArgument``.

        Whole records in one ``dumps`` call: the server splits them into columns and ``doc``
        (``json_insert_sql``). Key order makes concurrent batches lock rows in the same order, so
        they cannot deadlock each other (key values of one kind all have one type, so they sort).
        """
        ordered = sorted(records, key=operator.itemgetter(*self.schema.id_fields))
        # The cached layout without taking a connection: a pipelined put_many holds one.
        check_rows(layouts.read_layout(self._layout_key) or self.layout(), ordered)
        text = dumps(ordered)
        if len(text) <= MAX_BATCH_BYTES:
            return [text]
        parts = [dumps(record) for record in ordered]
        return ["[" + ",".join(parts[start:end]) + "]" for start, end in _by_size(parts)]

    def write_many(self, batch: list[str]) -> None:
        def run(connection: Connection) -> None:
            query = self._insert(connection, upsert=True, many=True)
            if len(batch) == 1:
                connection.execute(query, (batch[0],))
                return
            with connection.transaction():  # a batch split by size is still written whole
                for text in batch:
                    connection.execute(query, (text,))

        # An upsert applied twice stores the same thing.
        self._run(run, retry=True)

    def put_many(self, records: Sequence[Record]) -> None:
        self.write_many(self.encode_many(records))

    def writer(self, many: bool) -> contextlib.AbstractContextManager[Callable[[Chunk], None]]:
        return self._pipelined() if many else contextlib.nullcontext(self.write_chunk)

    @contextlib.contextmanager
    def _pipelined(self) -> Iterator[Callable[[Chunk], None]]:
        """A put_many of many chunks on one connection in pipeline mode, each chunk in a
        transaction of its own (a savepoint inside the caller's): a chunk is sent at once and the
        server writes it while core prepares the next, with no thread and no wait.

        What a loop of chunks would give: nothing is read or sent before the first chunk passed
        core's checks (an invalid record wins over a missing table), an error rolls back its own
        chunk only, and a failed chunk's error is raised before one raised while preparing a later
        chunk. Not retried: a connection lost midway raises ``BackendUnavailable`` (the chunks
        before it are stored).
        """
        with self._errors(), contextlib.ExitStack() as stack:
            opened: list[_Pipeline] = []

            def write(chunk: Chunk) -> None:
                if not opened:
                    opened.append(self._open_pipeline(stack))
                pipelined = opened[0]
                connection, query = pipelined.connection, pipelined.query
                connection.execute(pipelined.begin)
                for batch in chunk:
                    for text in batch:
                        connection.execute(query, (text,))
                connection.execute(pipelined.commit)

            try:
                yield write
            except psycopg.Error:
                raise  # a chunk's own error (what follows it was skipped)
            except BaseException:
                if opened:
                    opened[0].pipeline.sync()  # the chunks sent are stored, or their error first
                raise

    def _open_pipeline(self, stack: contextlib.ExitStack) -> _Pipeline:
        """A connection in pipeline mode for ``_pipelined``, released (after a failed chunk's
        transaction is rolled back) when ``stack`` closes."""
        connection = stack.enter_context(self.pool.connection())
        begin, commit, roll_back = _transaction(connection, "kvstore_put_many")
        query = self._insert(connection, upsert=True, many=True)

        def roll_back_failed() -> None:
            if connection.info.transaction_status == TransactionStatus.INERROR:
                with contextlib.suppress(psycopg.Error):  # else the pool drops the connection
                    connection.execute(roll_back)

        stack.callback(roll_back_failed)  # runs after the pipeline's exit, before the release
        pipeline = stack.enter_context(connection.pipeline())
        return _Pipeline(connection, pipeline, begin, query, commit)

    def native(self) -> Any:
        from kvstore_aurora.native import native_handles

        return native_handles(self.pool.settings, self.layout())


def _by_size(parts: list[str]) -> Iterator[tuple[int, int]]:
    """Slices (start, end) of ``parts``, about MAX_BATCH_BYTES of text each."""
    start, total = 0, 0
    for index, part in enumerate(parts):
        if total + len(part) > MAX_BATCH_BYTES and index > start:
            yield start, index
            start, total = index, 0
        total += len(part)
    yield start, len(parts)


_OPTIONS = ("dsn", "settings", "schema", "connection")


def open_driver(schema: KindSchema, options: Mapping[str, Any]) -> Driver:
    """The aurora driver for ``schema``'s kind; no I/O.

    Options (all optional; by default the settings come from the environment, see CONTRACT.md):

    - ``dsn``: a ``postgresql://`` URL used instead of ``DATABASE_URL``/``DB_*`` (``DB_SCHEMA``,
      ``DB_SSLMODE``, ``DB_CONNECT_TIMEOUT`` and ``DB_PREPARE`` still apply).
    - ``settings``: a ``kvstore.config.PostgresSettings`` used as is.
    - ``schema``: the PostgreSQL schema of the kinds' tables (default ``DB_SCHEMA``, else the
      connection's current schema).
    - ``connection``: a ``psycopg.Connection`` (autocommit) to use instead of opening one; it is
      shared by every thread (one call at a time; an ``iter_all`` holds it until it ends, and
      calls made meanwhile run in its transaction), never replaced when it drops, and gets
      kvstore's JSON adapters.

    Connections are opened at the first call, one per process and configuration (a second only
    while the first is busy: another thread, or a call made during an ``iter_all``), and replaced
    when the server or a proxy dropped them (see ``kvstore_aurora.connection``).

    Any other option raises ``TypeError``.
    """
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise TypeError(
            f"the aurora backend does not know option(s) {unknown}; it takes {list(_OPTIONS)}"
        )
    settings = options.get("settings")
    if settings is None:
        import os

        env = dict(os.environ)
        if options.get("dsn") is not None:
            env["DATABASE_URL"] = str(options["dsn"])
        settings = postgres_settings(env)
    elif not isinstance(settings, PostgresSettings):
        raise TypeError("settings must be a kvstore.config.PostgresSettings")
    db_schema = options.get("schema") or settings.schema
    connection = options.get("connection")
    if connection is not None:
        if not getattr(connection, "autocommit", False):
            raise ConfigError("an injected connection must be in autocommit mode")
        pool = Pool(settings, connection)
    else:
        pool = get_pool(settings)
    return AuroraDriver(schema, pool, db_schema)
