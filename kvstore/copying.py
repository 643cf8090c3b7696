"""Copy a kind between two stores and compare them, in memory bounded by a chunk, not by the kind.

``copy_records`` reads the source in segments (``read_segment``: one thread each, in a stable
order, so that a ``Checkpoint`` of the last key copied in each segment lets an interrupted copy
resume there) and brings the target in line a chunk at a time with ``kvstore.reconcile``:
the target's records are read, then the source's again, and each write is guarded by the
target's record being what was read there. So a copy is safe beside live writers (a second write
that lands meanwhile is never overwritten; the key is counted as skipped), and running it again
converges.

``diff_records`` streams both sides. It keeps one small digest per key of the first side (the only
memory that grows with the kind: tens of bytes a record) and streams the second against it, so
neither side needs an order; records that differ are then read again by key to say which fields.
``fix_differences`` writes the first side's record over each difference, guarded the same way.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

from kvstore.api import Store
from kvstore.backend import Key, Record
from kvstore.checkpoint import Checkpoint
from kvstore.conditions import NotExpired
from kvstore.errors import InvalidArgument
from kvstore.plan import plan_read
from kvstore.reconcile import (
    EXTRA,
    SKIPPED,
    UNCHANGED,
    WRITTEN,
    now_for,
    read_keys,
    same_record,
    sync_keys,
)
from kvstore.records import chunked
from kvstore.store import RecordStore
from kvstore.values import check_key_value

__all__ = [
    "CopyCounts",
    "DiffTotals",
    "Difference",
    "FieldChange",
    "copy_records",
    "diff_records",
    "dumps",
    "fix_differences",
    "read_segment",
    "record_digest",
    "scan_segments",
]

DEFAULT_CHUNK = 500
"""Records read from the source and brought in line on the target at once."""

ABSENT: Any = object()
"""Marks a field one side of a difference does not have."""


def _json_default(value: object) -> object:
    # Tables written by other DynamoDB tools may hold binary values: show them, do not fail.
    if isinstance(value, (bytes, bytearray)):
        return {"$binary": base64.b64encode(value).decode("ascii")}
    raise TypeError(f"{type(value).__name__} is not a record value")


def dumps(value: object, *, sort_keys: bool = False) -> str:
    """``value`` as one line of JSON (UTF-8 text kept, binary values as ``{"$binary": ...}``)."""
    return json.dumps(
        value, ensure_ascii=False, sort_keys=sort_keys, default=_json_default, allow_nan=False
    )


def record_digest(record: Record) -> bytes:
    """A digest equal for two records exactly when they are equal under the contract's rules.

    Records read from a store are canonical (integral numbers are ints, so ``1`` and ``1.0`` never
    both occur), so their sorted JSON tells ``True`` from ``1`` and ``"1"`` from ``1``.
    """
    return hashlib.blake2b(dumps(record, sort_keys=True).encode(), digest_size=16).digest()


def scan_segments(store: RecordStore) -> int:
    """Into how many segments ``read_segment`` can split ``store``'s kind (1: it cannot)."""
    return max(1, int(store.driver.scan_segments))


def read_segment(
    store: RecordStore, segment: int = 0, segments: int = 1, after: Key | None = None
) -> Iterator[Record]:
    """The live records of segment ``segment`` (from 0) of ``segments`` (at most
    ``scan_segments``) of ``store``'s kind, in the backend's stable order, after the record whose
    key is ``after`` (see ``Plan.resumable``): how a copy reads a kind so that it can stop and
    resume. Records as stored (no ``validate``); like ``truncate``, it reads the whole kind
    whatever ``scan`` says."""
    most = scan_segments(store)
    if not (type(segments) is int and type(segment) is int and 0 <= segment < segments <= most):
        raise InvalidArgument(
            f"segment {segment!r} of {segments!r}: the {store.backend} backend reads a kind in 1 "
            f"to {most} segments, numbered from 0"
        )
    schema = store.schema
    if after is not None:  # from a checkpoint file: a key of the kind, checked
        if len(after) != len(schema.id_fields):
            raise InvalidArgument(f"{after!r:.80} is not a key of {schema.kind}")
        fields = zip(after, schema.id_fields, schema.key_types, strict=True)
        after = tuple(check_key_value(value, field, kind) for value, field, kind in fields)
    now = now_for(schema)
    ttl = schema.ttl_field
    live = () if ttl is None or now is None else ((ttl, NotExpired(now)),)
    plan = plan_read(schema, {}, live).resumable(segment, segments, after)
    return filter(plan.accepts, store.driver.read(plan))


