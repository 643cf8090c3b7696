"""Writes of a kind in flight in this process: a migrating store's mirrored writes count from their
first write to their second, so that a shadow read's second look (``RECHECK_DELAY`` later) can also
wait, ``SETTLE`` at most, for them to land before calling a difference a mismatch."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar

if TYPE_CHECKING:
    from kvstore.migration.store import MigratingStore

__all__ = ["RECHECK_DELAY", "SETTLE", "landing", "settle", "writing"]

R = TypeVar("R")
P = ParamSpec("P")

RECHECK_DELAY = 0.05
"""Seconds before the second look at a difference between the two sides' reads: long enough for
a second write in flight to land, so that only a difference that lasts is reported."""

SETTLE = 1.0
"""Seconds the second look also waits, at most, while this process has writes of the kind in
flight (a loaded machine can hold one back past ``RECHECK_DELAY``, before or during its second
write)."""

_in_flight: dict[str, int] = {}
"""Mirrored writes (from their first write to their second) and second writes running now in this
process, by kind (every ``MigratingStore`` of it)."""
_in_flight_lock = threading.Lock()


@contextmanager
def landing(kind: str) -> Iterator[None]:
    """Count a write of ``kind`` as in flight for the block."""
    with _in_flight_lock:
        _in_flight[kind] = _in_flight.get(kind, 0) + 1
    try:
        yield
    finally:
        with _in_flight_lock:
            left = _in_flight[kind] - 1
            if left:
                _in_flight[kind] = left
            else:
                del _in_flight[kind]


def writing(
    method: Callable[Concatenate[MigratingStore, P], R],
) -> Callable[Concatenate[MigratingStore, P], R]:
    """A write method counted in flight from its first write on, in a mirrored stage: a thread
    held back between its first and its second write is still writing."""

    @functools.wraps(method)
    def counted(self: MigratingStore, /, *args: P.args, **kwargs: P.kwargs) -> R:
        if self._second is None:
            return method(self, *args, **kwargs)
        with landing(self.kind):
            return method(self, *args, **kwargs)

    return counted


def settle(kind: str) -> None:
    """Wait (``SETTLE`` at most) until no write of ``kind`` is in flight here."""
    deadline = time.monotonic() + SETTLE
    while _in_flight.get(kind) and time.monotonic() < deadline:
        time.sleep(0.005)
