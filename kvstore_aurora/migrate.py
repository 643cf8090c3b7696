"""Creating kinds' tables: ``store.ensure()``'s default layout, helpers for alembic migration
scripts, and ``upgrade()`` running alembic programmatically.

A kind's table: its key columns (``text`` or ``bigint`` by key type) as primary key, optional real
columns, and ``doc jsonb NOT NULL DEFAULT '{}'`` with a GIN index for filters on its fields.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from psycopg import sql

from kvstore.backend import KindSchema
from kvstore.config import PostgresSettings, postgres_settings
from kvstore.errors import ConfigError
from kvstore.values import check_field_name, check_kind

if TYPE_CHECKING:
    from kvstore_aurora.connection import Connection

__all__ = [
    "COLUMN_TYPES",
    "alembic_config",
    "create_kind_table",
    "downgrade",
    "drop_kind_table",
    "ensure_table",
    "find_alembic_ini",
    "sqlalchemy_url",
    "upgrade",
]

COLUMN_TYPES = ("text", "bigint", "numeric", "double precision", "boolean", "jsonb")
"""The column types a kind's real columns may have."""


def _index_name(kind: str) -> str:
    return f"{kind[:54]}_doc_gin"


def ensure_table(connection: Connection, schema: KindSchema, db_schema: str | None) -> None:
    """Create ``schema``'s table in the default layout unless it exists (safe when racing).

    An advisory lock on the table's name serialises racing processes: a bare ``CREATE TABLE IF
    NOT EXISTS`` can still fail on the catalog's unique index when two run at once.
    """
    table = sql.Identifier(db_schema, schema.kind) if db_schema else sql.Identifier(schema.kind)
    keys = [
        sql.SQL("{} {} NOT NULL").format(
            sql.Identifier(f), sql.SQL("text" if t is str else "bigint")
        )
        for f, t in zip(schema.id_fields, schema.key_types, strict=True)
    ]
    create = sql.SQL(
        "CREATE TABLE IF NOT EXISTS {} ({}, doc jsonb NOT NULL DEFAULT '{{}}', PRIMARY KEY ({}))"
    ).format(
        table,
        sql.SQL(", ").join(keys),
        sql.SQL(", ").join(map(sql.Identifier, schema.id_fields)),
    )
    index = sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} USING gin (doc)").format(
        sql.Identifier(_index_name(schema.kind)), table
    )
    with connection.transaction():
        connection.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))",
            (f"kvstore:{db_schema or ''}.{schema.kind}",),
        )
        connection.execute(create)
        connection.execute(index)


def _column_type(sa: Any, name: str) -> Any:
    from sqlalchemy.dialects import postgresql

    types = {
        "text": sa.Text(),
        "bigint": sa.BigInteger(),
        "numeric": sa.Numeric(),
        "double precision": sa.Double(),
        "boolean": sa.Boolean(),
        "jsonb": postgresql.JSONB(),
    }
    if name not in types:
        raise ConfigError(f"column type {name!r} is not one of {COLUMN_TYPES}")
    return types[name]


def create_kind_table(
    op: Any,
    kind: str,
    id_fields: str | Sequence[str] = "id",
    key_types: type | Sequence[type] = str,
    *,
    columns: Mapping[str, Any] | None = None,
    doc: bool = True,
    schema: str | None = None,
) -> None:
    """In an alembic migration, create ``kind``'s table (call it from ``upgrade()``).

    ``id_fields``/``key_types`` are those of ``create_store``; ``columns`` maps extra field names to
    a type from ``COLUMN_TYPES`` (or a SQLAlchemy type); ``doc=False`` leaves out the ``jsonb``
    column (the kind then accepts only fields that have columns); ``schema`` defaults to the
    migration connection's current schema.
    """
    import sqlalchemy as sa
    from sqlalchemy.dialects import postgresql

    check_kind(kind)
    fields = (id_fields,) if isinstance(id_fields, str) else tuple(id_fields)
    types = (key_types,) * len(fields) if isinstance(key_types, type) else tuple(key_types)
    cols: list[Any] = [
        sa.Column(
            check_field_name(f),
            sa.Text() if t is str else sa.BigInteger(),
            primary_key=True,
            autoincrement=False,  # keys are given, never generated (no BIGSERIAL)
        )
        for f, t in zip(fields, types, strict=True)
    ]
    for name, type_ in (columns or {}).items():
        column_type = _column_type(sa, type_) if isinstance(type_, str) else type_
        cols.append(sa.Column(check_field_name(name), column_type, nullable=True))
    if doc:
        cols.append(
            sa.Column("doc", postgresql.JSONB(), nullable=False, server_default=sa.text("'{}'"))
        )
    op.create_table(kind, *cols, schema=schema)
    if doc:
        op.create_index(_index_name(kind), kind, ["doc"], postgresql_using="gin", schema=schema)


def drop_kind_table(op: Any, kind: str, *, schema: str | None = None) -> None:
    """In an alembic migration, drop ``kind``'s table (call it from ``downgrade()``)."""
    op.drop_table(check_kind(kind), schema=schema)


def find_alembic_ini(path: str | os.PathLike[str] | None = None) -> Path:
    """The alembic.ini to use: ``path``, else ``KVSTORE_ALEMBIC_INI``, else ``./alembic.ini``,
    else the one of the kvstore source checkout (its examples' migrations)."""
    candidates = [path, os.environ.get("KVSTORE_ALEMBIC_INI"), "alembic.ini"]
    candidates.append(Path(__file__).resolve().parent.parent / "alembic.ini")
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate).resolve()
    raise ConfigError(
        "no alembic.ini found: pass config=..., set KVSTORE_ALEMBIC_INI, or run from the "
        "directory holding alembic.ini"
    )


def alembic_config(
    settings: PostgresSettings | None = None, config: str | os.PathLike[str] | None = None
) -> Any:
    """An alembic ``Config`` on ``config`` (see ``find_alembic_ini``) whose env.py connects with
    ``settings`` (default: from the environment)."""
    from alembic.config import Config

    ini = find_alembic_ini(config)
    cfg = Config(str(ini))
    # A relative script_location is relative to the ini file, wherever the process runs.
    location = cfg.get_main_option("script_location") or "migrations"
    if not os.path.isabs(location) and ":" not in location:
        cfg.set_main_option("script_location", str(ini.parent / location))
    cfg.attributes["kvstore_settings"] = settings or postgres_settings()
    return cfg


def upgrade(
    revision: str = "head",
    settings: PostgresSettings | None = None,
    *,
    config: str | os.PathLike[str] | None = None,
) -> None:
    """Run ``alembic upgrade revision`` programmatically (the original's ``configure()``)."""
    from alembic import command

    command.upgrade(alembic_config(settings, config), revision)


def downgrade(
    revision: str,
    settings: PostgresSettings | None = None,
    *,
    config: str | os.PathLike[str] | None = None,
) -> None:
    """Run ``alembic downgrade revision`` programmatically."""
    from alembic import command

    command.downgrade(alembic_config(settings, config), revision)


def sqlalchemy_url(settings: PostgresSettings) -> Any:
    """A SQLAlchemy ``URL`` (``postgresql+psycopg``) for ``settings``; its repr masks the password."""
    from sqlalchemy.engine import URL

    query: dict[str, str] = {"connect_timeout": str(max(1, round(settings.connect_timeout)))}
    if settings.sslmode:
        query["sslmode"] = settings.sslmode
    return URL.create(
        "postgresql+psycopg",
        username=settings.user,
        password=settings.password.reveal() or None,
        host=settings.host,
        port=settings.port,
        database=settings.dbname,
        query=query,
    )
