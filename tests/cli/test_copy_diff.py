"""``kvstore copy`` and ``kvstore diff``: a copy converges (even re-run after an interruption) and
diff proves it, naming every record missing or differing."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kvstore import create_store
from kvstore.copying import copy_records, diff_records
from kvstore.progress import Progress
from kvstore.testing import unique_kind
from tests.cli.conftest import Run, lines

KEY = ("--id-field", "team_id", "--id-field", "seq", "--key-type", "str", "--key-type", "int")


def _record(n: int) -> dict[str, Any]:
    return {
        "team_id": f"t{n % 7}",
        "seq": n,
        "name": f"member {n}",
        "tags": ["a", n],
        "ok": n % 2 == 0,
    }


def _sqlite(path: Path, kind: str, *, ensure: bool = True) -> Any:
    store = create_store(
        kind, backend="sqlite", path=str(path), id_field=("team_id", "seq"), key_type=(str, int)
    )
    if ensure:
        store.ensure()
    return store


@pytest.fixture
def sides(tmp_path: Path) -> tuple[str, str]:
    return f"sqlite:path={tmp_path / 'a.sqlite3'}", f"sqlite:path={tmp_path / 'b.sqlite3'}"


def test_copy_then_diff_is_clean_and_a_change_is_named(
    run: Run, tmp_path: Path, sides: tuple[str, str]
) -> None:
    source, target = sides
    kind = unique_kind()
    a = _sqlite(tmp_path / "a.sqlite3", kind)
    a.put_many(_record(n) for n in range(1, 301))
    copied = run("copy", kind, "--from", source, "--to", target, *KEY)
    assert copied.exit_code == 0, copied.output
    assert "copied 300/300 records" in copied.stderr
    clean = run("diff", kind, "--from", source, "--to", target, *KEY)
    assert clean.exit_code == 0
    assert lines(clean.stdout) == [{"differences": 0, "compared": 300}]

    b = _sqlite(tmp_path / "b.sqlite3", kind)
    b.update({"team_id": "t3", "seq": 10, "name": "renamed", "ok": None})
    changed = run("diff", kind, "--from", source, "--to", target, *KEY)
    assert changed.exit_code == 1
    assert lines(changed.stdout) == [
        {
            "key": {"team_id": "t3", "seq": 10},
            "differs": [
                {"field": "name", "from": "member 10", "to": "renamed"},
                {"field": "ok", "from": True},
            ],
        },
        {"differences": 1, "compared": 300},
    ]


def test_diff_reports_records_missing_on_either_side(
    run: Run, tmp_path: Path, sides: tuple[str, str]
) -> None:
    source, target = sides
    kind = unique_kind()
    a, b = _sqlite(tmp_path / "a.sqlite3", kind), _sqlite(tmp_path / "b.sqlite3", kind)
    a.put_many(_record(n) for n in range(1, 21))
    b.put_many(_record(n) for n in range(1, 21))
    a.remove({"team_id": "t2", "seq": 9})
    b.remove({"team_id": "t5", "seq": 5})
    b.put({"team_id": "zz", "seq": 1})
    result = run("diff", kind, "--from", source, "--to", target, *KEY)
    assert result.exit_code == 1
    assert lines(result.stdout) == [
        {"key": {"team_id": "t2", "seq": 9}, "missing_in": "from"},
        {"key": {"team_id": "t5", "seq": 5}, "missing_in": "to"},
        {"key": {"team_id": "zz", "seq": 1}, "missing_in": "from"},
        # Keys, each once: the 20 both had, less t2/9 and t5/5 that one side lacks, plus the
        # three found on one side only (not the 39 records read).
        {"differences": 3, "compared": 21},
    ]
    assert "3 difference(s)" in result.stderr
    assert "in 21 keys" in result.stderr


def test_diff_tells_a_bool_from_a_number_and_a_string(tmp_path: Path) -> None:
    kind = unique_kind()
    a, b = _sqlite(tmp_path / "a", kind), _sqlite(tmp_path / "b", kind)
    for value, other in ((1, True), (1, "1"), ([1, 2], [2, 1]), ({"x": 0}, {"x": False})):
        a.put({"team_id": "t", "seq": 1, "v": value})
        b.put({"team_id": "t", "seq": 1, "v": other})
        assert [d.key for d in diff_records(a, b)] == [("t", 1)]
    b.put({"team_id": "t", "seq": 1, "v": {"x": 0.0}})  # 0.0 is 0: no difference
    assert list(diff_records(a, b)) == []


def test_copy_from_memory_to_sqlite(run: Run, tmp_path: Path) -> None:
    kind = unique_kind()
    memory = create_store(kind, backend="memory")
    memory.ensure()
    memory.put_many({"id": f"r{n:04}", "n": n, "f": n / 3} for n in range(1200))
    target = f"sqlite:path={tmp_path / 'copy.sqlite3'}"
    assert run("copy", kind, "--from", "memory", "--to", target).exit_code == 0
    assert run("diff", kind, "--from", "memory", "--to", target).exit_code == 0
    assert lines(run("--backend", target, "count", kind).stdout) == [{"count": 1200}]


class _Interrupted(Exception):
    pass


def _reads_die_after(monkeypatch: pytest.MonkeyPatch, limit: int) -> None:
    """Make the copy's reads of the source die once ``limit`` records have been read."""
    from kvstore import copying

    real = copying.read_segment
    read = [0]

    def dying(*args: Any) -> Iterator[dict[str, Any]]:
        for record in real(*args):
            if read[0] >= limit:
                raise _Interrupted
            read[0] += 1
            yield record

    monkeypatch.setattr(copying, "read_segment", dying)


