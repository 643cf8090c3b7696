"""Creating kinds' tables and indexes: ``store.ensure()``'s default layout, helpers for alembic
migration scripts, ``upgrade()`` running alembic programmatically, ``migrate()`` for
``kvstore migrate``, and ``init_migrations()`` (from ``scaffold``) making a project's alembic setup.

A kind's table: its key columns (``text COLLATE "C"``, so the primary key orders strings by code
point, or ``bigint``) as primary key, optional real columns, and ``doc jsonb NOT NULL DEFAULT '{}'``
with a GIN index for equality filters on its fields. Each declared ``Index`` is a btree index
named ``<kind>__<index>`` on its fields' typed expressions (``kvstore_aurora.predicates.index_expr``)
then the key columns, over the records that have its partition field.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from psycopg import sql

from kvstore.backend import Driver, Index, KindSchema
from kvstore.errors import ConfigError, changed_index
from kvstore.values import check_field_name, check_kind
from kvstore_aurora.scaffold import init_migrations
from kvstore_aurora.settings import PostgresSettings, postgres_settings, resolve

if TYPE_CHECKING:
    from kvstore_aurora.connection import Connection

__all__ = [
    "COLUMN_TYPES",
    "alembic_config",
    "create_kind_index",
    "create_kind_table",
    "downgrade",
    "drop_kind_index",
    "drop_kind_table",
    "ensure_table",
    "find_alembic_ini",
    "index_comment_sql",
    "index_name",
    "index_sql",
    "init_migrations",
    "migrate",
    "sqlalchemy_url",
    "upgrade",
]

COLUMN_TYPES = ("text", "bigint", "numeric", "double precision", "boolean", "jsonb")
"""The column types a kind's real columns may have."""
MIGRATIONS_EXTRA = "pip install 'kvstore[aurora-migrations]'"
"""What installs alembic and SQLAlchemy."""
INIT_HINT = "make one with `kvstore init-migrations migrations` (or init_migrations('migrations'))"
"""How to make an alembic setup, for the messages of its absence."""
MAX_NAME = 63
"""PostgreSQL's longest identifier, in bytes (longer ones are cut)."""


def _gin_name(kind: str) -> str:
    return f"{kind[:54]}_doc_gin"


def index_name(kind: str, index: str) -> str:
    """The name of a kind's secondary index: ``<kind>__<index>``, or, past 63 characters, the
    kind cut and made unique by a hash of the whole name."""
    name = f"{kind}__{index}"
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{kind[: MAX_NAME - len(index) - 11]}_{digest}__{index}"


def index_sql(
    table: sql.Composable,
    kind: str,
    key: Sequence[tuple[str, type]],
    index: Index,
    column_kinds: Sequence[str | None],
) -> sql.Composed:
    """``CREATE INDEX IF NOT EXISTS`` of a kind's secondary index: the typed expressions of its
    fields (``column_kinds``: the kind of the column holding each, ``None`` for ``doc``), then
    the key columns (strings ``COLLATE "C"``), where the partition field is present."""
    from kvstore_aurora.indexes import index_expr, index_predicate

    parts = [
        index_expr(field, key_type, column_kind, alias=None)
        for field, key_type, column_kind in zip(
            index.fields, index.key_types, column_kinds, strict=True
        )
    ]
    parts += [
        sql.SQL('{} COLLATE "C"' if key_type is str else "{}").format(sql.Identifier(field))
        for field, key_type in key
    ]
    return sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} ({}) WHERE {}").format(
        sql.Identifier(index_name(kind, index.name)),
        table,
        sql.SQL(", ").join(parts),
        index_predicate(index.partition, column_kinds[0], alias=None),
    )


_SIGNED = "kvstore index on "
"""How an index's comment starts: then its fields, as JSON (what ``ensure()`` compares)."""


def index_comment_sql(db_schema: str | None, kind: str, index: Index) -> sql.Composed:
    """``COMMENT ON INDEX`` saying which fields the index is on (``ensure()`` refuses to take an
    index of the same name on other fields for the declared one)."""
    name = index_name(kind, index.name)
    qualified = sql.Identifier(db_schema, name) if db_schema else sql.Identifier(name)
    return sql.SQL("COMMENT ON INDEX {} IS {}").format(
        qualified, sql.Literal(_SIGNED + json.dumps(list(index.fields)))
    )


def _index_fields(
    connection: Connection, db_schema: str | None, kind: str, index: Index
) -> tuple[str, ...] | None:
    """The fields the existing index of ``index``'s name says it is on: ``None`` when there is
    no such index, ``()`` when it says nothing (made by hand, or by an older kvstore)."""
    name = index_name(kind, index.name)
    qualified = sql.Identifier(db_schema, name) if db_schema else sql.Identifier(name)
    row = connection.execute(
        "SELECT obj_description(oid, 'pg_class') FROM (SELECT to_regclass(%s) AS oid) AS i "
        "WHERE oid IS NOT NULL",
        (qualified.as_string(connection),),
        prepare=False,
    ).fetchone()
    if row is None:
        return None
    comment = row[0] or ""
    return tuple(json.loads(comment[len(_SIGNED) :])) if comment.startswith(_SIGNED) else ()


