"""A whole move on the real servers, DynamoDB Local (old side) to PostgreSQL (new side, backend
``aurora``), with writer threads running the whole time: off, dualwrite, the backfill (``kvstore
copy``), shadow (no read differs), live, rampdown, complete; ``kvstore diff`` finds nothing and no
acknowledged write is missing. Then the same with PostgreSQL unreachable for a while during
dualwrite, through a TCP fault proxy (connections reset, then a server that stops answering):
every call still succeeds within the call's time budget, each failed second write is reported with
its key (WARNING on ``kvstore.migration``, ``migration_stats``, the ``kvstore_migration_event``
hook), and ``kvstore diff --fix`` repairs them.

Every wait is bounded in time (``DEADLINE``) and every loop in count.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kvstore import create_store, migration_stats
from kvstore.migration import STAGES, MigrationEvent
from kvstore.testing import unique_kind
from tests.faults.proxy import FaultProxy
from tests.migration.conftest import REGION, Servers
from tests.migration.test_scenario import DEADLINE, OPS_PER_STAGE, WRITERS, Writer, _run, _stop

pytestmark = [pytest.mark.timeout(240), pytest.mark.usefixtures("aws_credentials")]

HISTORY = 600
"""Records written before the move starts, which no writer touches again."""
BUDGET = 1.0
"""The new side's call time budget (``timeout=``) in the outage test: a stalled call ends then."""
OUTAGE_OPS = 12
"""Operations every writer does while the new side resets connections, then while it stalls."""
PAUSED = "paused"


class PausableWriter(Writer):
    """A ``Writer`` that idles while the stage is ``PAUSED`` (so that a diff sees still sides),
    and times each call."""

    def __init__(self, number: int, stores: dict[str, Any], stage: list[str]) -> None:
        super().__init__(number, stores, stage)
        self.idle = threading.Event()
        self.slowest: dict[str, float] = dict.fromkeys(STAGES, 0.0)

    def run(self) -> None:
        rng = random.Random(self.number)
        try:
            for _step in range(1_000_000):
                if self.stop.is_set():
                    return
                stage = self.stage[0]
                if stage == PAUSED:
                    self.idle.set()
                    time.sleep(0.005)
                    continue
                self.idle.clear()
                started = time.monotonic()
                self.step(self.stores[stage], rng, stage)
                took = time.monotonic() - started
                self.slowest[stage] = max(self.slowest[stage], took)
                self.done[stage] += 1
        except BaseException as exc:
            self.error = exc


def _until(
    writers: list[PausableWriter], ready: Callable[[PausableWriter], bool], what: str
) -> None:
    deadline = time.monotonic() + DEADLINE
    while not all(ready(w) for w in writers):
        assert all(w.error is None for w in writers), [w.error for w in writers]
        assert all(w.is_alive() for w in writers)
        assert time.monotonic() < deadline, f"the writers did not get through {what}"
        time.sleep(0.005)


def _advance(
    writers: list[PausableWriter], stage: list[str], to: str, ops: int = OPS_PER_STAGE
) -> None:
    """Move the writers to stage ``to``; return once each did ``ops`` more calls there."""
    before = [w.done[to] for w in writers]
    stage[0] = to
    _until(writers, lambda w: w.done[to] >= before[writers.index(w)] + ops, f"stage {to}")


def _pause(writers: list[PausableWriter], stage: list[str]) -> None:
    for writer in writers:
        writer.idle.clear()
    stage[0] = PAUSED
    _until(writers, lambda w: w.idle.is_set(), "a pause")


def _stores(kind: str, servers: Servers, new_side: dict[str, Any]) -> dict[str, Any]:
    return {
        name: create_store(
            kind,
            backend="dynamo",
            endpoint_url=servers.endpoint,
            region=REGION,
            migration=f"aurora:{name}",
            migration_options=new_side,
        )
        for name in STAGES
    }


def _started(stores: dict[str, Any], stage: list[str]) -> list[PausableWriter]:
    writers = [PausableWriter(n, stores, stage) for n in range(WRITERS)]
    for writer in writers:
        writer.start()
    return writers


def _diff(kind: str, servers: Servers, *extra: str) -> Any:
    return _run(
        "diff", kind, "--from", servers.dynamo_spec(), "--to", servers.aurora_spec(), *extra
    )


def _acknowledged(writers: list[PausableWriter]) -> Iterator[tuple[str, dict[str, Any] | None]]:
    for writer in writers:
        yield from writer.acknowledged.items()


