"""``kvstore put KIND`` from stdin: a bad line writes nothing after it and keeps every line before
it (in its chunk too), says which lines were written, and stdin is streamed, not read whole."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from kvstore import BackendUnavailable, create_store
from kvstore.store import CHUNK_SIZE, RecordStore
from tests.cli.conftest import KVSTORE, Run, Script, lines


def _line(n: int) -> str:
    return json.dumps({"id": f"r{n:05}", "n": n}) + "\n"


def _ids() -> list[str]:
    return [record["id"] for record in create_store("items", backend="sqlite").find_all()]


@pytest.fixture
def items(run: Run) -> None:
    assert run("ensure", "items").exit_code == 0


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ("not json\n", "stdin line {n} is not JSON: "),
        ('{"id": "x", \n', "stdin line {n} is not JSON: "),
        ("[1, 2]\n", "stdin line {n} is not a JSON object but list"),
        ('"r9"\n', "stdin line {n} is not a JSON object but str"),
        ('{"name": "no key"}\n', "stdin line {n}: record lacks its key field(s) 'id'"),
        ('{"id": "x", "bad-name": 1}\n', "stdin line {n}: "),
        ('{"id": "x", "v": NaN}\n', "stdin line {n}: "),
        ('{"id": "x", "v": 1.' + "0" * 40 + "1}\n", "stdin line {n}: field 'v': "),  # 42 digits
    ],
)
def test_a_bad_line_keeps_every_line_before_it_and_writes_none_after(
    run: Run, items: None, bad: str, says: str
) -> None:
    before = [_line(n) for n in range(1, 7)]
    after = [_line(n) for n in range(100, 103)]
    result = run("put", "items", input="".join([*before, bad, *after]))
    assert result.exit_code == 2
    assert result.stdout == ""
    [message] = result.stderr.splitlines()
    assert message.startswith("error: INVALID_ARGUMENT: " + says.format(n=7))
    assert message.endswith("; lines 1-6 were written")
    assert _ids() == [f"r{n:05}" for n in range(1, 7)]


def test_numbers_are_read_as_written(run: Run, items: None) -> None:
    stdin = '{"id": "a", "n": 2.0, "f": 0.1, "big": 1.5e20}\n'
    assert run("put", "items", input=stdin).exit_code == 0
    assert run("put", "items", '{"id": "b", "n": 3.0}').exit_code == 0
    found = create_store("items", backend="sqlite").find_all()
    assert found == [{"id": "a", "n": 2, "f": 0.1, "big": 1.5e20}, {"id": "b", "n": 3}]
    assert [type(record["n"]) for record in found] == [int, int]


def test_the_lines_of_the_bad_lines_chunk_before_it_are_kept_too(run: Run, items: None) -> None:
    bad_at = 2 * CHUNK_SIZE + 137  # in the third chunk, after 136 lines of it
    stdin = (
        [_line(n) for n in range(1, bad_at)] + ["{oops\n"] + [_line(n) for n in range(bad_at, 2000)]
    )
    result = run("put", "items", input="".join(stdin))
    assert result.exit_code == 2
    assert result.stderr.strip().endswith(f"lines 1-{bad_at - 1} were written")
    assert f"stdin line {bad_at} is not JSON" in result.stderr
    assert _ids() == [f"r{n:05}" for n in range(1, bad_at)]


def test_blank_lines_are_skipped_and_a_first_bad_line_writes_nothing(run: Run, items: None) -> None:
    good = run("put", "items", input="\n" + _line(1) + "   \n" + _line(2) + "\n")
    assert lines(good.stdout) == [{"written": 2}]
    first = run("put", "items", input="nope\n" + _line(3))
    assert first.exit_code == 2
    assert first.stderr.strip().endswith("stdin line 1 is not JSON: "
                                         "Expecting value: line 1 column 1 (char 0); "
                                         "nothing was written")  # fmt: skip
    second = run("put", "items", input=_line(4) + "nope\n")
    assert second.stderr.strip().endswith("; line 1 was written")
    assert _ids() == ["r00001", "r00002", "r00004"]


def test_a_byte_order_mark_and_crlf_line_ends_are_no_part_of_the_json(
    run: Run, items: None
) -> None:
    stdin = b"\xef\xbb\xbf" + _line(1).encode().replace(b"\n", b"\r\n") + _line(2).encode()
    assert lines(run("put", "items", input=stdin).stdout) == [{"written": 2}]
    assert _ids() == ["r00001", "r00002"]


def test_a_line_that_is_not_utf8_is_named(run: Run, items: None) -> None:
    stdin = (_line(1) + _line(2)).encode() + b'{"id": "\xff"}\n' + _line(3).encode()
    result = run("put", "items", input=stdin)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: INVALID_ARGUMENT: stdin line 3 is not UTF-8")
    assert result.stderr.strip().endswith("lines 1-2 were written")
    assert _ids() == ["r00001", "r00002"]


def test_a_write_that_fails_midway_says_how_many_records_were_stored(
    run: Run, items: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(self: RecordStore, records: Any) -> int:
        error = BackendUnavailable("the server went away")
        error.written = 500
        raise error

    monkeypatch.setattr(RecordStore, "put_many", failing)
    result = run("put", "items", input=_line(1))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: BACKEND_UNAVAILABLE: the server went away; ")
    assert "the first 500 record(s)" in result.stderr


def test_the_console_script_keeps_the_lines_before_a_bad_one(script: Script, run: Run) -> None:
    assert run("ensure", "items").exit_code == 0
    stdin = "".join(_line(n) for n in range(1, 31)) + "{]\n" + _line(99)
    result = script("put", "items", input=stdin)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: INVALID_ARGUMENT: stdin line 31 is not JSON: ")
    assert result.stderr.strip().endswith("lines 1-30 were written")
    assert "Traceback" not in result.stderr
    assert _ids() == [f"r{n:05}" for n in range(1, 31)]
    ok = script("put", "items", input=_line(99))
    assert (ok.returncode, lines(ok.stdout)) == (0, [{"written": 1}])


def test_stdin_is_streamed_not_read_whole(run: Run, tmp_path: Path) -> None:
    assert run("ensure", "items").exit_code == 0
    store = create_store("items", backend="sqlite")
    process = subprocess.Popen(
        [str(KVSTORE), "put", "items"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        assert process.stdin is not None
        for n in range(2 * CHUNK_SIZE + 1):
            process.stdin.write(_line(n))
        process.stdin.flush()
        # stdin is still open: the first chunks are stored all the same.
        deadline = time.monotonic() + 60
        while store.count() < CHUNK_SIZE and time.monotonic() < deadline:
            assert process.poll() is None
            time.sleep(0.02)
        assert store.count() >= CHUNK_SIZE
        process.stdin.write(_line(5000))
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    assert lines(stdout) == [{"written": 2 * CHUNK_SIZE + 2}]
    assert store.count() == 2 * CHUNK_SIZE + 2
