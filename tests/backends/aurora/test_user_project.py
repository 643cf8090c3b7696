"""Alembic in a user's own project, end to end: ``kvstore init-migrations`` in a temporary
directory outside this repository, a migration using ``create_kind_table``/``create_kind_index``,
then ``kvstore migrate`` and ``alembic upgrade head`` (the console scripts, in processes of their
own) on a fresh PostgreSQL database, the kind used through ``create_store``, ``downgrade``, offline
``--sql``; and the clear errors around it (files that exist, an env.py from ``alembic init``, no
alembic.ini, no alembic)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from kvstore import ConfigError, Index, InvalidArgument, create_store
from kvstore.testing._servers.postgres import create_database, drop_database, server_url
from kvstore_aurora.migrate import init_migrations, migrate, upgrade
from kvstore_aurora.settings import PostgresSettings, postgres_settings
from tests.backends.aurora.helpers import connect

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
"""The console scripts of the interpreter running the tests (the project's .venv)."""

Run = Callable[..., "subprocess.CompletedProcess[str]"]

USERS_MIGRATION = """
def upgrade() -> None:
    create_kind_table(op, "users")
    create_kind_index(op, "users", Index("by_email", "email"))
    create_kind_index(
        op, "users", Index("by_team", ("team", "joined"), key_type=(str, float))
    )


def downgrade() -> None:
    drop_kind_index(op, "users", "by_team")
    drop_kind_index(op, "users", "by_email")
    drop_kind_table(op, "users")
"""
"""What the user writes in place of the bodies of a revision that `alembic revision` made."""

USER_INDEXES = [
    Index("by_email", "email"),
    Index("by_team", ("team", "joined"), key_type=(str, float)),
]


class Project:
    """A user's project directory with its own fresh database, and the environment the user's
    shell would have (``DATABASE_URL``, ``STORE_BACKEND=aurora``; no other database setting)."""

    def __init__(self, path: Path, url: str) -> None:
        self.path = path
        self.url = url
        self.env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("DB_", "LOCAL_DB_", "KVSTORE_", "ALEMBIC_"))
            and name not in ("DATABASE_URL", "SLS_STAGE", "STORE_BACKEND", "PYTHONPATH")
        }
        self.env.update(DATABASE_URL=url, STORE_BACKEND="aurora", DB_CONNECT_TIMEOUT="10")

    @property
    def settings(self) -> PostgresSettings:
        """The settings the store reads from the project's environment."""
        return postgres_settings(self.env)

    def run(self, program: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """``program`` (a console script of the test's interpreter) in the project directory."""
        script = BIN / program
        if not script.exists():
            pytest.fail(f"no console script at {script}: install the project (pip install -e .)")
        return subprocess.run(
            [str(script), *args],
            capture_output=True,
            text=True,
            cwd=self.path,
            env={**self.env, **env},
            timeout=120,
            check=False,
        )

    def tables(self, schema: str = "public") -> set[str]:
        with connect(self.settings) as connection:
            rows = connection.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (schema,),
            ).fetchall()
        return {row[0] for row in rows}

    def indexes(self, table: str, schema: str = "public") -> set[str]:
        with connect(self.settings) as connection:
            rows = connection.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = %s",
                (schema, table),
            ).fetchall()
        return {row[0] for row in rows}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    """An empty project directory outside this repository (the working directory), and a fresh
    database named by its ``DATABASE_URL``."""
    directory = tmp_path / "myapp"
    directory.mkdir()
    assert ROOT not in directory.resolve().parents  # nothing of the checkout is found from here
    monkeypatch.chdir(directory)
    for name in list(os.environ):
        if name.startswith(("DB_", "LOCAL_DB_", "KVSTORE_ALEMBIC", "ALEMBIC_")) or name in (
            "DATABASE_URL",
            "SLS_STAGE",
        ):
            monkeypatch.delenv(name)
    name = f"kvstore_user_project_{os.getpid()}"
    create_database(name)
    url = urlunsplit(urlsplit(server_url())._replace(path="/" + name, query=""))
    made = Project(directory, url)
    yield made
    from kvstore_aurora.connection import get_pool

    for schema in (None, "app"):
        get_pool(made.settings._replace(schema=schema)).close()
    drop_database(name)


