"""``store.native()``: a reflected SQLAlchemy table and an engine, here joining two kinds."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kvstore import ConfigError, create_store
from kvstore.testing import unique_kind
from kvstore_aurora.settings import PostgresSettings


def test_a_join_between_two_kinds(pg_settings: PostgresSettings) -> None:
    import sqlalchemy as sa

    teams = create_store(unique_kind("teams"), backend="aurora", settings=pg_settings)
    members = create_store(
        unique_kind("members"),
        backend="aurora",
        settings=pg_settings,
        id_field=("team_id", "seq"),
        key_type=(str, int),
    )
    teams.ensure()
    members.ensure()
    teams.put_many([{"id": "t1", "title": "Core"}, {"id": "t2", "title": "Edge"}])
    members.put_many(
        [
            {"team_id": "t1", "seq": 1, "name": "Ada"},
            {"team_id": "t1", "seq": 2, "name": "Bob"},
            {"team_id": "t2", "seq": 1, "name": "Cy"},
        ]
    )
    t, m = teams.native(), members.native()
    assert t.engine is m.engine
    assert teams.native().table is t.table  # reflected once
    query = (
        sa.select(t.table.c.id, sa.func.count(), sa.func.min(m.table.c.doc["name"].astext))
        .select_from(t.table.join(m.table, m.table.c.team_id == t.table.c.id))
        .group_by(t.table.c.id)
        .order_by(t.table.c.id)
    )
    with t.engine.connect() as connection:
        assert connection.execute(query).all() == [("t1", 2, "Ada"), ("t2", 1, "Cy")]


def test_importing_the_backend_does_not_import_sqlalchemy() -> None:
    code = (
        "import sys; from kvstore import create_store; import kvstore_aurora.driver; "
        "assert 'sqlalchemy' not in sys.modules, 'sqlalchemy imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_native_without_sqlalchemy_is_a_config_error_naming_the_extra(
    pg_settings: PostgresSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = create_store(unique_kind("native"), backend="aurora", settings=pg_settings)
    store.ensure()
    store.native()  # reflected and kept while SQLAlchemy was there
    monkeypatch.setitem(sys.modules, "sqlalchemy", None)
    with pytest.raises(ConfigError, match=r"pip install 'kvstore\[aurora-migrations\]'"):
        store.native()
    other = create_store(unique_kind("native"), backend="aurora", settings=pg_settings)
    with pytest.raises(ConfigError, match="SQLAlchemy"):
        other.native()  # before any I/O: its table does not even exist


def test_native_engines_connect_with_the_urls_libpq_parameters(
    pg_settings: PostgresSettings,
) -> None:
    url = (
        f"postgresql://{pg_settings.user}@{pg_settings.host}:{pg_settings.port}/"
        f"{pg_settings.dbname}?application_name=kvstore_native_test"
    )
    store = create_store(unique_kind("native"), backend="aurora", dsn=url)
    store.ensure()
    engine = store.native().engine
    with engine.connect() as connection:
        found = connection.exec_driver_sql("SHOW application_name").scalar()
    assert found == "kvstore_native_test"
