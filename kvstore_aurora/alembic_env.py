"""What an alembic ``env.py`` of kvstore kinds runs: ``run_migrations(context)`` connects with the
aurora store's own settings (``DATABASE_URL``, ``DB_*``, ``LOCAL_DB_*``), in ``DB_SCHEMA``, online
or offline (``alembic upgrade head --sql``).

The ``env.py`` that ``kvstore init-migrations`` writes is two lines around it, so a project's
migrations follow kvstore's settings as the store does, and a fix here reaches every project.
Errors are kvstore's (a refused login is a ``ConfigError``, an unreachable server
``BackendUnavailable``, never the password); under the ``alembic`` command itself they become
alembic's ``CommandError``, which it prints as one ``FAILED:`` line instead of a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from logging.config import fileConfig
from typing import Any

from kvstore.errors import StoreError
from kvstore_aurora.settings import PostgresSettings, postgres_settings

__all__ = ["SETTINGS_ATTRIBUTE", "run_migrations"]

SETTINGS_ATTRIBUTE = "kvstore_settings"
"""The alembic ``Config.attributes`` entry holding the ``PostgresSettings`` to connect with, set
by ``kvstore_aurora.migrate.upgrade`` (and so ``kvstore migrate``); the ``alembic`` command sets
none, and the settings then come from the environment."""


def run_migrations(context: Any = None, *, target_metadata: Any = None) -> None:
    """Run the migrations of alembic's ``context`` (default: ``alembic.context``, the one an
    ``env.py`` sees) on the aurora store's database.

    ``target_metadata`` is a SQLAlchemy ``MetaData`` for ``alembic revision --autogenerate``, if
    the project uses it. Run by the ``alembic`` command, this also configures logging from the
    ini file, as alembic's own env.py does; run from code, it leaves the application's logging
    alone.
    """
    if context is None:
        from alembic import context as alembic_context

        context = alembic_context
    config = context.config
    given = config.attributes.get(SETTINGS_ATTRIBUTE)
    if given is None and config.config_file_name is not None:
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    with _reported(by_alembic=given is None):
        if context.is_offline_mode():
            _offline(context, target_metadata, given)
        else:
            _online(context, target_metadata, given or postgres_settings())


@contextmanager
def _reported(*, by_alembic: bool) -> Iterator[None]:
    """Under the ``alembic`` command, a kvstore error becomes alembic's ``CommandError`` (one
    ``FAILED: CODE: message`` line); from code, it reaches the caller as it is."""
    try:
        yield
    except StoreError as exc:
        if not by_alembic:
            raise
        from alembic.util import CommandError

        raise CommandError(f"{exc.code}: {exc.message}") from exc


def _schema_statements(schema: str | None, quote: Any) -> list[str]:
    """Create ``DB_SCHEMA`` when missing and make it the session's, so that the migrations'
    tables land there (``create_kind_table`` names no schema by default)."""
    if not schema:
        return []
    quoted = quote(schema)
    return [f"CREATE SCHEMA IF NOT EXISTS {quoted}", f"SET search_path TO {quoted}"]


def _offline(context: Any, target_metadata: Any, given: PostgresSettings | None) -> None:
    """Print the SQL instead of running it: needs no server, so no connection settings (only
    ``DB_SCHEMA``, which the SQL names)."""
    schema = given.schema if given is not None else _schema_only()
    context.configure(
        dialect_name="postgresql",
        target_metadata=target_metadata,
        literal_binds=True,
        version_table_schema=schema,
    )
    quote = context.get_context().dialect.identifier_preparer.quote_identifier
    with context.begin_transaction():
        for statement in _schema_statements(schema, quote):
            context.execute(statement)
        context.run_migrations()


def _schema_only() -> str | None:
    """``DB_SCHEMA`` as the settings read it, whether or not the connection settings are there
    (offline SQL needs none)."""
    from kvstore.errors import ConfigError

    try:
        return postgres_settings().schema
    except ConfigError:
        from kvstore.config import environment

        return environment(None).get("DB_SCHEMA") or None


def _online(context: Any, target_metadata: Any, settings: PostgresSettings) -> None:
    """Connect with ``settings`` and run the migrations in one transaction (PostgreSQL's DDL is
    transactional: a failing migration leaves nothing half done)."""
    import psycopg
    from sqlalchemy import create_engine, pool, text
    from sqlalchemy.exc import DBAPIError

    from kvstore_aurora.errors import raise_mapped
    from kvstore_aurora.migrate import sqlalchemy_url

    where, secret = settings.describe(), settings.password.reveal()
    engine = create_engine(sqlalchemy_url(settings), poolclass=pool.NullPool)
    try:
        try:
            connection = engine.connect()
        except DBAPIError as exc:
            if not isinstance(exc.orig, psycopg.Error):
                raise
            raise_mapped(exc.orig, where, secret=secret, connecting=True)
        with connection:
            quote = connection.dialect.identifier_preparer.quote_identifier
            try:
                for statement in _schema_statements(settings.schema, quote):
                    connection.execute(text(statement))
                connection.commit()  # the search_path stays the session's
                context.configure(
                    connection=connection,
                    target_metadata=target_metadata,
                    version_table_schema=settings.schema,
                )
                with context.begin_transaction():
                    context.run_migrations()
            except DBAPIError as exc:
                if not isinstance(exc.orig, psycopg.Error):
                    raise
                raise_mapped(exc.orig, where, secret=secret, schema=settings.schema)
    finally:
        engine.dispose()
