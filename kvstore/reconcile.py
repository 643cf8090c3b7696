"""Bringing a target's records in line with a source's, never over a write the target got meanwhile.

Used by ``kvstore copy`` and ``kvstore diff --fix`` beside live writers, and by a migrating store
to repair a key whose second write met a newer record. For each key the target's record is read
first, then the source's; the write that makes the target equal to the source is then guarded by
the target's record being what was read there (``unchanged``): absent, or with every field equal.
A write that lands on the target in between (a second write of a migrating store) makes the guard
fail, and the key is skipped rather than set back to an older record. A record written where the
target had none is checked on the source once more afterwards, and taken away again if the source
removed it meanwhile: a removal racing the write is not undone by it. Where the target's backend
has transactions, a chunk's guarded writes go in transactions of up to 100 (one round trip each; a
write whose guard fails is taken out and the others tried again).

"Unchanged" is built from the conditions every driver translates for ``expect``: equality on each
field the target's record had, absence of each field the source's record adds. A live write that
only adds a field neither record has, landing in the instant between the read and the write, is
not seen (there is no portable "no other field" condition); with a ``version_field`` it always is,
since every write steps the version, and the version alone is then the guard (a record of many
fields otherwise needs more than one DynamoDB expression holds: about 140 fields, past which
the write is ``InvalidArgument`` there). ``kvstore diff`` finds what such a race leaves.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kvstore.conditions import Absent, Eq, NotExpired
from kvstore.plan import Conditions, Plan
from kvstore.records import prepare_record
from kvstore.schema import Key, KindSchema
from kvstore.store import RecordStore
from kvstore.transactions import MAX_OPERATIONS, MAX_TRANSACTION_BYTES
from kvstore.values import item_size, same_value
from kvstore.writes import Conflict, Delete, Guard, Put, Write

__all__ = [
    "EXTRA",
    "REMOVED",
    "SKIPPED",
    "UNCHANGED",
    "WRITTEN",
    "now_for",
    "read_keys",
    "same_record",
    "sync_keys",
    "unchanged",
]

Record = dict[str, Any]

WRITTEN = "written"
"""The source's record was written over the target's (or where it had none)."""
REMOVED = "removed"
"""The target's record, which the source does not have, was removed."""
UNCHANGED = "unchanged"
"""Both sides already held the same record (or neither had one)."""
SKIPPED = "skipped"
"""The target's record changed between the read and the write: left as it is."""
EXTRA = "extra"
"""Only the target has a record, and removing extras was not asked for."""


def now_for(schema: KindSchema) -> float | None:
    """The clock a guard judges expiry by: now, for a kind with a ``ttl_field``."""
    return time.time() if schema.ttl_field is not None else None


def _live(schema: KindSchema, now: float | None) -> Conditions:
    ttl = schema.ttl_field
    return () if ttl is None or now is None else ((ttl, NotExpired(now)),)


def read_keys(store: RecordStore, keys: Iterable[Key]) -> dict[Key, Record]:
    """The live records of ``store`` at ``keys`` (checked keys of its kind), by key; one read."""
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return {}
    schema = store.schema
    plan = Plan(schema, "key", keys=wanted, filters=_live(schema, now_for(schema)))
    return {schema.key_of(r): r for r in store.driver.read(plan) if plan.accepts(r)}