def test_a_kind_moves_from_dynamodb_local_to_postgresql_while_writers_keep_writing(
    servers: Servers, events: list[MigrationEvent]
) -> None:
    kind = unique_kind()
    stores = _stores(kind, servers, {"dsn": servers.dsn()})
    stores["off"].ensure()
    stores["complete"].ensure()  # the new side's table exists before any second write
    history = [{"id": f"old{n:04}", "n": n, "tags": ["before"]} for n in range(HISTORY)]
    assert stores["off"].put_many(history) == HISTORY  # only the backfill brings these over
    stage = ["off"]
    writers = _started(stores, stage)
    try:
        _advance(writers, stage, "off")
        _advance(writers, stage, "dualwrite")  # every writer writes both sides from now on
        copy = [kind, "--from", servers.dynamo_spec(), "--to", servers.aurora_spec()]
        copied = _run("copy", *copy)
        assert copied.exit_code == 0, copied.output
        summary = json.loads(copied.stdout)
        assert summary["read"] >= HISTORY
        assert summary["copied"] + summary["skipped"] == summary["read"]
        for name in ("shadow", "live", "rampdown"):
            _advance(writers, stage, name)
        _pause(writers, stage)  # both sides still: diff compares them at rest
        diff = _diff(kind, servers)
        assert diff.exit_code == 0, diff.output
        assert json.loads(diff.stdout)["differences"] == 0
        _advance(writers, stage, "complete")  # the new side alone from now on
    finally:
        _stop(writers)  # type: ignore[arg-type]
    stats = migration_stats()[kind]
    assert stats["shadow"]["compared"] > 0
    assert stats["live"]["compared"] > 0
    assert stats["shadow"]["mismatches"] == stats["live"]["mismatches"] == 0
    assert events == []  # no read differed, no second write failed
    # At complete the new side alone answers: every acknowledged write is there.
    complete = stores["complete"]
    assert complete.find_all({"tags": ["before"]}) == history
    for key, record in _acknowledged(writers):
        assert complete.find_all({"id": key}) == ([record] if record else []), key
    expected = sum(1 for _key, record in _acknowledged(writers) if record is not None)
    assert complete.count() == expected + HISTORY


def test_postgresql_unreachable_during_dualwrite_loses_no_call_and_diff_fix_repairs_it(
    servers: Servers,
    events: list[MigrationEvent],
    caplog: pytest.LogCaptureFixture,
) -> None:
    kind = unique_kind()
    proxy = FaultProxy((servers.pg_host, servers.pg_port))
    try:
        new_side = {"dsn": servers.dsn(proxy.port), "timeout": BUDGET}
        stores = _stores(kind, servers, new_side)
        stores["off"].ensure()
        stores["complete"].ensure()
        stage = ["dualwrite"]
        caplog.set_level(logging.WARNING, logger="kvstore.migration")
        writers = _started(stores, stage)
        try:
            _advance(writers, stage, "dualwrite")
            healthy = max(w.slowest["dualwrite"] for w in writers)
            proxy.reset()  # PostgreSQL refuses every connection, and drops those open
            proxy.reset_all()
            _advance(writers, stage, "dualwrite", OUTAGE_OPS)
            reset_failures = len(events)
            proxy.stall()  # then it stops answering: each second write waits out its budget
            _advance(writers, stage, "dualwrite", OUTAGE_OPS // 3)
            # Paused while PostgreSQL is still down: the keys last written meanwhile differ.
            _pause(writers, stage)
            proxy.pass_through()
            proxy.reset_all()  # the stalled connections are dropped; new ones pass
            # Every call succeeded (a writer's error fails _until), within the budget and a margin.
            slowest = max(w.slowest["dualwrite"] for w in writers)
            assert slowest < 2 * BUDGET + healthy + 2.0, slowest
            failed = [e for e in events if e.outcome == "second_write_failed"]
            assert events == failed  # nothing else was reported
            assert 0 < reset_failures < len(failed)  # the reset, then the stall, lost writes
            assert all(e.error == "BackendUnavailable" and e.key is not None for e in failed), {
                (e.operation, e.error) for e in failed
            }
            assert migration_stats()[kind]["dualwrite"]["second_write_failures"] == len(failed)
            # One warning an event, each naming its event's key. Paired by the event the record
            # carries, not by order: writer threads report concurrently, and a report's hook
            # call and its log line are not one step.
            warnings = [r for r in caplog.records if r.name == "kvstore.migration"]
            logged = [r.kvstore_migration_event for r in warnings]
            assert sorted(map(id, logged)) == sorted(map(id, failed))
            for record, event in zip(warnings, logged, strict=True):
                message = record.getMessage()
                assert message.startswith("second write failed: ")
                assert str(event.key) in message
            # The sides differ only at keys a failure named, until diff --fix (the old side is
            # authoritative) repairs them.
            diff = _diff(kind, servers)
            assert diff.exit_code == 1, diff.output
            named = {event.key["id"] for event in failed if event.key is not None}
            listed = {json.loads(line)["key"]["id"] for line in diff.stdout.splitlines()[:-1]}
            assert listed, diff.output
            assert listed <= named  # a difference comes only from a reported failure
            fixed = _diff(kind, servers, "--fix", "--delete-extra")
            assert fixed.exit_code == 0, fixed.output
            # PostgreSQL back: the writers go on, and no second write fails any more.
            events.clear()
            _advance(writers, stage, "dualwrite")
            _pause(writers, stage)
            assert events == []
            assert json.loads(_diff(kind, servers).stdout) == {
                "differences": 0,
                "compared": stores["off"].count(),
            }
        finally:
            _stop(writers)  # type: ignore[arg-type]
        # Then shadow reads (through the proxy, passing again) find nothing to report.
        events.clear()
        shadow = stores["shadow"]
        for key, record in _acknowledged(writers):
            assert shadow.find_all({"id": key}) == ([record] if record else [])
        assert events == []
        assert migration_stats()[kind]["shadow"]["mismatches"] == 0
    finally:
        proxy.close()


@pytest.fixture(autouse=True)
def _no_store_migration(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("STORE_MIGRATION", "STORE_MIGRATION_SAMPLE", "KVSTORE_TIMEOUT", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
