"""Shadow reads: the second side's read on a small pool of daemon threads, and how two answers are
compared.

The pool is the process's, made on first use: ``WORKERS`` daemon threads that live as long as the
process (an AWS Lambda container reuses them from one invocation to the next, and they never hold
up its exit). When every worker is busy the shadow read is not queued: the call reads its
authoritative side alone, so the other side never adds more than its own latency to a call.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, NamedTuple, TypeVar

from kvstore.errors import NotFound
from kvstore.schema import KindSchema
from kvstore.values import same_value

__all__ = ["WORKERS", "Answer", "Difference", "compare", "run", "submit"]

T = TypeVar("T")

WORKERS = 4
"""Threads of the process's shadow-read pool."""


class _Pool:
    """``WORKERS`` daemon threads taking calls from one queue; see the module docstring."""

    def __init__(self, workers: int) -> None:
        self._queue: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._free = threading.Semaphore(workers)
        self._workers = workers
        self._started = False
        self._lock = threading.Lock()

    def _start(self) -> None:
        with self._lock:
            if self._started:
                return
            for number in range(self._workers):
                threading.Thread(
                    target=self._work, name=f"kvstore-shadow-{number}", daemon=True
                ).start()
            self._started = True

    def _work(self) -> None:
        while True:
            call, future = self._queue.get()
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(call())
                    except BaseException as exc:  # the caller's thread sees it
                        future.set_exception(exc)
            finally:
                self._free.release()

    def submit(self, call: Callable[[], T]) -> Future[T] | None:
        """Run ``call`` on a free worker; ``None`` (and nothing run) when none is free."""
        if not self._free.acquire(blocking=False):
            return None
        if not self._started:
            self._start()
        future: Future[T] = Future()
        self._queue.put((call, future))
        return future


_pool: _Pool | None = None
_pool_lock = threading.Lock()


def _forget_pool() -> None:
    # A forked child has none of its parent's threads: it makes its own pool on first use.
    global _pool
    _pool = None


os.register_at_fork(after_in_child=_forget_pool)


def submit(call: Callable[[], T]) -> Future[T] | None:
    """Run ``call`` on the process's shadow pool (made on first use); ``None`` when it is busy."""
    global _pool
    pool = _pool
    if pool is None:
        with _pool_lock:
            pool = _pool
            if pool is None:
                pool = _pool = _Pool(WORKERS)
    return pool.submit(call)


class Answer(NamedTuple):
    """A side's answer to a read: its ``value``, or the ``error`` it raised."""

    value: Any = None
    error: BaseException | None = None


def run(call: Callable[[], T]) -> Answer:
    """``call``'s answer, its exception caught."""
    try:
        return Answer(call())
    except Exception as exc:
        return Answer(error=exc)


class Difference(NamedTuple):
    """How two answers differ: the first key concerned, the fields that differ, an error class."""

    key: dict[str, Any] | None
    fields: tuple[str, ...]
    error: str | None


def _fields(a: dict[str, Any] | None, b: dict[str, Any] | None) -> set[str]:
    """The names of the fields that differ between two records (a missing record: all of the
    other's)."""
    a, b = a or {}, b or {}
    return {
        f for f in a.keys() | b.keys() if f not in a or f not in b or not same_value(a[f], b[f])
    }


def _records(
    schema: KindSchema, first: Sequence[dict[str, Any]], second: Sequence[dict[str, Any]]
) -> Difference | None:
    if len(first) == len(second) and all(map(same_value, first, second)):
        return None
    key_of = schema.key_of
    ours = {key_of(record): record for record in first}
    theirs = {key_of(record): record for record in second}
    fields: set[str] = set()
    concerned = []
    for key in sorted(ours.keys() | theirs.keys()):
        differ = _fields(ours.get(key), theirs.get(key))
        if differ:
            fields |= differ
            concerned.append(key)
    if not concerned:  # the same records, in another order
        concerned = [key_of(record) for record in first[:1]]
    named = schema.key_filters(concerned[0]) if concerned else None
    return Difference(named, tuple(sorted(fields)), None)


def compare(schema: KindSchema, first: Answer, second: Answer) -> Difference | None:
    """How ``second`` differs from ``first`` (``None``: they agree): the same records in the same
    order, the same count, or an error of the same class."""
    if first.error is not None or second.error is not None:
        if type(first.error) is type(second.error):
            return None
        error = second.error if second.error is not None else first.error
        found = first.value if second.error is not None else second.value
        if isinstance(error, NotFound) and isinstance(found, dict):
            # A find of a record only one side has: every field of it, as find_all says.
            key = schema.key_filters(schema.key_of(found))
            return Difference(key, tuple(sorted(found)), type(error).__name__)
        return Difference(None, (), type(error).__name__)
    a, b = first.value, second.value
    if isinstance(a, dict) and isinstance(b, dict):
        return _records(schema, [a], [b])
    if isinstance(a, list) and isinstance(b, list):
        return _records(schema, a, b)
    if type(a) is type(b) and a == b:
        return None
    return Difference(None, (), None)
