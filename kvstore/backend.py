"""What a backend plugin provides: a ``Backend`` that opens a ``Driver`` for each kind.

Core (``kvstore.store.RecordStore``) checks and normalises every argument, runs the ``validate``
hook and shapes every result, so a driver only ever sees canonical values (see ``kvstore.values``)
and only implements storage. Whatever rule the contract states about arguments lives in core, once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, NamedTuple, Protocol, TypeVar

__all__ = [
    "Backend",
    "Driver",
    "Filters",
    "Key",
    "KindSchema",
    "LazyBackend",
    "Record",
    "write_behind",
]

B = TypeVar("B")

Record = dict[str, Any]
"""A record as stored and returned: field name to (canonical) value."""
Filters = dict[str, Any]
"""Field name to the value it must equal; ``None`` means "field absent"."""
Key = tuple[Any, ...]
"""A record's key: the values of its id fields, in order."""


class KindSchema(NamedTuple):
    """A kind's name and key: its id fields (partition, then optional sort) and their types."""

    kind: str
    id_fields: tuple[str, ...]
    key_types: tuple[type, ...]

    def key_of(self, record: Mapping[str, Any]) -> Key:
        """The key of a canonical record (its id fields' values, in order)."""
        return tuple(record[field] for field in self.id_fields)

    def key_filters(self, filters: Mapping[str, Any]) -> Key | None:
        """The whole key named by ``filters``, or ``None`` when they do not name every id field."""
        if all(filters.get(field) is not None for field in self.id_fields):
            return tuple(filters[field] for field in self.id_fields)
        return None


class Driver(ABC):
    """Storage of one kind on one backend, fed only canonical, validated input by core.

    Every method raises ``ConfigError`` when the kind's table does not exist (``ensure`` aside),
    and maps its driver's exceptions to ``kvstore.errors``.
    """

    #: At most how many records (values) core hands to ``put_many`` (``remove_in``) at once; core
    #: validates ``kvstore.store.CHUNK_SIZE`` of them first, the same on every backend.
    batch_size: int = 500

    def __init__(self, schema: KindSchema) -> None:
        self.schema = schema

    @abstractmethod
    def ensure(self) -> None:
        """Create the kind's table in the default layout when it is missing (idempotent)."""

    @abstractmethod
    def select(self, filters: Filters, limit: int | None = None) -> Iterator[Record]:
        """Yield the records matching ``filters`` (at most ``limit``), in any order, page by page."""

    def get(self, key: Key) -> Record | None:
        """The record whose key is ``key``, if any: ``find`` by whole key, the commonest call, which
        a driver may serve faster than ``select`` can. By default: ``select`` of the key."""
        return next(self.select(dict(zip(self.schema.id_fields, key, strict=True)), limit=1), None)

    @abstractmethod
    def count(self, filters: Filters) -> int:
        """The number of records matching ``filters``."""

    @abstractmethod
    def find_in(self, field: str, values: Sequence[Any]) -> Iterator[Record]:
        """Yield each record whose ``field`` equals one of ``values`` once, in any order."""

    @abstractmethod
    def put(self, record: Record) -> None:
        """Store ``record``, replacing any record with its key."""

    @abstractmethod
    def create(self, record: Record) -> None:
        """Store ``record`` unless its key is taken (then raise ``AlreadyExists``), atomically."""

    @abstractmethod
    def update(
        self, key: Key, sets: Record, removes: Sequence[str], check: Callable[[Record], None]
    ) -> Record:
        """Merge into the record at ``key`` and return it whole; ``NotFound`` when there is none.

        ``check`` is called with the merged record before it is committed; when it raises, nothing
        changes and its error reaches the caller.
        """

    @abstractmethod
    def remove(self, filters: Filters) -> int:
        """Delete every record matching (non-empty) ``filters``; return how many."""

    @abstractmethod
    def remove_in(self, field: str, values: Sequence[Any]) -> int:
        """Delete every record whose ``field`` equals one of ``values``; return how many."""

    @abstractmethod
    def truncate(self) -> int:
        """Delete every record; return how many."""

    @abstractmethod
    def put_many(self, records: Sequence[Record]) -> None:
        """Store ``records`` (distinct keys, at most ``batch_size``) in as few round trips as can be."""

    def encode_many(self, records: Sequence[Record]) -> Any:
        """The part of ``put_many(records)`` that needs no I/O (checks, encoding), as a batch for
        ``write_many``.

        Core calls it in the caller's thread for every slice of a chunk before writing any of them,
        so a value it refuses (``InvalidArgument``) stops the chunk before anything of it is
        written, and a ``writer`` can write one chunk while core encodes the next. By default: the
        records themselves.
        """
        return records

    def write_many(self, batch: Any) -> None:
        """Store a batch that ``encode_many`` made (by default: ``put_many`` of it)."""
        self.put_many(batch)

    def write_chunk(self, batches: list[Any]) -> None:
        """Store one chunk's batches (``encode_many``'s), in order."""
        for batch in batches:
            self.write_many(batch)

    def writer(self, many: bool) -> AbstractContextManager[Callable[[list[Any]], None]]:
        """Where ``put_many`` sends each chunk's batches, in order: by default ``write_chunk``.

        ``many`` says whether more than one chunk is coming. A network backend may then write one
        chunk while core prepares the next (``write_behind``, or a database pipeline), as long as
        what ends up stored, and which error is raised, is what the plain loop would give: chunks
        are stored in order; a failed write's error comes before any later chunk's; the block's
        exit returns once every chunk is stored.
        """
        return nullcontext(self.write_chunk)

    @abstractmethod
    def native(self) -> Any:
        """The backend's own handles for this kind (see CONTRACT.md, "Escape hatches")."""


