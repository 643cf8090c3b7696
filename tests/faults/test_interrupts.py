"""Issue 12, defect 9: the caller's own exceptions pass through unchanged; nothing on stderr.

A caller's deadline (a signal handler raising its own exception) that interrupts an aurora
``put_many`` or ``update`` comes back today as ``BackendUnavailable`` ("cannot exit pipeline mode
while busy"), the caller's exception only in ``__context__``. And each time a pipelined connection is
lost, psycopg logs "error ignored terminating <Pipeline>" as a WARNING, which a process without
logging configured (Python's last-resort handler) prints on stderr.

The interrupt is SIGUSR1 from a timer (``helpers.caller_interrupt``), sent while the call waits on a
proxy that delays traffic; the proxy passes traffic again right after, so whatever the call does
next ends quickly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from kvstore import BackendUnavailable, Store
from tests.faults.conftest import Faulty
from tests.faults.helpers import CallerDeadline, caller_interrupt, outcome_of

pytestmark = pytest.mark.timeout(60)


def _records(count: int, pad: int) -> Iterator[dict[str, Any]]:
    return ({"id": f"r{number:05}", "pad": "x" * pad} for number in range(count))


def _assert_unchanged(outcome: Any) -> None:
    error = outcome.error
    assert type(error) is CallerDeadline, (
        f"the caller's exception was replaced: {outcome.describe()}"
    )
    assert error.args == ("the caller's own deadline",)


@pytest.mark.parametrize(
    ("backend", "waiting"),
    [
        ("aurora", "results"),
        # Before issue 12's fix this one failed only when the signal landed in psycopg's
        # pipeline communication rather than in a send (about one run in three).
        ("aurora", "sending"),
        ("dynamo", "results"),
        ("dynamo", "sending"),
    ],
)
def test_put_many_interrupted_by_the_callers_exception_raises_it_unchanged(
    faulty: Callable[..., Faulty], backend: str, waiting: str
) -> None:
    """``waiting``: what the call waits for when the interrupt comes. "sending": 3 MB, which the
    delayed proxy takes seconds to read; "results": 1,200 small records, sent at once, whose
    results come back a second late."""
    f = faulty(backend)
    f.store.count()
    if waiting == "sending":
        f.proxy.delay(0.2)
        records = _records(3000, pad=1000)
    else:
        f.proxy.delay(1.0)
        records = _records(1200, pad=0)
    with caller_interrupt(0.5, then=f.proxy.pass_through):
        outcome = outcome_of(lambda: f.store.put_many(records))
    _assert_unchanged(outcome)
    assert f.store.put({"id": "after"}) == {"id": "after"}  # the store still works


def test_update_interrupted_by_the_callers_exception_raises_it_unchanged(
    aurora: Callable[..., Store], pg_proxy: Any
) -> None:
    store = aurora(pg_proxy)
    store.put({"id": "a", "n": 1})
    pg_proxy.delay(0.5)
    with caller_interrupt(0.7, then=pg_proxy.pass_through):
        outcome = outcome_of(lambda: store.update({"id": "a", "n": 2}))
    _assert_unchanged(outcome)
    assert store.find({"id": "a"}) in ({"id": "a", "n": 1}, {"id": "a", "n": 2})  # whole or not


@contextmanager
def no_logging_configured() -> Iterator[None]:
    """The root logger without handlers (pytest's removed for the block), as in a process that
    never configured logging: a WARNING then reaches Python's last-resort handler, on stderr."""
    root = logging.getLogger()
    saved = root.handlers
    root.handlers = []
    try:
        yield
    finally:
        root.handlers = saved


def test_a_pipeline_losing_its_connection_writes_nothing_on_stderr(
    aurora: Callable[..., Store], pg_proxy: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    store = aurora(pg_proxy)
    store.count()

    def records() -> Iterator[dict[str, Any]]:
        for number in range(1500):
            if number == 1200:  # two chunks are in the pipeline
                pg_proxy.reset()
                pg_proxy.reset_all()
            yield {"id": f"r{number:05}"}

    capfd.readouterr()
    with no_logging_configured():
        outcome = outcome_of(lambda: store.put_many(records()))
    assert isinstance(outcome.error, BackendUnavailable), outcome.describe()
    assert capfd.readouterr().err == ""
