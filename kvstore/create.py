"""``create_store``: a kind's declaration checked, its backend found, its driver opened (no I/O)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any, cast, overload

from kvstore.api import R, Store
from kvstore.backend import UnknownOption
from kvstore.errors import ConfigError, InvalidArgument
from kvstore.schema import Index, KindSchema
from kvstore.store import RecordStore, Validator

__all__ = ["create_store"]

_PARAMETERS = (
    "id_field",
    "key_type",
    "validate",
    "backend",
    "indexes",
    "scan",
    "version_field",
    "ttl_field",
    "record_type",
    "migration",
    "migration_options",
)


@overload
def create_store(
    kind: str,
    *,
    id_field: str | Iterable[str] = ...,
    key_type: type | Iterable[type] = ...,
    validate: Validator | None = ...,
    backend: str | None = ...,
    indexes: Iterable[Index] = ...,
    scan: bool = ...,
    version_field: str | None = ...,
    ttl_field: str | None = ...,
    record_type: None = ...,
    migration: str | None = ...,
    migration_options: Mapping[str, Any] | None = ...,
    **options: Any,
) -> Store[dict[str, Any]]: ...


@overload
def create_store(
    kind: str,
    *,
    id_field: str | Iterable[str] = ...,
    key_type: type | Iterable[type] = ...,
    validate: Validator | None = ...,
    backend: str | None = ...,
    indexes: Iterable[Index] = ...,
    scan: bool = ...,
    version_field: str | None = ...,
    ttl_field: str | None = ...,
    record_type: type[R],
    migration: str | None = ...,
    migration_options: Mapping[str, Any] | None = ...,
    **options: Any,
) -> Store[R]: ...


def create_store(
    kind: str,
    *,
    id_field: str | Iterable[str] = "id",
    key_type: type | Iterable[type] = str,
    validate: Validator | None = None,
    backend: str | None = None,
    indexes: Iterable[Index] = (),
    scan: bool = True,
    version_field: str | None = None,
    ttl_field: str | None = None,
    record_type: type[Any] | None = None,
    migration: str | None = None,
    migration_options: Mapping[str, Any] | None = None,
    **options: Any,
) -> Store[Any]:
    """A store for ``kind`` on ``backend`` (default: ``STORE_BACKEND``); does no I/O.

    ``indexes`` declares secondary indexes; ``scan=False`` refuses every read that no key or
    index serves; ``version_field`` names an int the store steps on every write (optimistic
    locking); ``ttl_field`` a number of seconds since the epoch after which a record is expired.
    ``record_type`` (a ``TypedDict`` of the kind's fields) types the store for mypy: a
    ``Store[User]`` takes and returns ``User`` records; it changes nothing at run time.
    Other keyword arguments are the backend's options (``TypeError`` for one it does not take).

    ``migration`` (``"TARGET:STAGE"``, e.g. ``"sqlite:shadow"``) moves the kind to backend
    ``TARGET``, at ``STAGE``, whatever ``STORE_MIGRATION`` says; ``"off"`` opts the store out of
    any migration; ``None`` lets ``STORE_MIGRATION`` decide. The store is then a
    ``kvstore.migration.MigratingStore`` over this backend's store and ``TARGET``'s, opened with
    the same declaration and ``migration_options`` (the new side's options, e.g. another file
    or an injected client; by default it is configured from its own environment variables;
    ignored when no migration applies). ``STORE_MIGRATION`` naming the store's own backend as
    the target does not apply to it (the kind is already there).
    """
    from kvstore.config import backend_name

    schema = KindSchema.declare(kind, id_field, key_type, indexes, version_field, ttl_field)
    if validate is not None and not callable(validate):
        raise InvalidArgument("validate must be a callable taking and returning a record")
    if type(scan) is not bool:
        raise InvalidArgument(f"scan is True or False, not {scan!r:.40}")
    old = backend if backend is not None else backend_name()
    if migration is None and not os.environ.get("STORE_MIGRATION"):
        store: object = _open(schema, old, validate, scan, options)
    else:
        store = _migrating(schema, old, validate, scan, options, migration, migration_options)
    return cast("Store[Any]", store)


def _open(
    schema: KindSchema,
    name: str | None,
    validate: Validator | None,
    scan: bool,
    options: Mapping[str, Any],
) -> RecordStore:
    """The store of ``schema``'s kind on backend ``name`` (no I/O)."""
    from kvstore.registry import get_backend

    chosen = get_backend(name)
    try:
        driver = chosen.open(schema, options)
    except ModuleNotFoundError as exc:
        extra = f": pip install 'kvstore[{chosen.extra}]'" if chosen.extra else ""
        raise ConfigError(
            f"backend {chosen.name!r} needs the {exc.name!r} package, which is not installed{extra}"
        ) from exc
    except UnknownOption as exc:
        raise _unknown_option(exc) from None
    return RecordStore(driver, chosen.name, validate, scan=scan)


def _migrating(
    schema: KindSchema,
    old: str | None,
    validate: Validator | None,
    scan: bool,
    options: Mapping[str, Any],
    migration: str | None,
    migration_options: Mapping[str, Any] | None,
) -> object:
    """The store of a kind that ``migration`` (or ``STORE_MIGRATION``) may be moving."""
    from kvstore.migration.spec import migration_for, parse_migration, sample_rate

    if migration_options is not None and not isinstance(migration_options, Mapping):
        raise InvalidArgument("migration_options is a dict of the new backend's options")
    chosen = parse_migration(migration) if migration is not None else migration_for(schema.kind)
    old_store = _open(schema, old, None if chosen else validate, scan, options)
    if chosen is None:
        return old_store
    if chosen.target == old_store.backend and not migration_options:
        if migration is not None:
            raise InvalidArgument(
                f"migration {migration!r} would move {schema.kind!r} onto the backend it is on; "
                "give migration_options to move it to another configuration of that backend"
            )
        return RecordStore(old_store.driver, old_store.backend, validate, scan=scan)
    from kvstore.migration.store import MigratingStore

    try:
        new_store = _open(schema, chosen.target, None, scan, migration_options or {})
    except TypeError as exc:
        raise TypeError(f"migration_options: {exc}") from None
    return MigratingStore(
        old_store, new_store, chosen.stage, validate=validate, sample=sample_rate()
    )


def _unknown_option(exc: UnknownOption) -> TypeError:
    """The error for an unknown ``create_store`` keyword: not a parameter, not an option."""
    import difflib

    hints = []
    for name in exc.unknown:
        close = difflib.get_close_matches(name, (*_PARAMETERS, *exc.takes), n=1)
        if close:
            hints.append(f"did you mean {close[0]!r}?")
    return TypeError(
        f"create_store() got an unexpected keyword argument {', '.join(map(repr, exc.unknown))}: "
        f"it is neither a create_store() parameter ({', '.join(_PARAMETERS)}) nor an option of "
        f"the {exc.backend} backend ({', '.join(exc.takes) or 'it takes none'})"
        + (f"; {' '.join(hints)}" if hints else "")
    )
