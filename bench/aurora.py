"""The aurora cases: kvstore's aurora backend against psycopg 3 on one connection, same tables."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from bench.harness import Case, Raw
from bench.roundtrips import PgCounter, track_psycopg_connections
from bench.servers import database_url

__all__ = ["Sizes", "aurora_cases", "make_record", "record_doc"]

SINGLE = 1.10
BATCH = 1.20
VERSUS_COPY = 2.0


class Sizes:
    """How big each case is (``quick`` shrinks them all for a smoke run)."""

    def __init__(self, quick: bool = False) -> None:
        self.calls = 20 if quick else 200  # single-record calls per timed sample
        self.find_in = 50 if quick else 500
        self.put_many = 200 if quick else 10_000
        self.iter_rows = 1_000 if quick else 100_000
        self.dynamo_scan_rows = 300 if quick else 5_000


def make_record(number: int) -> dict[str, Any]:
    """A small, typical record: a string key and a handful of mixed fields."""
    return {
        "id": f"r{number:08d}",
        "name": f"customer {number}",
        "n": number,
        "score": number / 7,
        "active": number % 2 == 0,
        "tags": ["a", "b", str(number % 10)],
    }


def record_doc(record: dict[str, Any]) -> dict[str, Any]:
    """The record's non-key fields (what kvstore keeps in the ``doc`` column)."""
    return {name: value for name, value in record.items() if name != "id"}


def copy_rows(conn: Any, table: str, records: Iterator[dict[str, Any]]) -> None:
    """Load ``records`` into ``table`` (id, doc) with COPY."""
    from psycopg.types.json import Jsonb

    with conn.cursor() as cur, cur.copy(f'COPY "{table}" (id, doc) FROM STDIN') as copy:
        for record in records:
            copy.write_row((record["id"], Jsonb(record_doc(record))))


def _check_layout(conn: Any, table: str) -> None:
    rows = conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = %s AND table_schema = current_schema() ORDER BY ordinal_position",
        (table,),
    ).fetchall()
    if [tuple(row) for row in rows] != [("id", "text"), ("doc", "jsonb")]:
        raise RuntimeError(f"unexpected layout of {table}: {rows}; the raw side expects (id, doc)")


