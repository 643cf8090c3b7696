"""Helpers of the fault tests: bounded calls, the caller's own interrupts, polling a store."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any

from kvstore import Store

BUDGET = 2.0
"""The time budget (seconds) the fault tests give a call (``KVSTORE_TIMEOUT``, see README.md)."""
MARGIN = 3.0
"""What a call may take past its budget (a loaded 2-core machine), before the test calls it late."""


@dataclass
class Outcome:
    """What a call run by ``call_bounded`` did."""

    finished: bool
    """Whether it returned or raised within the time it was given."""
    elapsed: float
    """Seconds until it returned or raised (or until it was given up on)."""
    value: Any = None
    error: BaseException | None = None

    def describe(self) -> str:
        """One line for assertion messages."""
        if not self.finished:
            return f"still running after {self.elapsed:.1f} s"
        if self.error is not None:
            return f"raised {type(self.error).__name__}: {self.error} after {self.elapsed:.1f} s"
        return f"returned {self.value!r:.200} after {self.elapsed:.1f} s"


def outcome_of(call: Callable[[], Any]) -> Outcome:
    """What ``call()`` did, run in this thread (for calls whose error a test inspects)."""
    start = time.monotonic()
    try:
        value = call()
    except Exception as exc:
        return Outcome(True, time.monotonic() - start, error=exc)
    return Outcome(True, time.monotonic() - start, value)


def call_bounded(
    call: Callable[[], Any], within: float, release: Callable[[], None] | None = None
) -> Outcome:
    """Run ``call`` in a daemon thread and wait at most ``within`` seconds for it.

    When it has not ended by then, ``release`` (e.g. a proxy switched back to pass-through and its
    connections reset) is called so the thread can end, and the thread is waited for a little
    more; the outcome still says it did not finish in time.
    """
    box: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:
            box["error"] = exc
        finally:
            box["elapsed"] = time.monotonic() - start
            done.set()

    start = time.monotonic()
    thread = threading.Thread(target=run, name="bounded-call", daemon=True)
    thread.start()
    finished = done.wait(within)
    if not finished:
        late = time.monotonic() - start
        if release is not None:
            release()
        done.wait(20.0)
        return Outcome(False, late, box.get("value"), box.get("error"))
    return Outcome(True, box["elapsed"], box.get("value"), box.get("error"))


class CallerDeadline(Exception):
    """The caller's own exception, raised from its signal handler (a deadline of its own)."""


@contextmanager
def caller_interrupt(after: float, then: Callable[[], None] | None = None) -> Iterator[None]:
    """Within the block, ``after`` seconds from its start, interrupt the main thread with the
    caller's own ``CallerDeadline`` (a ``threading.Timer`` sends SIGUSR1, whose handler raises
    it), then run ``then``. SIGUSR1, not SIGALRM: pytest-timeout uses SIGALRM."""
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("signals interrupt the main thread only")

    def handler(signum: int, frame: FrameType | None) -> None:
        raise CallerDeadline("the caller's own deadline")

    def fire() -> None:
        signal.pthread_kill(main, signal.SIGUSR1)
        if then is not None:
            then()

    main = threading.get_ident()
    previous = signal.signal(signal.SIGUSR1, handler)
    timer = threading.Timer(after, fire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        timer.join(5.0)
        signal.signal(signal.SIGUSR1, previous)


def wait_for_count(store: Store, at_least: int, seconds: float = 10.0) -> int:
    """Poll ``store.count()`` until it reaches ``at_least`` (or ``seconds`` pass); return it."""
    deadline = time.monotonic() + seconds
    count = store.count()
    while count < at_least and time.monotonic() < deadline:
        time.sleep(0.05)
        count = store.count()
    return count
