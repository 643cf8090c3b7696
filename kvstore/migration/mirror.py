"""Second writes: what the authoritative side's write left at a key, written to the other side.

Without a ``version_field`` a second write is a plain put (or delete) of the key. With one, it
happens only when it does not go back in version: the put of a record of version ``v`` only when
the other side's record has no version or one of at most ``v``; the delete of a record of version
``v`` likewise. Two writes of one version meet only when processes at old-first and new-first
stages (a fleet rolling from ``shadow`` to ``live``, or back) write a key at once: the new side's
record wins that tie, so a second write toward the new side needs a lower version there (or the
very record it writes), and one toward the old side takes an equal one. When the other side holds a
higher version, its record came from a later write (whose own second write has landed or is coming:
nothing to do), or from a key that was removed and created again (versions start again at 1; the
authoritative side then holds a lower version than the other side): the key is then made equal to
the authoritative side's current record (``kvstore.reconcile.sync_keys``). So the two sides
converge whichever second write lands last.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from kvstore.conditions import Absent, Le, Lt, is_number
from kvstore.errors import StoreError
from kvstore.reconcile import SKIPPED, now_for, read_keys, same_record, sync_keys
from kvstore.schema import Key
from kvstore.store import RecordStore
from kvstore.writes import Conflict, Delete, Guard, Put, Write, is_live

__all__ = ["ATTEMPTS", "mirror_delete", "mirror_put", "resync"]

Record = dict[str, Any]

ATTEMPTS = 6
"""Tries of a second write (or a repair) whose guard keeps meeting a record that just changed."""

BACKOFF = 0.005
"""Seconds: before try ``n`` (from 1), a second write waits a random time of up to ``BACKOFF *
2**n``. Writers racing on one key otherwise retry in lockstep and keep beating each other's
guards (on a server with a few milliseconds a round trip, four threads on one key did, four tries
running)."""


def _backoff(attempt: int) -> None:
    if attempt:
        time.sleep(random.uniform(0, BACKOFF * 2**attempt))


def _guarded(
    first: RecordStore,
    second: RecordStore,
    key: Key,
    version: int,
    make: Callable[[Guard], Write],
    written: Record | None,
    toward_new: bool,
) -> None:
    """Write ``make(guard)`` to ``second`` when its record at ``key`` has no version or one of at
    most ``version`` (``toward_new``: below ``version``, unless it is ``written``, the record the
    write leaves or removes); when it has a higher one, repair the key from ``first``."""
    schema = second.schema
    field = schema.version_field
    assert field is not None
    below = Lt(version) if toward_new else Le(version)
    checks: tuple[tuple[str, Any], ...] = ((field, below),)
    for attempt in range(ATTEMPTS):
        _backoff(attempt)
        now = now_for(schema)
        try:
            second.driver.write(make(Guard(checks, True, now)))
            return
        except Conflict as conflict:
            current = conflict.current
        if not is_live(schema, current, now):
            continue  # gone (or expired) since: the guard holds now
        assert current is not None
        stored = current.get(field)
        if stored is None:
            checks = ((field, Absent()),)
        elif is_number(stored) and stored > version:
            # A later write's second write got there first, unless the first side holds a lower
            # version than that (the key was removed and created again): then repair the key.
            now_first = read_keys(first, [key]).get(key)
            if now_first is None or now_first.get(field, 0) >= stored:
                return
            resync(first, second, key, current)
            return
        elif toward_new and stored == version and not same_record(current, written):
            return  # a tie with a write of the new side first: its second write brings it over
        else:
            checks = ((field, Le(version)),)
    raise StoreError(f"the record of {schema.kind} key {key!r} kept changing on the second side")


def mirror_put(
    first: RecordStore, second: RecordStore, record: Record, toward_new: bool = True
) -> None:
    """Put ``record``, as the authoritative side (``first``) stored it, on ``second`` (the new
    side, or with ``toward_new=False`` the old one)."""
    schema = second.schema
    field = schema.version_field
    if field is None:
        second.driver.write(Put(record))
        return
    version = record.get(field, 0)

    def make(guard: Guard) -> Write:
        return Put(record, guard)

    _guarded(first, second, schema.key_of(record), version, make, record, toward_new)


def mirror_delete(
    first: RecordStore,
    second: RecordStore,
    key: Key,
    removed: Record | None,
    toward_new: bool = True,
) -> None:
    """Delete ``key`` on ``second``, as the authoritative side removed ``removed`` there (read
    before its removal; ``None`` when unknown)."""
    field = second.schema.version_field
    if field is None or removed is None:
        second.driver.write(Delete(key))
        return
    version = removed.get(field, 0)

    def make(guard: Guard) -> Write:
        return Delete(key, guard)

    _guarded(first, second, key, version, make, removed, toward_new)


def resync(first: RecordStore, second: RecordStore, key: Key, seen: Record | None = None) -> None:
    """Make ``second``'s record at ``key`` what ``first`` holds now (``seen``: what ``second``
    was last seen holding; read when ``None``), retrying while a racing write changes it."""
    held: dict[Key, Record | None] | None = None if seen is None else {key: seen}
    for attempt in range(ATTEMPTS):
        _backoff(attempt)
        outcome = sync_keys(first, second, [key], delete_extra=True, seen=held)[key]
        if outcome != SKIPPED:
            return
        held = None  # read it again
    raise StoreError(f"the record of {second.kind} key {key!r} kept changing on the second side")
