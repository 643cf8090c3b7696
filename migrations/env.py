"""Alembic environment: connects with the same settings as the aurora store, in DB_SCHEMA."""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine, pool, text

from kvstore.config import PostgresSettings, postgres_settings
from kvstore_aurora.migrate import sqlalchemy_url

config = context.config
if config.config_file_name is not None and not config.attributes.get("kvstore_settings"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

settings: PostgresSettings = config.attributes.get("kvstore_settings") or postgres_settings()


def run_migrations_offline() -> None:
    """Emit the SQL instead of running it (``alembic upgrade head --sql``)."""
    context.configure(
        url=sqlalchemy_url(settings),
        literal_binds=True,
        version_table_schema=settings.schema,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on the database, in ``DB_SCHEMA`` when it is set."""
    engine = create_engine(sqlalchemy_url(settings), poolclass=pool.NullPool)
    with engine.connect() as connection:
        if settings.schema:
            quoted = connection.dialect.identifier_preparer.quote_identifier(settings.schema)
            connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {quoted}"))
            connection.execute(text(f"SET search_path TO {quoted}"))
            connection.commit()
        context.configure(connection=connection, version_table_schema=settings.schema)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
