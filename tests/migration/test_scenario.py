"""A whole move, memory to sqlite, with writer threads running throughout: off, dualwrite, the
backfill (``kvstore copy``), shadow (no read differs), live, rampdown, complete; then ``kvstore
diff`` finds nothing and no acknowledged write is missing. And the same with the new side down for
a while during dualwrite: every call succeeds, each lost second write is reported with its key,
and ``kvstore diff --fix`` repairs them."""

from __future__ import annotations

import json
import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kvstore import create_store, increment, migration_stats
from kvstore.cli import cli
from kvstore.migration import STAGES, MigrationEvent
from kvstore.testing import unique_kind
from tests.migration import flaky

WRITERS = 4
KEYS_EACH = 12
OPS_PER_STAGE = 40
"""Operations every writer does at a stage before the move goes on (each then keeps going)."""
DEADLINE = 60.0
HISTORY = 1500
"""Records written before the move starts, which no writer touches again."""


class Writer(threading.Thread):
    """Writes its own keys through the store of the current stage, remembering what each call
    acknowledged, and reads each key back now and then."""

    def __init__(self, number: int, stores: dict[str, Any], stage: list[str]) -> None:
        super().__init__(name=f"writer-{number}", daemon=True)
        self.number = number
        self.stores = stores
        self.stage = stage
        self.keys = [f"w{number}k{i:02}" for i in range(KEYS_EACH)]
        self.acknowledged: dict[str, dict[str, Any] | None] = {}
        self.done: dict[str, int] = dict.fromkeys(STAGES, 0)
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        rng = random.Random(self.number)
        try:
            while not self.stop.is_set():
                stage = self.stage[0]
                self.step(self.stores[stage], rng, stage)
                self.done[stage] += 1
        except BaseException as exc:
            self.error = exc

    def step(self, store: Any, rng: random.Random, stage: str) -> None:
        key = rng.choice(self.keys)
        held = self.acknowledged.get(key)
        roll = rng.random()
        if roll < 0.45 or (roll < 0.75 and held is None):
            record = {"id": key, "n": rng.randint(0, 1000), "stage": stage}
            if rng.random() < 0.5:
                record["tags"] = [stage, self.number]
            self.acknowledged[key] = store.put(record)
        elif roll < 0.75:
            self.acknowledged[key] = store.update({"id": key, "n": increment(1), "stage": stage})
        elif roll < 0.85:
            store.remove({"id": key})
            self.acknowledged[key] = None
        else:  # read your own write, through whichever side the stage reads
            found = store.find_all({"id": key})
            assert found == ([held] if held is not None else []), (key, stage, found, held)


def _advance(writers: list[Writer], stage: list[str], to: str) -> None:
    stage[0] = to
    deadline = time.monotonic() + DEADLINE
    while any(w.done[to] < OPS_PER_STAGE for w in writers):
        assert all(w.error is None for w in writers), [w.error for w in writers]
        assert all(w.is_alive() for w in writers)
        assert time.monotonic() < deadline, f"the writers did not get through stage {to}"
        time.sleep(0.005)


def _stop(writers: list[Writer]) -> None:
    for writer in writers:
        writer.stop.set()
    for writer in writers:
        writer.join(timeout=DEADLINE)
        assert not writer.is_alive()
        if writer.error is not None:
            raise writer.error


def _stores(kind: str, new: str, options: dict[str, Any]) -> dict[str, Any]:
    return {
        name: create_store(
            kind, backend="memory", migration=f"{new}:{name}", migration_options=options
        )
        for name in STAGES
    }


