"""Peers on PostgreSQL (``--peers``): SQLAlchemy Core and ``dataset`` doing the aurora reads.

Each peer is written the way its documentation shows, at its best: SQLAlchemy Core holds one
connection of an ``AUTOCOMMIT`` engine (one round trip a statement, like the raw side) and builds
each ``select()`` in the call, as its users do; ``dataset`` is used as ``dataset.connect(url)``
gives it. Both make records of their rows (``{"id": ..., **doc}``), as kvstore and the raw side
do. Each has a connection of its own, with psycopg's default JSON adapters (the shared one carries
kvstore's); on this machine loopback connections showed the same latency (21.1 to 21.3 us a
``SELECT 1`` over six connections).
"""

from __future__ import annotations

from typing import Any

from bench.harness import Case, Peer
from bench.servers import database_url
from bench.workload import Sizes, make_record, owner_of

__all__ = ["SqlPeers"]

Record = dict[str, Any]


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


class SqlPeers:
    """The PostgreSQL peers' connections, and the peer sides of each shape's read cases."""

    def __init__(self, conninfo: dict[str, Any]) -> None:
        import dataset
        import sqlalchemy

        url = database_url(conninfo).replace("postgresql://", "postgresql+psycopg://", 1)
        self.engine = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
        self.connection = self.engine.connect()
        self.db = dataset.connect(url, ensure_schema=False)
        self.sqlalchemy = f"SQLAlchemy Core {_version('sqlalchemy')}"
        self.dataset = f"dataset {_version('dataset')}"

    def close(self) -> None:
        """Close both peers' connections (dataset's holds a transaction open on the read tables)."""
        self.connection.close()
        self.engine.dispose()
        self.db.close()

    def add_to(self, cases: list[Case], tables: Any, sizes: Sizes, shape: str) -> None:
        """Add the peers to ``cases`` (one shape's): find by key, find_in, find_all."""
        from sqlalchemy import Column, MetaData, Table, Text, select
        from sqlalchemy.dialects.postgresql import BIGINT, JSONB

        metadata = MetaData()
        read = Table(
            tables.read, metadata, Column("id", Text, primary_key=True), Column("doc", JSONB)
        )
        group = Table(
            tables.group,
            metadata,
            Column("owner", Text, primary_key=True),
            Column("seq", BIGINT, primary_key=True),
            Column("doc", JSONB),
        )
        conn = self.connection
        ds_read, ds_group = self.db.load_table(tables.read), self.db.load_table(tables.group)
        rows = sizes.iter_rows
        keys = [make_record(n, shape)["id"] for n in range(0, rows, 7)][: sizes.calls]
        in_keys = [make_record(n, shape)["id"] for n in range(0, rows, 3)][: sizes.find_in]
        owners = [owner_of(g % sizes.groups) for g in range(sizes.batch_calls)]

        def sa_find() -> list[Record]:
            found = []
            for key in keys:
                row = conn.execute(select(read).where(read.c.id == key)).one()
                found.append({"id": row.id, **row.doc})
            return found

        def sa_find_in() -> list[Record]:
            found: list[Record] = []
            for _ in range(sizes.batch_calls):
                result = conn.execute(select(read).where(read.c.id.in_(in_keys)))
                found += [{"id": row.id, **row.doc} for row in result]
            return found

        def sa_find_all() -> list[Record]:
            found: list[Record] = []
            for owner in owners:
                query = select(group).where(group.c.owner == owner).order_by(group.c.seq)
                found += [
                    {"owner": row.owner, "seq": row.seq, **row.doc} for row in conn.execute(query)
                ]
            return found

        def ds_find() -> list[Record]:
            found = []
            for key in keys:
                row = ds_read.find_one(id=key)
                assert row is not None
                found.append({"id": row["id"], **row["doc"]})
            return found

        def ds_find_in() -> list[Record]:
            found: list[Record] = []
            for _ in range(sizes.batch_calls):
                found += [{"id": row["id"], **row["doc"]} for row in ds_read.find(id=in_keys)]
            return found

        def ds_find_all() -> list[Record]:
            found: list[Record] = []
            for owner in owners:
                found += [
                    {"owner": row["owner"], "seq": row["seq"], **row["doc"]}
                    for row in ds_group.find(owner=owner, order_by="seq")
                ]
            return found

        sides = {
            "find by key": (sa_find, ds_find),
            "find_in": (sa_find_in, ds_find_in),
            "find_all": (sa_find_all, ds_find_all),
        }
        for case in cases:
            for prefix, (sa_side, ds_side) in sides.items():
                if case.operation.startswith(prefix):
                    case.peers += [Peer(self.sqlalchemy, sa_side), Peer(self.dataset, ds_side)]
