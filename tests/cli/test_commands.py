"""Every command of ``kvstore`` on the embedded default (sqlite), through click's runner: what each
prints on stdout (data as JSON lines, one JSON summary for a command that writes or counts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kvstore import create_store
from kvstore.cli import DEFAULT_BACKEND, cli
from tests.cli.conftest import Run, lines


def test_every_command_has_help(run: Run) -> None:
    assert run("--help").exit_code == 0
    for name in cli.commands:
        result = run(name, "--help")
        assert result.exit_code == 0, name
        assert f"{name} [OPTIONS]" in result.stdout


def test_backends_says_which_is_selected_and_why(run: Run, db: Path) -> None:
    result = run("backends")
    assert result.exit_code == 0
    entries = {entry["name"]: entry for entry in lines(result.stdout)}
    assert {"memory", "sqlite", "aurora", "dynamo"} <= set(entries)
    assert entries[DEFAULT_BACKEND]["selected"] is True
    assert "STORE_BACKEND is unset" in entries[DEFAULT_BACKEND]["why"]
    assert entries[DEFAULT_BACKEND]["settings"] == {"path": str(db)}
    assert [name for name, entry in entries.items() if entry["selected"]] == [DEFAULT_BACKEND]
    assert run("backends", "--json").stdout == result.stdout  # the old flag still works
    table = run("backends", "--format", "table").stdout.splitlines()
    assert table[0].split() == ["name", "extra", "selected", "why", "settings"]
    assert any(line.startswith("sqlite") and str(db) in line for line in table)


def test_backends_follows_store_backend_and_masks_the_password(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STORE_BACKEND", "aurora")
    monkeypatch.setenv("DB_HOST", "db.example")
    monkeypatch.setenv("DB_PASSWD", "hunter2-secret")
    result = run("backends")
    assert result.exit_code == 0
    entries = {entry["name"]: entry for entry in lines(result.stdout)}
    assert entries["aurora"]["selected"] is True
    assert entries["aurora"]["why"] == "STORE_BACKEND"
    assert entries["aurora"]["settings"]["host"] == "db.example"
    assert entries["aurora"]["settings"]["password"] == "***"
    assert "hunter2" not in result.output
    assert entries["sqlite"]["selected"] is False


def test_put_find_ls_count_rm_truncate_print_their_summaries(run: Run) -> None:
    assert lines(run("ensure", "teams", "games").stdout) == [{"ensured": ["teams", "games"]}]
    put = run("put", "teams", '{"id": "t1", "name": "Rockets", "size": 5}')
    assert lines(put.stdout) == [{"written": 1}]
    stdin = "".join(json.dumps({"id": f"t{n}", "size": n % 2}) + "\n" for n in range(2, 6))
    assert lines(run("put", "teams", input=stdin).stdout) == [{"written": 4}]
    assert lines(run("find", "teams", "id=t1").stdout) == [
        {"id": "t1", "name": "Rockets", "size": 5}
    ]
    assert [r["id"] for r in lines(run("ls", "teams", "size=1", "--sort").stdout)] == ["t3", "t5"]
    assert sorted(r["id"] for r in lines(run("ls", "teams").stdout)) == [
        f"t{n}" for n in range(1, 6)
    ]
    assert lines(run("count", "teams").stdout) == [{"count": 5}]
    assert lines(run("count", "teams", "size=0").stdout) == [{"count": 2}]
    assert lines(run("rm", "teams", "size=0").stdout) == [{"removed": 2}]
    assert lines(run("count", "teams").stdout) == [{"count": 3}]
    assert lines(run("truncate", "teams", "--force").stdout) == [{"removed": 3}]
    assert lines(run("count", "teams").stdout) == [{"count": 0}]


def test_filter_values_are_json_when_they_parse(run: Run) -> None:
    run("ensure", "things")
    for record in ({"id": "1", "v": 1}, {"id": "2", "v": "1"}, {"id": "3", "v": True}):
        run("put", "things", json.dumps(record))
    # A str key stays a str even when it reads as a number.
    assert lines(run("find", "things", "id=1").stdout) == [{"id": "1", "v": 1}]
    assert [r["id"] for r in lines(run("ls", "things", "v=1", "--sort").stdout)] == ["1"]
    assert [r["id"] for r in lines(run("ls", "things", 'v="1"').stdout)] == ["2"]
    assert [r["id"] for r in lines(run("ls", "things", "v=true").stdout)] == ["3"]
    assert [r["id"] for r in lines(run("ls", "things", "v=yes").stdout)] == []


def test_composite_keys(run: Run) -> None:
    key = ("--id-field", "team_id", "--id-field", "seq", "--key-type", "str", "--key-type", "int")
    assert run("ensure", "members", *key).exit_code == 0
    stdin = "".join(json.dumps({"team_id": "t", "seq": n, "name": f"m{n}"}) + "\n" for n in (2, 1))
    assert lines(run("put", "members", *key, input=stdin).stdout) == [{"written": 2}]
    found = lines(run("find", "members", *key, "team_id=t", "seq=2").stdout)
    assert found == [{"team_id": "t", "seq": 2, "name": "m2"}]
    listed = lines(run("ls", "members", *key, "team_id=t", "--sort").stdout)
    assert [r["seq"] for r in listed] == [1, 2]
    store = create_store(
        "members", backend="sqlite", id_field=("team_id", "seq"), key_type=(str, int)
    )
    assert store.count() == 2


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("find", "teams", "id=nobody"), "NOT_FOUND"),
        (("truncate", "teams"), "OPERATION_REJECTED"),
        (("put", "teams", '{"name": "no key"}'), "INVALID_ARGUMENT"),
        (("put", "teams", "not json"), "INVALID_ARGUMENT"),
        (("put", "teams", "[1, 2]"), "INVALID_ARGUMENT"),
        (("count", "missing_kind"), "CONFIG_ERROR"),
        (("--backend", "nosuch", "count", "teams"), "CONFIG_ERROR"),
        (("ls", "teams", "no filter"), "INVALID_ARGUMENT"),
        (("count", "teams", "size>=1", "size<3"), "INVALID_ARGUMENT"),
        (("ls", "teams", "--index", "by_x"), "INVALID_ARGUMENT"),
        (("ls", "teams", "--index", "by_x:x:date"), "INVALID_ARGUMENT"),
        (("ls", "teams", "--index", "X:x"), "INVALID_ARGUMENT"),
    ],
)
def test_store_errors_print_their_code_and_exit_2(
    run: Run, args: tuple[str, ...], code: str
) -> None:
    run("ensure", "teams")
    result = run(*args)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {code}: ")
    assert result.stderr.count("\n") == 1
    assert result.stdout == ""


def test_migrate_ensures_the_kinds_on_non_aurora_backends(run: Run) -> None:
    assert run("count", "alpha").exit_code == 2
    result = run("migrate", "alpha", "beta")
    assert result.exit_code == 0
    [summary] = lines(result.stdout)
    assert summary["backend"] == "sqlite"
    assert summary["kinds"] == ["alpha", "beta"]
    assert "alpha" in summary["summary"]
    assert result.stderr == ""
    assert lines(run("count", "alpha").stdout) == [{"count": 0}]
    assert lines(run("count", "beta").stdout) == [{"count": 0}]
    assert run("migrate").exit_code == 2  # nothing to ensure: a usage error


def test_backend_options_after_a_colon(run: Run, tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite3"
    spec = f"sqlite:path={other}"
    assert run("--backend", spec, "ensure", "teams").exit_code == 0
    run("--backend", spec, "put", "teams", '{"id": "x"}')
    assert lines(run("--backend", spec, "count", "teams").stdout) == [{"count": 1}]
    assert other.exists()
    assert run("count", "teams").exit_code == 2  # the default file has no such table


def test_backends_fails_when_the_selected_backend_is_not_installed(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STORE_BACKEND", "nosuch")
    result = run("backends")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: CONFIG_ERROR: ")
    assert "sqlite" in result.stdout  # the installed ones are still listed


def test_ensure_creates_the_declared_indexes(run: Run, db: Path) -> None:
    import sqlite3

    result = run("ensure", "users", "--index", "by_team:team,joined:str,float")
    assert result.exit_code == 0, result.output
    with sqlite3.connect(db) as connection:
        names = [row[0] for row in connection.execute("SELECT name FROM sqlite_master")]
    assert any("by_team" in name for name in names), names


def test_put_with_a_version_field_writes_over_the_version_it_carries(run: Run) -> None:
    run("ensure", "docs")
    versioned = ("--version-field", "version")
    first = run("put", "docs", '{"id": "d1", "text": "a"}', *versioned)
    assert lines(first.stdout) == [{"written": 1, "version": 1}]
    second = run("put", "docs", '{"id": "d1", "text": "b", "version": 1}', *versioned)
    assert lines(second.stdout) == [{"written": 1, "version": 2}]
    stale = run("put", "docs", '{"id": "d1", "text": "c", "version": 1}', *versioned)
    assert stale.exit_code == 2
    assert stale.stderr.startswith("error: CONDITION_FAILED: ")
    assert lines(run("find", "docs", "id=d1").stdout) == [{"id": "d1", "text": "b", "version": 2}]


def test_purge_deletes_the_expired_records(run: Run) -> None:
    import time

    run("ensure", "sessions")
    now = time.time()
    stdin = "".join(
        json.dumps({"id": f"s{n}", "expires": now - 100 if n < 3 else now + 3600}) + "\n"
        for n in range(5)
    )
    assert lines(run("put", "sessions", input=stdin).stdout) == [{"written": 5}]
    ttl = ("--ttl-field", "expires")
    assert lines(run("count", "sessions").stdout) == [{"count": 5}]  # no ttl: all are records
    assert lines(run("count", "sessions", *ttl).stdout) == [{"count": 2}]  # expired: unseen
    assert lines(run("purge", "sessions", *ttl).stdout) == [{"purged": 3}]
    assert lines(run("count", "sessions").stdout) == [{"count": 2}]
    assert lines(run("purge", "sessions", *ttl).stdout) == [{"purged": 0}]
    missing = run("purge", "sessions")
    assert missing.exit_code == 2
    assert missing.stderr.startswith("error: INVALID_ARGUMENT: purge needs --ttl-field")
