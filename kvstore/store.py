"""The ``Store`` API and its one implementation, which enforces the contract over any ``Driver``.

``RecordStore`` does everything CONTRACT.md asks of every backend alike: it checks and normalises
arguments before any I/O, runs the ``validate`` hook on the way in and out, sorts results, chunks
batch calls and builds ``find``/``find_or_create`` from the driver's primitives. Backends only store.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

from kvstore.backend import Driver, Key, KindSchema, Record
from kvstore.errors import (
    AlreadyExists,
    ConfigError,
    InvalidArgument,
    MultipleFound,
    NotFound,
    OperationRejected,
)
from kvstore.records import (
    chunked,
    matches,
    prepare_changes,
    prepare_filters,
    prepare_record,
    prepare_values,
    sort_key,
)
from kvstore.values import check_field_name, check_item_size, check_kind

__all__ = ["CHUNK_SIZE", "RecordStore", "Store", "Validator", "create_store"]

Validator = Callable[[Record], Record]
"""A ``validate`` hook: takes a record and returns the record to use, or raises."""


@runtime_checkable
class Store(Protocol):
    """A kind's records on one backend: what ``create_store`` returns (see CONTRACT.md)."""

    @property
    def kind(self) -> str:
        """The kind (table) name."""
        ...

    @property
    def id_fields(self) -> tuple[str, ...]:
        """The key fields: partition key, then the optional sort key."""
        ...

    def ensure(self) -> None:
        """Create the kind's table in the default layout when it is missing."""
        ...

    def find(self, filters: Mapping[str, Any]) -> Record:
        """The one record matching ``filters``; ``NotFound`` or ``MultipleFound`` otherwise."""
        ...

    def find_all(self, filters: Mapping[str, Any] | None = None) -> list[Record]:
        """Every record matching ``filters``, sorted by key."""
        ...

    def find_in(self, field: str, values: Iterable[Any]) -> list[Record]:
        """Records whose ``field`` equals one of ``values``, each once, sorted by key."""
        ...

    def count(self, filters: Mapping[str, Any] | None = None) -> int:
        """The number of records matching ``filters``."""
        ...

    def put(self, record: Mapping[str, Any]) -> Record:
        """Store ``record`` whole, replacing any record with its key; return what is stored."""
        ...

    def create(self, record: Mapping[str, Any]) -> Record:
        """Store ``record`` unless its key is taken (``AlreadyExists``)."""
        ...

    def update(self, changes: Mapping[str, Any]) -> Record:
        """Merge ``changes`` (``None`` removes a field) into the record with their key."""
        ...

    def find_or_create(self, filters: Mapping[str, Any], record: Mapping[str, Any]) -> Record:
        """The record matching ``filters``, or ``record`` once created; race-safe."""
        ...

    def remove(self, filters: Mapping[str, Any]) -> int:
        """Delete every record matching (non-empty) ``filters``; return how many."""
        ...

    def truncate(self, force: bool = False) -> int:
        """Delete every record (only with ``force=True``); return how many."""
        ...

    def iter_all(self, filters: Mapping[str, Any] | None = None) -> Iterator[Record]:
        """Stream the matching records page by page, in unspecified order."""
        ...

    def put_many(self, records: Iterable[Mapping[str, Any]]) -> int:
        """``put`` each record, in batches; return the number of distinct keys written."""
        ...

    def remove_in(self, field: str, values: Iterable[Any]) -> int:
        """Delete records whose ``field`` equals one of ``values``; return how many."""
        ...

    def native(self) -> Any:
        """The backend's own handles (not portable)."""
        ...


CHUNK_SIZE = 500
"""Records (``put_many``) or values (``remove_in``) checked together before any of them is written.

It is the same on every backend, so an invalid item fails the same way everywhere: nothing of its
chunk is written, earlier chunks stay. Each chunk then goes to the driver in slices of at most its
``batch_size``.
"""


def _iterable(value: object, what: str) -> Iterable[Any]:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise InvalidArgument(f"{what} must be a list, tuple or other iterable")
    return value


