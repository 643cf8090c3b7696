"""``store.native()`` for aurora: a reflected SQLAlchemy Core ``Table`` and an ``Engine``.

SQLAlchemy is imported here only, when ``native()`` is first called (``ConfigError`` naming the
extra to install when it is missing); one ``Engine`` per configuration is shared by every kind.
The engine connects as the store does: every libpq parameter of the URL, and the login of
``DB_SECRET_ARN``/``DB_IAM_AUTH`` read at each new connection.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from kvstore.backend import shared
from kvstore.errors import ConfigError
from kvstore_aurora.layout import Layout
from kvstore_aurora.migrate import sqlalchemy_url
from kvstore_aurora.settings import PostgresSettings

__all__ = ["NativeHandles", "native_handles"]

EXTRA = "pip install 'kvstore[aurora-migrations]'"


class NativeHandles(NamedTuple):
    """What ``store.native()`` returns on aurora (not portable to other backends)."""

    table: Any
    """The kind's ``sqlalchemy.Table``, reflected from the database."""
    engine: Any
    """A ``sqlalchemy.Engine`` on the same database (``postgresql+psycopg``)."""


def _require_sqlalchemy() -> None:
    try:
        import sqlalchemy  # noqa: F401
    except ModuleNotFoundError:
        raise ConfigError(
            f"store.native() on aurora needs SQLAlchemy, which is not installed: {EXTRA}"
        ) from None


def _make_engine(settings: PostgresSettings) -> Any:
    from sqlalchemy import create_engine, event

    url = sqlalchemy_url(settings)
    if settings.params:
        url = url.update_query_pairs(list(settings.params))
    engine = create_engine(url, pool_pre_ping=True)
    if settings.secret_arn is not None or settings.iam_auth:
        from kvstore_aurora import credentials

        @event.listens_for(engine, "do_connect")
        def _login(dialect: Any, record: Any, args: Any, params: dict[str, Any]) -> None:
            login = credentials.login(settings)
            for name in ("host", "port", "dbname", "user"):
                value = getattr(login, name)
                if value:
                    params[name] = value
            params["password"] = login.password.reveal()

    return engine


def _engine(settings: PostgresSettings) -> Any:
    key = settings.database
    return shared("kvstore_aurora.engine", key, lambda: _make_engine(key))


def native_handles(settings: PostgresSettings, layout: Callable[[], Layout]) -> NativeHandles:
    """The reflected table of the kind whose layout ``layout()`` reads, and the configuration's
    engine (reflected once per layout: a table changed since is reflected again once its new
    layout is read). ``ConfigError`` before any I/O when SQLAlchemy is not installed."""
    _require_sqlalchemy()
    found = layout()
    key = (settings.database, found.schema, found.kind, found.selected)
    held = shared("kvstore_aurora.native", key, _Held)  # reflected outside shared()'s lock
    if held.handles is None:
        held.handles = _reflect(settings, found)
    return held.handles


class _Held:
    """A kind's reflected handles, once reflected."""

    __slots__ = ("handles",)

    def __init__(self) -> None:
        self.handles: NativeHandles | None = None


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
