"""The aurora cases: kvstore's aurora backend against psycopg 3 on one shared connection, same tables.

The raw side is the fastest straightforward psycopg code: one cursor reused by every call, prepared
statements, and psycopg's own JSON adapters (``json.dumps`` inside the timed call, ``json.loads``),
set on its cursors: the shared connection carries kvstore's adapters, which the raw side must not
borrow.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from typing import Any

from bench.harness import Case, Raw
from bench.roundtrips import PgCounter, track_psycopg_connections
from bench.servers import database_url
from bench.workload import (
    GROUP_KEY,
    SHAPES,
    Sizes,
    Targets,
    grouped_record,
    make_record,
    owner_of,
    record_doc,
)

__all__ = ["aurora_cases", "copy_rows", "raw_cursor"]

Record = dict[str, Any]


def raw_cursor(conn: Any, name: str | None = None) -> Any:
    """A cursor on ``conn`` with psycopg's default JSON adapters (``json.dumps``, ``json.loads``),
    whatever adapters ``conn`` carries; ``name`` makes it a server-side cursor."""
    from psycopg.types.json import set_json_dumps, set_json_loads

    cursor = conn.cursor(name=name) if name else conn.cursor()
    set_json_loads(json.loads, cursor)
    set_json_dumps(json.dumps, cursor)
    return cursor


def copy_rows(
    cursor: Any, table: str, records: Iterable[Record], key: tuple[str, ...] = ("id",)
) -> None:
    """Load ``records`` into ``table`` (the ``key`` columns, then ``doc``) with COPY."""
    from psycopg import sql
    from psycopg.types.json import Jsonb

    columns = sql.SQL(", ").join(map(sql.Identifier, (*key, "doc")))
    query = sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(table), columns)
    with cursor.copy(query) as copy:
        for record in records:
            copy.write_row((*(record[name] for name in key), Jsonb(record_doc(record, key))))


def _check_layout(conn: Any, table: str, expected: list[tuple[str, str]]) -> None:
    rows = conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = %s AND table_schema = current_schema() ORDER BY ordinal_position",
        (table,),
    ).fetchall()
    if [tuple(row) for row in rows] != expected:
        raise RuntimeError(f"unexpected layout of {table}: {rows}; the raw side expects {expected}")


class _Tables:
    """One shape's kinds (read, write, grouped), made with kvstore's ``ensure()`` and loaded."""

    def __init__(self, conn: Any, sizes: Sizes, tag: str, shape: str) -> None:
        from kvstore import create_store

        self.read, self.write = f"bench_{shape}_read_{tag}", f"bench_{shape}_write_{tag}"
        self.group = f"bench_{shape}_group_{tag}"
        # Every store shares ``conn``: each new loopback connection draws its own latency (21 to
        # 105 us a round trip, measured on an earlier machine), which would swamp single-call
        # ratios. kvstore sets its JSON adapters on it; the raw side's cursors set psycopg's.
        self.reads = create_store(self.read, backend="aurora", connection=conn)
        self.writes = create_store(self.write, backend="aurora", connection=conn)
        self.groups = create_store(
            self.group,
            id_field=GROUP_KEY,
            key_type=(str, int),
            backend="aurora",
            connection=conn,
        )
        for store in (self.reads, self.writes, self.groups):
            store.ensure()
        simple = [("id", "text"), ("doc", "jsonb")]
        _check_layout(conn, self.read, simple)
        _check_layout(conn, self.write, simple)
        _check_layout(conn, self.group, [("owner", "text"), ("seq", "bigint"), ("doc", "jsonb")])
        conn.execute(f'TRUNCATE "{self.read}", "{self.write}", "{self.group}"')
        cursor = raw_cursor(conn)
        copy_rows(cursor, self.read, (make_record(n, shape) for n in range(sizes.iter_rows)))
        grouped = (
            grouped_record(g, seq, shape)
            for g in range(sizes.groups)
            for seq in range(sizes.find_all)
        )
        copy_rows(cursor, self.group, grouped, GROUP_KEY)
        cursor.close()
        conn.execute(f'VACUUM ANALYZE "{self.read}", "{self.group}"')

    def drop(self, conn: Any) -> None:
        conn.execute(f'DROP TABLE IF EXISTS "{self.read}", "{self.write}", "{self.group}"')


def aurora_cases(
    conninfo: dict[str, Any], sizes: Sizes, tag: str, peers: bool = False
) -> tuple[list[Case], Callable[[], None]]:
    """The aurora cases, each shape in turn (part 1's, then part 2's: ``bench.aurora_part2``),
    and a cleanup callable (drops the tables)."""
    import psycopg

    from bench.aurora_part2 import Part2Tables, part2_cases

    track_psycopg_connections()
    os.environ["DATABASE_URL"] = database_url(conninfo)
    os.environ.pop("DB_SCHEMA", None)
    conn = psycopg.connect(**conninfo, autocommit=True)
    tables = {shape: _Tables(conn, sizes, tag, shape) for shape in SHAPES}
    more = {shape: Part2Tables(conn, sizes, tag, shape) for shape in SHAPES}
    peer_sides: Any = None
    if peers:
        from bench.peers_sql import SqlPeers

        peer_sides = SqlPeers(conninfo)
    counter = PgCounter()
    cases: list[Case] = []
    for shape in SHAPES:
        found = _shape_cases(conn, tables[shape], sizes, shape, counter)
        if peer_sides is not None:
            peer_sides.add_to(found, tables[shape], sizes, shape)
        cases += found + part2_cases(conn, more[shape], sizes, shape, counter)

    def cleanup() -> None:
        if peer_sides is not None:
            peer_sides.close()
        for shape_tables in tables.values():
            shape_tables.drop(conn)
        for part2_tables in more.values():
            part2_tables.drop(conn)
        conn.close()

    return cases, cleanup


def _shape_cases(
    conn: Any, tables: _Tables, sizes: Sizes, shape: str, counter: PgCounter
) -> list[Case]:
    """One shape's cases: kvstore's call against the raw psycopg code doing the same work."""
    from psycopg.types.json import Jsonb

    cur = raw_cursor(conn)  # every raw call but iter_all's reuses it, as kvstore reuses its own
    reads, writes, groups = tables.reads, tables.writes, tables.groups
    find_sql = f'SELECT id, doc FROM "{tables.read}" WHERE id = %s'
    upsert_sql = (
        f'INSERT INTO "{tables.write}" (id, doc) VALUES (%s, %s) '
        "ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc"
    )
    find_in_sql = f'SELECT id, doc FROM "{tables.read}" WHERE id = ANY(%s)'
    find_all_sql = f'SELECT owner, seq, doc FROM "{tables.group}" WHERE owner = %s ORDER BY seq'
    count_sql = f'SELECT count(*) FROM "{tables.read}"'
    rows = sizes.iter_rows
    keys = [make_record(n, shape)["id"] for n in range(0, rows, 7)][: sizes.calls]
    in_keys = [make_record(n, shape)["id"] for n in range(0, rows, 3)][: sizes.find_in]
    owners = [owner_of(g % sizes.groups) for g in range(sizes.batch_calls)]
    puts = [make_record(n, shape) for n in range(sizes.calls)]
    batches = [
        [make_record(n, shape) for n in range(start, start + sizes.put_many)]
        for start in range(0, sizes.put_many * sizes.batch_calls, sizes.put_many)
    ]

    def raw_find() -> list[Record]:
        found = []
        for key in keys:
            row = cur.execute(find_sql, (key,), prepare=True).fetchone()
            found.append({"id": row[0], **row[1]})
        return found

    def raw_put() -> None:
        for record in puts:
            cur.execute(upsert_sql, (record["id"], Jsonb(record_doc(record))), prepare=True)

    def kv_put() -> None:
        for record in puts:
            writes.put(record)

    def raw_find_in() -> list[Record]:
        found: list[Record] = []
        for _ in range(sizes.batch_calls):
            cur.execute(find_in_sql, (in_keys,), prepare=True)
            found += [{"id": row[0], **row[1]} for row in cur.fetchall()]
        return found

    def kv_find_in() -> list[Record]:
        found: list[Record] = []
        for _ in range(sizes.batch_calls):
            found += reads.find_in("id", in_keys)
        return found

    def raw_find_all() -> list[Record]:
        found: list[Record] = []
        for owner in owners:
            cur.execute(find_all_sql, (owner,), prepare=True)
            found += [{"owner": row[0], "seq": row[1], **row[2]} for row in cur.fetchall()]
        return found

    def kv_find_all() -> list[Record]:
        found: list[Record] = []
        for owner in owners:
            found += groups.find_all({"owner": owner})
        return found

    def truncate_writes() -> None:
        conn.execute(f'TRUNCATE "{tables.write}"')

    def raw_executemany() -> None:
        for batch in batches:
            # One transaction a batch, as kvstore's put_many; executemany pipelines by itself.
            with conn.transaction():
                cur.executemany(upsert_sql, [(r["id"], Jsonb(record_doc(r))) for r in batch])

    def raw_copy() -> None:
        for batch in batches:
            copy_rows(cur, tables.write, batch)

    def kv_put_many() -> None:
        for batch in batches:
            writes.put_many(batch)

    def raw_iter() -> None:
        with conn.transaction(), raw_cursor(conn, name="bench_iter") as stream:
            stream.itersize = 1000
            stream.execute(f'SELECT id, doc FROM "{tables.read}"')
            for row in stream:
                _record = {"id": row[0], **row[1]}

    def kv_iter() -> None:
        for _record in reads.iter_all():
            pass

    counts = max(1, sizes.calls // 20)

    def raw_count() -> list[Any]:
        return [cur.execute(count_sql, prepare=True).fetchone() for _ in range(counts)]

    def common(**more: Any) -> dict[str, Any]:
        return {"shape": shape, "counter": counter, **more}

    return [
        Case(
            "find by key",
            "aurora",
            lambda: [reads.find({"id": key}) for key in keys],
            [Raw("prepared SELECT", raw_find, Targets.AURORA_SINGLE)],
            **common(ops=len(keys), calls=len(keys)),
        ),
        Case(
            "put",
            "aurora",
            kv_put,
            [Raw("prepared upsert", raw_put, Targets.AURORA_SINGLE)],
            **common(ops=len(puts), calls=len(puts)),
        ),
        Case(
            f"find_in {len(in_keys):,} keys",
            "aurora",
            kv_find_in,
            [Raw("= ANY", raw_find_in, Targets.AURORA_BATCH_READ)],
            **common(ops=len(in_keys) * sizes.batch_calls, calls=sizes.batch_calls, unit="records"),
        ),
        Case(
            f"find_all {sizes.find_all:,} records",
            "aurora",
            kv_find_all,
            [Raw("SELECT ... ORDER BY", raw_find_all, Targets.AURORA_BATCH_READ)],
            **common(ops=sizes.find_all * len(owners), calls=len(owners), unit="records"),
        ),
        Case(
            f"put_many {sizes.put_many:,}",
            "aurora",
            kv_put_many,
            [
                Raw(
                    "executemany upsert, pipeline",
                    raw_executemany,
                    Targets.AURORA_VERSUS_EXECUTEMANY,
                ),
                Raw("COPY", raw_copy, Targets.AURORA_VERSUS_COPY),
            ],
            **common(
                ops=sizes.put_many * len(batches),
                calls=len(batches),
                unit="records",
                before=truncate_writes,
            ),
        ),
        Case(
            f"iter_all {rows:,} rows",
            "aurora",
            kv_iter,
            [Raw("server-side cursor", raw_iter, Targets.STREAM)],
            **common(ops=rows, unit="records"),
        ),
        Case(
            "count",
            "aurora",
            lambda: [reads.count() for _ in range(counts)],
            [Raw("SELECT count(*)", raw_count, Targets.AURORA_SINGLE)],
            **common(ops=counts, calls=counts),
        ),
    ]
