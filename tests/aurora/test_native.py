"""``store.native()``: a reflected SQLAlchemy table and an engine, here joining two kinds."""

from __future__ import annotations

import subprocess
import sys

from kvstore import create_store
from kvstore.config import PostgresSettings
from kvstore.testing import unique_kind


def test_a_join_between_two_kinds(pg_settings: PostgresSettings) -> None:
    import sqlalchemy as sa

    teams = create_store(unique_kind("teams"), backend="aurora", settings=pg_settings)
    members = create_store(
        unique_kind("members"),
        backend="aurora",
        settings=pg_settings,
        id_field=("team_id", "seq"),
        key_type=(str, int),
    )
    teams.ensure()
    members.ensure()
    teams.put_many([{"id": "t1", "title": "Core"}, {"id": "t2", "title": "Edge"}])
    members.put_many(
        [
            {"team_id": "t1", "seq": 1, "name": "Ada"},
            {"team_id": "t1", "seq": 2, "name": "Bob"},
            {"team_id": "t2", "seq": 1, "name": "Cy"},
        ]
    )
    t, m = teams.native(), members.native()
    assert t.engine is m.engine
    assert teams.native().table is t.table  # reflected once
    query = (
        sa.select(t.table.c.id, sa.func.count(), sa.func.min(m.table.c.doc["name"].astext))
        .select_from(t.table.join(m.table, m.table.c.team_id == t.table.c.id))
        .group_by(t.table.c.id)
        .order_by(t.table.c.id)
    )
    with t.engine.connect() as connection:
        assert connection.execute(query).all() == [("t1", 2, "Ada"), ("t2", 1, "Cy")]


def test_importing_the_backend_does_not_import_sqlalchemy() -> None:
    code = (
        "import sys; from kvstore import create_store; import kvstore_aurora.store; "
        "assert 'sqlalchemy' not in sys.modules, 'sqlalchemy imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
