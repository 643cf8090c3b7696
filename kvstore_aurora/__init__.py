"""kvstore's ``aurora`` backend: each kind a PostgreSQL table, through psycopg 3.

Modules: ``store`` (the driver and ``open_driver``'s options), ``connection`` (one connection per
process and configuration, replaced when dropped), ``layout`` (key columns, real columns and the
``jsonb`` column ``doc``), ``sql`` (exact, typed equality in WHERE clauses), ``errors`` (psycopg's
exceptions mapped to kvstore's), ``migrate`` (``ensure``'s DDL, alembic helpers and ``upgrade()``)
and ``native`` (SQLAlchemy handles for ``store.native()``).
"""
