"""What a backend plugin provides: a ``Backend`` that opens a ``Driver`` for each kind.

Core (``kvstore.store.RecordStore``) checks every argument, owns every rule of the contract and
shapes every result; a driver translates core's reads (``kvstore.plan.Plan``) and writes
(``kvstore.writes``) into its server's terms and reports facts: the records it found, the record
a refused write found, a count. ``Driver``'s docstring is the whole of what a backend must do.
"""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, Protocol, TypeVar

from kvstore.errors import ConfigError, InvalidArgument, StoreError, changed_index
from kvstore.plan import Plan
from kvstore.schema import Index, Key, KindSchema
from kvstore.writes import Conflict, Write

__all__ = [
    "Backend",
    "BatchWriter",
    "Conflict",
    "Driver",
    "Index",
    "Key",
    "KindSchema",
    "LazyBackend",
    "Plan",
    "Record",
    "UnknownOption",
    "changed_index",
    "keep_indexes",
    "missing_table",
    "shared",
    "write_behind",
]

T = TypeVar("T")

Record = dict[str, Any]
"""A record as stored and returned: field name to (canonical) value."""


class BatchWriter(Protocol):
    """Where ``put_many``'s chunks go (``Driver.batch_writer``): ``encode`` a slice of at most
    ``Driver.batch_size`` records without I/O, ``write`` one chunk's encoded slices in order;
    ``stored`` says how many of the chunks written so far are known to be stored (the first ones:
    a writer that writes behind the caller counts a chunk once the server acknowledged it)."""

    stored: int

    def encode(self, records: Sequence[Record]) -> Any:
        """The slice as the writer sends it; ``InvalidArgument`` for a value the table cannot
        hold (core encodes a whole chunk before any of it is written)."""
        ...

    def write(self, batches: list[Any]) -> None:
        """Store one chunk's encoded slices, in order."""
        ...


class Driver(ABC):
    """Storage of one kind on one backend. Core hands it checked, canonical input only; it
    translates and reports facts; every rule, message and result shape is core's.

    **Values.** Records in and out are canonical (``kvstore.values``): ``str``, ``bool``, ``int``
    (signed 64-bit), ``float``, ``list``, ``dict``, ``None`` only nested. A record read back holds
    every field stored, key fields included, and no top-level ``None``; numbers read from text go
    through ``kvstore.values.number_from_text``. Tables written by other tools may hold more
    (DynamoDB sets, binary): read them as the contract says, never fail on them.

    **Reads** (``read``, ``count``, ``delete``) take a ``Plan`` (see ``kvstore.plan``): translate
    its access exactly (the keys, the partitions with the ``sort`` condition, the index), apply
    its ``filters`` as far as the server can (core re-checks every record ``read`` yields, but
    ``count`` and ``delete`` must be exact: use ``plan.accepts`` for what the server cannot), and
    keep the plan's order, ``start`` and ``limit`` (see ``Plan``); a resumable scan (``stable``)
    reads one segment in a stable order after a key (see ``Plan``, "Segments", and
    ``scan_segments``). Reads are strongly consistent, except reads of a secondary index on a
    server whose indexes lag (DynamoDB). A read yields lazily, a page of rows at a time: core
    may stop early, and ``iter_all`` must stream a kind of any size in bounded memory.

    **Writes** (``write``, ``transact``) are atomic: the check of the op's ``Guard`` on the key's
    live record and the write are one step on the server (one request or statement where it
    can). When the guard does not hold, nothing is written and the driver raises
    ``Conflict(current)`` with the record it found (``None``: none), read in the same step when
    the server can say (DynamoDB's ``ReturnValuesOnConditionCheckFailure``, a PostgreSQL
    statement's own snapshot), else right after. An ``Update`` also conflicts when one of its
    increments is not valid on the stored value (``kvstore.writes.add_numbers``), and never
    stores a record that ``kvstore.values.check_item_size`` refuses (its ``InvalidArgument``
    reaches core, and the stored record is left as it was). In-process drivers call
    ``kvstore.writes.apply`` under their lock and get all of that for free.

    **Errors.** A kind whose table does not exist raises ``missing_table(...)``'s ``ConfigError``
    from every method but ``ensure``. The driver library's exceptions never escape: map them in
    the backend's ``errors.py`` (``BackendUnavailable`` for an unreachable server, a timeout or
    throttling after retries; ``ConfigError`` for refused credentials; ``StoreError`` with the
    original as ``__cause__`` for the rest), and no message carries a password or a secret key.

    **Sharing.** Creating a driver does no I/O. Connections and clients are made at first use and
    shared by every driver of the process with the same configuration (``shared``); a driver is
    used from several threads at once.
    """

    batch_size: int = 500
    """At most how many records ``put_many`` gets at once (core splits each checked chunk)."""

    scan_segments: int = 1
    """Into how many segments this driver can split a scan (``Plan.resumable``; ``kvstore copy
    --segments``): 1 when it cannot, and core then reads a kind as one segment."""

    def __init__(self, schema: KindSchema) -> None:
        self.schema = schema

    @property
    def transaction_scope(self) -> Hashable:
        """What drivers must share to take part in one transaction (their backend and
        configuration); ``None``: this driver cannot take part in one."""
        return None

    @abstractmethod
    def ensure(self) -> None:
        """Create the kind's table, and its declared indexes, when missing (idempotent, safe when
        processes race); on a server that expires records itself, turn that on for the
        schema's ``ttl_field``."""

    @abstractmethod
    def read(self, plan: Plan) -> Iterator[Record]:
        """Yield the records ``plan`` selects (a superset of its ``filters``' matches is fine),
        lazily, in its order when it is ordered."""

    def count(self, plan: Plan) -> int:
        """How many records ``plan`` selects, exactly. By default: ``read`` and ``accepts``."""
        return sum(1 for record in self.read(plan) if plan.accepts(record))

    @abstractmethod
    def delete(self, plan: Plan) -> int:
        """Delete every record ``plan`` selects (exactly, as ``count``); return how many."""

    @abstractmethod
    def write(self, op: Write) -> Record | None:
        """Apply ``op`` when its guard holds, atomically; ``Conflict`` otherwise (see above).

        Returns the record stored after an ``Update`` (what the server holds once it is merged),
        ``None`` for the other ops.
        """

    @abstractmethod
    def put_many(self, records: Sequence[Record]) -> None:
        """Store ``records`` whole, unguarded (distinct keys, at most ``batch_size``), in as few
        round trips as the server allows; not atomic as a whole."""

    def batch_writer(self, many: bool) -> AbstractContextManager[BatchWriter]:
        """Where ``put_many``'s chunks go; ``many``: more than one chunk is coming.

        A network backend may write one chunk while core checks the next (``write_behind``, a
        database pipeline) as long as the outcome is the plain loop's: chunks stored in order, a
        chunk's error raised before one found in a later chunk, and the block's exit returning
        once every chunk is stored. By default: ``put_many`` of each slice, in the caller's thread.
        """
        return nullcontext(_DirectWriter(self))

    def transact(self, ops: Sequence[tuple[Driver, Write]]) -> None:
        """Apply ``ops`` (each with the driver of its kind; all drivers share this one's
        ``transaction_scope``) all together or not at all.

        When an op's guard does not hold, raise ``Conflict(current, index=i)`` for the first such
        op (its position in ``ops``); nothing is written.
        """
        raise StoreError(f"the backend of kind {self.schema.kind!r} has no transactions")

    @abstractmethod
    def native(self) -> Any:
        """The backend's own handles for this kind (see CONTRACT.md, "Escape hatches")."""


