"""The command's one convention, checked on the real console script: every error is one line
``error: CODE: message`` with exit 2 (usage errors, bad options and bad input included, never a
traceback), 1 only for diff's differences; read-only commands create no database; the help and
the README state the same rules."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from kvstore import create_store
from kvstore.cli import cli
from tests.cli.conftest import KVSTORE, Run, Script, lines

README = Path(__file__).resolve().parents[2] / "README.md"

ERRORS = [
    # (arguments, code, words the message holds)
    (("--backend", "sqlite:pth=/x", "count", "teams"), "INVALID_ARGUMENT", "did you mean 'path'"),
    (("--backend", "sqlite:pth", "count", "teams"), "INVALID_ARGUMENT", "option=value"),
    (("--backend", "sqlite:id_field=x", "count", "teams"), "INVALID_ARGUMENT", "no option"),
    (("--backend", "memory:path=/x", "backends"), "INVALID_ARGUMENT", "memory"),
    (("--backend", "nosuch", "count", "teams"), "CONFIG_ERROR", "nosuch"),
    (("nosuch",), "INVALID_ARGUMENT", "No such command"),
    (("count",), "INVALID_ARGUMENT", "KIND"),
    (("find", "teams"), "INVALID_ARGUMENT", "FILTER"),
    (("ls", "teams", "--format", "xml"), "INVALID_ARGUMENT", "--format"),
    (("ls", "teams", "--frmat", "json"), "INVALID_ARGUMENT", "--format"),
    (("ls", "teams", "--limit", "many"), "INVALID_ARGUMENT", "--limit"),
    (("copy", "teams", "--from", "sqlite"), "INVALID_ARGUMENT", "--to"),
    (("copy", "teams", "--from", "a", "--to", "b", "--chunk", "0"), "INVALID_ARGUMENT", "chunk"),
    (("count", "teams", "x~1"), "INVALID_ARGUMENT", "is not a filter"),
    (("count", "teams", "x:between=1"), "INVALID_ARGUMENT", "between"),
    (("count", "teams", "x:one_of=[]"), "INVALID_ARGUMENT", "one_of"),
    (("count", "teams", "x>=[1]"), "INVALID_ARGUMENT", "'x'"),
    (("count", "teams", "--index", "nope"), "INVALID_ARGUMENT", "--index"),
    (("put", "teams", "{not json"), "INVALID_ARGUMENT", "RECORD is not JSON"),
    (("put", "teams", '{"id": 1}'), "INVALID_ARGUMENT", "'id'"),
    (("rm", "teams"), "INVALID_ARGUMENT", "FILTER"),
    (("truncate", "teams"), "OPERATION_REJECTED", "--force"),
    (("purge", "teams"), "INVALID_ARGUMENT", "--ttl-field"),
    (("find", "teams", "id=nobody"), "NOT_FOUND", "teams"),
    (("count", "no_such_kind"), "CONFIG_ERROR", "kvstore ensure no_such_kind"),
    (("diff", "teams", "--from", "sqlite", "--to", "memory"), "CONFIG_ERROR", "teams"),
]


@pytest.mark.parametrize(("args", "code", "says"), ERRORS, ids=[" ".join(e[0]) for e in ERRORS])
def test_every_error_is_one_line_with_its_code_and_exit_2(
    script: Script, run: Run, args: tuple[str, ...], code: str, says: str
) -> None:
    assert run("ensure", "teams").exit_code == 0
    result = script(*args)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: {code}: ")
    assert says in line


def test_a_backend_option_value_never_shows_in_an_error(script: Script) -> None:
    result = script("--backend", "sqlite:secret_token=hunter2", "count", "teams")
    assert result.returncode == 2
    assert "secret_token" in result.stderr
    assert "hunter2" not in result.stderr


def test_exit_1_means_diff_found_differences(script: Script, tmp_path: Path) -> None:
    other = f"sqlite:path={tmp_path / 'other.sqlite3'}"
    for spec in ("sqlite", other):
        assert script("--backend", spec, "ensure", "teams").returncode == 0
        assert script("--backend", spec, "put", "teams", '{"id": "t1"}').returncode == 0
    same = script("diff", "teams", "--from", "sqlite", "--to", other)
    assert (same.returncode, lines(same.stdout)) == (0, [{"differences": 0, "compared": 1}])
    assert script("--backend", other, "put", "teams", '{"id": "t2"}').returncode == 0
    differ = script("diff", "teams", "--from", "sqlite", "--to", other)
    assert differ.returncode == 1
    assert lines(differ.stdout)[-1] == {"differences": 1, "compared": 2}
    fixed = script("diff", "teams", "--from", other, "--to", "sqlite", "--fix")
    assert fixed.returncode == 0
    assert lines(fixed.stdout)[-1] == {"differences": 1, "compared": 2, "fixed": 1, "left": 0}


def test_summaries_are_the_only_stdout_of_commands_that_write_or_count(
    script: Script, tmp_path: Path
) -> None:
    other = f"sqlite:path={tmp_path / 'other.sqlite3'}"
    stdin = "".join(json.dumps({"id": f"t{n}", "n": n}) + "\n" for n in range(3))
    expected = [
        (("ensure", "teams"), {"ensured": ["teams"]}),
        (("put", "teams", '{"id": "t9"}'), {"written": 1}),
        (("put", "teams"), {"written": 3}),
        (("count", "teams"), {"count": 4}),
        (("rm", "teams", "n>=1"), {"removed": 2}),
        (("copy", "teams", "--from", "sqlite", "--to", other),
         {"copied": 2, "read": 2, "written": 2, "unchanged": 0, "skipped": 0}),
        (("purge", "teams", "--ttl-field", "n"), {"purged": 1}),
        (("truncate", "teams", "--force"), {"removed": 1}),
    ]  # fmt: skip
    for args, summary in expected:
        result = script(*args, input=stdin if args == ("put", "teams") else None)
        assert result.returncode == 0, (args, result.stderr)
        assert lines(result.stdout) == [summary], args
    migrated = script("migrate", "teams")
    assert lines(migrated.stdout)[0].keys() == {"backend", "kinds", "summary"}


READ_ONLY = [
    ("count", "teams"),
    ("count", "teams", "--explain"),
    ("ls", "teams"),
    ("ls", "teams", "id=a", "--limit", "5"),
    ("ls", "teams", "--format", "csv"),
    ("find", "teams", "id=a"),
    ("find", "teams", "id=a", "--explain"),
    ("rm", "teams", "id=a", "--explain"),
    ("diff", "teams", "--from", "sqlite", "--to", "sqlite:path=other.sqlite3"),
    ("status", "teams"),
    ("backends",),
]


@pytest.mark.parametrize("args", READ_ONLY, ids=[" ".join(a) for a in READ_ONLY])
def test_read_only_commands_never_create_a_database(
    script: Script, db: Path, tmp_path: Path, args: tuple[str, ...]
) -> None:
    before = sorted(tmp_path.iterdir())
    result = script(*args)
    assert result.returncode in (0, 2), result.stderr
    assert not db.exists()
    assert sorted(tmp_path.iterdir()) == before  # nor anything else (other.sqlite3, .kvstore/)
    if result.returncode == 2:
        assert result.stderr.startswith("error: CONFIG_ERROR: ")


def test_an_unexpected_exception_is_one_line_unless_kvstore_debug(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kvstore.store import RecordStore

    def broken(self: RecordStore, filters: object = None) -> int:
        raise RuntimeError("something nobody planned for")

    run("ensure", "teams")
    monkeypatch.setattr(RecordStore, "count", broken)
    result = run("count", "teams")
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "error: INTERNAL: RuntimeError: something nobody planned for (a bug in kvstore"
    )
    monkeypatch.setenv("KVSTORE_DEBUG", "1")
    with pytest.raises(RuntimeError):
        run("count", "teams")


def test_a_closed_pipe_stops_the_command_quietly(script: Script, tmp_path: Path) -> None:
    store = create_store("teams", backend="sqlite")
    store.ensure()
    store.put_many({"id": f"t{n:05}", "pad": "x" * 100} for n in range(5000))
    process = subprocess.Popen(
        [str(KVSTORE), "ls", "teams"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    first = process.stdout.readline()
    process.stdout.close()  # `kvstore ls teams | head -1`
    stderr = process.stderr.read()
    assert process.wait(timeout=60) == 141
    assert json.loads(first)["id"].startswith("t")
    assert stderr == b""


def _grammar(text: str) -> list[str]:
    """The filter forms a text documents: each ``FIELD...`` token at the start of a line."""
    return re.findall(r"^\s*[|`]*\s*`?(FIELD[^\s`|]*)", text, re.M)


def test_the_help_and_the_readme_document_the_same_convention(run: Run) -> None:
    help_text = run("--help").stdout
    readme = README.read_text()
    section = readme.split("## The kvstore command", 1)[1].split("\n## ", 1)[0]
    forms = _grammar(help_text)
    assert len(forms) >= 8
    assert forms == _grammar(section)
    for summary in ('{"count": n}', '{"removed": n}', '{"written": n}', '{"purged": n}',
                    '{"ensured": [', '{"copied": n', '{"differences": n, "compared"',
                    "error: CODE: message", "--format json|jsonl|csv|table",
                    "--index NAME:FIELD[,SORT][:TYPE[,TYPE]]"):  # fmt: skip
        assert summary in help_text, summary
        assert summary in section, summary
    for name in cli.commands:
        assert f"kvstore {name}" in section, name


def test_an_interrupted_command_exits_130_and_a_copy_says_how_to_resume(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kvstore import copying
    from kvstore.store import RecordStore

    store = create_store("teams", backend="sqlite")
    store.ensure()
    store.put_many({"id": f"t{n}"} for n in range(10))

    def interrupted(*args: object) -> object:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(RecordStore, "count", interrupted)
        counting = run("count", "teams")
    assert counting.exit_code == 130
    assert counting.stderr == "error: INTERRUPTED: interrupted\n"
    monkeypatch.setattr(copying, "read_segment", interrupted)
    checkpoint = tmp_path / "copy.json"
    other = f"sqlite:path={tmp_path / 'other.sqlite3'}"
    copy = run("copy", "teams", "--from", "sqlite", "--to", other, "--checkpoint", str(checkpoint))
    assert copy.exit_code == 130
    assert copy.stderr.splitlines()[-1] == (
        f"error: INTERRUPTED: copy interrupted: add --resume to continue from {checkpoint}"
    )


def test_a_file_the_command_cannot_write_is_an_os_error(run: Run, tmp_path: Path) -> None:
    store = create_store("teams", backend="sqlite")
    store.ensure()
    store.put({"id": "t1"})
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    other = f"sqlite:path={tmp_path / 'other.sqlite3'}"
    checkpoint = blocker / "copy.json"  # under a file: no directory can be made there
    result = run(
        "copy", "teams", "--from", "sqlite", "--to", other, "--checkpoint", str(checkpoint)
    )
    assert result.exit_code == 2
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert line.startswith("error: OS_ERROR: ")
    assert result.stdout == ""
