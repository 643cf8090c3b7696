"""``store.native()`` for aurora: a reflected SQLAlchemy Core ``Table`` and an ``Engine``.

SQLAlchemy is imported here only, when ``native()`` is first called; one ``Engine`` per
configuration is shared by every kind.
"""

from __future__ import annotations

import threading
from typing import Any, NamedTuple

from kvstore.config import PostgresSettings
from kvstore_aurora.layout import Layout
from kvstore_aurora.migrate import sqlalchemy_url

__all__ = ["NativeHandles", "native_handles"]


class NativeHandles(NamedTuple):
    """What ``store.native()`` returns on aurora (not portable to other backends)."""

    table: Any
    """The kind's ``sqlalchemy.Table``, reflected from the database."""
    engine: Any
    """A ``sqlalchemy.Engine`` on the same database (``postgresql+psycopg``)."""


_engines: dict[PostgresSettings, Any] = {}
_lock = threading.Lock()


def _engine(settings: PostgresSettings) -> Any:
    from sqlalchemy import create_engine

    key = settings.database
    with _lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _engines[key] = create_engine(sqlalchemy_url(settings), pool_pre_ping=True)
        return engine


_handles: dict[tuple[Any, ...], NativeHandles] = {}


def native_handles(settings: PostgresSettings, layout: Layout) -> NativeHandles:
    """The reflected table of ``layout``'s kind and the configuration's engine (reflected once
    per layout: a table changed since is reflected again once its new layout is read)."""
    key = (settings.database, layout.schema, layout.kind, layout.selected)
    found = _handles.get(key)
    if found is None:
        found = _handles[key] = _reflect(settings, layout)
    return found


def _reflect(settings: PostgresSettings, layout: Layout) -> NativeHandles:
    from sqlalchemy import MetaData, Table

    from kvstore_aurora.errors import map_exceptions

    engine = _engine(settings)
    with map_exceptions(settings.describe(), secret=settings.password.reveal(), kind=layout.kind):
        try:
            table = Table(layout.kind, MetaData(schema=layout.schema), autoload_with=engine)
        except Exception as exc:
            cause = exc.orig if hasattr(exc, "orig") else None
            if cause is not None:
                raise cause from exc
            raise
    return NativeHandles(table, engine)
