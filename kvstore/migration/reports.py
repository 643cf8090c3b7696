"""What a migrating store reports: ``MigrationEvent``, the ``kvstore.migration`` WARNING lines, the
``kvstore_migration_event`` hook, and the process's counters (``migration_stats``).

A report names the kind, the stage, the operation, the key and the fields that differ, never a
field's value (keys are how an operator finds the record; values may be anyone's data).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MISMATCH",
    "SECOND_WRITE_FAILED",
    "MigrationEvent",
    "count_compared",
    "logger",
    "migration_stats",
    "report",
    "reset_migration_stats",
]

logger = logging.getLogger("kvstore.migration")

MISMATCH = "mismatch"
SECOND_WRITE_FAILED = "second_write_failed"


@dataclass(frozen=True)
class MigrationEvent:
    """One mismatch between the two sides' reads, or one failed second write."""

    kind: str
    """The kind being moved."""
    stage: str
    """The stage the store was at (``shadow``, ``dualwrite``, ...)."""
    operation: str
    """The store call: ``find``, ``find_all``, ``find_in``, ``count``, ``put``, ``create``,
    ``update``, ``find_or_create``, ``remove``, ``remove_in``, ``truncate``, ``put_many``,
    ``purge_expired``, or ``transaction`` for a write mirrored after a commit."""
    key: dict[str, Any] | None
    """The record's key as ``{id_field: value}``; ``None`` when no one record is concerned (a
    count, a purge, a read whose two sides raised different errors)."""
    outcome: str
    """``'mismatch'`` or ``'second_write_failed'``."""
    fields: tuple[str, ...] = ()
    """The names of the fields whose values differ (a mismatch), sorted."""
    error: str | None = None
    """The error's class name: the one the second write raised, or the one a side's read raised
    when the other did not (or raised another); ``None`` otherwise."""


_lock = threading.Lock()
_stats: dict[str, dict[str, dict[str, int]]] = {}


def _counters(kind: str, stage: str) -> dict[str, int]:
    """The counters of ``kind`` at ``stage`` (call holding ``_lock``)."""
    stages = _stats.setdefault(kind, {})
    counters = stages.get(stage)
    if counters is None:
        counters = stages[stage] = {"compared": 0, "mismatches": 0, "second_write_failures": 0}
    return counters


def count_compared(kind: str, stage: str) -> None:
    """Count one read compared between the two sides."""
    with _lock:
        _counters(kind, stage)["compared"] += 1


def migration_stats() -> dict[str, dict[str, dict[str, int]]]:
    """``{kind: {stage: {"compared": n, "mismatches": n, "second_write_failures": n}}}`` since
    the process started (a copy; counted by every migrating store of the process)."""
    with _lock:
        return {
            kind: {stage: dict(counters) for stage, counters in stages.items()}
            for kind, stages in _stats.items()
        }


def reset_migration_stats() -> None:
    """Forget every count (tests, or a long-lived process that reports and starts again)."""
    with _lock:
        _stats.clear()


def report(event: MigrationEvent) -> None:
    """Count ``event``, log it as one WARNING on ``kvstore.migration``, and call the
    ``kvstore_migration_event`` hook of every plugin (a hook that raises is logged, not raised:
    a report never fails the call it reports on, nor keeps the event from other plugins)."""
    with _lock:
        counters = _counters(event.kind, event.stage)
        if event.outcome == MISMATCH:
            counters["mismatches"] += 1
        else:
            counters["second_write_failures"] += 1
    what = "reads differ" if event.outcome == MISMATCH else "second write failed"
    logger.warning(
        "%s: %s of %s at stage %s, key %s%s%s",
        what,
        event.operation,
        event.kind,
        event.stage,
        event.key,
        f", fields {', '.join(event.fields)}" if event.fields else "",
        f", error {event.error}" if event.error else "",
        extra={"kvstore_migration_event": event},
    )
    _call_hooks(event)


def _call_hooks(event: MigrationEvent) -> None:
    """Each plugin's ``kvstore_migration_event`` in turn (pluggy's order), one raising stopping
    neither the call nor the plugins after it (pluggy's own call would stop at the first)."""
    from kvstore.registry import plugin_manager

    arguments = {"event": event}
    for impl in plugin_manager().hook.kvstore_migration_event.get_hookimpls()[::-1]:
        try:
            if impl.hookwrapper or impl.wrapper:
                continue  # a notification has no result for a wrapper to see
            impl.function(*(arguments[name] for name in impl.argnames))
        except Exception:
            logger.exception("the kvstore_migration_event hook of %s raised", impl.plugin_name)
