"""psycopg's exceptions mapped to kvstore's: ``raise_mapped`` and the ``map_exceptions()`` block.

The mapping::

    connection refused, timeout (connect, lock, statement, the call's budget),
    dropped connection, server shutting down, deadlock or serialization
    failure (nothing was applied; try again)                               -> BackendUnavailable
    refused login, unknown database, missing privilege or schema           -> ConfigError
    undefined table                                                        -> ConfigError (how to create it)
    unique violation (an index of the table's own, beyond its key)         -> AlreadyExists
    a value the column cannot hold (data exception, not-null, check)       -> InvalidArgument
    anything else from psycopg                                             -> StoreError

No message kvstore builds here contains the password, and a psycopg error whose text contains it is
not chained (its text would carry the password into tracebacks).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import psycopg
from psycopg import errors as pg

from kvstore.backend import missing_table
from kvstore.errors import (
    AlreadyExists,
    BackendUnavailable,
    ConfigError,
    InvalidArgument,
    StoreError,
)

__all__ = [
    "is_connection_lost",
    "login_refused",
    "map_exceptions",
    "may_have_been_applied",
    "no_table",
    "raise_mapped",
]

_LOGIN_REFUSED = (
    r"password authentication failed|authentication failed|role .* does not exist|"
    r"database .* does not exist|no pg_hba\.conf entry|permission denied for database|"
    r"SSL is not enabled|server does not support SSL|password is required|no password supplied|"
    r"invalid \w+ value|invalid connection option|certificate|invalid URI"
)
"""What a refused login says (``re.search``'s cache compiles it at the first refusal, so no cold
start pays for compiling it on import)."""


_AUTHENTICATION = (
    r"authentication failed|password is required|no password supplied|role .* does not exist"
)
"""What a server says when it refuses the credentials themselves (not the database)."""


def login_refused(exc: BaseException) -> bool:
    """Whether ``exc`` (from connecting) says the password or token was refused."""
    return re.search(_AUTHENTICATION, str(exc), re.IGNORECASE) is not None


HOW_TO_CREATE = (
    "run the alembic migrations (kvstore_aurora.migrate.upgrade(), or `kvstore migrate`, with a "
    "migration using kvstore_aurora.migrate.create_kind_table)"
)


def no_table(kind: str, schema: str | None, where: str) -> ConfigError:
    """The ``ConfigError`` of a kind whose table does not exist (``kvstore.backend.missing_table``);
    ``where`` describes the server (password-free)."""
    place = f"schema {schema!r}" if schema else "the connection's current schema"
    return missing_table(kind, f"{place} of PostgreSQL at {where}", HOW_TO_CREATE)


def is_connection_lost(exc: BaseException, connection: psycopg.Connection[object] | None) -> bool:
    """Whether ``exc`` means the connection is gone (so a fresh one may succeed)."""
    if isinstance(exc, (pg.AdminShutdown, pg.CrashShutdown, pg.ConnectionFailure)):
        return True
    if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
        return connection is None or connection.closed or connection.broken
    return False


_MAYBE_APPLIED = (
    "kvstore: the write's request was sent and its answer lost; it may have been applied"
)


def may_have_been_applied(exc: psycopg.Error) -> None:
    """Note on ``exc`` that the write it interrupted was sent and not sent again (it is not
    idempotent): the server may have applied it, which the error the caller gets says."""
    exc.add_note(_MAYBE_APPLIED)


def _outcome(exc: BaseException) -> str:
    if _MAYBE_APPLIED not in getattr(exc, "__notes__", ()):
        return ""
    return (
        ": the write was not sent again, since it may have been applied and applying it twice "
        "would not be the same"
    )


def _text(exc: BaseException, secret: str) -> str:
    text = " ".join(str(exc).split())
    return text.replace(secret, "***") if secret else text


def _raise(error: StoreError, exc: BaseException, secret: str) -> NoReturn:
    if secret and secret in str(exc):
        raise error from None
    raise error from exc


def raise_mapped(
    exc: psycopg.Error,
    where: str,
    *,
    secret: str = "",
    kind: str | None = None,
    schema: str | None = None,
    connecting: bool = False,
) -> NoReturn:
    """Raise the kvstore error for ``exc`` (call it from the ``except`` block that caught it).

    The arguments are ``map_exceptions``'s; hot paths call this from one ``try`` instead of
    entering a context manager per call.
    """
    text = _text(exc, secret)
    error: StoreError
    if isinstance(exc, pg.UndefinedTable) and kind is not None:
        error = no_table(kind, schema, where)
    elif isinstance(exc, pg.InvalidSchemaName):
        error = ConfigError(f"schema {schema!r} does not exist on {where}: {text}")
    elif isinstance(exc, (pg.InvalidAuthorizationSpecification, pg.InsufficientPrivilege)) or (
        connecting and re.search(_LOGIN_REFUSED, text, re.IGNORECASE)
    ):
        error = ConfigError(f"PostgreSQL at {where} refused us: {text}")
    elif isinstance(exc, pg.UniqueViolation):
        error = AlreadyExists(f"key already taken in {kind!r}: {text}")
    elif isinstance(
        exc, (pg.DataError, pg.NotNullViolation, pg.CheckViolation, pg.ForeignKeyViolation)
    ):
        error = InvalidArgument(f"{kind!r} cannot store this value: {text}")
    elif isinstance(exc, pg.LockNotAvailable):
        error = BackendUnavailable(
            f"PostgreSQL at {where} waited for a row lock past the lock timeout (part of the "
            f"time budget, KVSTORE_TIMEOUT): {text}"
        )
    elif isinstance(exc, pg.QueryCanceled) and "statement timeout" in text:
        error = BackendUnavailable(
            f"PostgreSQL at {where} ended the statement at the statement timeout (part of the "
            f"time budget, KVSTORE_TIMEOUT): {text}"
        )
    elif isinstance(
        exc,
        (pg.QueryCanceled, pg.OperationalError, pg.InterfaceError, pg.TransactionRollback),
    ):
        error = BackendUnavailable(f"PostgreSQL at {where} is unavailable: {text}{_outcome(exc)}")
    else:
        error = StoreError(f"PostgreSQL error on {where}: {text}")
    _raise(error, exc, secret)


@contextmanager
def map_exceptions(
    where: str,
    *,
    secret: str = "",
    kind: str | None = None,
    schema: str | None = None,
    connecting: bool = False,
) -> Iterator[None]:
    """Turn psycopg's exceptions raised inside the block into kvstore's.

    ``where`` (a password-free description of the server) goes into connection messages;
    ``secret`` is masked in any message; ``kind``/``schema`` name the table for a missing one;
    ``connecting`` marks the block that opens a connection (a refused login is a ``ConfigError``).
    """
    try:
        yield
    except psycopg.Error as exc:
        raise_mapped(exc, where, secret=secret, kind=kind, schema=schema, connecting=connecting)
