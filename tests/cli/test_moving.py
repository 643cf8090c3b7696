"""``kvstore copy --resume/--segments``, ``diff --fix`` and ``status``: the commands of a move between
backends, safe beside live writers."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kvstore import BackendUnavailable, Store, create_store
from kvstore.checkpoint import DIRECTORY
from kvstore.copying import copy_records, diff_records
from kvstore.testing import unique_kind
from tests.cli.conftest import Run, lines

KEY = ("--id-field", "team_id", "--id-field", "seq", "--key-type", "str", "--key-type", "int")


def _record(n: int) -> dict[str, Any]:
    return {"team_id": f"t{n % 7}", "seq": n, "name": f"member {n}"}


def _sqlite(path: Path, kind: str) -> Any:
    store = create_store(
        kind, backend="sqlite", path=str(path), id_field=("team_id", "seq"), key_type=(str, int)
    )
    store.ensure()
    return store


class _Interrupted(BackendUnavailable):
    """The source going away in the middle of a copy."""


@pytest.fixture
def two(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Any, Any, list[str]]:
    """A kind of 2,000 records in a.sqlite3, an empty b.sqlite3, the CLI's sides; here = tmp."""
    monkeypatch.chdir(tmp_path)
    kind = unique_kind()
    source, target = _sqlite(tmp_path / "a.sqlite3", kind), _sqlite(tmp_path / "b.sqlite3", kind)
    source.put_many(_record(n) for n in range(2000))
    sides = ["--from", f"sqlite:path={tmp_path / 'a.sqlite3'}"]
    sides += ["--to", f"sqlite:path={tmp_path / 'b.sqlite3'}"]
    return kind, source, target, sides


def _reads_die_after(monkeypatch: pytest.MonkeyPatch, limit: int) -> list[int]:
    """Make every segment read die once ``limit`` records were read in all; the count read."""
    from kvstore import copying

    read = [0]
    real = copying.read_segment

    def dying(*args: Any) -> Iterator[dict[str, Any]]:
        for record in real(*args):
            if read[0] >= limit:
                raise _Interrupted("the source went away")
            read[0] += 1
            yield record

    monkeypatch.setattr(copying, "read_segment", dying)
    return read


