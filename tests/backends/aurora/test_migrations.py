"""The alembic environment: upgrade head then downgrade base on an empty database."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from kvstore import ConfigError, create_store
from kvstore.testing._servers.postgres import create_database, drop_database
from kvstore_aurora.migrate import downgrade, find_alembic_ini, upgrade
from kvstore_aurora.settings import PostgresSettings
from tests.backends.aurora.helpers import connect

REPOSITORY_INI = Path(__file__).resolve().parents[3] / "alembic.ini"
"""The examples' migrations (teams, members), named explicitly: no checkout is ever found on its own."""


@pytest.fixture
def empty_database() -> Iterator[PostgresSettings]:
    """A throwaway, empty database."""
    name = f"kvstore_migrate_test_{os.getpid()}"
    settings = create_database(name)
    yield settings
    from kvstore_aurora.connection import get_pool

    get_pool(settings).close()
    drop_database(name)


def tables(settings: PostgresSettings, schema: str = "public") -> set[str]:
    with connect(settings) as connection:
        rows = connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (schema,),
        ).fetchall()
    return {row[0] for row in rows}


def test_upgrade_head_then_downgrade_base(
    empty_database: PostgresSettings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # the ini named, the directory does not matter
    assert tables(empty_database) == set()
    upgrade("head", empty_database, config=REPOSITORY_INI)
    assert tables(empty_database) == {"alembic_version", "teams", "members"}

    teams = create_store("teams", backend="aurora", settings=empty_database)
    members = create_store(
        "members",
        backend="aurora",
        settings=empty_database,
        id_field=("team_id", "seq"),
        key_type=(str, int),
    )
    teams.put({"id": "t1", "title": "Core"})
    members.put({"team_id": "t1", "seq": 1, "name": "Ada", "role": "lead"})
    assert members.find({"name": "Ada"})["role"] == "lead"
    with connect(empty_database) as connection:
        row = connection.execute("SELECT name, doc FROM members").fetchone()
    assert row == ("Ada", {"role": "lead"})  # name is a real column, the rest in doc

    downgrade("base", empty_database, config=REPOSITORY_INI)
    assert tables(empty_database) == {"alembic_version"}
    with pytest.raises(ConfigError):
        teams.count()


def test_migrations_run_in_db_schema(empty_database: PostgresSettings) -> None:
    settings = empty_database._replace(schema="app")
    upgrade("head", settings, config=REPOSITORY_INI)
    assert tables(settings, "app") == {"alembic_version", "teams", "members"}
    assert tables(settings) == set()
    store = create_store("teams", backend="aurora", settings=settings)
    assert store.put({"id": "a"}) == {"id": "a"}
    downgrade("base", settings, config=REPOSITORY_INI)
    assert tables(settings, "app") == {"alembic_version"}


def test_alembic_ini_comes_from_the_argument_the_environment_or_the_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KVSTORE_ALEMBIC_INI", raising=False)
    with pytest.raises(ConfigError) as none:  # never the kvstore checkout's own
        find_alembic_ini()
    assert str(tmp_path / "alembic.ini") in none.value.message
    assert "kvstore init-migrations migrations" in none.value.message
    here = tmp_path / "alembic.ini"
    here.write_text(REPOSITORY_INI.read_text())
    assert find_alembic_ini() == here.resolve()
    mine = tmp_path / "mine.ini"
    mine.write_text(REPOSITORY_INI.read_text())
    assert find_alembic_ini(mine) == mine.resolve()
    monkeypatch.setenv("KVSTORE_ALEMBIC_INI", str(mine))
    assert find_alembic_ini() == mine.resolve()
    monkeypatch.setenv("KVSTORE_ALEMBIC_INI", str(tmp_path / "gone.ini"))
    with pytest.raises(ConfigError, match=r"gone\.ini.*KVSTORE_ALEMBIC_INI"):
        find_alembic_ini()  # a name given is not silently replaced by ./alembic.ini
    with pytest.raises(ConfigError, match=r"other\.ini.*config"):
        find_alembic_ini(tmp_path / "other.ini")


def test_create_kind_index_in_a_migration_is_the_index_ensure_makes(
    pg_settings: PostgresSettings,
) -> None:
    import sqlalchemy
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    from kvstore import Index, ge
    from kvstore.testing import unique_kind
    from kvstore_aurora.migrate import (
        create_kind_index,
        create_kind_table,
        drop_kind_index,
        sqlalchemy_url,
    )
    from tests.backends.aurora.helpers import explain, plan_of

    indexes = [
        Index("by_email", "email"),
        Index("by_team", ("team", "joined"), key_type=(str, float)),
        Index("by_name", ("name", "age"), key_type=(str, int)),
    ]
    made, migrated = unique_kind("mig"), unique_kind("mig")
    ensured = create_store(made, backend="aurora", settings=pg_settings, indexes=indexes)
    ensured.ensure()
    engine = sqlalchemy.create_engine(sqlalchemy_url(pg_settings))
    with engine.begin() as connection:
        op = Operations(MigrationContext.configure(connection))
        create_kind_table(op, migrated)
        for index in indexes:
            create_kind_index(op, migrated, index)
    store = create_store(migrated, backend="aurora", settings=pg_settings, indexes=indexes)

    def definitions(kind: str) -> list[str]:
        with connect(pg_settings) as connection:
            rows = connection.execute(
                "SELECT indexdef FROM pg_indexes WHERE tablename = %s ORDER BY indexname", (kind,)
            ).fetchall()
        return [row[0].replace(kind, "KIND") for row in rows]

    assert definitions(migrated) == definitions(made)
    assert len(definitions(made)) == 2 + len(indexes)  # the key, doc's GIN index, the three
    store.put_many({"id": f"u{n}", "team": "t", "joined": n / 3} for n in range(50))
    plan = plan_of(store, {"team": "t", "joined": ge(2.0)})
    assert f"{migrated}__by_team" in explain(pg_settings, store, plan, seqscan=False)
    with engine.begin() as connection:
        drop_kind_index(Operations(MigrationContext.configure(connection)), migrated, "by_team")
    engine.dispose()
    assert len(definitions(migrated)) == 1 + len(indexes)
    # Without its index the read is still right, from the table.
    assert [r["id"] for r in store.find_all({"team": "t", "joined": ge(16.0)})] == ["u48", "u49"]
