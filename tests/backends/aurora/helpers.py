"""Helpers of the aurora tests: admin statements, killing sessions, counting statements."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from kvstore_aurora.settings import PostgresSettings

_SENT = re.compile(r"^F\t\d+\t(Query|Execute)\b", re.MULTILINE)
_WAITS = re.compile(r"^F\t\d+\t(Query|Sync)\b", re.MULTILINE)


def connect(settings: PostgresSettings) -> psycopg.Connection[Any]:
    """A new autocommit connection to the test database."""
    return psycopg.connect(**settings.conninfo(), autocommit=True)  # type: ignore[arg-type]


def kill_store_sessions(settings: PostgresSettings) -> int:
    """Terminate every kvstore session on the test database (as a proxy or restart would)."""
    with connect(settings) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
            " WHERE datname = %s AND application_name = 'kvstore' AND pid <> pg_backend_pid()",
            (settings.dbname,),
        ).fetchall()
    return len(rows)


class StatementCounter:
    """Counts the statements a connection sends, from libpq's protocol trace."""

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self.connection = connection

    @contextmanager
    def counting(self) -> Iterator[list[int]]:
        """Yield a list that holds, after the block, the statements sent in it and the round
        trips (a Sync or simple Query is where the client waits for the server)."""
        result = [0, 0]
        pgconn = self.connection.pgconn
        with tempfile.TemporaryFile() as trace:
            pgconn.trace(trace.fileno())
            pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
            try:
                yield result
            finally:
                pgconn.untrace()
                trace.seek(0)
                text = trace.read().decode("utf-8", "replace")
                result[:] = [len(_SENT.findall(text)), len(_WAITS.findall(text))]


def explain(
    settings: PostgresSettings,
    store: Any,
    plan: Any,
    *,
    seqscan: bool = True,
    statement: str = "select",
) -> str:
    """PostgreSQL's plan (``EXPLAIN``) of the statement the aurora driver sends for ``plan``
    (a ``kvstore.plan.Plan``): its ``select``, ``count`` or ``delete``; ``seqscan=False`` shows
    what the indexes can serve."""
    from psycopg import sql

    from kvstore_aurora.statements import (
        count_sql,
        delete_sql,
        plan_shape,
        position_params,
        select_sql,
    )

    driver = store.driver
    layout = driver.layout()
    found = plan_shape(layout, plan)
    assert found is not None, plan
    shape, params = found
    if statement == "select":
        query = select_sql(layout, store.schema, shape, plan, limited=plan.limit is not None)
        params += position_params(layout, plan)
        if plan.limit is not None:
            params.append(plan.limit)
    elif statement == "count":
        query = count_sql(layout, store.schema, shape)
    else:
        query = delete_sql(layout, store.schema, shape)
    with connect(settings) as connection:
        if not seqscan:
            connection.execute("SET enable_seqscan = off")
        connection.execute(sql.SQL("ANALYZE {}").format(layout.table))
        rows = connection.execute(sql.SQL("EXPLAIN ") + query, params).fetchall()
    return "\n".join(row[0] for row in rows)


def plan_of(store: Any, filters: dict[str, Any]) -> Any:
    """The plan core makes of a read of ``store`` with ``filters``."""
    from kvstore.plan import plan_read
    from kvstore.records import prepare_filters

    return plan_read(store.schema, prepare_filters(filters, store.schema))


def plan_of_in(store: Any, field: str, values: list[Any]) -> Any:
    """The plan core makes of ``store.find_in(field, values)``."""
    from kvstore.plan import plan_in
    from kvstore.records import prepare_in

    name, wanted = prepare_in(field, values, store.schema)
    return plan_in(store.schema, name, wanted)