class Backend(Protocol):
    """A storage backend as a plugin registers it.

    ``open`` imports the driver library, checks ``options`` (``TypeError`` for one it does not
    know) and returns a ``Driver`` without doing any I/O.
    """

    name: str
    """The name ``STORE_BACKEND`` and ``create_store(backend=...)`` use."""
    extra: str | None
    """The pip extra that installs the backend's driver (``kvstore[extra]``), if any."""

    def open(self, schema: KindSchema, options: Mapping[str, Any]) -> Driver:
        """Return the driver for ``schema``'s kind."""
        ...


class LazyBackend:
    """A ``Backend`` whose driver module is imported only when a store is first opened.

    ``target`` is ``"package.module:function"``; the function takes ``(schema, options)`` and
    returns a ``Driver``. This keeps plugin modules (loaded at start-up) free of driver imports.
    """

    def __init__(self, name: str, target: str, extra: str | None = None) -> None:
        self.name = name
        self.target = target
        self.extra = extra

    def __repr__(self) -> str:
        return f"LazyBackend({self.name!r}, {self.target!r})"

    def open(self, schema: KindSchema, options: Mapping[str, Any]) -> Driver:
        """Import the target and let it open the driver."""
        import importlib

        module, _, function = self.target.partition(":")
        opener: Callable[[KindSchema, Mapping[str, Any]], Driver]
        opener = getattr(importlib.import_module(module), function)
        return opener(schema, options)


@contextmanager
def write_behind(write: Callable[[B], None]) -> Iterator[Callable[[B], None]]:
    """A ``Driver.writer`` for a driver whose writes wait on the network: each ``write(batch)`` runs
    in one helper thread while the caller's thread prepares the next batch.

    Writes happen in order, one at a time. Handing over a batch first waits for the write before
    it (raising its error); the block's exit waits for the last one. When the block raises, the
    write in flight ends first, and its error, if any, is raised instead (the plain loop would
    have met it first).
    """
    from concurrent.futures import Future, ThreadPoolExecutor  # only batch writers pay for it

    in_flight: list[Future[None]] = []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kvstore-write") as executor:

        def submit(batch: B) -> None:
            if in_flight:
                in_flight.pop().result()
            in_flight.append(executor.submit(write, batch))

        try:
            yield submit
            if in_flight:
                in_flight.pop().result()
        except BaseException:
            failed = in_flight.pop().exception() if in_flight else None  # waits for it
            if failed is not None:
                raise failed from None
            raise