def _run(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_a_kind_moves_from_memory_to_sqlite_while_writers_keep_writing(
    tmp_path: Path, events: list[MigrationEvent]
) -> None:
    kind = unique_kind()
    path = tmp_path / "new.sqlite3"
    stores = _stores(kind, "sqlite", {"path": str(path)})
    stores["off"].ensure()
    stores["complete"].ensure()  # the new side's table exists before any second write
    history = [{"id": f"old{n:04}", "n": n, "tags": ["before"]} for n in range(HISTORY)]
    assert stores["off"].put_many(history) == HISTORY  # only the backfill brings these over
    stage = ["off"]
    writers = [Writer(n, stores, stage) for n in range(WRITERS)]
    for writer in writers:
        writer.start()
    try:
        _advance(writers, stage, "off")
        _advance(writers, stage, "dualwrite")  # every writer writes both sides from now on
        copied = _run("copy", kind, "--from", "memory", "--to", f"sqlite:path={path}")
        assert copied.exit_code == 0, copied.output
        for name in ("shadow", "live", "rampdown"):
            _advance(writers, stage, name)
    finally:
        _stop(writers)
    stats = migration_stats()[kind]
    assert stats["shadow"]["compared"] > 0
    assert stats["live"]["compared"] > 0
    assert events == []  # no read differed, no second write failed
    diff = _run("diff", kind, "--from", "memory", "--to", f"sqlite:path={path}")
    assert diff.exit_code == 0, diff.output
    assert json.loads(diff.stdout)["differences"] == 0  # one line: diff's summary, no difference
    # At complete the new side alone answers: every acknowledged write is there.
    complete = stores["complete"]
    assert complete.find_all({"tags": ["before"]}) == history
    for writer in writers:
        for key, record in writer.acknowledged.items():
            assert complete.find_all({"id": key}) == ([record] if record else []), key
    expected = sum(1 for w in writers for r in w.acknowledged.values() if r is not None)
    assert complete.count() == expected + HISTORY


def test_the_new_side_down_during_dualwrite_loses_no_call_and_diff_fix_repairs_it(
    switch: flaky.Switch, events: list[MigrationEvent]
) -> None:
    kind = unique_kind()
    stores = _stores(kind, "flaky", {"switch": switch})
    stores["off"].ensure()
    stores["complete"].ensure()
    stage = ["dualwrite"]
    writers = [Writer(n, stores, stage) for n in range(WRITERS)]
    for writer in writers:
        writer.start()
    try:
        _advance(writers, stage, "dualwrite")
        switch.down = True  # the new side is unreachable for a while
        before = [w.done["dualwrite"] for w in writers]
        deadline = time.monotonic() + DEADLINE
        while any(
            w.done["dualwrite"] < b + OPS_PER_STAGE for w, b in zip(writers, before, strict=True)
        ):
            assert time.monotonic() < deadline
            assert all(w.error is None for w in writers), [w.error for w in writers]
            time.sleep(0.005)
        switch.down = False
    finally:
        _stop(writers)
    failed = [e for e in events if e.outcome == "second_write_failed"]
    assert failed
    assert all(e.error == "BackendUnavailable" and e.key is not None for e in failed)
    assert migration_stats()[kind]["dualwrite"]["second_write_failures"] == len(failed)
    diff = _run("diff", kind, "--from", "memory", "--to", "flaky")
    assert diff.exit_code == 1
    fixed = _run("diff", kind, "--from", "memory", "--to", "flaky", "--fix", "--delete-extra")
    assert fixed.exit_code == 0, fixed.output
    assert json.loads(_run("diff", kind, "--from", "memory", "--to", "flaky").stdout) == {
        "differences": 0,
        "compared": stores["off"].count(),
    }
    # Every key a failure named was repaired; then shadow reads find nothing to report.
    stage[0] = "shadow"
    events.clear()
    shadow = stores["shadow"]
    for writer in writers:
        for key, record in writer.acknowledged.items():
            assert shadow.find_all({"id": key}) == ([record] if record else [])
    assert events == []
    assert migration_stats()[kind]["shadow"]["mismatches"] == 0


@pytest.fixture(autouse=True)
def _no_store_migration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STORE_MIGRATION", raising=False)
    monkeypatch.delenv("STORE_MIGRATION_SAMPLE", raising=False)
