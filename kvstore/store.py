"""``RecordStore``: the one implementation of the ``Store`` API (``kvstore.api``) over any ``Driver``.

``RecordStore`` does everything CONTRACT.md asks of every backend alike: it checks arguments before
any I/O, runs the ``validate`` hook on the way in and out, plans reads (``kvstore.plan``), builds
guarded writes (``kvstore.writes``) and explains the ones the driver refuses, sorts results, pages
and chunks. Drivers only translate and store.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from kvstore import batches, operations
from kvstore.backend import Driver
from kvstore.batches import CHUNK_BYTES, CHUNK_SIZE, iterable_argument
from kvstore.conditions import Condition, Eq, Le, NotExpired
from kvstore.errors import (
    InvalidArgument,
    MultipleFound,
    NotFound,
    OperationRejected,
    StoreError,
)
from kvstore.plan import Conditions, DirectPlans, Plan, plan_in, plan_read
from kvstore.records import (
    chunked_by_size,
    prepare_changes,
    prepare_filters,
    prepare_in,
    prepare_record,
    prepare_sized,
    sort_key,
)
from kvstore.schema import Key, KindSchema
from kvstore.values import check_field_name, same_value
from kvstore.writes import (
    Check,
    Conflict,
    Delete,
    Put,
    Update,
    Write,
    failure,
    is_live,
    matches_all,
)

if TYPE_CHECKING:
    from types import ModuleType

    from kvstore.pages import Page

_pages: ModuleType | None = None
"""``kvstore.pages`` once a page was asked for (hashlib and base64 are not a cold start's to load;
an import statement in ``find_page`` cost more than its own checks)."""


def _import_pages() -> ModuleType:
    global _pages
    from kvstore import pages

    _pages = pages
    return pages


__all__ = [
    "CHUNK_BYTES",
    "CHUNK_SIZE",
    "NO_FILTERS",
    "Record",
    "RecordStore",
    "Validator",
    "iterable_argument",
]

Record = dict[str, Any]
Validator = Callable[[Record], Record]
"""A ``validate`` hook: takes a record and returns the record to use, or raises."""


NO_FILTERS: Mapping[str, Any] = MappingProxyType({})
"""The default filters of ``find_all``, ``count`` and ``iter_all``: match every record. (An
explicit ``None`` is not filters: ``InvalidArgument``, as for every call that takes them.)"""
MAX_ATTEMPTS = 3
"""A guarded write whose refusal the stored record does not explain (a racing writer changed it
in between) is tried again, up to this many times in all."""


def _own_earlier_attempt(conflict: Conflict, op: Write) -> bool:
    """Whether a refused put or create was refused by its own earlier attempt: the request had
    been sent before (its answer lost) and the key holds exactly the record being written."""
    return (
        conflict.retried
        and isinstance(op, Put)
        and conflict.current is not None
        and same_value(conflict.current, op.record)
    )


class RecordStore:
    """The ``Store`` of one kind on one backend: the contract's rules over a backend ``Driver``."""

    def __init__(
        self,
        driver: Driver,
        backend: str,
        validate: Validator | None = None,
        *,
        scan: bool = True,
    ) -> None:
        self._driver = driver
        self._schema: KindSchema = driver.schema
        self._backend = backend
        self._validate = validate
        self._scan = scan
        self._sort_key = sort_key(driver.schema)
        self._direct = DirectPlans(driver.schema)

    def __repr__(self) -> str:
        return f"<RecordStore kind={self.kind!r} backend={self._backend!r}>"

    @property
    def kind(self) -> str:
        """The kind (table) name."""
        return self._schema.kind

    @property
    def id_fields(self) -> tuple[str, ...]:
        """The key fields: partition key, then the optional sort key."""
        return self._schema.id_fields

    @property
    def schema(self) -> KindSchema:
        """The kind's declaration (key, indexes, version and expiry fields)."""
        return self._schema

    @property
    def backend(self) -> str:
        """The name of the backend holding this kind."""
        return self._backend

    @property
    def driver(self) -> Driver:
        """The backend's driver of this kind (for transactions and migrations; not portable)."""
        return self._driver

    # -- the validate hook and argument checks -------------------------------------------------

    def _incoming(self, raw: object, what: str) -> object:
        if type(raw) is not dict and not isinstance(raw, Mapping):  # a dict: no ABC check
            raise InvalidArgument(
                f"{what} must be a dict of field -> value, not {type(raw).__name__}"
            )
        return self._validate(dict(raw)) if self._validate is not None else raw

    def _out(self, record: Record) -> Record:
        return self._validate(record) if self._validate is not None else record

    def _record(self, raw: object, what: str = "record") -> Record:
        return prepare_record(self._incoming(raw, what), self._schema, what)

    def _filters(self, raw: object) -> dict[str, Condition]:
        if raw is NO_FILTERS:
            return {}
        return prepare_filters(raw, self._schema)

    def _now(self) -> float | None:
        return time.time() if self._schema.ttl_field is not None else None

    def _live(self) -> Conditions:
        """Core's own conditions on every read: records not expired."""
        ttl = self._schema.ttl_field
        return () if ttl is None else ((ttl, NotExpired(time.time())),)

    def _plan(self, filters: Mapping[str, Condition]) -> Plan:
        plan = plan_read(self._schema, filters, self._live())
        if plan.access == "scan" and not self._scan:
            raise OperationRejected(
                f"this {self.kind} store was opened with scan=False, and filters on "
                f"{sorted(filters) or 'nothing'} need a scan (no key or index serves them)"
            )
        return plan

    def _select(self, plan: Plan) -> Iterator[Record]:
        """The records of ``plan``: what the driver reads, checked against the plan's filters."""
        if plan.never:
            return iter(())
        records = self._driver.read(plan)
        return filter(plan.accepts, records) if plan.filters else records

    # -- reads ----------------------------------------------------------------------------------

    def ensure(self) -> None:
        """Create the kind's table and indexes in the default layout when missing."""
        self._driver.ensure()

    def _find(self, filters: Mapping[str, Condition]) -> Record | None:
        return self._first(self._plan(filters), filters)

    def _first(self, plan: Plan, filters: Mapping[str, Any]) -> Record | None:
        plan.limit = 2
        found = list(itertools.islice(self._select(plan), 2))
        if len(found) > 1:
            raise MultipleFound(f"more than one {self.kind} record matches {sorted(filters)}")
        return found[0] if found else None

    def find(self, filters: Mapping[str, Any]) -> Record:
        """The one record matching ``filters``; ``NotFound`` or ``MultipleFound`` otherwise."""
        plan = self._direct.plan(filters)
        if plan is not None:
            record = self._first(plan, filters)
            if record is None:
                raise NotFound(f"no {self.kind} record matches {sorted(filters)}")
            return self._out(record)
        prepared = self._filters(filters)
        record = self._find(prepared)
        if record is None:
            raise NotFound(f"no {self.kind} record matches {sorted(prepared)}")
        return self._out(record)

    def find_all(self, filters: Mapping[str, Any] = NO_FILTERS) -> list[Record]:
        """Every record matching ``filters``, sorted by key."""
        plan = self._plan(self._filters(filters)).collect()
        records = sorted(self._select(plan), key=self._sort_key)
        return [self._out(record) for record in records] if self._validate else records

    def _in_plan(self, field: str, values: Iterable[Any]) -> Plan | None:
        name, wanted = prepare_in(field, values, self._schema)
        self.check_served_in(name)
        if not wanted.values and not wanted.absent:
            return None
        return plan_in(self._schema, name, wanted, self._live())

    def check_served_in(self, field: str) -> None:
        """``OperationRejected`` when ``find_in``/``remove_in`` on ``field`` would scan a store
        opened with ``scan=False`` (whatever the values, none included)."""
        schema = self._schema
        if self._scan or field == schema.partition:
            return
        if not any(index.partition == field for index in schema.indexes):
            raise OperationRejected(
                f"this {self.kind} store was opened with scan=False, and {field!r} is neither "
                "its partition key nor an index's partition field"
            )

    def find_in(self, field: str, values: Iterable[Any]) -> list[Record]:
        """Records whose ``field`` equals one of ``values``, each once, sorted by key."""
        plan = self._in_plan(field, values)
        if plan is None:
            return []
        records = sorted(self._select(plan.collect()), key=self._sort_key)
        return [self._out(record) for record in records] if self._validate else records

    def count(self, filters: Mapping[str, Any] = NO_FILTERS) -> int:
        """The number of records matching ``filters``."""
        plan = self._plan(self._filters(filters))
        return 0 if plan.never else self._driver.count(plan)

    def explain(self, filters: Mapping[str, Any]) -> str:
        """How a read with ``filters`` is served: ``'key'``, ``'partition'``, ``'index:NAME'`` or
        ``'scan'`` (decided from the filters and the declared key and indexes; no I/O)."""
        return plan_read(self._schema, self._filters(filters)).explain()

    def iter_all(self, filters: Mapping[str, Any] = NO_FILTERS) -> Generator[Record, None, None]:
        """Stream the matching records page by page, in unspecified order.

        The filters are checked at the call, not at the first ``next()``.
        """
        records = self._select(self._plan(self._filters(filters)))
        return generator(map(self._validate, records) if self._validate is not None else records)

    def find_page(
        self,
        filters: Mapping[str, Any],
        *,
        limit: int,
        cursor: str | None = None,
        descending: bool = False,
    ) -> Page:
        """A page of at most ``limit`` records matching ``filters``, in the serving key's order
        (``descending``: reversed), after the position ``cursor`` names; with the next page's
        cursor, ``None`` when no further record matches."""
        pages = _pages or _import_pages()
        prepared = self._filters(filters)
        pages.check_limit(limit)
        if type(descending) is not bool:
            raise InvalidArgument(f"descending is True or False, not {descending!r:.40}")
        plan = self._plan(prepared)
        if plan.access == "scan":
            raise OperationRejected(
                f"find_page needs filters a key or an index serves (explain: 'scan' for "
                f"{sorted(prepared) or 'no filters'}); stream a whole kind with iter_all"
            )
        digest = pages.query_digest(self.kind, prepared, descending)
        start = None if cursor is None else pages.decode_cursor(cursor, digest, plan)
        plan.ordered(limit + 1, descending, start)
        records = list(itertools.islice(self._select(plan), limit + 1))
        following = None
        if len(records) > limit:
            del records[limit:]
            following = pages.encode_cursor(digest, plan.position(records[-1]))
        page: Page = pages.Page(
            [self._out(r) for r in records] if self._validate else records, following
        )
        return page

    # -- writes ---------------------------------------------------------------------------------

    def _write(self, op: Write) -> Record | None:
        """``op`` through the driver; a refusal becomes the error that explains it."""
        for _attempt in range(MAX_ATTEMPTS):
            try:
                return self._driver.write(op)
            except Conflict as conflict:
                error = failure(self._schema, op, conflict.current)
                if error is None:
                    continue  # the record changed since the refusal: try again
                if _own_earlier_attempt(conflict, op):
                    return None  # our own earlier attempt went through before its answer was lost
                raise error from None
        raise StoreError(
            f"the write to {self.kind} key {self._key(op)!r} kept being refused by a record "
            "that changed each time it was read; try again"
        )

    def _key(self, op: Write) -> Key:
        return op.key(self._schema) if isinstance(op, Put) else op.key

    def _expect(self, expect: Mapping[str, Any] | None) -> Conditions:
        return () if expect is None else tuple(self._filters(expect).items())

    def put_op(self, record: Mapping[str, Any], expect: Mapping[str, Any] | None = None) -> Put:
        """``put``'s write: the checked record, the new version, the guard of ``expect``."""
        checked, bound = prepare_sized(self._incoming(record, "record"), self._schema, stamped=True)
        return operations.put_op(self._schema, checked, self._expect(expect), self._now(), bound)

    def put(self, record: Mapping[str, Any], *, expect: Mapping[str, Any] | None = None) -> Record:
        """Store ``record`` whole, replacing any record with its key; return what is stored.

        With ``expect`` (filters), only when the stored record (or, for a new key, an empty
        record) matches them; ``ConditionFailed`` otherwise, and nothing changes.
        """
        op = self.put_op(record, expect)
        self._write(op)
        return self._out(op.record)

    def create_op(self, record: Mapping[str, Any]) -> Put:
        """``create``'s write: the checked record (version 1), only on a key with no live record."""
        checked, bound = prepare_sized(self._incoming(record, "record"), self._schema, stamped=True)
        return operations.create_op(self._schema, checked, self._now(), bound)

    def create(self, record: Mapping[str, Any]) -> Record:
        """Store ``record`` unless its key is taken (``AlreadyExists``)."""
        op = self.create_op(record)
        self._write(op)
        return self._out(op.record)

    def update_op(
        self, changes: Mapping[str, Any], expect: Mapping[str, Any] | None = None
    ) -> Update:
        """``update``'s write: the checked changes, the version step, the guards."""
        checked = prepare_changes(self._incoming(changes, "changes"), self._schema)
        return operations.update_op(self._schema, checked, self._expect(expect), self._now())

    def update(
        self, changes: Mapping[str, Any], *, expect: Mapping[str, Any] | None = None
    ) -> Record:
        """Merge ``changes`` (``None`` removes a field, ``increment(n)`` adds to a number) into
        the record with their key; return the whole record after the change."""
        merged = self._write(self.update_op(changes, expect))
        assert merged is not None  # the driver returns the merged record of an update
        return self._out(merged)

    def _key_filters(self, raw: object, what: str) -> Key:
        """The key named by ``raw``, filters of exactly the whole key (transactions)."""
        filters = self._filters(raw)
        fields = self._schema.id_fields
        if set(filters) != set(fields) or not all(type(filters[f]) is Eq for f in fields):
            raise InvalidArgument(
                f"{what} names one record by its whole key: {', '.join(fields)}, nothing else"
            )
        return tuple(filters[f].value for f in fields)  # type: ignore[attr-defined]

    def remove_op(self, key_filters: Mapping[str, Any]) -> Delete:
        """A transaction's ``remove``: the record at a whole key (a missing one is no error)."""
        return Delete(self._key_filters(key_filters, "remove"))

    def check_op(self, key_filters: Mapping[str, Any], expect: Mapping[str, Any]) -> Check:
        """A transaction's ``check``: ``expect`` on the record at a whole key (an empty record
        when there is none)."""
        key = self._key_filters(key_filters, "check")
        if expect is None:
            raise InvalidArgument("check needs expect=, the filters the record must match")
        return operations.check_op(key, self._expect(expect), self._now())

    def find_or_create(self, filters: Mapping[str, Any], record: Mapping[str, Any]) -> Record:
        """The record matching ``filters``, or ``record`` once created; race-safe."""
        found, _created = self.find_or_create_outcome(filters, record)
        return self._out(found)

    def find_or_create_outcome(
        self, filters: Mapping[str, Any], record: Mapping[str, Any]
    ) -> tuple[Record, bool]:
        """``find_or_create``, and whether this call created the record: the record as stored
        (before ``validate`` on the way out) and ``True`` when it was created (a migrating
        store mirrors only a record it created)."""
        prepared_filters = self._filters(filters)
        op = self.create_op(record)
        found = self._find(prepared_filters)
        if found is not None:
            return found, False
        for _attempt in range(MAX_ATTEMPTS):
            try:
                self._driver.write(op)
                return op.record, True
            except Conflict as conflict:
                current = conflict.current
                if not is_live(self._schema, current, op.guard.now):
                    continue  # the holder expired or went away since: try again
                assert current is not None
                if _own_earlier_attempt(conflict, op):
                    return op.record, True
                # Someone holds the key: when it is the record we were looking for (a racing
                # find_or_create won), return it; otherwise the key clash is the caller's.
                if matches_all(current, (*prepared_filters.items(), *self._live())):
                    return current, False
                found = self._find(prepared_filters)
                if found is not None:
                    return found, False
                error = failure(self._schema, op, current)
                if error is not None:
                    raise error from None
        raise StoreError(f"find_or_create on {self.kind} kept racing other writers; try again")

    def remove(self, filters: Mapping[str, Any]) -> int:
        """Delete every record matching (non-empty) ``filters``; return how many."""
        prepared = self._filters(filters)
        if not prepared:
            raise InvalidArgument(
                "remove() needs filters; use truncate(force=True) to empty a kind"
            )
        plan = self._plan(prepared)
        return 0 if plan.never else self._driver.delete(plan)

    def truncate(self, force: bool = False) -> int:
        """Delete every record (only with ``force=True``); return how many (expired records are
        deleted too, and not counted)."""
        if force is not True:
            raise OperationRejected(f"truncate() deletes every {self.kind} record: pass force=True")
        removed = self._driver.delete(plan_read(self._schema, {}, self._live()))
        if self._schema.ttl_field is not None:
            self.purge_expired()
        return removed

    def purge_expired(self) -> int:
        """Delete the records whose ``ttl_field`` is at or before now; return how many."""
        ttl = self._schema.ttl_field
        if ttl is None:
            raise OperationRejected(f"the {self.kind} store has no ttl_field: nothing expires")
        return self._driver.delete(plan_read(self._schema, {}, ((ttl, Le(time.time())),)))

    def put_many(self, records: Iterable[Mapping[str, Any]]) -> int:
        """``put`` each record, in batches; return the number of distinct keys written.

        Records are stored as given: versions are neither checked nor stepped.
        """
        incoming = self._incoming if self._validate is not None else None
        return batches.put_many(self._driver, records, incoming)

    def remove_in(self, field: str, values: Iterable[Any]) -> int:
        """Delete records whose ``field`` equals one of ``values``; return how many."""
        check_field_name(field)
        self.check_served_in(field)
        removed = 0
        for chunk in chunked_by_size(iterable_argument(values, "values"), CHUNK_SIZE, CHUNK_BYTES):
            plan = self._in_plan(field, chunk)
            if plan is not None and not plan.never:
                removed += self._driver.delete(plan)
        return removed

    def native(self) -> Any:
        """The backend's own handles (not portable)."""
        return self._driver.native()


def generator(records: Iterator[Record]) -> Generator[Record, None, None]:
    """``records`` as a generator (``close()`` included), as the contract promises ``iter_all``."""
    yield from records
