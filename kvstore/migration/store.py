"""``MigratingStore``: a ``Store`` over two stores of one kind, the old backend's and the new one's,
behaving as its stage says (see ``kvstore.migration.spec`` and CONTRACT.md, "Moving a kind between
backends").

Every call goes to the authoritative side first; its result or error is the call's. In a mirrored
stage the other side then gets a second write of the authoritative outcome (``kvstore.migration
.mirror``): the record the write stored, or the removal of each key it removed. Removals go key by
key on the authoritative side (each guarded by the filters, so a record that stopped matching is
left alone) so that exactly the removed keys are mirrored. A second write that fails is reported
(``kvstore.migration.reports``), never raised. In a compared stage reads also run on the other side,
on the shadow pool (``kvstore.migration.shadow``), and a sampled fraction is compared. A difference
is reported only when it outlasts a second look at both sides (``RECHECK_DELAY`` later, and once
this process's writes of the kind in flight have landed (``kvstore.migration.flight``), the
authoritative answer unchanged): a second write still in flight, or a write racing the read, is
not a mismatch.

The two inner stores are opened without ``validate``: this store runs it once on the way in and
once on each record it returns, so the second side gets the record exactly as the first stored it
and reads are compared as stored.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Generator, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from kvstore.backend import Driver
from kvstore.conditions import MAX_ONE_OF, Condition, NotExpired
from kvstore.errors import InvalidArgument, OperationRejected, StoreError
from kvstore.migration import shadow
from kvstore.migration.flight import RECHECK_DELAY, landing, settle, writing
from kvstore.migration.mirror import mirror_delete, mirror_put, resync
from kvstore.migration.reports import (
    MISMATCH,
    SECOND_WRITE_FAILED,
    MigrationEvent,
    count_compared,
    report,
)
from kvstore.migration.spec import Stage
from kvstore.plan import Conditions, plan_read
from kvstore.reconcile import now_for
from kvstore.records import (
    chunked,
    chunked_by_size,
    prepare_filters,
    prepare_in,
    prepare_record,
)
from kvstore.schema import Key, KindSchema
from kvstore.store import (
    CHUNK_BYTES,
    CHUNK_SIZE,
    NO_FILTERS,
    Record,
    RecordStore,
    Validator,
    generator,
    iterable_argument,
)
from kvstore.values import check_field_name
from kvstore.writes import Check, Conflict, Delete, Guard, Put, Update, Write, is_live

if TYPE_CHECKING:
    from kvstore.pages import Page

__all__ = ["MigratingStore"]

T = TypeVar("T")

_CHUNK = (CHUNK_SIZE, CHUNK_BYTES)
"""A chunk of ``put_many`` or ``remove_in``, as on every store: 500 items, or 8 MiB."""


class MigratingStore:
    """A kind moving from ``old``'s backend to ``new``'s, at ``stage``; see the module docstring.

    ``validate`` is the kind's hook (the inner stores have none); ``sample`` the fraction of
    reads compared in the ``shadow`` and ``live`` stages (``STORE_MIGRATION_SAMPLE``).
    """

    def __init__(
        self,
        old: RecordStore,
        new: RecordStore,
        stage: Stage,
        *,
        validate: Validator | None = None,
        sample: float = 1.0,
    ) -> None:
        self._old, self._new, self._stage = old, new, stage
        self._first, other = (new, old) if stage.new_first else (old, new)
        self._second = other if stage.mirrored else None
        self._toward_new = not stage.new_first  # where second writes go (mirror: ties)
        self._validate = validate
        self._sample = sample

    def __repr__(self) -> str:
        return (
            f"<MigratingStore kind={self.kind!r} old={self._old.backend!r} "
            f"new={self._new.backend!r} stage={self._stage.name!r}>"
        )

    # -- what it is -----------------------------------------------------------------------------

    @property
    def kind(self) -> str:
        """The kind (table) name."""
        return self._first.kind

    @property
    def id_fields(self) -> tuple[str, ...]:
        """The key fields: partition key, then the optional sort key."""
        return self._first.id_fields

    @property
    def schema(self) -> KindSchema:
        """The kind's declaration (the same on both sides)."""
        return self._first.schema

    @property
    def stage(self) -> str:
        """The stage: ``off``, ``dualwrite``, ``shadow``, ``live``, ``rampdown`` or ``complete``."""
        return self._stage.name

    @property
    def old(self) -> RecordStore:
        """The old backend's store (inner: no ``validate``, no reports)."""
        return self._old

    @property
    def new(self) -> RecordStore:
        """The new backend's store (inner: no ``validate``, no reports)."""
        return self._new

    @property
    def authoritative(self) -> RecordStore:
        """The side written first and read: old until ``live``, new from then on."""
        return self._first

    @property
    def backend(self) -> str:
        """The authoritative side's backend (what a transaction counts)."""
        return self._first.backend

    @property
    def driver(self) -> Driver:
        """The authoritative side's driver (transactions apply there)."""
        return self._first.driver

    # -- the validate hook, reports ---------------------------------------------------------------

    def _incoming(self, raw: object, what: str) -> Mapping[str, Any]:
        if not isinstance(raw, Mapping):
            raise InvalidArgument(
                f"{what} must be a dict of field -> value, not {type(raw).__name__}"
            )
        return self._validate(dict(raw)) if self._validate is not None else raw

    def _out(self, record: Record) -> Record:
        return self._validate(record) if self._validate is not None else record

    def _outs(self, records: list[Record]) -> list[Record]:
        validate = self._validate
        return [validate(record) for record in records] if validate is not None else records

    def _event(
        self,
        operation: str,
        key: Key | dict[str, Any] | None,
        outcome: str,
        fields: tuple[str, ...] = (),
        error: str | None = None,
    ) -> None:
        named = self.schema.key_filters(key) if isinstance(key, tuple) else key
        report(MigrationEvent(self.kind, self.stage, operation, named, outcome, fields, error))

    def _second_write(
        self, operation: str, key: Key | None, write: Callable[..., object], *args: Any
    ) -> None:
        """Run a second write; report its failure (with the key) instead of raising it."""
        try:
            with landing(self.kind):
                write(*args)
        except Exception as exc:
            self._event(operation, key, SECOND_WRITE_FAILED, error=type(exc).__name__)

    def _mirror_put(self, operation: str, record: Record) -> None:
        second = self._second
        if second is not None:
            key = self.schema.key_of(record)
            self._second_write(
                operation, key, mirror_put, self._first, second, record, self._toward_new
            )

    # -- reads ------------------------------------------------------------------------------------

    def _read(
        self, operation: str, call: Callable[[RecordStore], T], key: dict[str, Any] | None = None
    ) -> T:
        """``call`` on the authoritative side; in a compared stage, for a sampled read, also on
        the other side (concurrently, on the shadow pool) and the answers compared."""
        first = self._first
        if not self._stage.compared or (self._sample < 1.0 and random.random() >= self._sample):
            return call(first)
        other = self._old if self._stage.new_first else self._new
        future = shadow.submit(lambda: shadow.run(lambda: call(other)))
        if future is None:  # the pool is busy: no shadow read this time
            return call(first)
        ours = shadow.run(lambda: call(first))
        theirs = future.result()
        count_compared(self.kind, self.stage)
        difference = shadow.compare(self.schema, ours, theirs)
        if difference is not None:
            difference = self._recheck(call, other, ours)
        if difference is not None:
            named = difference.key if difference.key is not None else key
            self._event(operation, named, MISMATCH, difference.fields, difference.error)
        if ours.error is not None:
            raise ours.error
        value: T = ours.value
        return value

    def _recheck(
        self, call: Callable[[RecordStore], Any], other: RecordStore, ours: shadow.Answer
    ) -> shadow.Difference | None:
        """Whether a difference outlasts a second look: after ``RECHECK_DELAY`` (and once this
        process's writes of the kind in flight have landed, ``SETTLE`` at most), the
        authoritative side is read again (an answer that moved means a write raced the read:
        nothing to conclude), then the other side; their difference, if any."""
        time.sleep(RECHECK_DELAY)
        settle(self.kind)
        again = shadow.run(lambda: call(self._first))
        if shadow.compare(self.schema, ours, again) is not None:
            return None
        return shadow.compare(self.schema, ours, shadow.run(lambda: call(other)))

    def _key_named(self, filters: object) -> dict[str, Any] | None:
        """The key ``filters`` name by plain values, if they name a whole one (for reports)."""
        if not isinstance(filters, Mapping):
            return None
        fields = self.id_fields
        values = [filters.get(field) for field in fields]
        if any(v is None or isinstance(v, Condition) for v in values):
            return None
        return dict(zip(fields, values, strict=True))

    def ensure(self) -> None:
        """Create the kind's table and indexes, on each side the stage uses, when missing."""
        self._first.ensure()
        if self._second is not None:
            self._second.ensure()

    def find(self, filters: Mapping[str, Any]) -> Record:
        """The one record matching ``filters``; ``NotFound`` or ``MultipleFound`` otherwise."""
        found = self._read("find", lambda side: side.find(filters), self._key_named(filters))
        return self._out(found)

    def find_all(self, filters: Mapping[str, Any] = NO_FILTERS) -> list[Record]:
        """Every record matching ``filters``, sorted by key."""
        return self._outs(self._read("find_all", lambda side: side.find_all(filters)))

    def find_in(self, field: str, values: Iterable[Any]) -> list[Record]:
        """Records whose ``field`` equals one of ``values``, each once, sorted by key."""
        given = _replayable(values)
        return self._outs(self._read("find_in", lambda side: side.find_in(field, given)))

    def count(self, filters: Mapping[str, Any] = NO_FILTERS) -> int:
        """The number of records matching ``filters``."""
        return self._read("count", lambda side: side.count(filters))

    def explain(self, filters: Mapping[str, Any]) -> str:
        """How a read with ``filters`` is served (no I/O)."""
        return self._first.explain(filters)

    def iter_all(self, filters: Mapping[str, Any] = NO_FILTERS) -> Generator[Record, None, None]:
        """Stream the matching records of the authoritative side, in unspecified order."""
        records = self._first.iter_all(filters)
        return generator(map(self._validate, records)) if self._validate is not None else records

    def find_page(
        self,
        filters: Mapping[str, Any],
        *,
        limit: int,
        cursor: str | None = None,
        descending: bool = False,
    ) -> Page:
        """A page of the authoritative side's records matching ``filters`` (its cursors continue
        on either side: they name a position, not a backend's token)."""
        page = self._first.find_page(filters, limit=limit, cursor=cursor, descending=descending)
        return page._replace(records=self._outs(page.records))

    def native(self) -> Any:
        """The authoritative side's own handles (not portable)."""
        return self._first.native()

    # -- writes -----------------------------------------------------------------------------------

    @writing
    def put(self, record: Mapping[str, Any], *, expect: Mapping[str, Any] | None = None) -> Record:
        """Store ``record`` whole (see ``Store.put``); the stored record is mirrored."""
        stored = self._first.put(self._incoming(record, "record"), expect=expect)
        self._mirror_put("put", stored)
        return self._out(stored)

    @writing
    def create(self, record: Mapping[str, Any]) -> Record:
        """Store ``record`` unless its key is taken; the created record is mirrored."""
        stored = self._first.create(self._incoming(record, "record"))
        self._mirror_put("create", stored)
        return self._out(stored)

    @writing
    def update(
        self, changes: Mapping[str, Any], *, expect: Mapping[str, Any] | None = None
    ) -> Record:
        """Merge ``changes`` into the record with their key; the merged record is mirrored."""
        merged = self._first.update(self._incoming(changes, "changes"), expect=expect)
        self._mirror_put("update", merged)
        return self._out(merged)

    @writing
    def find_or_create(self, filters: Mapping[str, Any], record: Mapping[str, Any]) -> Record:
        """The record matching ``filters``, or ``record`` once created (and then mirrored)."""
        self._first.explain(filters)  # the filters are checked before validate runs
        found, created = self._first.find_or_create_outcome(
            filters, self._incoming(record, "record")
        )
        if created:
            self._mirror_put("find_or_create", found)
        return self._out(found)

    def _remove_each(self, operation: str, records: Iterable[Record], checks: Conditions) -> int:
        """Remove each of ``records`` (read from the authoritative side) while it still matches
        ``checks``, and mirror each removal; how many were removed."""
        first, second = self._first, self._second
        schema = first.schema
        removed = 0
        for record in records:
            key = schema.key_of(record)
            now = now_for(schema)
            try:
                first.driver.write(Delete(key, Guard(checks, False, now)))
            except Conflict as conflict:
                # A delete sent again after its answer was lost, refused for finding no record:
                # its first attempt removed it (or a racing removal did; the record is gone
                # either way, and the second side must lose it too). Otherwise the record changed
                # since it was read and is no longer a match.
                if not (conflict.retried and not is_live(schema, conflict.current, now)):
                    continue
            removed += 1
            if second is not None:
                self._second_write(
                    operation, key, mirror_delete, first, second, key, record, self._toward_new
                )
        return removed

    @writing
    def remove(self, filters: Mapping[str, Any]) -> int:
        """Delete every record matching (non-empty) ``filters``; return how many."""
        if self._second is None:
            return self._first.remove(filters)
        prepared = prepare_filters(filters, self.schema)
        if not prepared:
            raise InvalidArgument(
                "remove() needs filters; use truncate(force=True) to empty a kind"
            )
        matches = self._first.iter_all(filters)
        return self._remove_each("remove", matches, tuple(prepared.items()))

    @writing
    def remove_in(self, field: str, values: Iterable[Any]) -> int:
        """Delete records whose ``field`` equals one of ``values``; return how many."""
        if self._second is None:
            return self._first.remove_in(field, values)
        check_field_name(field)
        self._first.check_served_in(field)
        removed = 0
        for chunk in chunked_by_size(iterable_argument(values, "values"), *_CHUNK):
            prepare_in(field, chunk, self.schema)  # the whole chunk checked before any removal
            # Each removal is guarded by the record still matching: a one_of condition, which
            # takes at most MAX_ONE_OF values on every backend (DynamoDB's IN list).
            for part in chunked(chunk, MAX_ONE_OF):
                matches = self._first.find_in(field, part)  # checks scan=False too
                name, wanted = prepare_in(field, part, self.schema)
                removed += self._remove_each("remove_in", matches, ((name, wanted),))
        return removed

    @writing
    def truncate(self, force: bool = False) -> int:
        """Delete every record (only with ``force=True``); return how many."""
        if self._second is None:
            return self._first.truncate(force=force)
        if force is not True:
            raise OperationRejected(f"truncate() deletes every {self.kind} record: pass force=True")
        schema = self.schema
        ttl = schema.ttl_field
        now = now_for(schema)
        live = () if ttl is None or now is None else ((ttl, NotExpired(now)),)
        plan = plan_read(schema, {}, live)
        everything = filter(plan.accepts, self._first.driver.read(plan))
        removed = self._remove_each("truncate", everything, ())
        if ttl is not None:
            self.purge_expired()
        return removed

    @writing
    def purge_expired(self) -> int:
        """Delete the expired records of both sides the stage writes; how many the
        authoritative side deleted."""
        purged = self._first.purge_expired()
        if self._second is not None:
            self._second_write("purge_expired", None, self._second.purge_expired)
        return purged

    @writing
    def put_many(self, records: Iterable[Mapping[str, Any]]) -> int:
        """``put`` each record, a checked chunk at a time, each chunk mirrored; return the
        number of distinct keys written (records are stored as given, versions unchecked)."""
        first, second = self._first, self._second
        schema = first.schema
        written: set[Key] = set()
        for chunk in chunked_by_size(iterable_argument(records, "records"), *_CHUNK):
            incoming = [self._incoming(raw, "record") for raw in chunk]
            try:
                first.put_many(incoming)
            except StoreError as error:
                # .written counts this call's records: the chunks before, and this one if whole.
                whole = error.written is not None and error.written >= len(incoming)
                keys = {schema.key_of(record) for record in incoming} if whole else set()
                error.written = len(written | keys)
                raise
            batch = {schema.key_of(record): record for record in incoming}
            written.update(batch)
            if second is None:
                continue
            if schema.version_field is None:
                try:
                    with landing(self.kind):
                        second.put_many(batch.values())
                except Exception as exc:
                    for key in batch:
                        self._event("put_many", key, SECOND_WRITE_FAILED, error=type(exc).__name__)
                continue
            for key, record in batch.items():
                stored = prepare_record(record, schema)
                self._second_write(
                    "put_many", key, mirror_put, first, second, stored, self._toward_new
                )
        return len(written)

    # -- transactions -----------------------------------------------------------------------------

    def put_op(self, record: Mapping[str, Any], expect: Mapping[str, Any] | None = None) -> Put:
        """``put``'s write on the authoritative side (``transaction()``)."""
        return self._first.put_op(self._incoming(record, "record"), expect)

    def create_op(self, record: Mapping[str, Any]) -> Put:
        """``create``'s write on the authoritative side (``transaction()``)."""
        return self._first.create_op(self._incoming(record, "record"))

    def update_op(
        self, changes: Mapping[str, Any], expect: Mapping[str, Any] | None = None
    ) -> Update:
        """``update``'s write on the authoritative side (``transaction()``)."""
        return self._first.update_op(self._incoming(changes, "changes"), expect)

    def remove_op(self, key_filters: Mapping[str, Any]) -> Delete:
        """A transaction's ``remove`` on the authoritative side."""
        return self._first.remove_op(key_filters)

    def check_op(self, key_filters: Mapping[str, Any], expect: Mapping[str, Any]) -> Check:
        """A transaction's ``check`` on the authoritative side."""
        return self._first.check_op(key_filters, expect)

    def after_transaction(self, op: Write) -> Callable[[], None] | None:
        """What to do once a transaction holding ``op`` has committed: its second write.

        A put mirrors the record it stored; an update or a removal (whose outcome the commit does
        not return) makes the other side's record at the key what the authoritative side then
        holds.
        """
        first, second = self._first, self._second
        if second is None or isinstance(op, Check):
            return None
        if isinstance(op, Put):
            record = op.record
            key = self.schema.key_of(record)
            return lambda: self._second_write(
                "transaction", key, mirror_put, first, second, record, self._toward_new
            )
        key = op.key
        return lambda: self._second_write("transaction", key, resync, first, second, key)


def _replayable(values: Iterable[Any]) -> Iterable[Any]:
    """``values`` as a list when it is an iterator both sides must read; as given otherwise (an
    argument that is not an iterable of values: each side refuses it alike)."""
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        return values
    return values if isinstance(values, (list, tuple)) else list(values)