def aurora_cases(conninfo: dict[str, Any], sizes: Sizes, tag: str) -> tuple[list[Case], Any]:
    """The aurora cases and a cleanup callable (drops the benchmark's tables)."""
    import psycopg
    from psycopg.types.json import Jsonb

    from kvstore import create_store

    track_psycopg_connections()
    os.environ["DATABASE_URL"] = database_url(conninfo)
    os.environ.pop("DB_SCHEMA", None)
    conn = psycopg.connect(**conninfo, autocommit=True)
    read_kind, write_kind = f"bench_read_{tag}", f"bench_write_{tag}"
    # Both sides share one connection: each new loopback connection here draws its own latency
    # (21-105 us per round trip, measured), which would swamp single-call ratios. kvstore's JSON
    # adapters land on it too, so the raw side reads and writes JSON at kvstore's speed.
    reads = create_store(read_kind, backend="aurora", connection=conn)
    writes = create_store(write_kind, backend="aurora", connection=conn)
    reads.ensure()
    writes.ensure()
    _check_layout(conn, read_kind)
    _check_layout(conn, write_kind)
    conn.execute(f'TRUNCATE "{read_kind}", "{write_kind}"')
    copy_rows(conn, read_kind, (make_record(n) for n in range(sizes.iter_rows)))
    conn.execute(f'VACUUM ANALYZE "{read_kind}"')

    def cleanup() -> None:
        conn.execute(f'DROP TABLE IF EXISTS "{read_kind}", "{write_kind}"')
        conn.close()

    counter = PgCounter()
    find_sql = f'SELECT id, doc FROM "{read_kind}" WHERE id = %s'
    upsert_sql = (
        f'INSERT INTO "{write_kind}" (id, doc) VALUES (%s, %s) '
        "ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc"
    )
    keys = [make_record(n)["id"] for n in range(0, sizes.iter_rows, 7)][: sizes.calls]
    in_keys = [make_record(n)["id"] for n in range(0, sizes.iter_rows, 3)][: sizes.find_in]
    puts = [make_record(n) for n in range(sizes.calls)]
    batch = [make_record(n) for n in range(sizes.put_many)]

    def raw_find() -> list[dict[str, Any]]:
        found = []
        for key in keys:
            row = conn.execute(find_sql, (key,), prepare=True).fetchone()
            assert row is not None
            found.append({"id": row[0], **row[1]})
        return found

    def kv_find() -> list[dict[str, Any]]:
        return [reads.find({"id": key}) for key in keys]

    def raw_put() -> None:
        for record in puts:
            conn.execute(upsert_sql, (record["id"], Jsonb(record_doc(record))), prepare=True)

    def kv_put() -> None:
        for record in puts:
            writes.put(record)

    in_calls = max(1, sizes.calls // 40)  # a few calls a sample: one is too short to time

    def raw_find_in() -> list[dict[str, Any]]:
        sql = f'SELECT id, doc FROM "{read_kind}" WHERE id = ANY(%s)'
        found = []
        for _ in range(in_calls):
            found += [{"id": row[0], **row[1]} for row in conn.execute(sql, (in_keys,))]
        return found

    def kv_find_in() -> list[dict[str, Any]]:
        found = []
        for _ in range(in_calls):
            found += reads.find_in("id", in_keys)
        return found

    def truncate_writes() -> None:
        conn.execute(f'TRUNCATE "{write_kind}"')

    def raw_executemany() -> None:
        with conn.pipeline(), conn.cursor() as cur:
            cur.executemany(upsert_sql, [(r["id"], Jsonb(record_doc(r))) for r in batch])

    def raw_copy() -> None:
        copy_rows(conn, write_kind, iter(batch))

    def raw_iter() -> None:
        with conn.transaction(), conn.cursor(name="bench_iter") as cur:
            cur.itersize = 1000
            cur.execute(f'SELECT id, doc FROM "{read_kind}"')
            for row in cur:
                _record = {"id": row[0], **row[1]}

    def kv_iter() -> None:
        for _record in reads.iter_all():
            pass

    counts = max(1, sizes.calls // 20)

    def raw_count() -> list[Any]:
        sql = f'SELECT count(*) FROM "{read_kind}"'
        return [conn.execute(sql, prepare=True).fetchone() for _ in range(counts)]

    def kv_count() -> list[int]:
        return [reads.count() for _ in range(counts)]

    cases = [
        Case(
            "find by key",
            "aurora",
            kv_find,
            [Raw("prepared SELECT", raw_find, SINGLE)],
            ops=len(keys),
            calls=len(keys),
            counter=counter,
        ),
        Case(
            "put",
            "aurora",
            kv_put,
            [Raw("upsert", raw_put, SINGLE)],
            ops=len(puts),
            calls=len(puts),
            counter=counter,
        ),
        Case(
            f"find_in {len(in_keys)} keys",
            "aurora",
            kv_find_in,
            [Raw("= ANY", raw_find_in, BATCH)],
            ops=len(in_keys) * in_calls,
            calls=in_calls,
            unit="records",
            counter=counter,
        ),
        Case(
            f"put_many {len(batch):,}",
            "aurora",
            lambda: writes.put_many(batch),
            [
                Raw("executemany, pipeline", raw_executemany, BATCH),
                Raw("COPY", raw_copy, VERSUS_COPY),
            ],
            ops=len(batch),
            unit="records",
            before=truncate_writes,
            counter=counter,
        ),
        Case(
            f"iter_all {sizes.iter_rows:,} rows",
            "aurora",
            kv_iter,
            [Raw("server-side cursor", raw_iter, BATCH)],
            ops=sizes.iter_rows,
            unit="records",
            counter=counter,
        ),
        Case(
            "count",
            "aurora",
            kv_count,
            [Raw("SELECT count(*)", raw_count, SINGLE)],
            ops=counts,
            calls=counts,
            counter=counter,
        ),
    ]
    return cases, cleanup