class CopyCounts:
    """What a copy did, record by record: ``read`` from the source, then ``written`` to the
    target, ``unchanged`` (the target already held it), or ``skipped`` (either side's record
    changed while it was copied: a live write got there first; a re-run converges). ``copied``
    counts the records the target holds as the copy read them: written or unchanged."""

    def __init__(self) -> None:
        self.read = self.written = self.unchanged = self.skipped = 0
        self.lock = threading.Lock()

    @property
    def copied(self) -> int:
        """The records the target holds as the copy read them (``written + unchanged``)."""
        return self.written + self.unchanged

    def as_dict(self) -> dict[str, int]:
        """The counts by name, ``copied`` first."""
        return {
            "copied": self.copied,
            "read": self.read,
            "written": self.written,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
        }


def _copy_chunk(source: RecordStore, target: RecordStore, chunk: list[Record]) -> dict[str, int]:
    """Bring ``chunk``'s keys on ``target`` in line with ``source``; the outcomes counted."""
    key_of = source.schema.key_of
    held = read_keys(target, (key_of(record) for record in chunk))
    differing = [key_of(r) for r in chunk if not same_record(held.get(key_of(r)), r)]
    counts = {UNCHANGED: len(chunk) - len(differing), WRITTEN: 0, SKIPPED: 0}
    if differing:
        seen = {key: held.get(key) for key in differing}
        outcomes = sync_keys(source, target, differing, delete_extra=False, seen=seen)
        for outcome in outcomes.values():
            counts[SKIPPED if outcome == EXTRA else outcome] += 1
    return counts


def copy_records(
    source: RecordStore,
    target: RecordStore,
    *,
    chunk_size: int = DEFAULT_CHUNK,
    segments: int = 1,
    checkpoint: Checkpoint | None = None,
    progress: Callable[[int], None] | None = None,
) -> CopyCounts:
    """Bring every record of ``source`` to ``target``, safely beside live writers (see the
    module docstring); what was done.

    The source is read in ``segments`` segments at once (``checkpoint.segments`` when a
    checkpoint is given: it resumes each segment after its last key, records each chunk as it is
    done, and is removed once the copy is complete). ``progress`` is called with the number of
    records read so far after each chunk.
    """
    count = checkpoint.segments if checkpoint is not None else segments
    counts = CopyCounts()
    stop = threading.Event()

    def copy_segment(segment: int) -> None:
        if checkpoint is not None and segment in checkpoint.done:
            return
        after = checkpoint.after[segment] if checkpoint is not None else None
        key_of = source.schema.key_of
        for chunk in chunked(read_segment(source, segment, count, after), chunk_size):
            if stop.is_set():
                return
            done = _copy_chunk(source, target, chunk)
            if checkpoint is not None:
                checkpoint.advance(segment, key_of(chunk[-1]))
            with counts.lock:
                counts.read += len(chunk)
                counts.written += done[WRITTEN]
                counts.unchanged += done[UNCHANGED]
                counts.skipped += done[SKIPPED]
                if progress is not None:
                    progress(counts.read)
        if checkpoint is not None:
            checkpoint.finish(segment)

    if count == 1:
        copy_segment(0)
    else:
        with ThreadPoolExecutor(count, thread_name_prefix="kvstore-copy") as pool:
            futures = [pool.submit(copy_segment, segment) for segment in range(count)]
            try:
                for future in futures:
                    future.result()
            except BaseException:
                stop.set()  # the other segments stop after their chunk in flight
                raise
    if checkpoint is not None:
        checkpoint.remove()
    return counts


