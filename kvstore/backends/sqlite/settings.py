"""The sqlite backend's one setting: its database file (``KVSTORE_SQLITE_PATH`` or ``path=``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from kvstore.config import environment

__all__ = ["DEFAULT_PATH", "describe", "sqlite_path"]

DEFAULT_PATH = "./kvstore.sqlite3"


def sqlite_path(env: Mapping[str, str] | None = None, path: object = None) -> str:
    """The database file: ``path`` when given, else ``KVSTORE_SQLITE_PATH``, else
    ``./kvstore.sqlite3``; ``TypeError`` for a ``path`` that is not a str or path."""
    if path is None:
        return environment(env).get("KVSTORE_SQLITE_PATH") or DEFAULT_PATH
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"the sqlite option path must be a str or path, not {type(path).__name__}")
    return os.fspath(path)


def describe(*, path: object = None) -> dict[str, Any]:
    """What ``kvstore backends`` shows: the file's absolute path."""
    return {"path": os.path.abspath(sqlite_path(path=path))}