def summary(result: subprocess.CompletedProcess[str]) -> dict[str, object]:
    """The one JSON object a kvstore command prints on stdout."""
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    found: dict[str, object] = json.loads(line)
    return found


def one_error(result: subprocess.CompletedProcess[str], code: str) -> str:
    """The message of the one ``error: CODE: message`` line of a failed kvstore command."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: {code}: "), line
    return line


def test_init_migrate_use_downgrade_upgrade_and_offline_sql(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    # 1. The setup, written by the console script.
    created = summary(project.run("kvstore", "init-migrations", "migrations"))
    assert created == {
        "created": [
            "migrations/versions/",
            "alembic.ini",
            "migrations/env.py",
            "migrations/script.py.mako",
        ]
    }
    ini = (project.path / "alembic.ini").read_text()
    assert "script_location = %(here)s/migrations" in ini
    assert not re.search(r"^sqlalchemy\.url", ini, re.M)  # the URL comes from kvstore's settings
    assert list((project.path / "migrations" / "versions").iterdir()) == []

    # 2. A migration, made by alembic from the project's script.py.mako, then written by the user.
    made = project.run("alembic", "revision", "-m", "create users")
    assert made.returncode == 0, made.stderr
    [revision_file] = (project.path / "migrations" / "versions").glob("*_create_users.py")
    source = revision_file.read_text()
    assert "from kvstore_aurora.migrate import" in source  # the helpers come with the template
    body = source.index("\ndef upgrade()")
    revision_file.write_text(source[:body] + USERS_MIGRATION)
    revision = re.search(r'^revision = "(\w+)"', source, re.M) or re.search(
        r"^revision = '(\w+)'", source, re.M
    )
    assert revision is not None

    # 3. kvstore migrate (alembic upgrade head through kvstore's settings) on the fresh database.
    assert project.tables() == set()
    migrated = summary(project.run("kvstore", "migrate"))
    assert migrated["backend"] == "aurora"
    assert f"now at {revision.group(1)}" in str(migrated["summary"])
    assert str(project.path / "alembic.ini") in str(migrated["summary"])
    assert project.tables() == {"alembic_version", "users"}
    assert project.indexes("users") == {
        "users_pkey",
        "users_doc_gin",
        "users__by_email",
        "users__by_team",
    }

    # 4. The kind, through create_store on the aurora backend, served by the migration's index.
    users = create_store("users", backend="aurora", settings=project.settings, indexes=USER_INDEXES)
    users.put({"id": "u1", "email": "ada@example.com", "team": "t1", "joined": 2024.5})
    users.put({"id": "u2", "email": "bob@example.com", "team": "t1", "joined": 2025})
    assert users.explain({"email": "ada@example.com"}) == "index:by_email"
    assert users.find({"email": "bob@example.com"})["id"] == "u2"
    assert [r["id"] for r in users.find_all({"team": "t1"})] == ["u1", "u2"]

    # 5. alembic downgrade (the alembic console script), then upgrade head again.
    down = project.run("alembic", "downgrade", "base")
    assert down.returncode == 0, down.stderr
    assert project.tables() == {"alembic_version"}
    with pytest.raises(ConfigError):
        users.count()
    up = project.run("alembic", "upgrade", "head")
    assert up.returncode == 0, up.stderr
    assert project.tables() == {"alembic_version", "users"}
    assert "users__by_team" in project.indexes("users")
    assert users.count() == 0

    # 6. Offline: the SQL, printed, needing no server at all (DATABASE_URL unset).
    offline = project.run("alembic", "upgrade", "head", "--sql", DATABASE_URL="")
    assert offline.returncode == 0, offline.stderr
    assert "CREATE TABLE users" in offline.stdout
    assert 'CREATE INDEX IF NOT EXISTS "users__by_email" ON "users"' in offline.stdout
    assert f"INSERT INTO alembic_version (version_num) VALUES ('{revision.group(1)}')" in (
        offline.stdout
    )
    assert "search_path" not in offline.stdout
    in_schema = project.run("alembic", "upgrade", "head", "--sql", DB_SCHEMA="app")
    assert in_schema.returncode == 0, in_schema.stderr
    assert 'CREATE SCHEMA IF NOT EXISTS "app"' in in_schema.stdout
    assert 'SET search_path TO "app"' in in_schema.stdout
    assert "CREATE TABLE app.alembic_version" in in_schema.stdout
    assert project.tables("app") == set()  # printed, not run
    upgrade(settings=project.settings._replace(schema="app"), sql=True)  # the same, from code
    printed = capsys.readouterr().out
    assert 'SET search_path TO "app"' in printed
    assert 'CREATE INDEX IF NOT EXISTS "users__by_team" ON "users"' in printed
    assert project.tables("app") == set()


def test_init_with_a_kind_writes_its_first_migration_run_in_db_schema(project: Project) -> None:
    created = summary(
        project.run(
            "kvstore",
            "init-migrations",
            "db/migrations",
            "--kind",
            "members",
            *("--id-field", "team_id", "--id-field", "seq"),
            *("--key-type", "str", "--key-type", "int"),
            *("--index", "by_name:name", "--index", "by_role:role,since:str,int"),
        )
    )
    [migration] = (project.path / "db" / "migrations" / "versions").glob("*_create_members.py")
    assert created["created"] == [
        "db/migrations/versions/",
        "alembic.ini",
        "db/migrations/env.py",
        "db/migrations/script.py.mako",
        f"db/migrations/versions/{migration.name}",
    ]
    source = migration.read_text()
    assert 'ID_FIELDS = ("team_id", "seq")' in source
    assert "KEY_TYPES = (str, int)" in source
    assert 'Index("by_role", ("role", "since"), key_type=(str, int))' in source
    # What the project lints its code with finds nothing to say about what was written.
    linted = subprocess.run(
        [str(BIN / "ruff"), "check", "--isolated", "--select", "E,F,W,I,UP,B", "."],
        capture_output=True,
        text=True,
        cwd=project.path,
        timeout=120,
        check=False,
    )
    assert linted.returncode == 0, linted.stdout

    upgraded = project.run("alembic", "upgrade", "head", DB_SCHEMA="app")
    assert upgraded.returncode == 0, upgraded.stderr
    assert project.tables("app") == {"alembic_version", "members"}
    assert project.tables() == set()
    assert project.indexes("members", "app") >= {"members__by_name", "members__by_role"}
    with connect(project.settings) as connection:
        columns = connection.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'app' AND table_name = 'members' ORDER BY ordinal_position"
        ).fetchall()
    assert columns == [("team_id", "text"), ("seq", "bigint"), ("doc", "jsonb")]
    members = create_store(
        "members",
        backend="aurora",
        settings=project.settings._replace(schema="app"),
        id_field=("team_id", "seq"),
        key_type=(str, int),
        indexes=[Index("by_name", "name"), Index("by_role", ("role", "since"), (str, int))],
    )
    members.put({"team_id": "t", "seq": 1, "name": "Ada", "role": "lead", "since": 2020})
    assert members.explain({"role": "lead"}) == "index:by_role"
    assert members.find({"role": "lead"})["name"] == "Ada"
    # kvstore migrate with DB_SCHEMA: already at head there, nothing to do.
    assert "now at" in str(summary(project.run("kvstore", "migrate", DB_SCHEMA="app"))["summary"])


def test_nothing_is_overwritten(project: Project) -> None:
    (project.path / "migrations").mkdir()
    mine = project.path / "migrations" / "env.py"
    mine.write_text("# the user's own env.py\n")
    with pytest.raises(ConfigError) as refused:
        init_migrations("migrations")
    assert "migrations/env.py" in refused.value.message
    assert mine.read_text() == "# the user's own env.py\n"
    assert not (project.path / "alembic.ini").exists()  # checked before anything is written
    assert not (project.path / "migrations" / "versions").exists()

    message = one_error(project.run("kvstore", "init-migrations", "migrations"), "CONFIG_ERROR")
    assert "refusing to overwrite" in message
    assert mine.read_text() == "# the user's own env.py\n"

    # Elsewhere, with the ini beside it: written; then a kind cannot join existing migrations.
    written = init_migrations("other/migrations", ini="other/alembic.ini", kind="teams")
    assert Path("other/alembic.ini") in written  # paths as given, relative to the directory
    assert (
        "script_location = %(here)s/migrations" in (project.path / "other/alembic.ini").read_text()
    )
    (project.path / "other" / "alembic.ini").unlink()
    (project.path / "other" / "migrations" / "env.py").unlink()
    (project.path / "other" / "migrations" / "script.py.mako").unlink()
    with pytest.raises(ConfigError, match="already holds migrations"):
        init_migrations("other/migrations", ini="other/alembic.ini", kind="members")


def test_the_kind_is_checked_as_create_store_checks_it(project: Project) -> None:
    with pytest.raises(InvalidArgument):
        init_migrations("migrations", kind="X")
    with pytest.raises(InvalidArgument):
        init_migrations("migrations", kind="teams", id_field=("a", "b", "c"))
    with pytest.raises(InvalidArgument):
        init_migrations("migrations", indexes=[Index("by_email", "email")])  # whose index?
    assert list(project.path.iterdir()) == []
    message = one_error(
        project.run("kvstore", "init-migrations", "migrations", "--index", "by_email:email"),
        "INVALID_ARGUMENT",
    )
    assert "--kind" in message
    message = one_error(
        project.run("kvstore", "init-migrations", "m", "--kind", "teams", "--index", "bad"),
        "INVALID_ARGUMENT",
    )
    assert "--index" in message
    assert list(project.path.iterdir()) == []


def test_an_env_py_from_alembic_init_gets_a_clear_error_then_works_as_told(
    project: Project,
) -> None:
    init = project.run("alembic", "init", "migrations")
    assert init.returncode == 0, init.stderr
    assert "driver://" in (project.path / "alembic.ini").read_text()  # alembic's placeholder
    message = one_error(project.run("kvstore", "migrate"), "CONFIG_ERROR")
    assert "sqlalchemy.url = driver://..." in message
    assert "kvstore_aurora.alembic_env.run_migrations(context)" in message
    assert project.tables() == set()

    # Done as the message says: the env.py calls kvstore's run_migrations.
    (project.path / "migrations" / "env.py").write_text(
        "from alembic import context\n\n"
        "from kvstore_aurora.alembic_env import run_migrations\n\n"
        "run_migrations(context)\n"
    )
    assert summary(project.run("kvstore", "migrate"))["backend"] == "aurora"
    assert project.tables() == {"alembic_version"}  # no migration yet: only alembic's table


def test_without_alembic_ini_the_error_says_where_it_looked_and_how_to_make_one(
    project: Project,
) -> None:
    message = one_error(project.run("kvstore", "migrate"), "CONFIG_ERROR")
    assert str(project.path / "alembic.ini") in message
    assert "kvstore init-migrations migrations" in message
    assert "KVSTORE_ALEMBIC_INI" in message
    gone = project.path / "elsewhere.ini"
    message = one_error(
        project.run("kvstore", "migrate", KVSTORE_ALEMBIC_INI=str(gone)), "CONFIG_ERROR"
    )
    assert str(gone) in message
    # KVSTORE_ALEMBIC_INI names an ini anywhere: migrate runs from another directory.
    init_migrations("migrations")
    elsewhere = project.path.parent / "elsewhere"
    elsewhere.mkdir()
    ini = str(project.path / "alembic.ini")
    done = subprocess.run(
        [str(BIN / "kvstore"), "migrate"],
        capture_output=True,
        text=True,
        cwd=elsewhere,
        env={**project.env, "KVSTORE_ALEMBIC_INI": ini},
        timeout=120,
        check=False,
    )
    assert ini in str(summary(done)["summary"])
    assert project.tables() == {"alembic_version"}


def test_connection_errors_are_kvstore_errors_under_both_commands(project: Project) -> None:
    init_migrations("migrations")
    refused = "postgresql://nobody:s3cret-pw@" + urlsplit(project.url).netloc.split("@")[-1]
    refused += urlsplit(project.url).path
    message = one_error(project.run("kvstore", "migrate", DATABASE_URL=refused), "CONFIG_ERROR")
    assert "refused" in message
    assert "s3cret-pw" not in message
    under_alembic = project.run("alembic", "upgrade", "head", DATABASE_URL=refused)
    said = under_alembic.stdout + under_alembic.stderr
    assert under_alembic.returncode != 0
    assert "Traceback" not in said
    assert "FAILED: CONFIG_ERROR: PostgreSQL at nobody@" in under_alembic.stdout  # alembic's way
    assert "s3cret-pw" not in said


@pytest.mark.parametrize("call", ["upgrade", "migrate", "kvstore migrate"])
def test_without_alembic_the_error_names_the_extra(
    project: Project, monkeypatch: pytest.MonkeyPatch, call: str
) -> None:
    init_migrations("migrations")
    for module in [m for m in sys.modules if m == "alembic" or m.startswith("alembic.")]:
        monkeypatch.setitem(sys.modules, module, None)  # import alembic now fails, as uninstalled
    monkeypatch.setitem(sys.modules, "alembic", None)
    if call == "kvstore migrate":
        from click.testing import CliRunner

        from kvstore.cli import cli

        monkeypatch.setenv("DATABASE_URL", project.url)
        result = CliRunner().invoke(cli, ["--backend", "aurora", "migrate"])
        assert result.exit_code == 2
        assert "error: CONFIG_ERROR: " in result.output
        assert "pip install 'kvstore[aurora-migrations]'" in result.output
        return
    run = upgrade if call == "upgrade" else lambda **options: migrate([], **options)
    with pytest.raises(ConfigError, match=re.escape("pip install 'kvstore[aurora-migrations]'")):
        run(settings=project.settings)


@pytest.mark.slow
def test_the_templates_ship_in_the_wheel(tmp_path: Path) -> None:
    """Installed from the wheel (not this checkout), init_migrations finds its templates."""
    # A copy without the checkout's build/ and egg-info, which could supply files the package
    # data does not declare.
    source = tmp_path / "source"
    leftovers = (".git", ".venv", "build", "dist", "*.egg-info", "*_cache", "__pycache__")
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*leftovers))
    target = tmp_path / "site"
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-compile",
            "--target",
            str(target),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    project = tmp_path / "project"
    project.mkdir()
    code = (
        "import kvstore_aurora.scaffold as s; print(s.__file__); "
        "s.init_migrations('migrations', kind='teams')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(target)},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(str(target))  # the installed copy, not the checkout
    shipped = sorted(p.name for p in (target / "kvstore_aurora" / "templates").iterdir())
    assert shipped == [
        "alembic.ini.tmpl",
        "env.py.tmpl",
        "kind_migration.py.tmpl",
        "script.py.mako",
    ]
    assert (project / "migrations" / "env.py").read_text() == (
        ROOT / "kvstore_aurora" / "templates" / "env.py.tmpl"
    ).read_text()
    assert len(list((project / "migrations" / "versions").glob("*_create_teams.py"))) == 1
