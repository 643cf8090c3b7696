"""``sqlite3``'s exceptions mapped to kvstore's errors, in one context manager (httpx-style).

The mapping::

    no such table                                   -> ConfigError (how to create it)
    database locked or busy (after the busy wait)   -> BackendUnavailable
    unable to open, not a database                  -> ConfigError (KVSTORE_SQLITE_PATH)
    anything else from sqlite3                      -> StoreError
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from kvstore.backend import missing_table
from kvstore.errors import BackendUnavailable, ConfigError, StoreError

__all__ = ["is_busy", "map_exceptions"]


def is_busy(exc: sqlite3.Error) -> bool:
    """Whether ``exc`` says another connection holds a lock (worth waiting for)."""
    message = str(exc)
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in message or "busy" in message)


@contextmanager
def map_exceptions(kind: str | None = None, path: str | None = None) -> Iterator[None]:
    """Turn any ``sqlite3.Error`` raised inside into the matching ``StoreError`` (cause kept)."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        message = str(exc)
        if message.startswith("no such table") and kind is not None:
            raise missing_table(kind, f"the sqlite database {path!r}") from exc
        if is_busy(exc):
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