def ensure_table(connection: Connection, schema: KindSchema, db_schema: str | None) -> None:
    """Create ``schema``'s table in the default layout unless it exists, and its missing declared
    indexes (safe when racing).

    An advisory lock on the table's name serialises racing processes: a bare ``CREATE TABLE IF
    NOT EXISTS`` can still fail on the catalog's unique index when two run at once.
    """
    from kvstore_aurora.indexes import column_kinds
    from kvstore_aurora.layout import LAYOUT_QUERY, build_layout

    table = sql.Identifier(db_schema, schema.kind) if db_schema else sql.Identifier(schema.kind)
    keys = [
        sql.SQL("{} {} NOT NULL").format(
            sql.Identifier(f), sql.SQL('text COLLATE "C"' if t is str else "bigint")
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
    with connection.transaction():
        connection.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))",
            (f"kvstore:{db_schema or ''}.{schema.kind}",),
        )
        query = (db_schema, schema.kind)
        existed = bool(connection.execute(LAYOUT_QUERY, query, prepare=False).fetchall())
        connection.execute(create)
        layout = build_layout(
            schema, connection.execute(LAYOUT_QUERY, query, prepare=False).fetchall()
        )
        assert layout is not None  # created just now, or there already
        if not existed:  # a table of another making keeps the indexes it was given
            connection.execute(
                sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} USING gin (doc)").format(
                    sql.Identifier(_gin_name(schema.kind)), table
                )
            )
        key = list(zip(schema.id_fields, schema.key_types, strict=True))
        for index in schema.indexes:
            found = _index_fields(connection, db_schema, schema.kind, index)
            if found:
                if found != index.fields:
                    where = f"schema {db_schema or 'public'!r}"
                    raise changed_index(schema.kind, index.name, found, index.fields, where)
                continue
            kinds = column_kinds(layout, index)
            connection.execute(index_sql(table, schema.kind, key, index, kinds))
            if found is None:
                connection.execute(index_comment_sql(db_schema, schema.kind, index))


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
            sa.Text(collation="C") if t is str else sa.BigInteger(),
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
        op.create_index(_gin_name(kind), kind, ["doc"], postgresql_using="gin", schema=schema)


def create_kind_index(
    op: Any,
    kind: str,
    index: Index,
    id_fields: str | Sequence[str] = "id",
    key_types: type | Sequence[type] = str,
    *,
    columns: Mapping[str, str] | None = None,
    schema: str | None = None,
) -> None:
    """In an alembic migration, create a secondary index of ``kind`` as ``ensure()`` would (call
    it from ``upgrade()``, after the table exists; ``drop_kind_index`` undoes it).

    ``index`` is the ``Index`` the stores declare; ``id_fields``/``key_types`` are those of
    ``create_store``; ``columns`` names the index fields that have a real column, with its type
    from ``COLUMN_TYPES`` (the others are in ``doc``). The statement is the very one ``ensure()``
    runs, so reads served by the index are planned on it.
    """
    from kvstore_aurora.columns import KINDS

    check_kind(kind)
    fields = (id_fields,) if isinstance(id_fields, str) else tuple(id_fields)
    types = (key_types,) * len(fields) if isinstance(key_types, type) else tuple(key_types)
    declared = dict(columns or {})
    kinds: list[str | None] = []
    for field in index.fields:
        if field in fields:
            kinds.append("text" if types[fields.index(field)] is str else "int")
        elif field in declared:
            if declared[field] not in COLUMN_TYPES:
                raise ConfigError(f"column type {declared[field]!r} is not one of {COLUMN_TYPES}")
            kinds.append(KINDS[declared[field]])
        else:
            kinds.append(None)
    table = sql.Identifier(schema, kind) if schema else sql.Identifier(kind)
    key = list(zip(fields, types, strict=True))
    op.execute(index_sql(table, kind, key, index, kinds).as_string(None))
    op.execute(index_comment_sql(schema, kind, index).as_string(None))


def drop_kind_index(op: Any, kind: str, index: Index | str, *, schema: str | None = None) -> None:
    """In an alembic migration, drop a secondary index of ``kind`` (from ``downgrade()``)."""
    name = index_name(check_kind(kind), index if isinstance(index, str) else index.name)
    op.drop_index(name, table_name=kind, schema=schema)


def drop_kind_table(op: Any, kind: str, *, schema: str | None = None) -> None:
    """In an alembic migration, drop ``kind``'s table (call it from ``downgrade()``)."""
    op.drop_table(check_kind(kind), schema=schema)


