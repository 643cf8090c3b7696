"""The ``aurora`` driver: a kind's records in a PostgreSQL table, each call in the fewest statements.

``open_driver`` reads the settings and does no I/O; the first call opens the process's connection
for that configuration (``kvstore_aurora.connection``) and reads the kind's layout once
(``kvstore_aurora.layout``, or ``kvstore_aurora.probe`` for a first find by key). Reads translate
plans exactly (``kvstore_aurora.statements``), writes are guarded single statements
(``kvstore_aurora.guarded``, ``kvstore_aurora.updates``), a transaction is one pipeline
(``kvstore_aurora.transact``). Every statement is rendered once per shape of call and sent as the
same bytes, through libpq directly (``kvstore_aurora.wire``), which prepares it. Guarded writes
and updates run in ``kvstore_aurora.conditional``.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import psycopg
from psycopg import sql

from kvstore.backend import Conflict, Driver, Key, KindSchema, Plan, Record
from kvstore.errors import ConfigError
from kvstore.writes import Delete, Put, Update, Write
from kvstore_aurora import layout as layouts
from kvstore_aurora import probe
from kvstore_aurora.columns import UNFIT, dumps
from kvstore_aurora.connection import Connection, Pool, get_pool, injected_pool
from kvstore_aurora.errors import map_exceptions, no_table, raise_mapped
from kvstore_aurora.layout import ALIAS, Layout, check_rows, decode, select_columns
from kvstore_aurora.settings import PostgresSettings, resolve
from kvstore_aurora.upserts import json_insert_sql, keyed_insert_sql

if TYPE_CHECKING:
    from kvstore_aurora.batch import Batch
    from kvstore_aurora.streaming import Opened

# A first find by key (a Lambda's cold start) imports only the modules above; the modules that
# translate plans (statements), guarded writes (conditional, guarded), streams, batches and transactions are
# imported by the calls that use them.

__all__ = ["AuroraDriver", "open_driver"]

T = TypeVar("T")

MAX_STATEMENTS = 256
"""Rendered statements a driver keeps (one per shape of call)."""
_GET = ("get",)
_UPSERT = ("upsert",)


_statements: Any = None
"""``kvstore_aurora.statements`` once a read needed it (a bounded read's hot path imports it
no more than once: an import statement costs more than the rest of its lookups)."""


def _import_statements() -> Any:
    global _statements
    from kvstore_aurora import statements

    _statements = statements
    return statements


_conditional: Any = None
"""``kvstore_aurora.conditional`` once a write needed it (as ``_statements``)."""


def _import_conditional() -> Any:
    global _conditional
    from kvstore_aurora import conditional

    _conditional = conditional
    return conditional


class AuroraDriver(Driver):
    """One kind's table on one PostgreSQL database."""

    batch_size = 1000
    scan_segments = 16
    """A resumable scan's segments each read the whole primary key's index and keep the keys
    whose hash falls in it: a few of them read in parallel, many only add work."""

    def __init__(self, schema: KindSchema, pool: Pool, db_schema: str | None) -> None:
        super().__init__(schema)
        self.pool = pool
        self.db_schema = db_schema
        self._layout_key = (pool.cache_key, db_schema, schema)
        self._scope = ("aurora", pool.cache_key)  # a transaction asks for it at every operation
        self._slot = layouts.slot(self._layout_key)
        self._statements: dict[Hashable, bytes] = {}
        self._statements_layout: Layout | None = None

    def __repr__(self) -> str:
        return f"<AuroraDriver kind={self.schema.kind!r} on {self.pool.settings.describe()}>"

    @property
    def transaction_scope(self) -> Hashable:
        """The database: every kind on one configuration's connections can join a transaction."""
        return self._scope

    # -- plumbing -------------------------------------------------------------------------------

    def _run(self, operation: Callable[[Connection], T], *, retry: bool) -> T:
        # One try, not a context manager: entering one costs more per call than this whole frame.
        try:
            return self.pool.run(operation, retry=retry)
        except psycopg.Error as exc:
            self._mapped(exc)

    def _mapped(self, exc: psycopg.Error, kind: str | None = None) -> NoReturn:
        if isinstance(exc, psycopg.ProgrammingError):
            # The table was dropped or altered since its layout was read: read it again.
            self._slot.layout = None
        settings = self.pool.settings
        raise_mapped(
            exc,
            settings.describe(),
            secret=settings.password.reveal(),
            kind=kind or self.schema.kind,
            schema=self.db_schema,
        )

    def _errors(self) -> contextlib.AbstractContextManager[None]:
        settings = self.pool.settings
        return map_exceptions(
            settings.describe(),
            secret=settings.password.reveal(),
            kind=self.schema.kind,
            schema=self.db_schema,
        )

    def _statement(
        self, layout: Layout, shape: Hashable, connection: Connection, build: Callable[[], Any]
    ) -> bytes:
        """``build()`` (a ``psycopg.sql`` statement) rendered once per shape and layout; a layout
        read anew (its table changed) starts a new cache."""
        cache = self._statements
        if layout is not self._statements_layout or len(cache) >= MAX_STATEMENTS:
            cache = self._statements = {}
            self._statements_layout = layout
        found = cache.get(shape)
        if found is None:
            found = cache[shape] = build().as_bytes(connection)
        return found

    def _cached(self, layout: Layout, shape: Hashable) -> bytes | None:
        """The statement ``_statement`` rendered for ``shape`` and ``layout``, if it did: a
        lookup that makes no closure for the statement's builder."""
        return self._statements.get(shape) if layout is self._statements_layout else None

    def _read_layout(self, connection: Connection) -> Layout | None:
        cached = self._slot.layout
        if cached is not None:
            return cached
        rows = connection.execute(
            layouts.LAYOUT_QUERY, (self.db_schema, self.schema.kind), prepare=False
        ).fetchall()
        found = layouts.build_layout(self.schema, rows)
        if found is not None:
            self._slot.layout = found
        return found

    def _layout(self, connection: Connection) -> Layout:
        found = self._read_layout(connection)
        if found is None:
            raise no_table(self.schema.kind, self.db_schema, self.pool.settings.describe())
        return found

    def layout(self) -> Layout:
        """The kind's table layout (read once, then cached for the process)."""
        return self._run(self._layout, retry=True)

    def cached_layout(self) -> Layout | None:
        """The kind's layout if it was read already (no I/O)."""
        return self._slot.layout

    # -- reads ----------------------------------------------------------------------------------

    def ensure(self) -> None:
        from kvstore_aurora.migrate import ensure_table

        def run(connection: Connection) -> None:
            self._slot.layout = None  # the table may have changed since
            ensure_table(connection, self.schema, self.db_schema)
            self._layout(connection)

        self._run(run, retry=True)

    def read(self, plan: Plan) -> Iterator[Record]:
        if plan.access == "key" and len(plan.keys) == 1 and plan.descending is None:
            found = self._run(lambda connection: self._get(connection, plan.keys[0]), retry=True)
            return iter(() if found is None else (found,))
        if plan.limit is not None or plan.access == "key":
            return iter(self._run(lambda connection: self._bounded(connection, plan), retry=True))
        from kvstore_aurora.streaming import stream

        return stream(
            self.pool,
            self._errors,
            lambda connection: self._opened(connection, plan),
            lambda connection, after: self._opened(connection, self._resumable(plan, after)),
        )

    def _resumable(self, plan: Plan, after: Record | None) -> Plan:
        """``plan`` in an order a stream can resume in, strictly after the record ``after``
        (``None``: from the start): an index read (or an ordered one) in its own order, which
        ends with the key; others in the key's order (the primary key's index serves it)."""
        resumed = copy.copy(plan)
        if plan.index is not None or plan.descending is not None:
            start = plan.start if after is None else plan.position(after)
            return resumed.ordered(plan.limit, bool(plan.descending), start)
        resumed.stable = True  # the resumable scan's order and keyset ("after"), any access
        if after is not None:
            resumed.after = self.schema.key_of(after)
        return resumed

    def _get(self, connection: Connection, key: Key) -> Record | None:
        """The record at ``key`` (its filters are core's to apply): with the probe on a first
        read, else one cached statement."""
        layout = self._slot.layout
        if layout is None:
            probed = probe.find(connection, self.schema, self.db_schema, key)
            if probed is not None:
                self._slot.layout, found = probed
                return found
            layout = self._layout(connection)
        return self._current(connection, layout, key)

    def _current(self, connection: Connection, layout: Layout, key: Key) -> Record | None:
        if layout.checked and any(
            column.encode(value) is UNFIT for column, value in zip(layout.keys, key, strict=True)
        ):
            return None  # a key its column cannot hold names no record
        query = self._cached(layout, _GET) or self._statement(
            layout, _GET, connection, lambda: self._get_sql(layout)
        )
        row = self.pool.wire(connection).one(query, key)
        return None if row is None else decode(layout, row)

    def _get_sql(self, layout: Layout) -> sql.Composed:
        match = sql.SQL(" AND ").join(
            sql.SQL("{} = %s::{}").format(sql.Identifier(ALIAS, column.name), column.cast)
            for column in layout.keys
        )
        return sql.SQL("SELECT {} FROM {} AS {} WHERE {}").format(
            select_columns(layout), layout.table, sql.Identifier(ALIAS), match
        )

    def _bounded(self, connection: Connection, plan: Plan) -> list[Record]:
        """A read of known size (a page, ``find``'s first two, ``find_in``'s keys): one
        statement."""
        st = _statements or _import_statements()
        layout = self._slot.layout
        if layout is None:
            layout = self._layout(connection)
        found = st.plan_shape(layout, plan)
        if found is None:
            return []
        shape, params = found
        limited = st.limit_of(plan)
        read = st.read_shape(plan, shape, limited)
        query = self._cached(layout, read) or self._statement(
            layout,
            read,
            connection,
            lambda: st.select_sql(layout, self.schema, shape, plan, limited),
        )
        if plan.start is not None:
            params += st.position_params(layout, plan)
        if limited is True:
            params.append(plan.limit)
        rows = self.pool.wire(connection).all(query, params)
        return [decode(layout, row) for row in rows]

    def _opened(self, connection: Connection, plan: Plan) -> Opened | None:
        from kvstore_aurora.statements import plan_shape, position_params, read_shape, select_sql

        layout = self._layout(connection)
        found = plan_shape(layout, plan)
        if found is None:
            return None
        shape, params = found
        query = self._statement(
            layout,
            read_shape(plan, shape, limited=False),
            connection,
            lambda: select_sql(layout, self.schema, shape, plan, limited=False),
        )
        return query, params + position_params(layout, plan), lambda row: decode(layout, row)

    def _planned(
        self, connection: Connection, plan: Plan, verb: str, build: Callable[..., Any]
    ) -> tuple[bytes, list[Any]] | None:
        """``plan``'s ``verb`` statement (``build(layout, schema, shape)``, cached by shape) and
        its parameters; ``None`` when no record can match."""
        from kvstore_aurora.statements import plan_shape

        layout = self._layout(connection)
        found = plan_shape(layout, plan)
        if found is None:
            return None
        shape, params = found
        query = self._statement(
            layout, (verb, shape), connection, lambda: build(layout, self.schema, shape)
        )
        return query, params

    def count(self, plan: Plan) -> int:
        from kvstore_aurora.statements import count_sql

        def run(connection: Connection) -> int:
            found = self._planned(connection, plan, "count", count_sql)
            row = self.pool.wire(connection).one(*found) if found is not None else None
            return int(row[0]) if row else 0

        return self._run(run, retry=True)

    def delete(self, plan: Plan) -> int:
        from kvstore_aurora.statements import delete_sql

        def run(connection: Connection) -> int:
            found = self._planned(connection, plan, "delete", delete_sql)
            return self.pool.wire(connection).rowcount(*found) if found is not None else 0

        # Deleting twice leaves the same records: retried after a lost connection (as DynamoDB
        # does). A delete that went through before its answer was lost then counts 0 for the
        # records it removed (the count is the retry's).
        return self._run(run, retry=True)

    # -- writes ---------------------------------------------------------------------------------

    def write(self, op: Write) -> Record | None:
        if isinstance(op, Put) and op.guard.unconditional:
            self._put(op.record)
            return None
        conditional = _conditional or _import_conditional()
        if isinstance(op, Update):
            return conditional.update(self, op)  # type: ignore[no-any-return]
        if isinstance(op, (Put, Delete)):
            conditional.guarded(self, op)
            return None
        current = self._run(lambda connection: self._get(connection, op.key), retry=True)
        if not op.guard.holds(self.schema, current):
            raise Conflict(current)
        return None

    def insert_sql(self, connection: Connection, many: bool, layout: Layout | None = None) -> bytes:
        """The upsert of one record, or (``many``) of a JSON array of them (``layout``: the
        table's, read already)."""
        if layout is None:
            layout = self._layout(connection)
        return self._statement(
            layout,
            ("insert", many),
            connection,
            lambda: json_insert_sql(layout, upsert=True, many=many),
        )

    def upsert(
        self, connection: Connection, record: Record, layout: Layout | None = None
    ) -> tuple[bytes, list[Any]]:
        """The statement and parameters that store ``record`` whole (checked by ``check_rows``):
        in the default layout its key values and its JSON, else its JSON alone (``layout``: the
        table's, read already)."""
        if layout is None:
            layout = self._layout(connection)
        query = self._cached(layout, _UPSERT)
        if query is None:
            keyed = keyed_insert_sql(layout)
            if keyed is None:
                return self.insert_sql(connection, many=False, layout=layout), [dumps(record)]
            query = self._statement(layout, _UPSERT, connection, lambda: keyed)
        return query, [*(record[column.name] for column in layout.keys), dumps(record)]

    def _put(self, record: Record) -> None:
        def run(connection: Connection) -> None:
            check_rows(self._layout(connection), (record,))
            query, params = self.upsert(connection, record)
            self.pool.wire(connection).rowcount(query, params)

        # An upsert applied twice stores the same thing.
        self._run(run, retry=True)

    def put_many(self, records: Sequence[Record]) -> None:
        from kvstore_aurora.batch import encode

        self.write_batch(encode(self, records))

    def write_batch(self, texts: Batch) -> None:
        """Store one encoded slice of ``put_many`` (see ``kvstore_aurora.batch``)."""
        from kvstore_aurora.batch import write_texts

        def run(connection: Connection) -> None:
            write_texts(connection, self.insert_sql(connection, many=True), texts)

        # An upsert applied twice stores the same thing.
        self._run(run, retry=True)

    def batch_writer(self, many: bool) -> contextlib.AbstractContextManager[Any]:
        from kvstore_aurora import batch

        if many:
            return batch.pipelined(self, self._errors)
        return contextlib.nullcontext(batch.DirectWriter(self))

    def current(self, connection: Connection, key: Key) -> Record | None:
        """The record at ``key`` now (a transaction's failed step explains itself with it)."""
        return self._current(connection, self._layout(connection), key)

    def transact(self, ops: Sequence[tuple[Driver, Write]]) -> None:
        from kvstore_aurora.transact import run_transaction

        scope = self._scope
        for driver, _op in ops:
            if not isinstance(driver, AuroraDriver) or driver._scope != scope:
                raise ConfigError("a transaction's stores must share one aurora configuration")
        if ops:
            run_transaction(self, [(driver, op) for driver, op in ops])  # type: ignore[misc]

    def native(self) -> Any:
        from kvstore_aurora.native import native_handles

        return native_handles(self.pool.settings, self.layout)


