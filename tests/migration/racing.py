"""Writers racing on a few keys of a versioned kind being moved: version-checked read-modify-writes
that may lose a race, and unchecked increments that never do. Shared by the memory -> sqlite and
the real-server tests, which then check that both sides converged."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from kvstore import ConditionFailed, increment

KEYS = ("k0", "k1", "k2")


def race(stores: Sequence[Any], rounds: int, join_timeout: float = 60.0) -> int:
    """Run one thread a store, ``rounds`` writes each, on records ``{"id": key, "n": 0}`` put
    first; return how many writes were acknowledged. Raises the first error a thread met, and
    fails if a thread is still running after ``join_timeout`` seconds."""
    for key in KEYS:
        stores[0].put({"id": key, "n": 0})
    barrier = threading.Barrier(len(stores), timeout=join_timeout)
    acknowledged = [0] * len(stores)
    errors: list[BaseException] = []

    def work(thread: int) -> None:
        store = stores[thread]
        try:
            barrier.wait()
            for round_ in range(rounds):
                key = KEYS[(thread + round_) % len(KEYS)]
                if round_ % 3 == 0:  # a version-checked read-modify-write, which may lose a race
                    seen = store.find({"id": key})
                    try:
                        store.put({**seen, "by": thread})
                    except ConditionFailed:
                        continue
                else:  # an unchecked update: steps the version, never refused
                    store.update({"id": key, "n": increment(1), "by": thread})
                acknowledged[thread] += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,), daemon=True) for n in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=join_timeout)
        assert not thread.is_alive(), f"{thread.name} did not finish in {join_timeout} s"
    if errors:
        raise errors[0]
    return sum(acknowledged)


def increments(threads: int, rounds: int) -> int:
    """The total the racing increments must leave over the keys (none of them can be refused)."""
    return threads * sum(1 for round_ in range(rounds) if round_ % 3)