def find_alembic_ini(path: str | os.PathLike[str] | None = None) -> Path:
    """The alembic.ini to use: ``path``, else ``KVSTORE_ALEMBIC_INI``, else ``./alembic.ini``.

    ``ConfigError`` saying where it looked and how to make one when there is none (a ``path`` or
    ``KVSTORE_ALEMBIC_INI`` naming a missing file is an error, not a reason to look further).
    """
    for given, what in ((path, "config"), (os.environ.get("KVSTORE_ALEMBIC_INI"), None)):
        if given:
            if Path(given).is_file():
                return Path(given).resolve()
            raise ConfigError(
                f"no alembic.ini at {os.fspath(given)!r} "
                f"(named by {what or 'KVSTORE_ALEMBIC_INI'}): {INIT_HINT}"
            )
    found = Path("alembic.ini")
    if found.is_file():
        return found.resolve()
    raise ConfigError(
        f"no alembic.ini found: looked for {str(found.resolve())!r} (KVSTORE_ALEMBIC_INI is "
        f"unset): {INIT_HINT}, run from the directory holding alembic.ini, or set "
        "KVSTORE_ALEMBIC_INI to its path"
    )


def _alembic() -> Any:
    """alembic's ``command`` module; ``ConfigError`` naming the extra when it is not installed."""
    try:
        from alembic import command
    except ImportError:
        raise ConfigError(
            f"aurora migrations need alembic and SQLAlchemy: {MIGRATIONS_EXTRA}"
        ) from None
    return command


def alembic_config(
    settings: PostgresSettings | None = None, config: str | os.PathLike[str] | None = None
) -> Any:
    """An alembic ``Config`` on ``config`` (see ``find_alembic_ini``) whose env.py connects with
    ``settings`` (default: from the environment)."""
    _alembic()
    from alembic.config import Config

    from kvstore_aurora.alembic_env import SETTINGS_ATTRIBUTE

    ini = find_alembic_ini(config)
    cfg = Config(str(ini))
    # A relative script_location is relative to the ini file, wherever the process runs.
    location = cfg.get_main_option("script_location") or "migrations"
    if not os.path.isabs(location) and ":" not in location:
        cfg.set_main_option("script_location", str(ini.parent / location))
    _check_env(cfg, ini)
    cfg.attributes[SETTINGS_ATTRIBUTE] = settings or postgres_settings()
    return cfg


def _check_env(cfg: Any, ini: Path) -> None:
    """``ConfigError`` for an env.py that cannot reach the database: one written by ``alembic
    init`` (it imports nothing of kvstore, so it ignores kvstore's settings) whose alembic.ini
    still holds alembic's ``driver://`` placeholder, or no URL at all."""
    env = Path(cfg.get_main_option("script_location") or "") / "env.py"
    try:
        uses_kvstore = "kvstore_aurora" in env.read_text(encoding="utf-8")
    except OSError:
        return  # alembic says what is missing, better than a guess here
    url = (cfg.get_main_option("sqlalchemy.url") or "").strip()
    scheme = url.partition("://")[0].partition("+")[0]
    if uses_kvstore or scheme in ("postgresql", "postgres"):
        return
    found = f"sqlalchemy.url = {scheme}://..." if url else "no sqlalchemy.url"
    raise ConfigError(
        f"{env} does not use kvstore's connection settings (it imports nothing of kvstore, "
        f"like the one alembic init writes), and {ini} has {found}: make env.py call "
        "kvstore_aurora.alembic_env.run_migrations(context), as the env.py of "
        "`kvstore init-migrations` does, so it connects with DATABASE_URL/DB_*; or set "
        "sqlalchemy.url in alembic.ini to a postgresql:// URL"
    )


def upgrade(
    revision: str = "head",
    settings: PostgresSettings | None = None,
    *,
    config: str | os.PathLike[str] | None = None,
    sql: bool = False,
) -> None:
    """Run ``alembic upgrade revision`` programmatically (the original's ``configure()``);
    ``sql=True`` prints the SQL instead (alembic's ``--sql``)."""
    _alembic().upgrade(alembic_config(settings, config), revision, sql=sql)


def downgrade(
    revision: str,
    settings: PostgresSettings | None = None,
    *,
    config: str | os.PathLike[str] | None = None,
    sql: bool = False,
) -> None:
    """Run ``alembic downgrade revision`` programmatically (``sql=True``: print the SQL)."""
    _alembic().downgrade(alembic_config(settings, config), revision, sql=sql)


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


def migrate(
    drivers: Sequence[Driver],
    *,
    dsn: str | None = None,
    settings: PostgresSettings | None = None,
    schema: str | None = None,
    connection: object = None,
) -> str:
    """What ``kvstore migrate`` does on aurora: alembic ``upgrade head`` with the alembic.ini that
    ``find_alembic_ini`` finds, on the database the options name (the kinds named are not
    needed: the migrations say which tables exist). Returns a one-line summary."""
    found = resolve(dsn=dsn, settings=settings)
    if schema is not None:
        found = found._replace(schema=schema)
    cfg = alembic_config(found)
    _alembic().upgrade(cfg, "head")
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(cfg).get_heads()
    return (
        f"aurora: alembic upgrade head done on {found.describe()} with {cfg.config_file_name} "
        f"(now at {', '.join(sorted(heads)) or 'base: no migration yet'})"
    )
