"""``Wire``: kvstore's single statements sent through libpq give what psycopg's cursor gives (rows,
errors, prepared statements), and survive what other users of the connection do to them."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg.adapt import PyFormat

from kvstore import Store, create_store, increment, transaction
from kvstore.testing import unique_kind
from kvstore_aurora.connection import injected_pool
from kvstore_aurora.settings import PostgresSettings
from kvstore_aurora.wire import MAX_PREPARED, Wire, numbered
from tests.backends.aurora.helpers import StatementCounter, connect


@pytest.fixture
def connection(pg_settings: PostgresSettings) -> Iterator[psycopg.Connection[Any]]:
    found = connect(pg_settings)
    table = unique_kind("wire")
    found.execute(f'CREATE TABLE "{table}" (id text PRIMARY KEY, v integer, doc jsonb)')
    found.execute(
        f'INSERT INTO "{table}" VALUES (%s, %s, %s), (%s, %s, %s)',
        ("a", 1, psycopg.types.json.Jsonb({"x": [1, 2.5]}), "b", None, None),
    )
    found.table = table  # type: ignore[attr-defined]
    yield found
    found.execute(f'DROP TABLE IF EXISTS "{table}"')
    found.close()


def _select(connection: psycopg.Connection[Any]) -> bytes:
    return f'SELECT id, v, doc FROM "{connection.table}" WHERE id = %s'.encode()  # type: ignore[attr-defined]


def _prepared(connection: psycopg.Connection[Any]) -> list[str]:
    rows = connection.execute(
        "SELECT name FROM pg_prepared_statements WHERE name LIKE 'kvstore%%'", prepare=False
    ).fetchall()
    return sorted(row[0] for row in rows)


def test_placeholders_are_numbered_as_psycopg_numbers_them() -> None:
    text, binary = PyFormat.TEXT, PyFormat.BINARY
    assert numbered(b"SELECT %s, '%%', %b, %t") == (b"SELECT $1, '%', $2, $3", [text, binary, text])
    assert numbered(b"SELECT 1") == (b"SELECT 1", [])
    assert numbered(b"SELECT %(name)s") is None  # the cursor's to read
    assert numbered(b"SELECT %x") is None


@pytest.mark.parametrize(
    ("query", "params"),
    [
        (b"SELECT %s::text, %s::bigint, %s::numeric, %s::float8, %s::boolean", None),
        (b"SELECT %s::text[] , %s::bigint[]", (["a", "b'c"], [1, 2**40])),
        (b"SELECT %s::jsonb, %b::jsonb, %b::text", ('{"a": [1, 2.5, null]}', "[1]", "b\u00e9")),
        (b"SELECT %s::text IS NULL, %s + 1, 'x' || %s", (None, 2**31, "y")),
        (b"SELECT g FROM generate_series(1, %s) AS g", (3,)),
        (b"SELECT 1 WHERE false", ()),
    ],
)
def test_rows_and_parameters_are_the_cursors(
    connection: psycopg.Connection[Any], query: bytes, params: tuple[Any, ...] | None
) -> None:
    if params is None:
        params = ("é\u2603", -(2**63), Decimal("1.50"), 0.1, True)
    wire = Wire(connection)
    expected = connection.cursor().execute(query, params).fetchall()
    for _ in range(7):  # unprepared, then prepared (the default threshold is 5)
        assert wire.all(query, params) == expected
        assert wire.one(query, params) == (expected[0] if expected else None)


def test_a_statement_is_prepared_at_the_connections_threshold_under_kvstores_name(
    connection: psycopg.Connection[Any],
) -> None:
    wire, query = Wire(connection), _select(connection)
    counter = StatementCounter(connection)
    for _ in range(connection.prepare_threshold - 1):  # type: ignore[operator]
        assert wire.one(query, ("a",)) == ("a", 1, {"x": [1, 2.5]})
    assert _prepared(connection) == []
    with counter.counting() as sent:
        assert wire.one(query, ("a",)) == ("a", 1, {"x": [1, 2.5]})
    assert len(_prepared(connection)) == 1
    assert sent == [1, 2]  # PREPARE's own round trip, once
    with counter.counting() as sent:
        assert wire.one(query, ("b",)) == ("b", None, None)
    assert sent == [1, 1]


def test_two_wires_on_one_connection_prepare_under_names_of_their_own(
    connection: psycopg.Connection[Any],
) -> None:
    connection.prepare_threshold = 0
    first, second = Wire(connection), Wire(connection)
    assert first.one(_select(connection), ("a",)) == second.one(_select(connection), ("a",))
    assert len(_prepared(connection)) == 2


def test_a_connection_that_never_prepares_gets_no_prepared_statement(
    connection: psycopg.Connection[Any],
) -> None:
    connection.prepare_threshold = None
    wire = Wire(connection)
    for _ in range(8):
        assert wire.one(_select(connection), ("a",)) is not None
    assert _prepared(connection) == []


def test_at_most_max_prepared_statements_a_connection(
    connection: psycopg.Connection[Any],
) -> None:
    connection.prepare_threshold = 0
    wire = Wire(connection)
    for n in range(MAX_PREPARED + 5):
        assert wire.one(f"SELECT {n} + %s::int".encode(), (1,)) == (n + 1,)
    assert len(_prepared(connection)) == MAX_PREPARED


@pytest.mark.parametrize("how", ["DEALLOCATE ALL", "DISCARD ALL"])
def test_a_prepared_statement_deallocated_by_another_party_is_sent_again(
    connection: psycopg.Connection[Any], how: str
) -> None:
    connection.prepare_threshold = 0
    wire, query = Wire(connection), _select(connection)
    assert wire.one(query, ("a",)) == ("a", 1, {"x": [1, 2.5]})
    (before,) = _prepared(connection)
    connection.execute(how, prepare=False)
    assert wire.one(query, ("a",)) == ("a", 1, {"x": [1, 2.5]})
    assert wire.one(query, ("b",)) == ("b", None, None)
    (after,) = _prepared(connection)
    assert after != before


def test_a_prepared_statement_whose_result_type_changed_is_sent_again(
    connection: psycopg.Connection[Any],
) -> None:
    connection.prepare_threshold = 0
    wire, query = Wire(connection), _select(connection)
    assert wire.one(query, ("a",)) == ("a", 1, {"x": [1, 2.5]})
    connection.execute(f'ALTER TABLE "{connection.table}" ALTER v TYPE text', prepare=False)  # type: ignore[attr-defined]
    assert wire.one(query, ("a",)) == ("a", "1", {"x": [1, 2.5]})


def test_a_write_whose_prepared_statement_vanished_runs_once(
    connection: psycopg.Connection[Any],
) -> None:
    connection.prepare_threshold = 0
    wire = Wire(connection)
    table = connection.table  # type: ignore[attr-defined]
    query = f'UPDATE "{table}" SET v = v + %s WHERE id = %s'.encode()
    assert wire.rowcount(query, (1, "a")) == 1
    connection.execute("DEALLOCATE ALL", prepare=False)
    assert wire.rowcount(query, (1, "a")) == 1
    assert wire.rowcount(query, (1, "zz")) == 0
    assert connection.execute(f'SELECT v FROM "{table}" WHERE id = %s', ("a",)).fetchone() == (3,)


def test_parameters_that_do_not_fit_the_placeholders_get_the_cursors_error(
    connection: psycopg.Connection[Any],
) -> None:
    with pytest.raises(psycopg.ProgrammingError, match="placeholder"):
        Wire(connection).one(b"SELECT %s", (1, 2))


def test_a_servers_error_is_psycopgs_own_and_the_connection_stays_usable(
    connection: psycopg.Connection[Any],
) -> None:
    wire = Wire(connection)
    for threshold in (None, 0):
        connection.prepare_threshold = threshold
        with pytest.raises(psycopg.errors.UndefinedTable, match="no_such_table"):
            wire.one(b"SELECT * FROM no_such_table WHERE id = %s", ("a",))
        with pytest.raises(psycopg.errors.DivisionByZero) as caught:
            wire.one(b"SELECT 1 / %s::int", (0,))
        assert caught.value.sqlstate == "22012"
        assert wire.one(_select(connection), ("a",)) is not None


def test_inside_a_pipeline_or_out_of_autocommit_the_cursor_sends_it(
    connection: psycopg.Connection[Any],
) -> None:
    wire = Wire(connection)
    query = _select(connection)
    with connection.pipeline():
        assert wire.one(query, ("a",)) == ("a", 1, {"x": [1, 2.5]})
    connection.autocommit = False
    try:
        assert wire.one(query, ("b",)) == ("b", None, None)
        assert connection.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
    finally:
        connection.rollback()
        connection.autocommit = True


def test_a_stores_calls_use_kvstores_prepared_statements_on_an_injected_connection(
    pg_settings: PostgresSettings,
) -> None:
    connection = connect(pg_settings)
    try:
        store = create_store(
            unique_kind("wired"), backend="aurora", settings=pg_settings, connection=connection
        )
        store.ensure()
        for n in range(6):
            store.put({"id": f"r{n}", "n": n})
            assert store.find({"id": f"r{n}"}) == {"id": f"r{n}", "n": n}
        names = _prepared(connection)
        assert len(names) == 2  # the upsert and the find by key
        pool = injected_pool(pg_settings, connection)
        connection.execute("DEALLOCATE ALL", prepare=False)  # as psycopg does after a ROLLBACK
        assert store.find({"id": "r1"}) == {"id": "r1", "n": 1}
        assert pool.wire(connection) is pool.wire(connection)
    finally:
        connection.close()


def test_a_pipelines_results_are_one_a_statement_and_abort_after_the_first_failure(
    connection: psycopg.Connection[Any],
) -> None:
    wire, table = Wire(connection), connection.table  # type: ignore[attr-defined]
    update = f'UPDATE "{table}" SET v = v + %s WHERE id = %s'.encode()
    for _ in range(6):  # prepared from the fifth run on, inside the pipeline
        results = wire.pipeline(
            [
                ("BEGIN", (), False),
                (update, (1, "a"), True),
                (b"SELECT 1 / %s::int", (0,), True),
                (update, (1, "a"), True),
                ("COMMIT", (), False),
            ]
        )
        assert results is not None
        statuses = [psycopg.pq.ExecStatus(result.status).name for result in results]
        assert statuses == ["COMMAND_OK", "COMMAND_OK", "FATAL_ERROR"] + ["PIPELINE_ABORTED"] * 2
        assert results[2].error_field(psycopg.pq.DiagnosticField.SQLSTATE) == b"22012"
        connection.execute("ROLLBACK")
    assert len(_prepared(connection)) == 2  # a Parse outlives the rollback
    results = wire.pipeline(
        [
            (update, (1, "a"), True),
            (f'SELECT v FROM "{table}" WHERE id = %s'.encode(), ("a",), True),
        ]
    )
    assert results is not None
    assert wire.first_row(results[1]) == (2,)  # six rolled back, one applied


def _waited_for(check: Callable[[], bool], seconds: float = 5.0) -> bool:
    """Whether ``check()`` held within ``seconds`` (asked every 10 ms)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return False


