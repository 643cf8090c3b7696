"""Maps ``sqlite3`` exceptions to kvstore's errors, in one context manager (httpx-style)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from kvstore.errors import AlreadyExists, BackendUnavailable, ConfigError, StoreError

__all__ = ["map_exceptions"]


@contextmanager
def map_exceptions(kind: str | None = None, path: str | None = None) -> Iterator[None]:
    """Turn any ``sqlite3.Error`` raised inside into the matching ``StoreError`` (cause kept)."""
    try:
        yield
    except sqlite3.IntegrityError as exc:
        if "UNIQUE" in str(exc) or "PRIMARY KEY" in str(exc):
            raise AlreadyExists(f"a {kind} record with that key exists") from exc
        raise StoreError(f"sqlite refused the write: {exc}") from exc
    except sqlite3.OperationalError as exc:
        message = str(exc)
        if message.startswith("no such table"):
            raise ConfigError(
                f"kind {kind!r} has no table in the sqlite database {path!r}: "
                "call store.ensure() (or `kvstore ensure KIND`) first"
            ) from exc
        if "locked" in message or "busy" in message:
            raise BackendUnavailable(
                f"the sqlite database {path!r} stayed locked by another process: {message}"
            ) from exc
        if "unable to open" in message:
            raise ConfigError(
                f"cannot open the sqlite database {path!r} (set KVSTORE_SQLITE_PATH): {message}"
            ) from exc
        raise StoreError(f"sqlite error: {message}") from exc
    except sqlite3.DatabaseError as exc:
        if "not a database" in str(exc):
            raise ConfigError(f"{path!r} is not a sqlite database (KVSTORE_SQLITE_PATH)") from exc
        raise StoreError(f"sqlite error: {exc}") from exc
    except sqlite3.Error as exc:
        raise StoreError(f"sqlite error: {exc}") from exc