class RecordStore:
    """The ``Store`` of one kind on one backend: the contract's rules over a backend ``Driver``."""

    def __init__(self, driver: Driver, backend: str, validate: Validator | None = None) -> None:
        self._driver = driver
        self._schema = driver.schema
        self._backend = backend
        self._validate = validate
        self._sort_key = sort_key(driver.schema)

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
    def backend(self) -> str:
        """The name of the backend holding this kind."""
        return self._backend

    # -- the validate hook and argument checks -------------------------------------------------

    def _incoming(self, raw: object, what: str) -> object:
        if not isinstance(raw, Mapping):
            raise InvalidArgument(
                f"{what} must be a dict of field -> value, not {type(raw).__name__}"
            )
        return self._validate(dict(raw)) if self._validate is not None else raw

    def _out(self, record: Record) -> Record:
        return self._validate(record) if self._validate is not None else record

    def _record(self, raw: object, what: str = "record") -> Record:
        return prepare_record(self._incoming(raw, what), self._schema, what)

    def _filters(self, raw: object) -> dict[str, Any]:
        return {} if raw is None else prepare_filters(raw, self._schema)

    # -- reads ----------------------------------------------------------------------------------

    def ensure(self) -> None:
        """Create the kind's table in the default layout when it is missing."""
        self._driver.ensure()

    def _find(self, filters: dict[str, Any]) -> Record | None:
        if len(filters) == len(self._schema.id_fields):
            key = self._schema.key_filters(filters)
            if key is not None:  # exactly the key: one record at most
                return self._driver.get(key)
        found = list(self._driver.select(filters, limit=2))
        if len(found) > 1:
            raise MultipleFound(f"more than one {self.kind} record matches {sorted(filters)}")
        return found[0] if found else None

    def find(self, filters: Mapping[str, Any]) -> Record:
        """The one record matching ``filters``; ``NotFound`` or ``MultipleFound`` otherwise."""
        prepared = self._filters(filters)
        record = self._find(prepared)
        if record is None:
            raise NotFound(f"no {self.kind} record matches {sorted(prepared)}")
        return self._out(record)

    def find_all(self, filters: Mapping[str, Any] | None = None) -> list[Record]:
        """Every record matching ``filters``, sorted by key."""
        records = sorted(self._driver.select(self._filters(filters)), key=self._sort_key)
        return [self._out(record) for record in records]

    def find_in(self, field: str, values: Iterable[Any]) -> list[Record]:
        """Records whose ``field`` equals one of ``values``, each once, sorted by key."""
        name, distinct = prepare_values(field, values, self._schema)
        if not distinct:
            return []
        records = sorted(self._driver.find_in(name, distinct), key=self._sort_key)
        return [self._out(record) for record in records]

    def count(self, filters: Mapping[str, Any] | None = None) -> int:
        """The number of records matching ``filters``."""
        return self._driver.count(self._filters(filters))

    def iter_all(self, filters: Mapping[str, Any] | None = None) -> Iterator[Record]:
        """Stream the matching records page by page, in unspecified order.

        The filters are checked at the call, not at the first ``next()``.
        """
        records = self._driver.select(self._filters(filters))
        if self._validate is None:
            return records
        return map(self._validate, records)

    # -- writes ---------------------------------------------------------------------------------

    def put(self, record: Mapping[str, Any]) -> Record:
        """Store ``record`` whole, replacing any record with its key; return what is stored."""
        prepared = self._record(record)
        self._driver.put(prepared)
        return self._out(prepared)

    def create(self, record: Mapping[str, Any]) -> Record:
        """Store ``record`` unless its key is taken (``AlreadyExists``)."""
        prepared = self._record(record)
        self._driver.create(prepared)
        return self._out(prepared)

    def update(self, changes: Mapping[str, Any]) -> Record:
        """Merge ``changes`` (``None`` removes a field) into the record with their key."""
        key, sets, removes = prepare_changes(self._incoming(changes, "changes"), self._schema)
        return self._out(self._driver.update(key, sets, removes, check_item_size))

    def find_or_create(self, filters: Mapping[str, Any], record: Mapping[str, Any]) -> Record:
        """The record matching ``filters``, or ``record`` once created; race-safe."""
        prepared_filters = self._filters(filters)
        prepared = self._record(record)
        found = self._find(prepared_filters)
        if found is not None:
            return self._out(found)
        try:
            self._driver.create(prepared)
        except AlreadyExists as exc:
            # Someone holds the key: when it is the record we were looking for (a racing
            # find_or_create won), return it; otherwise the key clash is the caller's.
            if exc.existing is not None and matches(exc.existing, prepared_filters):
                return self._out(exc.existing)
            found = self._find(prepared_filters)
            if found is None:
                raise
            return self._out(found)
        return self._out(prepared)

    def remove(self, filters: Mapping[str, Any]) -> int:
        """Delete every record matching (non-empty) ``filters``; return how many."""
        prepared = self._filters(filters)
        if not prepared:
            raise InvalidArgument(
                "remove() needs filters; use truncate(force=True) to empty a kind"
            )
        return self._driver.remove(prepared)

    def truncate(self, force: bool = False) -> int:
        """Delete every record (only with ``force=True``); return how many."""
        if force is not True:
            raise OperationRejected(f"truncate() deletes every {self.kind} record: pass force=True")
        return self._driver.truncate()

    def put_many(self, records: Iterable[Mapping[str, Any]]) -> int:
        """``put`` each record, in batches; return the number of distinct keys written."""
        written: set[Key] = set()

        driver = self._driver

        def prepare(chunk: list[Any]) -> list[Any]:
            batch: dict[Key, Record] = {}
            for raw in chunk:
                prepared = self._record(raw)
                key = self._schema.key_of(prepared)
                batch.pop(key, None)  # the last record of a key wins, in its place
                batch[key] = prepared
            parts = [
                driver.encode_many(part) for part in chunked(batch.values(), driver.batch_size)
            ]
            written.update(batch)
            return parts

        chunks = chunked(_iterable(records, "records"), CHUNK_SIZE)
        ahead = [chunk for chunk in (next(chunks, None), next(chunks, None)) if chunk is not None]
        with driver.writer(many=len(ahead) > 1) as write:
            for chunk in itertools.chain(ahead, chunks):
                write(prepare(chunk))
        return len(written)

    def remove_in(self, field: str, values: Iterable[Any]) -> int:
        """Delete records whose ``field`` equals one of ``values``; return how many."""
        check_field_name(field)
        removed = 0
        for chunk in chunked(_iterable(values, "values"), CHUNK_SIZE):
            name, distinct = prepare_values(field, chunk, self._schema)
            for part in chunked(distinct, self._driver.batch_size):
                removed += self._driver.remove_in(name, part)
        return removed

    def native(self) -> Any:
        """The backend's own handles (not portable)."""
        return self._driver.native()