def test_a_pipeline_sends_each_statement_as_soon_as_it_is_made(
    connection: psycopg.Connection[Any], pg_settings: PostgresSettings
) -> None:
    # The server runs the first statement while the caller is still making the second.
    wire, table = Wire(connection), connection.table  # type: ignore[attr-defined]
    pid = connection.info.backend_pid
    seen: list[bool] = []

    def running_first() -> bool:
        row = watcher.execute(
            "SELECT query FROM pg_stat_activity WHERE pid = %s", (pid,), prepare=False
        ).fetchone()
        return row is not None and "SET v = 41" in row[0]

    def statements() -> Iterator[tuple[bytes, tuple[Any, ...], bool]]:
        yield f'UPDATE "{table}" SET v = 41 WHERE id = %s'.encode(), ("a",), True
        seen.append(_waited_for(running_first))
        yield f'UPDATE "{table}" SET v = v + 1 WHERE id = %s'.encode(), ("a",), True

    with connect(pg_settings) as watcher:
        results = wire.pipeline(statements())
    assert results is not None
    assert seen == [True]
    assert wire.one(_select(connection), ("a",)) == ("a", 42, {"x": [1, 2.5]})


def test_a_pipeline_stopped_while_its_statements_are_made_applies_none_of_them(
    connection: psycopg.Connection[Any],
) -> None:
    wire, table = Wire(connection), connection.table  # type: ignore[attr-defined]
    update = f'UPDATE "{table}" SET v = v + 10 WHERE id = %s'.encode()

    def statements(begin: bool) -> Iterator[tuple[bytes, tuple[Any, ...], bool]]:
        if begin:
            yield b"BEGIN", (), False
        yield update, ("a",), True
        raise RuntimeError("no more statements")

    idle, failed = psycopg.pq.TransactionStatus.IDLE, psycopg.pq.TransactionStatus.INERROR
    for begin in (False, True):
        with pytest.raises(RuntimeError, match="no more statements"):
            wire.pipeline(statements(begin))
        # Without a BEGIN, the pipeline's own transaction was rolled back; with one, it is left
        # aborted for the caller to roll back.
        assert connection.info.transaction_status == (failed if begin else idle)
        if begin:
            connection.execute("ROLLBACK")
        assert wire.one(_select(connection), ("a",)) == ("a", 1, {"x": [1, 2.5]})
    # A statement the wire cannot number (a named placeholder) stops it the same way.
    with pytest.raises(psycopg.ProgrammingError, match="cannot send"):
        wire.pipeline([(update, ("a",), True), (b"SELECT %(name)s", (1,), True)])
    assert wire.one(_select(connection), ("a",)) == ("a", 1, {"x": [1, 2.5]})


