"""kvstore's ``aurora`` backend: each kind a PostgreSQL table, through psycopg 3.

Modules: ``plugin`` (registers the backend; cheap to import), ``driver`` (the ``Driver`` and
``open_driver``'s options), ``settings`` (where it connects, ``describe`` for ``kvstore
backends``), ``errors`` (psycopg's exceptions mapped to kvstore's), ``connection`` (one pool of
connections per process and configuration, at most ``DB_MAX_CONNECTIONS``), ``budget`` (a call's
time budget: server-side limits and the client-side deadline), ``credentials`` (IAM auth tokens
and Secrets Manager logins), ``columns`` (column types, values and JSON),
``layout`` (a table's key columns, real columns and ``doc``, cached), ``probe`` (the first find by
key reads the layout from its own statement), ``predicates`` (conditions as exact SQL, index
expressions), ``statements`` (plans and whole-record writes as SQL), ``guarded``, ``updates``
and ``increments`` (guarded writes and updates as single statements), ``steps`` and
``transact`` (a transaction in one pipeline), ``streaming`` (server-side cursors), ``batch``
(put_many's pipelined batches), ``migrate`` (DDL, alembic helpers, ``kvstore migrate``) and
``native`` (SQLAlchemy handles).
"""