def _schema(
    kind: str, id_field: str | Iterable[str], key_type: type | Iterable[type]
) -> KindSchema:
    check_kind(kind)
    fields = (id_field,) if isinstance(id_field, str) else tuple(_iterable(id_field, "id_field"))
    if not 1 <= len(fields) <= 2:
        raise InvalidArgument("id_field names one or two fields (partition key, sort key)")
    for name in fields:
        check_field_name(name)
    if len(set(fields)) != len(fields):
        raise InvalidArgument("id_field names the same field twice")
    types = (
        (key_type,) * len(fields)
        if isinstance(key_type, type)
        else tuple(_iterable(key_type, "key_type"))
    )
    if len(types) != len(fields) or any(t not in (str, int) for t in types):
        raise InvalidArgument("key_type is str or int, or one of them per id field")
    return KindSchema(kind, fields, types)


def create_store(
    kind: str,
    *,
    id_field: str | Iterable[str] = "id",
    key_type: type | Iterable[type] = str,
    validate: Validator | None = None,
    backend: str | None = None,
    **options: Any,
) -> Store:
    """A store for ``kind`` on ``backend`` (default: ``STORE_BACKEND``); does no I/O."""
    from kvstore.config import backend_name
    from kvstore.registry import get_backend

    schema = _schema(kind, id_field, key_type)
    if validate is not None and not callable(validate):
        raise InvalidArgument("validate must be a callable taking and returning a record")
    chosen = get_backend(backend if backend is not None else backend_name())
    try:
        driver = chosen.open(schema, options)
    except ModuleNotFoundError as exc:
        extra = f": pip install 'kvstore[{chosen.extra}]'" if chosen.extra else ""
        raise ConfigError(
            f"backend {chosen.name!r} needs the {exc.name!r} package, which is not installed{extra}"
        ) from exc
    return RecordStore(driver, chosen.name, validate)