@pytest.fixture
def counter_store(pg_settings: PostgresSettings) -> Iterator[tuple[Store, psycopg.Connection[Any]]]:
    """A store on an injected connection, holding the counter ``{"id": "c", "n": 0}``."""
    connection = connect(pg_settings)
    store = create_store(
        unique_kind("wiretx"), backend="aurora", settings=pg_settings, connection=connection
    )
    store.ensure()
    store.put({"id": "c", "n": 0})
    yield store, connection
    connection.close()


def _bump(store: Store, key: str, by: int) -> None:
    """A transaction: a put of ``key`` and an increment of the counter by ``by``."""
    with transaction() as tx:
        tx.put(store, {"id": key})
        tx.update(store, {"id": "c", "n": increment(by)})


def test_a_transaction_whose_prepared_steps_were_deallocated_runs_again(
    counter_store: tuple[Store, psycopg.Connection[Any]],
) -> None:
    store, connection = counter_store
    for n in range(6):
        _bump(store, f"p{n}", 1)
    assert _prepared(connection)
    connection.execute("DEALLOCATE ALL", prepare=False)
    _bump(store, "last", 1)
    assert store.find({"id": "c"}) == {"id": "c", "n": 7}
    assert store.count() == 8


def test_a_transaction_inside_the_callers_own_pipeline_goes_through_psycopgs(
    counter_store: tuple[Store, psycopg.Connection[Any]],
) -> None:
    store, connection = counter_store
    with connection.pipeline():
        _bump(store, "p", 2)
    assert store.find({"id": "c"}) == {"id": "c", "n": 2}
    assert store.find({"id": "p"}) == {"id": "p"}