def same_record(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    """Whether two records (``None``: no record) are equal under the contract's typed equality."""
    if a is None or b is None:
        return a is None and b is None
    return same_value(dict(a), dict(b))


def unchanged(
    schema: KindSchema,
    seen: Mapping[str, Any] | None,
    writing: Mapping[str, Any] | None = None,
    now: float | None = None,
) -> Guard:
    """A guard that holds while the live record at the key is still ``seen`` (``None``: none):
    each field of ``seen`` equal, each other field of ``writing`` absent."""
    if seen is None:
        return Guard(None, True, now)
    version = schema.version_field
    if version is not None and seen.get(version) is not None:
        # Every write but put_many's steps the version: the version alone tells a change (and
        # keeps the guard of a wide record within one DynamoDB expression).
        return Guard(((version, Eq(seen[version])),), False, now)
    keys = set(schema.id_fields)
    checks: list[tuple[str, Any]] = [(f, Eq(v)) for f, v in seen.items() if f not in keys]
    checks += [(f, Absent()) for f in writing or () if f not in seen and f not in keys]
    return Guard(tuple(checks), False, now)


def _write(store: RecordStore, op: Write) -> Record | None:
    """``op`` on ``store``'s driver: ``None`` when it was written, else the record that stopped
    it (``{}`` for none)."""
    try:
        store.driver.write(op)
    except Conflict as conflict:
        return conflict.current if conflict.current is not None else {}
    return None


def _batches(ops: Sequence[Write], schema: KindSchema) -> list[list[int]]:
    """``ops``' positions in groups a transaction takes (100 operations, 4 MiB)."""
    batches: list[list[int]] = [[]]
    size = 0
    for position, op in enumerate(ops):
        weight = item_size(op.record) if isinstance(op, Put) else 1024
        if len(batches[-1]) >= MAX_OPERATIONS or size + weight > MAX_TRANSACTION_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(position)
        size += weight
    return [batch for batch in batches if batch]


def _write_all(store: RecordStore, ops: Sequence[Write]) -> list[Record | None]:
    """Each of ``ops`` on ``store``'s driver, as ``_write`` reports it; in transactions of up to
    100 where the backend has them (one round trip for many guarded writes): an op whose guard
    fails is taken out and the rest tried again."""
    driver = store.driver
    if driver.transaction_scope is None or len(ops) < 2:
        return [_write(store, op) for op in ops]
    stopped: list[Record | None] = [None] * len(ops)
    for batch in _batches(ops, store.schema):
        while batch:
            try:
                driver.transact([(driver, ops[position]) for position in batch])
                break
            except Conflict as conflict:
                index = conflict.index
                if index is None or not 0 <= index < len(batch):
                    for position in batch:  # the backend did not say which: one at a time
                        stopped[position] = _write(store, ops[position])
                    break
                position = batch.pop(index)
                stopped[position] = conflict.current if conflict.current is not None else {}
    return stopped


def sync_keys(
    source: RecordStore,
    target: RecordStore,
    keys: Sequence[Key],
    *,
    delete_extra: bool,
    seen: Mapping[Key, Record | None] | None = None,
) -> dict[Key, str]:
    """Make ``target``'s records at ``keys`` equal to ``source``'s, each write guarded by
    ``unchanged``; the outcome of each key (``WRITTEN``, ``REMOVED``, ``UNCHANGED``, ``SKIPPED``,
    ``EXTRA``).

    The target is read first (unless ``seen`` gives what it held), then the source, so the record
    written is at least as new as any second write the target held when it was read.
    """
    schema = target.schema
    held = dict(seen) if seen is not None else dict.fromkeys(keys)
    if seen is None:
        held.update(read_keys(target, keys))
    wanted = read_keys(source, keys)
    now = now_for(schema)
    outcomes: dict[Key, str] = {}
    writes: list[tuple[Key, Write]] = []
    for key in keys:
        before, after = held.get(key), wanted.get(key)
        if same_record(before, after):
            outcomes[key] = UNCHANGED
        elif after is None:
            if delete_extra:
                writes.append((key, Delete(key, unchanged(schema, before, None, now))))
            else:
                outcomes[key] = EXTRA
        else:
            # Checked as any write is (a table written by other tools may hold what the target
            # cannot: InvalidArgument then, before this chunk's writes).
            after = prepare_record(after, schema)
            writes.append((key, Put(after, unchanged(schema, before, after, now))))
    created: dict[Key, Record] = {}
    results = _write_all(target, [op for _key, op in writes])
    for (key, op), stopped in zip(writes, results, strict=True):
        if isinstance(op, Delete):
            outcomes[key] = REMOVED if stopped is None or stopped == {} else SKIPPED
            continue
        assert isinstance(op, Put)
        done = stopped is None or same_record(stopped, op.record)
        outcomes[key] = WRITTEN if done else SKIPPED
        if stopped is None and held.get(key) is None:
            created[key] = op.record
    # A record written where the target had none would be brought back to life if the source
    # removed it after it was read (and that removal's second write found nothing to remove):
    # when the source no longer has it, take it away again.
    if created:
        present = read_keys(source, created)
        for key, record in created.items():
            if key not in present:
                _write(target, Delete(key, unchanged(schema, record, None, now_for(schema))))
                outcomes[key] = SKIPPED
    return outcomes
