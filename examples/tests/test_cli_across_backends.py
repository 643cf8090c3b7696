"""The ``kvstore`` command on the real servers: copy DynamoDB Local -> PostgreSQL, diff, migrate."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from click.testing import CliRunner, Result

from examples.conftest import FAKE_AWS
from kvstore import ConfigError, create_store
from kvstore.cli import cli

KEY = ("--id-field", "team_id", "--id-field", "seq", "--key-type", "str", "--key-type", "int")


def kvstore(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def both_servers(
    monkeypatch: pytest.MonkeyPatch, examples_database_url: str, examples_dynamodb_local: str
) -> str:
    """DynamoDB Local and PostgreSQL settings both in the environment; a fresh kind name."""
    monkeypatch.delenv("STORE_BACKEND", raising=False)
    for variable, value in FAKE_AWS.items():
        monkeypatch.setenv(variable, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", examples_dynamodb_local)
    monkeypatch.setenv("DYNAMO_TABLE_PREFIX", "")
    monkeypatch.setenv("DATABASE_URL", examples_database_url)
    return f"copy{uuid.uuid4().hex[:12]}"


def test_copy_dynamodb_local_to_postgresql_then_diff(both_servers: str) -> None:
    kind = both_servers
    source = create_store(kind, backend="dynamo", id_field=("team_id", "seq"), key_type=(str, int))
    source.ensure()
    source.put_many(
        {"team_id": f"t{n % 9}", "seq": n, "name": f"m{n}", "score": n / 4, "flags": [n % 2 == 0]}
        for n in range(1500)
    )
    copied = kvstore("copy", kind, "--from", "dynamo", "--to", "aurora", *KEY)
    assert copied.exit_code == 0, copied.output
    assert "copied 1,500/1,500 records" in copied.stderr
    assert kvstore("diff", kind, "--from", "dynamo", "--to", "aurora", *KEY).exit_code == 0

    target = create_store(kind, backend="aurora", id_field=("team_id", "seq"), key_type=(str, int))
    target.update({"team_id": "t4", "seq": 13, "score": 99})
    target.remove({"team_id": "t0", "seq": 9})
    changed = kvstore("diff", kind, "--from", "dynamo", "--to", "aurora", *KEY)
    assert changed.exit_code == 1
    assert [json.loads(line) for line in changed.stdout.splitlines()] == [
        {"key": {"team_id": "t0", "seq": 9}, "missing_in": "to"},
        {
            "key": {"team_id": "t4", "seq": 13},
            "differs": [{"field": "score", "from": 3.25, "to": 99}],
        },
        {"differences": 2, "compared": 1500},
    ]
    assert kvstore("copy", kind, "--from", "dynamo", "--to", "aurora", *KEY).exit_code == 0
    assert kvstore("diff", kind, "--from", "dynamo", "--to", "aurora", *KEY).exit_code == 0


@pytest.fixture
def fresh_database(monkeypatch: pytest.MonkeyPatch, examples_database_url: str) -> Iterator[str]:
    """An empty PostgreSQL database named by DATABASE_URL, STORE_BACKEND=aurora."""
    from kvstore.testing._servers.postgres import create_database, drop_database
    from kvstore_aurora.connection import get_pool
    from kvstore_aurora.settings import postgres_settings

    name = f"kvstore_migrate_{os.getpid()}"
    create_database(name)
    url = urlunsplit(urlsplit(examples_database_url)._replace(path="/" + name))
    monkeypatch.setenv("STORE_BACKEND", "aurora")
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("DB_CONNECT_TIMEOUT", "10")
    # The repository's alembic.ini, from whatever directory the tests run in.
    monkeypatch.setenv(
        "KVSTORE_ALEMBIC_INI", str(Path(__file__).resolve().parents[2] / "alembic.ini")
    )
    yield url
    get_pool(postgres_settings()).close()
    drop_database(name)


def test_migrate_runs_alembic_on_aurora(fresh_database: str) -> None:
    teams = create_store("teams")
    with pytest.raises(ConfigError):
        teams.count()
    result = kvstore("migrate")
    assert result.exit_code == 0, result.output
    assert teams.count() == 0
    members = create_store("members", id_field=("team_id", "seq"), key_type=(str, int))
    assert members.put({"team_id": "t", "seq": 1, "name": "Ada"}) == {
        "team_id": "t",
        "seq": 1,
        "name": "Ada",
    }