class UnknownOption(TypeError):
    """A store option its backend does not take: ``unknown`` among those given, ``takes`` the
    backend's options."""

    def __init__(self, backend: str, given: Sequence[str], takes: Sequence[str]) -> None:
        self.backend = backend
        self.unknown = [name for name in given if name not in takes] or list(given)
        self.takes = tuple(takes)
        super().__init__(
            f"the {backend} backend takes no option {', '.join(map(repr, self.unknown))} "
            f"(its options: {', '.join(self.takes) or 'none'})"
        )


class _DirectWriter:
    """The default ``BatchWriter``: records as they are, written by ``Driver.put_many``."""

    def __init__(self, driver: Driver) -> None:
        self._driver = driver
        self.stored = 0

    def encode(self, records: Sequence[Record]) -> Sequence[Record]:
        return records

    def write(self, batches: list[Any]) -> None:
        for batch in batches:
            self._driver.put_many(batch)
        self.stored += 1


def missing_table(kind: str, where: str, how: str | None = None) -> ConfigError:
    """The ``ConfigError`` of an operation on a kind whose table does not exist.

    ``where`` names the place looked in (``"schema 'public' of the database at ..."``), ``how`` the
    backend's way to create it in production, if it has one (``"run the alembic migrations"``).
    """
    ensure = f"call store.ensure() (`kvstore ensure {kind}`)"
    if how is None:
        return ConfigError(f"kind {kind!r} has no table in {where}: {ensure}")
    return ConfigError(f"kind {kind!r} has no table in {where}: {how}, or {ensure} in tests")


def keep_indexes(made: dict[str, tuple[str, ...]], schema: KindSchema, where: str) -> None:
    """``ensure()``'s index check for a backend that keeps its indexes' fields itself (in
    memory): remember each declared index's fields in ``made`` (the kind's, by index name),
    ``ConfigError`` when one of the same name was made on other fields."""
    for index in schema.indexes:
        found = made.setdefault(index.name, index.fields)
        if found != index.fields:
            raise changed_index(schema.kind, index.name, found, index.fields, where)