def test_an_interrupted_copy_converges_when_run_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kind = unique_kind()
    source, target = _sqlite(tmp_path / "a", kind), _sqlite(tmp_path / "b", kind)
    source.put_many(_record(n) for n in range(2000))
    target.put({"team_id": "t1", "seq": 1, "name": "stale"})  # a copy also repairs
    with monkeypatch.context() as patch:
        _reads_die_after(patch, 700)
        with pytest.raises(_Interrupted):
            copy_records(source, target, chunk_size=100)
    assert 700 <= target.count() < 2000
    assert list(diff_records(source, target))
    counts = copy_records(source, target, chunk_size=100)
    assert (counts.read, counts.unchanged, counts.skipped) == (2000, 700, 0)
    assert list(diff_records(source, target)) == []
    assert target.count() == 2000


def test_a_killed_copy_process_converges_when_run_again(tmp_path: Path) -> None:
    kind = unique_kind()
    a_path, b_path = tmp_path / "a.sqlite3", tmp_path / "b.sqlite3"
    source = _sqlite(a_path, kind)
    total = 30_000
    source.put_many(_record(n) for n in range(total))
    target = _sqlite(b_path, kind)
    kvstore = [sys.executable, "-m", "kvstore.cli"]
    copy = [
        *kvstore,
        "copy",
        kind,
        "--from",
        f"sqlite:path={a_path}",
        "--to",
        f"sqlite:path={b_path}",
        "--chunk",
        "50",
        *KEY,
    ]
    process = subprocess.Popen(copy, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while target.count() == 0 and process.poll() is None:
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    at_kill = target.count()
    if at_kill >= total:
        pytest.skip("the copy finished before it could be killed")
    assert process.returncode == -signal.SIGKILL
    diff = [
        *kvstore,
        "diff",
        kind,
        "--from",
        f"sqlite:path={a_path}",
        "--to",
        f"sqlite:path={b_path}",
        *KEY,
    ]
    assert subprocess.run(diff, capture_output=True).returncode == 1
    assert subprocess.run(copy, capture_output=True).returncode == 0
    result = subprocess.run(diff, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[:2000]
    assert target.count() == total


def _copy_peak(tmp_path: Path, size: int) -> int:
    kind = unique_kind()
    source = _sqlite(tmp_path / f"src{size}", kind)
    source.put_many(_record(n) for n in range(size))
    target = _sqlite(tmp_path / f"dst{size}", kind)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        assert copy_records(source, target).read == size
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_copy_memory_does_not_grow_with_the_kind(tmp_path: Path) -> None:
    small = _copy_peak(tmp_path, 2_000)
    large = _copy_peak(tmp_path, 20_000)
    assert large <= small * 1.2, (small, large)


def test_progress_shows_rate_and_eta_when_the_total_is_known() -> None:
    progress = Progress("copied", 1000, tty=False)
    line = progress.line(250)
    assert line.startswith("copied 250/1,000 records, ")
    assert "records/s" in line
    assert "ETA" in line
    assert "ETA" not in Progress("copied", None, tty=False).line(250)
    assert "ETA" not in progress.line(1000)


def test_json_lines_of_diff_compose_with_other_tools(
    run: Run, tmp_path: Path, sides: tuple[str, str]
) -> None:
    source, target = sides
    kind = unique_kind()
    _sqlite(tmp_path / "a.sqlite3", kind).put({"team_id": "é", "seq": -1, "x": [None]})
    _sqlite(tmp_path / "b.sqlite3", kind)
    result = run("diff", kind, "--from", source, "--to", target, *KEY)
    assert result.exit_code == 1
    assert [json.loads(line) for line in result.stdout.splitlines()] == [
        {"key": {"team_id": "é", "seq": -1}, "missing_in": "to"},
        {"differences": 1, "compared": 1},
    ]


def test_copy_draws_a_bar_on_a_terminal_and_refuses_a_copy_onto_itself(
    run: Run, tmp_path: Path, sides: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    source, target = sides
    kind = unique_kind()
    _sqlite(tmp_path / "a.sqlite3", kind).put_many(_record(n) for n in range(50))
    monkeypatch.setattr("kvstore.cli.moving.stderr_is_tty", lambda: True)
    result = run("copy", kind, "--from", source, "--to", target, *KEY)
    assert result.exit_code == 0
    assert result.stderr.startswith("\rcopied 50/50 records")
    same = run("copy", kind, "--from", source, "--to", source, *KEY)
    assert same.exit_code == 2
    assert "same backend" in same.stderr