class DiffTotals:
    """What a ``diff_records`` compared: ``compared`` keys (those of either side, each once),
    set once both sides are read."""

    def __init__(self) -> None:
        self.compared = 0


class FieldChange(NamedTuple):
    """One field that differs: its value on each side (``ABSENT`` when the side lacks it)."""

    field: str
    left: Any
    right: Any


class Difference(NamedTuple):
    """A key whose records differ: ``missing`` is ``"left"`` or ``"right"`` when one side has no
    record, else ``None`` and ``changes`` lists the fields that differ."""

    key: Key
    missing: str | None
    changes: tuple[FieldChange, ...] = ()


def _changes(left: Record, right: Record) -> tuple[FieldChange, ...]:
    changes = []
    for field in sorted(left.keys() | right.keys()):
        a, b = left.get(field, ABSENT), right.get(field, ABSENT)
        if a is ABSENT or b is ABSENT or dumps(a, sort_keys=True) != dumps(b, sort_keys=True):
            changes.append(FieldChange(field, a, b))
    return tuple(changes)


def _by_key(store: Store, key: Key) -> Record | None:
    found = store.find_all(dict(zip(store.id_fields, key, strict=True)))
    return found[0] if found else None


def diff_records(
    left: Store,
    right: Store,
    *,
    progress: Callable[[int], None] | None = None,
    totals: DiffTotals | None = None,
) -> Iterator[Difference]:
    """Yield every key whose record is missing on one side or differs, sorted by key.

    ``progress`` is called with the number of records read so far (both sides), now and then;
    ``totals`` gets the number of keys compared before the first difference is yielded.
    """
    digests: dict[Key, bytes] = {}
    read = 0
    for record in left.iter_all():
        digests[tuple(record[field] for field in left.id_fields)] = record_digest(record)
        read += 1
        if progress is not None and read % DEFAULT_CHUNK == 0:
            progress(read)
    on_left = read
    only_right: list[Key] = []
    differing: list[Key] = []
    for record in right.iter_all():
        key = tuple(record[field] for field in right.id_fields)
        digest = digests.pop(key, None)
        if digest is None:
            only_right.append(key)
        elif digest != record_digest(record):
            differing.append(key)
        read += 1
        if progress is not None and read % DEFAULT_CHUNK == 0:
            progress(read)
    if progress is not None:
        progress(read)
    if totals is not None:
        totals.compared = on_left + len(only_right)
    found = [Difference(key, "right") for key in digests]
    found += [Difference(key, "left") for key in only_right]
    for key in differing:
        a, b = _by_key(left, key), _by_key(right, key)
        if a is None or b is None:  # removed while we compared
            found.append(Difference(key, "left" if a is None else "right"))
        elif record_digest(a) != record_digest(b):  # else: made equal while we compared
            found.append(Difference(key, None, _changes(a, b)))
    yield from sorted(found, key=lambda difference: difference.key)


def fix_differences(
    source: RecordStore,
    target: RecordStore,
    differences: Iterable[Difference],
    *,
    delete_extra: bool = False,
) -> Iterator[tuple[Difference, str]]:
    """Write ``source``'s record over each of ``differences`` on ``target`` (``delete_extra``:
    also remove the target's records the source does not have), a chunk at a time, each write
    guarded by the target's record being what was read there; each difference with its outcome
    (``kvstore.reconcile``: ``written``, ``removed``, ``unchanged``, ``skipped``, ``extra``)."""
    for chunk in chunked(differences, DEFAULT_CHUNK):
        outcomes = sync_keys(source, target, [d.key for d in chunk], delete_extra=delete_extra)
        for difference in chunk:
            yield difference, outcomes[difference.key]