class _Shared:
    """The process's shared objects by (namespace, configuration); forgotten in a forked child."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.objects: dict[tuple[str, Hashable], Any] = {}
        self.pid = os.getpid()


_shared = _Shared()


def shared(namespace: str, key: Hashable, make: Callable[[], T]) -> T:
    """The object the process keeps under ``(namespace, key)``, made by ``make()`` at first use.

    One per configuration for the whole process (a connection pool, a client, a table's layout),
    as an AWS Lambda container expects; a forked child starts with none of its parent's.
    """
    objects = _shared.objects
    found = objects.get((namespace, key))
    if found is not None and _shared.pid == os.getpid():
        return found  # type: ignore[no-any-return]
    with _shared.lock:
        if _shared.pid != os.getpid():
            objects.clear()
            _shared.pid = os.getpid()
        found = objects.get((namespace, key))
        if found is None:
            found = objects[(namespace, key)] = make()
        return found


def forget(namespace: str, key: Hashable) -> None:
    """Drop the shared object under ``(namespace, key)`` (it went stale: a table changed)."""
    with _shared.lock:
        _shared.objects.pop((namespace, key), None)


class Backend(Protocol):
    """A storage backend as a plugin registers it (``kvstore.hookspecs``)."""

    name: str
    """The name ``STORE_BACKEND`` and ``create_store(backend=...)`` use."""
    extra: str | None
    """The pip extra that installs the backend's driver (``kvstore[extra]``), if any."""

    def open(self, schema: KindSchema, options: Mapping[str, Any]) -> Driver:
        """The driver of ``schema``'s kind, without I/O. ``TypeError`` for an unknown option,
        ``ModuleNotFoundError`` when the driver's library is not installed."""
        ...

    def describe(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """The settings a store with ``options`` would use (what ``kvstore backends`` shows),
        secrets masked; no I/O."""
        ...

    def migrate(self, kinds: Sequence[Driver], options: Mapping[str, Any]) -> str:
        """What ``kvstore migrate`` does on this backend (create the kinds' tables, or run the
        backend's own migrations); returns a one-line summary."""
        ...


class LazyBackend:
    """A ``Backend`` whose modules are imported only when they are needed (plugins are loaded at
    start-up, drivers when a store is first opened).

    Each target is ``"package.module:function"``:

    - ``driver``: ``open_driver(schema, **options) -> Driver``; options are its keyword-only
      parameters, so Python itself refuses an unknown one;
    - ``settings``: ``describe(**options) -> dict`` for ``kvstore backends`` (default: none);
    - ``migrate``: ``migrate(drivers, **options) -> str`` for ``kvstore migrate`` (default:
      ``ensure`` each kind).
    """

    def __init__(
        self,
        name: str,
        driver: str,
        *,
        extra: str | None = None,
        settings: str | None = None,
        migrate: str | None = None,
    ) -> None:
        self.name = name
        self.extra = extra
        self.driver = driver
        self.settings = settings
        self.migrations = migrate

    def __repr__(self) -> str:
        return f"LazyBackend({self.name!r}, {self.driver!r})"

    def open(self, schema: KindSchema, options: Mapping[str, Any]) -> Driver:
        """Import the driver module and open the kind's driver (``UnknownOption`` for an option
        the opener does not take)."""
        opener: Callable[..., Driver] = _target(self.driver)
        try:
            return opener(schema, **options)
        except TypeError as exc:
            if exc.__traceback__ is not None and exc.__traceback__.tb_next is None:
                # Raised in this frame: Python refused the arguments before the opener ran.
                raise UnknownOption(self.name, sorted(options), self.options()) from None
            raise

    def options(self) -> tuple[str, ...]:
        """The options ``open`` takes (the driver opener's keyword-only parameters)."""
        code = _target(self.driver).__code__
        start = code.co_argcount
        return tuple(code.co_varnames[start : start + code.co_kwonlyargcount])

    def describe(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """The backend's settings for ``options`` (secrets masked), or ``{}``."""
        if self.settings is None:
            return {}
        describe: Callable[..., dict[str, Any]] = _target(self.settings)
        return describe(**options)

    def migrate(self, kinds: Sequence[Driver], options: Mapping[str, Any]) -> str:
        """Run the backend's migrations, or ``ensure`` each kind."""
        if self.migrations is not None:
            run: Callable[..., str] = _target(self.migrations)
            return run(kinds, **options)
        if not kinds:
            raise InvalidArgument(
                f"the {self.name} backend has no migrations: name the kinds to ensure"
            )
        for driver in kinds:
            driver.ensure()
        return f"{self.name}: ensured {', '.join(d.schema.kind for d in kinds) or 'no kind'}"


def _target(target: str) -> Any:
    import importlib

    module, _, function = target.partition(":")
    return getattr(importlib.import_module(module), function)


@contextmanager
def write_behind(write: Callable[[T], None]) -> Iterator[Callable[[T], None]]:
    """For a ``batch_writer`` whose writes wait on the network: each ``write(batch)`` runs in one
    helper thread while the caller's thread prepares the next batch.

    Writes happen in order, one at a time. Handing over a batch first waits for the write before
    it (raising its error); the block's exit waits for the last one. When the block raises, the
    write in flight ends first, and its error, if any, is raised instead (the plain loop would
    have met it first).
    """
    from concurrent.futures import Future, ThreadPoolExecutor  # only batch writers pay for it

    in_flight: list[Future[None]] = []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kvstore-write") as executor:

        def submit(batch: T) -> None:
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
