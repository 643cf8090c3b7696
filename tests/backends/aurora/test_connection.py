"""Connections: opened at first use, shared, replaced when dropped, and errors that say why."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from kvstore import AlreadyExists, BackendUnavailable, ConfigError, Index, Store, create_store
from kvstore.testing import unique_kind
from kvstore_aurora import connection as connections
from kvstore_aurora.connection import get_pool
from kvstore_aurora.settings import PostgresSettings, postgres_settings
from tests.backends.aurora.helpers import kill_store_sessions

PASSWORD = "kvstore-Secret-pw-1234"


@pytest.fixture
def store(pg_settings: PostgresSettings) -> Store:
    made = create_store(unique_kind("conn"), backend="aurora", settings=pg_settings)
    made.ensure()
    made.put({"id": "a", "v": 1})
    return made


def _chain(exc: BaseException | None) -> list[BaseException]:
    found = []
    while exc is not None:
        found.append(exc)
        exc = exc.__cause__ or exc.__context__
    return found


def test_creating_a_store_does_no_io() -> None:
    settings = postgres_settings({"DATABASE_URL": "postgresql://u@127.0.0.1:1/nowhere"})
    store = create_store("nowhere", backend="aurora", settings=settings)
    assert get_pool(settings).opened == 0
    with pytest.raises(BackendUnavailable):
        store.count()


def test_an_unknown_option_raises_type_error(pg_settings: PostgresSettings) -> None:
    with pytest.raises(TypeError, match="colour"):
        create_store("teams", backend="aurora", settings=pg_settings, colour="red")


def test_stores_of_a_configuration_share_one_connection(
    pg_settings: PostgresSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("DB_SSLMODE", "DB_PREPARE", "DB_SCHEMA"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DB_CONNECT_TIMEOUT", str(pg_settings.connect_timeout))
    pool = get_pool(pg_settings)
    pool.close()
    before = pool.opened
    first = create_store(unique_kind("share"), backend="aurora", settings=pg_settings)
    # The same configuration through another route (a DSN, another schema) shares it too.
    url = f"postgresql://{pg_settings.user}@{pg_settings.host}:{pg_settings.port}/{pg_settings.dbname}"
    second = create_store(unique_kind("share"), backend="aurora", dsn=url, schema="public")
    for made in (first, second):
        made.ensure()
        made.put({"id": "x"})
        assert made.find({"id": "x"}) == {"id": "x"}
        assert made._driver.pool is pool  # type: ignore[attr-defined]
    assert pool.opened - before == 1


def test_an_idle_connection_dropped_by_the_server_is_replaced(
    store: Store, pg_settings: PostgresSettings
) -> None:
    pool = get_pool(pg_settings)
    opened = pool.opened
    assert kill_store_sessions(pg_settings) >= 1
    assert store.find({"id": "a"}) == {"id": "a", "v": 1}
    assert pool.opened == opened + 1
    kill_store_sessions(pg_settings)
    # Found dead before anything was sent, so even a create goes through.
    assert store.create({"id": "b"}) == {"id": "b"}


def test_one_row_calls_reuse_one_cursor_and_a_closed_connection_drops_it(
    store: Store, pg_settings: PostgresSettings
) -> None:
    pool = get_pool(pg_settings)
    store.find({"id": "a"})
    with pool.connection() as connection:
        cursor = pool.cursor(connection)
    store.put({"id": "c", "v": 3})
    assert store.count() == 2
    with pool.connection() as connection:
        assert pool.cursor(connection) is cursor
    assert kill_store_sessions(pg_settings) >= 1
    assert store.find({"id": "c"}) == {"id": "c", "v": 3}  # on a new connection, a new cursor
    with pool.connection() as connection:
        assert pool.cursor(connection) is not cursor
        assert pool.cursor(connection).connection is connection
    pool.close()
    assert cursor.connection.closed
    assert not pool._wires  # no cursor (nor wire) outlives its connection


@pytest.fixture
def unnoticed_drop(monkeypatch: pytest.MonkeyPatch, pg_settings: PostgresSettings) -> Any:
    """Kill the sessions in a way the idle check cannot see (as a silent network drop)."""

    def drop() -> None:
        with get_pool(pg_settings).connection():
            pass  # the pool holds an idle connection, which dies
        kill_store_sessions(pg_settings)
        monkeypatch.setattr(connections, "_alive", lambda connection: True)

    return drop


def test_a_read_that_loses_its_connection_is_retried(store: Store, unnoticed_drop: Any) -> None:
    unnoticed_drop()
    assert store.find({"id": "a"}) == {"id": "a", "v": 1}
    unnoticed_drop()
    assert store.find_all() == [{"id": "a", "v": 1}]
    unnoticed_drop()
    assert store.count({"v": 1}) == 1


def test_idempotent_writes_that_lose_their_connection_are_retried(
    store: Store, unnoticed_drop: Any
) -> None:
    unnoticed_drop()
    assert store.put({"id": "a", "v": 2}) == {"id": "a", "v": 2}
    unnoticed_drop()
    assert store.update({"id": "a", "w": 3}) == {"id": "a", "v": 2, "w": 3}
    unnoticed_drop()
    assert store.put_many([{"id": "c"}, {"id": "d"}]) == 2
    assert store.count() == 3


def test_a_create_that_loses_its_connection_is_retried_and_creates_once(
    store: Store, unnoticed_drop: Any
) -> None:
    # The retry reports a conflict with the first attempt's own record when that one went
    # through (Conflict.retried): either way the record is created, once.
    unnoticed_drop()
    assert store.create({"id": "new"}) == {"id": "new"}
    assert store.find({"id": "new"}) == {"id": "new"}
    with pytest.raises(AlreadyExists):
        store.create({"id": "new"})


def test_deletes_that_lose_their_connection_are_retried(store: Store, unnoticed_drop: Any) -> None:
    # Deleting twice leaves the same records (as DynamoDB, which retries them too).
    store.put({"id": "b"})
    unnoticed_drop()
    assert store.remove({"id": "a"}) == 1
    unnoticed_drop()
    assert store.truncate(force=True) == 1
    assert store.count() == 0


def test_writes_that_are_not_idempotent_are_not_sent_twice(
    store: Store, unnoticed_drop: Any
) -> None:
    # An increment, or a write guarded by expect, that was sent before its connection was found
    # lost may have been applied: BackendUnavailable, never a second attempt.
    from kvstore import increment

    unnoticed_drop()
    with pytest.raises(BackendUnavailable):
        store.update({"id": "a", "v": increment(1)})
    unnoticed_drop()
    with pytest.raises(BackendUnavailable):
        store.update({"id": "a", "w": 1}, expect={"v": 1})
    assert store.find({"id": "a"}) == {"id": "a", "v": 1}  # the next call has a fresh connection


def test_a_refused_login_is_a_config_error_without_the_password(
    pg_settings: PostgresSettings,
) -> None:
    settings = pg_settings._replace(
        user="kvstore_nobody", password=type(pg_settings.password)(PASSWORD)
    )
    store = create_store("teams", backend="aurora", settings=settings)
    with pytest.raises(ConfigError) as info:
        store.find({"id": "a"})
    assert "kvstore_nobody" in str(info.value)
    for exc in _chain(info.value):
        assert PASSWORD not in str(exc)
        assert PASSWORD not in repr(exc)
    assert PASSWORD not in repr(store)
    assert PASSWORD not in repr(settings)


def test_an_unreachable_server_is_backend_unavailable() -> None:
    with socket.socket() as sock:  # a local port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = postgres_settings(
        {
            "DATABASE_URL": f"postgresql://u:{PASSWORD}@127.0.0.1:{port}/db",
            "DB_CONNECT_TIMEOUT": "2",
        }
    )
    store = create_store("teams", backend="aurora", settings=settings)
    with pytest.raises(BackendUnavailable) as info:
        store.count()
    assert info.value.code == "BACKEND_UNAVAILABLE"
    for exc in _chain(info.value):
        assert PASSWORD not in str(exc)


def test_settings_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, pg_settings: PostgresSettings
) -> None:
    monkeypatch.setenv("DB_HOST", pg_settings.host or "127.0.0.1")
    monkeypatch.setenv("DB_PORT", str(pg_settings.port))
    monkeypatch.setenv("DB_NAME", pg_settings.dbname or "")
    monkeypatch.setenv("DB_USER", pg_settings.user or "")
    monkeypatch.setenv("DB_PREPARE", "off")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("SLS_STAGE", raising=False)
    store = create_store(unique_kind("env"), backend="aurora")
    store.ensure()
    for i in range(8):  # past psycopg's prepare threshold: nothing may be prepared
        store.put({"id": "a", "i": i})
    assert store.find({"id": "a"}) == {"id": "a", "i": 7}
    pool = get_pool(postgres_settings())
    with pool.connection() as connection:
        assert connection.prepare_threshold is None
        prepared = connection.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()
    assert prepared == (0,)


def test_dsn_option_and_missing_schema(pg_settings: PostgresSettings) -> None:
    url = f"postgresql://{pg_settings.user}@{pg_settings.host}:{pg_settings.port}/{pg_settings.dbname}"
    store = create_store(unique_kind("dsn"), backend="aurora", dsn=url, schema="no_such_schema")
    with pytest.raises(ConfigError, match="ensure"):
        store.count()
    with pytest.raises(ConfigError):
        store.ensure()


ACCESS: dict[str, tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any] | None]] = {
    # name: (create_store options, the records, filters for iter_all; None: find_in)
    "scan": ({}, [{"id": f"r{n:03}", "n": n} for n in range(23)], {}),
    "partition": (
        {"id_field": ("team", "seq"), "key_type": (str, int)},
        [{"team": t, "seq": n, "n": n} for t in ("t1", "t2") for n in range(23)],
        {"team": "t2"},
    ),
    "partitions": (  # find_in on the partition key, streamed: several partitions in one read
        {"id_field": ("team", "seq"), "key_type": (str, int)},
        [{"team": t, "seq": n, "n": n} for t in ("t1", "t2", "t3") for n in range(9)],
        None,
    ),
    "index": (
        {"indexes": [Index("by_group", ("group", "rank"), key_type=(str, float))]},
        [{"id": f"r{n:03}", "group": "g" + str(n % 2), "rank": n % 5} for n in range(46)],
        {"group": "g1"},
    ),
}


@pytest.mark.parametrize("access", ACCESS)
def test_a_connection_lost_in_the_middle_of_a_stream_resumes_after_the_last_record(
    pg_settings: PostgresSettings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    access: str,
) -> None:
    from kvstore_aurora import streaming

    options, records, filters = ACCESS[access]
    store: Any = create_store(
        unique_kind("lost"), backend="aurora", settings=pg_settings, **options
    )
    store.ensure()
    store.put_many(records)
    monkeypatch.setattr(streaming, "PAGE_SIZE", 2)
    real, fetches = streaming._fetch, [0]

    def fetch(name: bytes) -> bytes:  # the sessions die before the 3rd and the 6th FETCH
        fetches[0] += 1
        if fetches[0] in (3, 6):
            kill_store_sessions(pg_settings)
        return real(name)

    monkeypatch.setattr(streaming, "_fetch", fetch)
    caplog.set_level("INFO", logger="kvstore.aurora")
    if filters is None:
        seen = store.find_in("team", ["t1", "t3"])
        expected = [r for r in records if r["team"] in ("t1", "t3")]
    else:
        seen = list(store.iter_all(filters))
        expected = [r for r in records if all(r[f] == v for f, v in filters.items())]
    assert caplog.text.count("resuming after the last record") == 2
    key = store.schema.key_of
    assert sorted(map(key, seen)) == sorted(map(key, expected)), "a record came twice or never"
    assert sorted(seen, key=key) == sorted(expected, key=key)


def test_a_stream_lost_again_where_it_resumed_is_backend_unavailable(
    store: Store, pg_settings: PostgresSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kvstore_aurora import streaming

    monkeypatch.setattr(streaming, "PAGE_SIZE", 2)
    store.put_many({"id": f"r{n}"} for n in range(10))
    records = store.iter_all()
    next(records)
    real = streaming._fetch

    def fetch_and_lose(name: bytes) -> bytes:  # every FETCH finds its session killed
        kill_store_sessions(pg_settings)
        return real(name)

    monkeypatch.setattr(streaming, "_fetch", fetch_and_lose)
    with pytest.raises(BackendUnavailable):
        list(records)
    monkeypatch.setattr(streaming, "_fetch", real)
    assert store.count() == 11


def test_a_closed_injected_connection_is_backend_unavailable(
    pg_settings: PostgresSettings,
) -> None:
    from tests.backends.aurora.helpers import connect

    connection = connect(pg_settings)
    store = create_store(
        unique_kind("inj"), backend="aurora", settings=pg_settings, connection=connection
    )
    store.ensure()
    store.put({"id": "a"})
    connection.close()
    with pytest.raises(BackendUnavailable, match="injected"):
        store.find({"id": "a"})


def test_a_bad_sslmode_is_a_config_error(pg_settings: PostgresSettings) -> None:
    settings = pg_settings._replace(sslmode="bogus")
    with pytest.raises(ConfigError, match="sslmode"):
        create_store("teams", backend="aurora", settings=settings).count()


def test_no_repr_shows_the_password() -> None:
    from kvstore_aurora.migrate import sqlalchemy_url
    from kvstore_aurora.native import _engine

    settings = postgres_settings({"DATABASE_URL": f"postgresql://u:{PASSWORD}@h:5432/db"})
    store = create_store("teams", backend="aurora", settings=settings)
    shown = [repr(store), repr(store._driver), repr(get_pool(settings)), repr(settings)]  # type: ignore[attr-defined]
    shown += [repr(sqlalchemy_url(settings)), repr(_engine(settings)), str(settings.password)]
    for text in shown:
        assert PASSWORD not in text
    assert sqlalchemy_url(settings).password == PASSWORD  # given to the driver, only shown masked