def test_copy_resume_continues_where_an_interrupted_copy_stopped(
    run: Run, two: tuple[str, Any, Any, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    kind, source, target, sides = two
    with monkeypatch.context() as patch:
        _reads_die_after(patch, 700)
        stopped = run("copy", kind, *sides, "--chunk", "100", *KEY)
    assert stopped.exit_code == 2
    assert stopped.stderr.splitlines()[-1].startswith("error: BACKEND_UNAVAILABLE: ")
    assert stopped.stdout == ""  # no summary: the copy did not finish
    assert target.count() == 700
    [checkpoint] = (Path(DIRECTORY)).glob(f"copy-{kind}-sqlite-sqlite-*.json")
    saved = json.loads(checkpoint.read_text())
    in_key_order = sorted((r["team_id"], r["seq"]) for r in map(_record, range(2000)))
    assert saved["after"] == {"0": list(in_key_order[699])}  # the 7th chunk's last, in key order
    assert "a.sqlite3" not in checkpoint.read_text()  # the specs (options, secrets) stay out
    read = _reads_die_after(monkeypatch, 10_000)
    resumed = run("copy", kind, *sides, "--chunk", "100", "--resume", *KEY)
    assert resumed.exit_code == 0, resumed.output
    assert "resuming from" in resumed.stderr
    assert read[0] == 1300  # only what was left
    assert lines(resumed.stdout) == [
        {"copied": 1300, "read": 1300, "written": 1300, "unchanged": 0, "skipped": 0}
    ]
    assert not checkpoint.exists()  # removed once the copy is complete
    assert list(diff_records(source, target)) == []


def test_a_checkpoint_of_another_copy_is_refused(
    run: Run, two: tuple[str, Any, Any, list[str]], tmp_path: Path
) -> None:
    kind, _source, _target, sides = two
    wrong = tmp_path / "other.json"
    wrong.write_text(json.dumps({"version": 1, "copy": {"kind": "x"}, "segments": 1}))
    result = run("copy", kind, *sides, "--resume", "--checkpoint", str(wrong), *KEY)
    assert result.exit_code == 2
    assert "belongs to another copy" in result.stderr
    fresh = run("copy", kind, *sides, "--resume", "--checkpoint", str(tmp_path / "none"), *KEY)
    assert fresh.exit_code == 0
    assert "copying from the beginning" in fresh.stderr


def test_segments_are_read_at_once_and_resumed_each_from_its_own_key(
    run: Run, two: tuple[str, Any, Any, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    kind, source, target, sides = two
    with monkeypatch.context() as patch:
        _reads_die_after(patch, 900)
        stopped = run("copy", kind, *sides, "--segments", "4", "--chunk", "50", *KEY)
    assert stopped.exit_code == 2
    assert "error: BACKEND_UNAVAILABLE: the source went away" in stopped.stderr
    [checkpoint] = Path(DIRECTORY).glob(f"copy-{kind}-*.json")
    saved = json.loads(checkpoint.read_text())
    assert saved["segments"] == 4
    assert len([a for a in saved["after"].values() if a is not None]) > 1
    copied = target.count()
    assert 0 < copied <= 900
    mismatch = run("copy", kind, *sides, "--resume", "--segments", "2", *KEY)
    assert mismatch.exit_code == 2
    assert "--segments 4" in mismatch.stderr
    read = _reads_die_after(monkeypatch, 10_000)
    resumed = run("copy", kind, *sides, "--resume", *KEY)
    assert resumed.exit_code == 0, resumed.output
    assert read[0] == 2000 - copied
    assert list(diff_records(source, target)) == []


def test_a_killed_copy_process_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    kind = unique_kind()
    a_path, b_path = tmp_path / "a.sqlite3", tmp_path / "b.sqlite3"
    total = 30_000
    _sqlite(a_path, kind).put_many(_record(n) for n in range(total))
    target = _sqlite(b_path, kind)
    checkpoint = tmp_path / "copy.json"
    copy = [sys.executable, "-m", "kvstore.cli", "copy", kind, "--from", f"sqlite:path={a_path}"]
    copy += ["--to", f"sqlite:path={b_path}", "--chunk", "50", "--checkpoint", str(checkpoint)]
    copy += KEY
    process = subprocess.Popen(copy, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    if process.returncode == 0:
        pytest.skip("the copy finished before it could be killed")
    assert checkpoint.exists()
    done = json.loads(checkpoint.read_text())["after"]["0"]
    resumed = subprocess.run([*copy, "--resume"], capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    in_key_order = sorted((r["team_id"], r["seq"]) for r in map(_record, range(total)))
    # It read only what comes after the checkpoint's key (a chunk written after the last
    # checkpoint, before the kill, is read again and found unchanged).
    assert summary["read"] == total - in_key_order.index(tuple(done)) - 1
    assert summary["written"] + summary["unchanged"] == summary["read"]
    assert target.count() == total


def test_a_record_a_live_writer_changes_during_the_copy_is_skipped_not_set_back(
    tmp_path: Path,
) -> None:
    kind = unique_kind()
    source, target = _sqlite(tmp_path / "a", kind), _sqlite(tmp_path / "b", kind)
    source.put_many(_record(n) for n in range(20))
    target.put({**_record(3), "name": "stale"})
    real = source.driver.read
    wrote: list[bool] = []

    def read(plan: Any) -> Iterator[dict[str, Any]]:
        records = list(real(plan))
        if plan.access == "key" and not wrote:
            # A live writer (a migrating store at dualwrite) writes key t3/3 to both sides
            # between the copy's reads and its writes.
            newer = {**_record(3), "name": "newer"}
            source.put(newer)
            target.put(newer)
            wrote.append(True)
        return iter(records)

    source.driver.read = read
    counts = copy_records(source, target, chunk_size=100)
    assert counts.as_dict() == {
        "copied": 19,
        "read": 20,
        "written": 19,
        "unchanged": 0,
        "skipped": 1,
    }
    assert target.find({"team_id": "t3", "seq": 3})["name"] == "newer"
    assert list(diff_records(source, target)) == []
    again = copy_records(source, target, chunk_size=100)
    assert again.as_dict() == {
        "copied": 20,
        "read": 20,
        "written": 0,
        "unchanged": 20,
        "skipped": 0,
    }


def test_a_record_a_live_writer_removes_during_the_copy_is_not_brought_back(
    tmp_path: Path,
) -> None:
    kind = unique_kind()
    source, target = _sqlite(tmp_path / "a", kind), _sqlite(tmp_path / "b", kind)
    source.put_many(_record(n) for n in range(20))
    real = source.driver.read
    removed: list[bool] = []

    def read(plan: Any) -> Iterator[dict[str, Any]]:
        records = list(real(plan))
        if plan.access == "key" and not removed:
            # A live writer removes t3/3 from both sides (the target has none yet) between the
            # copy's read of the source and its write.
            source.remove({"team_id": "t3", "seq": 3})
            target.remove({"team_id": "t3", "seq": 3})
            removed.append(True)
        return iter(records)

    source.driver.read = read
    counts = copy_records(source, target, chunk_size=100)
    assert (counts.copied, counts.skipped) == (19, 1)
    assert target.find_all({"team_id": "t3", "seq": 3}) == []
    assert list(diff_records(source, target)) == []


def test_copy_reports_what_it_did_and_a_rerun_writes_nothing(
    run: Run, two: tuple[str, Any, Any, list[str]]
) -> None:
    kind, _source, target, sides = two
    target.put({**_record(5), "name": "drifted"})
    first = run("copy", kind, *sides, *KEY)
    assert first.exit_code == 0, first.output
    assert lines(first.stdout) == [
        {"copied": 2000, "read": 2000, "written": 2000, "unchanged": 0, "skipped": 0}
    ]
    again = run("copy", kind, *sides, *KEY)
    assert lines(again.stdout) == [
        {"copied": 2000, "read": 2000, "written": 0, "unchanged": 2000, "skipped": 0}
    ]


def test_diff_fix_writes_the_from_side_over_each_difference(
    run: Run, two: tuple[str, Any, Any, list[str]]
) -> None:
    kind, source, target, sides = two
    target.put_many(_record(n) for n in range(10, 2000))  # 0..9 missing in --to
    target.put({**_record(20), "name": "changed", "extra": True})
    target.put({"team_id": "zz", "seq": 1})  # only in --to
    fixed = run("diff", kind, *sides, "--fix", *KEY)
    assert fixed.exit_code == 1  # the extra record is left: not every difference was fixed
    *found, summary = lines(fixed.stdout)
    assert len(found) == 12
    assert found[-1] == {"key": {"team_id": "zz", "seq": 1}, "missing_in": "from", "fix": "extra"}
    assert {f["fix"] for f in found[:-1]} == {"written"}
    assert summary == {"differences": 12, "compared": 2001, "fixed": 11, "left": 1}
    assert "12 difference(s)" in fixed.stderr
    assert "11 fixed, 1 not" in fixed.stderr
    removed = run("diff", kind, *sides, "--fix", "--delete-extra", *KEY)
    assert removed.exit_code == 0
    assert lines(removed.stdout) == [
        {"key": {"team_id": "zz", "seq": 1}, "missing_in": "from", "fix": "removed"},
        {"differences": 1, "compared": 2001, "fixed": 1, "left": 0},
    ]
    clean = run("diff", kind, *sides, *KEY)
    assert clean.exit_code == 0
    assert lines(clean.stdout) == [{"differences": 0, "compared": 2000}]
    assert list(diff_records(source, target)) == []
    assert run("diff", kind, *sides, "--delete-extra", *KEY).exit_code == 2


def test_diff_fix_skips_a_record_that_changes_while_it_is_fixed(tmp_path: Path) -> None:
    from kvstore.copying import fix_differences

    kind = unique_kind()
    source, target = _sqlite(tmp_path / "a", kind), _sqlite(tmp_path / "b", kind)
    source.put(_record(1))
    target.put({**_record(1), "name": "old"})
    real = source.driver.read

    def read(plan: Any) -> Iterator[dict[str, Any]]:
        records = list(real(plan))
        target.put({**_record(1), "name": "written meanwhile"})
        return iter(records)

    differences = list(diff_records(source, target))
    source.driver.read = read
    [(_, outcome)] = list(fix_differences(source, target, differences))
    assert outcome == "skipped"
    assert target.find({"team_id": "t1", "seq": 1})["name"] == "written meanwhile"
    source.driver.read = real
    [(_, outcome)] = list(fix_differences(source, target, list(diff_records(source, target))))
    assert outcome == "written"
    assert list(diff_records(source, target)) == []


def test_status_shows_each_kinds_stage_from_the_environment(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STORE_BACKEND", "memory")
    assert "no kind is moving" in run("status").stderr
    monkeypatch.setenv("STORE_MIGRATION", "teams=sqlite:shadow,*=sqlite:dualwrite")
    monkeypatch.setenv("STORE_MIGRATION_SAMPLE", "0.25")
    shown = run("status")
    assert shown.exit_code == 0
    fields = ("kind", "entry", "old", "new", "stage", "writes", "reads", "compared")
    assert [tuple(row[f] for f in fields) for row in lines(shown.stdout)] == [
        ("teams", "teams", "memory", "sqlite", "shadow", "memory, then sqlite",
         "memory (compared with sqlite)", 0.25),
        ("*", "*", "memory", "sqlite", "dualwrite", "memory, then sqlite", "memory", 0.0),
    ]  # fmt: skip
    named = lines(run("status", "teams", "orders").stdout)
    assert [(r["kind"], r["entry"], r["stage"], r["compared"]) for r in named] == [
        ("teams", "teams", "shadow", 0.25),
        ("orders", "*", "dualwrite", 0.0),
    ]
    table = run("status", "--format", "table").stdout.splitlines()
    assert table[0].split() == list(fields)
    assert table[2].split()[:5] == ["teams", "teams", "memory", "sqlite", "shadow"]
    [here] = lines(run("--backend", "sqlite", "status", "teams").stdout)
    assert (here["old"], here["new"], here["stage"], here["writes"]) == (
        "sqlite",
        None,
        None,
        "sqlite",
    )
    monkeypatch.setenv("STORE_MIGRATION", "teams=sqlite")
    broken = run("status")
    assert broken.exit_code == 2
    assert "CONFIG_ERROR" in broken.stderr


def test_commands_work_on_the_backend_they_name_whatever_store_migration_says(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STORE_MIGRATION", "*=memory:shadow")
    kind = unique_kind()
    assert run("ensure", kind).exit_code == 0
    assert run("put", kind, '{"id": "a"}').exit_code == 0
    assert lines(run("count", kind).stdout) == [{"count": 1}]
    store: Store[Any] = create_store(kind, backend="memory", migration="off")
    store.ensure()
    assert store.count() == 0  # the command wrote to sqlite only
