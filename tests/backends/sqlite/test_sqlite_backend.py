"""What the sqlite backend adds to the contract: its file, its options, its layout, its locking."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from kvstore import AlreadyExists, ConfigError, create_store
from kvstore.testing import unique_kind


def test_the_file_comes_from_kvstore_sqlite_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "from-env.sqlite3"
    monkeypatch.setenv("KVSTORE_SQLITE_PATH", str(path))
    store = create_store(unique_kind(), backend="sqlite")
    store.ensure()
    store.put({"id": "a"})
    assert path.exists()
    assert store.native().path == str(path)


def test_the_default_file_is_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KVSTORE_SQLITE_PATH", raising=False)
    monkeypatch.chdir(tmp_path)
    store = create_store(unique_kind(), backend="sqlite")
    store.ensure()
    assert (tmp_path / "kvstore.sqlite3").exists()


def test_an_unknown_option_is_a_type_error(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="dsn"):
        create_store("things", backend="sqlite", path=str(tmp_path / "x"), dsn="nope")


def test_creating_a_store_touches_no_file(tmp_path: Path) -> None:
    path = tmp_path / "lazy.sqlite3"
    create_store("things", backend="sqlite", path=str(path))
    assert not path.exists()


def test_a_missing_table_says_to_run_ensure(tmp_path: Path) -> None:
    store = create_store(unique_kind(), backend="sqlite", path=str(tmp_path / "db"))
    for call in (
        lambda: store.count(),
        lambda: store.find_all({"x": 1}),
        lambda: store.put({"id": "a"}),
        lambda: store.put_many([{"id": "a"}]),
        lambda: store.update({"id": "a", "x": 1}),
        lambda: store.remove({"id": "a"}),
        lambda: store.truncate(force=True),
    ):
        with pytest.raises(ConfigError, match="ensure"):
            call()


def test_native_gives_the_connection_and_the_layout(tmp_path: Path) -> None:
    store = create_store(
        unique_kind(),
        backend="sqlite",
        path=str(tmp_path / "db"),
        id_field=("doc", "n"),
        key_type=(str, int),
    )
    store.ensure()
    store.put({"doc": "d", "n": 2, "v": [1.5, True]})
    native = store.native()
    with native.lock:
        row = native.connection.execute(
            f'SELECT "doc", "n", "{native.json_column}" FROM "{native.table}"'
        ).fetchone()
    # An id field called "doc" keeps its own column; the JSON moves aside.
    assert native.json_column != "doc"
    assert row[:2] == ("d", 2)
    assert json.loads(row[2]) == {"doc": "d", "n": 2, "v": [1.5, True]}


def test_threads_racing_to_create_one_key_let_exactly_one_win(tmp_path: Path) -> None:
    store = create_store(unique_kind(), backend="sqlite", path=str(tmp_path / "db"))
    store.ensure()
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def racer(n: int) -> None:
        barrier.wait()
        try:
            store.create({"id": "k", "by": n})
            outcomes.append("won")
        except AlreadyExists:
            outcomes.append("lost")

    threads = [threading.Thread(target=racer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["lost"] * 7 + ["won"]


def test_another_process_sees_the_writes_and_its_own_are_seen(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.sqlite3")
    kind = unique_kind()
    store = create_store(kind, backend="sqlite", path=path)
    store.ensure()
    store.put({"id": "mine", "n": 1})
    script = (
        "from kvstore import create_store\n"
        f"s = create_store({kind!r}, backend='sqlite', path={path!r})\n"
        "print(s.find({'id': 'mine'})['n'])\n"
        "s.update({'id': 'mine', 'n': 2})\n"
        "s.create({'id': 'theirs'})\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "1"
    assert store.find_all() == [{"id": "mine", "n": 2}, {"id": "theirs"}]


def test_find_in_and_remove_in_take_more_keys_than_sqlite_has_parameters(tmp_path: Path) -> None:
    store = create_store(unique_kind(), backend="sqlite", path=str(tmp_path / "db"))
    store.ensure()
    store.put_many({"id": f"k{n}", "n": n} for n in range(40_000))
    wanted = [f"k{n}" for n in range(0, 40_000, 2)] + [f"missing{n}" for n in range(20_000)]
    assert len(store.find_in("id", wanted)) == 20_000
    assert store.remove_in("id", wanted) == 20_000
    assert store.count() == 20_000


def test_processes_racing_to_create_one_key_let_exactly_one_win(tmp_path: Path) -> None:
    path = str(tmp_path / "race.sqlite3")
    kind = unique_kind()
    create_store(kind, backend="sqlite", path=path).ensure()
    go = tmp_path / "go"
    script = (
        "import os, sys, time\n"
        "from kvstore import AlreadyExists, create_store\n"
        f"s = create_store({kind!r}, backend='sqlite', path={path!r})\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.005)\n"
        "try:\n"
        "    s.find_or_create({'id': 'k'}, {'id': 'k', 'by': os.getpid()})\n"
        "    s.create({'id': 'once', 'by': os.getpid()})\n"
        "    print('won')\n"
        "except AlreadyExists:\n"
        "    print('lost')\n"
    )
    racers = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    go.touch()
    outcomes = sorted(racer.communicate(timeout=120)[0].strip() for racer in racers)
    assert outcomes == ["lost", "lost", "lost", "won"]
    store = create_store(kind, backend="sqlite", path=path)
    assert store.count() == 2
    assert store.find({"id": "k"})["by"] in {racer.pid for racer in racers}
