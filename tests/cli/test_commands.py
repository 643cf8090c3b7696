"""Every command of ``kvstore`` on the embedded default (sqlite), through click's runner."""

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
        assert f"Usage: cli {name}" in result.stdout or f"{name} [OPTIONS]" in result.stdout


def test_backends_says_which_is_selected_and_why(run: Run, db: Path) -> None:
    result = run("backends")
    assert result.exit_code == 0
    assert f"* {DEFAULT_BACKEND}" in result.stdout
    assert "STORE_BACKEND is unset" in result.stdout
    assert str(db) in result.stdout
    for name in ("memory", "sqlite", "aurora", "dynamo"):
        assert name in result.stdout


def test_backends_follows_store_backend_and_masks_the_password(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STORE_BACKEND", "aurora")
    monkeypatch.setenv("DB_HOST", "db.example")
    monkeypatch.setenv("DB_PASSWD", "hunter2-secret")
    result = run("backends", "--json")
    assert result.exit_code == 0
    entries = {entry["name"]: entry for entry in lines(result.stdout)}
    assert entries["aurora"]["selected"] is True
    assert entries["aurora"]["why"] == "STORE_BACKEND"
    assert entries["aurora"]["settings"]["host"] == "db.example"
    assert entries["aurora"]["settings"]["password"] == "***"
    assert "hunter2" not in result.output
    assert entries["sqlite"]["selected"] is False


def test_put_find_ls_count_rm_truncate(run: Run) -> None:
    assert run("ensure", "teams").exit_code == 0
    put = run("put", "teams", '{"id": "t1", "name": "Rockets", "size": 5}')
    assert lines(put.stdout) == [{"id": "t1", "name": "Rockets", "size": 5}]
    stdin = "".join(json.dumps({"id": f"t{n}", "size": n % 2}) + "\n" for n in range(2, 6))
    assert lines(run("put", "teams", input=stdin).stdout) == [{"written": 4}]
    assert lines(run("find", "teams", "id=t1").stdout) == [
        {"id": "t1", "name": "Rockets", "size": 5}
    ]
    assert [r["id"] for r in lines(run("ls", "teams", "size=1", "--sort").stdout)] == ["t3", "t5"]
    assert sorted(r["id"] for r in lines(run("ls", "teams").stdout)) == [
        f"t{n}" for n in range(1, 6)
    ]
    assert run("count", "teams").stdout.strip() == "5"
    assert run("count", "teams", "size=0").stdout.strip() == "2"
    assert run("rm", "teams", "size=0").stdout.strip() == "2"
    assert run("count", "teams").stdout.strip() == "3"
    assert run("truncate", "teams", "--force").stdout.strip() == "3"
    assert run("count", "teams").stdout.strip() == "0"


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
        (("count", "missing_kind"), "CONFIG_ERROR"),
        (("--backend", "nosuch", "count", "teams"), "CONFIG_ERROR"),
    ],
)
def test_store_errors_print_their_code_and_exit_2(
    run: Run, args: tuple[str, ...], code: str
) -> None:
    run("ensure", "teams")
    result = run(*args)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {code}: ")
    assert result.stdout == ""


def test_migrate_ensures_the_kinds_on_non_aurora_backends(run: Run) -> None:
    assert run("count", "alpha").exit_code == 2
    result = run("migrate", "alpha", "beta")
    assert result.exit_code == 0
    assert run("count", "alpha").stdout.strip() == "0"
    assert run("count", "beta").stdout.strip() == "0"
    assert run("migrate").exit_code == 2  # nothing to ensure: a usage error


def test_backend_options_after_a_colon(run: Run, tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite3"
    spec = f"sqlite:path={other}"
    assert run("--backend", spec, "ensure", "teams").exit_code == 0
    run("--backend", spec, "put", "teams", '{"id": "x"}')
    assert run("--backend", spec, "count", "teams").stdout.strip() == "1"
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