def open_driver(
    kind: KindSchema,
    /,
    *,
    dsn: str | None = None,
    settings: PostgresSettings | None = None,
    schema: str | None = None,
    connection: Connection | None = None,
    timeout: float | None = None,
    max_connections: int | None = None,
) -> Driver:
    """The aurora driver for ``kind``'s table; no I/O.

    Options (all optional; by default the settings come from the environment, see the README's
    configuration table; with none of them and no ``DATABASE_URL``/``DB_HOST``/``DB_SECRET_ARN``,
    ``ConfigError``):

    - ``dsn``: a ``postgresql://`` URL used instead of ``DATABASE_URL``/``DB_*``, every libpq
      parameter of its query honoured (``DB_SCHEMA``, ``DB_SSLMODE`` when it has no
      ``sslmode``, ``DB_CONNECT_TIMEOUT``, ``DB_PREPARE`` and ``KVSTORE_TIMEOUT`` still apply);
    - ``settings``: a ``kvstore_aurora.settings.PostgresSettings`` used as is;
    - ``schema``: the PostgreSQL schema of the kinds' tables (default ``DB_SCHEMA``, else the
      connection's current schema);
    - ``connection``: a ``psycopg.Connection`` (autocommit) to use instead of opening one; it is
      shared by every thread (one call at a time; an ``iter_all`` holds it until it ends, and
      calls made meanwhile run in its transaction), never replaced when it drops, and gets
      kvstore's JSON adapters. Its time limits are its own: kvstore bounds only the wait for it;
    - ``timeout``: a call's time budget in seconds (default ``KVSTORE_TIMEOUT``, else 10): see
      ``kvstore_aurora.budget``;
    - ``max_connections``: server connections per process at most (default
      ``DB_MAX_CONNECTIONS``, else 10); a call finding none free waits within its budget.

    Connections are opened at the first call, one per process and configuration (a second only
    while the first is busy: another thread, or a call made during an ``iter_all``), and replaced
    when the server or a proxy dropped them (see ``kvstore_aurora.connection``).
    """
    found = resolve(
        dsn=dsn,
        settings=settings,
        timeout=timeout,
        max_connections=max_connections,
        required=connection is None,
    )
    if schema is not None and not isinstance(schema, str):
        raise TypeError(f"the aurora option schema must be a str, not {type(schema).__name__}")
    db_schema = schema or found.schema
    if connection is not None:
        if not getattr(connection, "autocommit", False):
            raise ConfigError("an injected connection must be in autocommit mode")
        if not found.source:  # no settings of its own: describe it by what it is connected to
            info = connection.info
            found = found._replace(
                host=info.host, port=info.port, dbname=info.dbname, user=info.user
            )
        pool = injected_pool(found, connection)
    else:
        pool = get_pool(found)
    return AuroraDriver(kind, pool, db_schema)
