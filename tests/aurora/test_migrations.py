"""The alembic environment: upgrade head then downgrade base on an empty database."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from kvstore import ConfigError, create_store
from kvstore.config import PostgresSettings
from kvstore.testing.postgres import create_database, drop_database
from kvstore_aurora.migrate import downgrade, find_alembic_ini, upgrade
from tests.aurora.helpers import connect


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
    monkeypatch.chdir(tmp_path)  # the repository's alembic.ini is found from anywhere
    assert tables(empty_database) == set()
    upgrade("head", empty_database)
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

    downgrade("base", empty_database)
    assert tables(empty_database) == {"alembic_version"}
    with pytest.raises(ConfigError):
        teams.count()


def test_migrations_run_in_db_schema(empty_database: PostgresSettings) -> None:
    settings = empty_database._replace(schema="app")
    upgrade("head", settings)
    assert tables(settings, "app") == {"alembic_version", "teams", "members"}
    assert tables(settings) == set()
    store = create_store("teams", backend="aurora", settings=settings)
    assert store.put({"id": "a"}) == {"id": "a"}
    downgrade("base", settings)
    assert tables(settings, "app") == {"alembic_version"}


def test_alembic_ini_comes_from_the_argument_the_environment_or_the_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KVSTORE_ALEMBIC_INI", raising=False)
    checkout = find_alembic_ini()
    assert (checkout.parent / "migrations" / "env.py").is_file()
    mine = tmp_path / "mine.ini"
    mine.write_text(checkout.read_text())
    assert find_alembic_ini(mine) == mine.resolve()
    monkeypatch.setenv("KVSTORE_ALEMBIC_INI", str(mine))
    assert find_alembic_ini() == mine.resolve()
