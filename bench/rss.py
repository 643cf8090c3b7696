"""Memory: peak RSS of ``iter_all`` over a big table, and of ``put_many`` of large records, above
the process's baseline, in a fresh process.

The child connects first (that memory is baseline), resets its high-water mark (``/proc/self/
clear_refs``), streams every record, and reports ``VmHWM`` minus the baseline. The raw driver's
streaming code is measured the same way, for reference.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.cold import drop_table
from bench.harness import Row

__all__ = ["memory_rows", "put_many_row"]

TARGET_MB = 100.0

_CHILD = """
import json, os, resource, sys, time

def status(field):
    with open("/proc/self/status") as info:
        for line in info:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

kind, backend, side = os.environ["BENCH_KIND"], os.environ["BENCH_BACKEND"], sys.argv[1]
if side == "kvstore":
    import kvstore
    store = kvstore.create_store(kind, backend=backend)
    store.find_in("id", ["warm-up"])  # connects
    def records():
        return store.iter_all()
elif backend == "aurora":
    import psycopg
    conn = psycopg.connect(os.environ["DATABASE_URL"])
    conn.execute("SELECT 1").fetchone()
    def records():
        with conn.transaction(), conn.cursor(name="bench_memory") as cur:
            cur.itersize = 1000
            cur.execute('SELECT id, doc FROM "' + kind + '"')
            for row in cur:
                yield {"id": row[0], **row[1]}
else:
    import boto3
    from boto3.dynamodb.types import TypeDeserializer
    client = boto3.client("dynamodb")
    table = os.environ["DYNAMO_TABLE_PREFIX"] + kind
    client.describe_table(TableName=table)
    deserialize = TypeDeserializer().deserialize
    def records():
        for page in client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
            for item in page["Items"]:
                yield {k: deserialize(v) for k, v in item.items()}
try:
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # resets VmHWM to the current RSS
    reset = True
except OSError:
    reset = False
baseline = status("VmHWM")
started = time.perf_counter()
count = sum(1 for _ in records())
print(json.dumps({"baseline_kb": baseline, "peak_kb": status("VmHWM"), "rows": count,
                  "seconds": time.perf_counter() - started, "reset": reset}))
"""


PUT_RECORD_BYTES = 300_000
PUT_COUNT = 640
"""``put_many`` of 640 records of 300 KB (192 MB of records, made one at a time by a generator)."""
PUT_TARGET_MB = 200.0
"""A 512 MB Lambda keeps room for its own work."""

_PUT_CHILD = """
import json, os, sys, time
from kvstore import create_store

def status(field):
    with open("/proc/self/status") as info:
        for line in info:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0

kind, backend, count, size = (os.environ["BENCH_KIND"], os.environ["BENCH_BACKEND"],
                              int(sys.argv[2]), int(sys.argv[3]))
store = create_store(kind, backend=backend)
store.ensure()

def records(first, n):
    for number in range(first, first + n):
        yield {"id": f"r{number:05}", "blob": f"{number:06d}" * (size // 6)}

store.put_many(records(count, 2))  # connected, client made, layout read
try:
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
    reset = True
except OSError:
    reset = False
baseline = status("VmHWM")
started = time.perf_counter()
written = store.put_many(records(0, count))
print(json.dumps({"baseline_kb": baseline, "peak_kb": status("VmHWM"), "rows": written,
                  "seconds": time.perf_counter() - started, "reset": reset}))
"""


def put_many_row(backend: str, tag: str) -> Row:
    """Peak RSS of one ``put_many`` of PUT_COUNT records of PUT_RECORD_BYTES (issue 12, #6)."""
    kind = f"bench_put_{tag}"
    try:
        found = _child("kvstore", backend, kind, _PUT_CHILD, str(PUT_COUNT), str(PUT_RECORD_BYTES))
    finally:
        drop_table(backend, kind)
    mb = (found["peak_kb"] - found["baseline_kb"]) / 1024
    total = PUT_COUNT * PUT_RECORD_BYTES / 1e6
    return Row(
        operation=f"put_many peak RSS, {PUT_COUNT} records of {PUT_RECORD_BYTES // 1000} KB",
        backend=backend,
        versus="-",
        unit="MB",
        library_ops_s=found["rows"] / found["seconds"],
        raw_ops_s=None,
        ratio=None,
        target=f"< {PUT_TARGET_MB:.0f} MB above baseline",
        met=mb < PUT_TARGET_MB and found["rows"] == PUT_COUNT,
        library_value=f"+{mb:.1f} MB",
        note=f"{total:.0f} MB written in one call"
        + ("" if found["reset"] else "; VmHWM could not be reset: baseline is the start-up peak"),
        samples={"kvstore": [mb]},
    )


def _child(
    side: str, backend: str, kind: str, code: str = _CHILD, *arguments: str
) -> dict[str, Any]:
    env = {**os.environ, "BENCH_KIND": kind, "BENCH_BACKEND": backend}
    done = subprocess.run(
        [sys.executable, "-c", code, side, *arguments],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"memory run failed:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _load_aurora(kind: str, rows: int) -> None:
    import psycopg

    from bench.aurora import copy_rows, raw_cursor
    from bench.workload import make_record

    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        copy_rows(raw_cursor(conn), kind, (make_record(n) for n in range(rows)))
        conn.execute(f'VACUUM ANALYZE "{kind}"')


def _load_dynamo(table: str, megabytes: int) -> int:
    import boto3
    from boto3.dynamodb.types import TypeSerializer

    from bench.dynamo import batch_write, decimals, scan_record
    from kvstore.values import item_size

    client = boto3.client("dynamodb")
    serialize = TypeSerializer().serialize
    size = item_size(scan_record(0, padding=1000))
    rows = megabytes * 1_000_000 // size + 1

    def load(start: int) -> None:
        items = [
            {k: serialize(v) for k, v in decimals(scan_record(n, padding=1000)).items()}
            for n in range(start, min(start + 1000, rows))
        ]
        batch_write(client, table, items)

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(load, range(0, rows, 1000)))
    return rows


def _row(backend: str, what: str, kv: dict[str, Any], raw: dict[str, Any], load: str) -> Row:
    kv_mb = (kv["peak_kb"] - kv["baseline_kb"]) / 1024
    raw_mb = (raw["peak_kb"] - raw["baseline_kb"]) / 1024
    return Row(
        operation=f"iter_all peak RSS, {what}",
        backend=backend,
        versus="raw streaming code",
        unit="MB",
        library_ops_s=kv["rows"] / kv["seconds"],
        raw_ops_s=raw["rows"] / raw["seconds"],
        ratio=None,
        target=f"< {TARGET_MB:.0f} MB above baseline",
        met=kv_mb < TARGET_MB and kv["rows"] == raw["rows"],
        library_value=f"+{kv_mb:.1f} MB",
        raw_value=f"+{raw_mb:.1f} MB",
        note=load
        if kv["reset"]
        else load + "; VmHWM could not be reset: baseline is the start-up peak",
        samples={"kvstore": [kv_mb], "raw": [raw_mb]},
    )


def memory_rows(
    backends: list[str], tag: str, rows: int, megabytes: int, progress: Callable[[str], None]
) -> list[Row]:
    """Load a big table per backend, measure ``iter_all``'s peak RSS, drop the table."""
    from kvstore import create_store

    found = []
    for backend in backends:
        kind = f"bench_mem_{tag}"
        store = create_store(kind, backend=backend)
        store.ensure()
        started = time.perf_counter()
        progress(f"memory: loading {backend}")
        if backend == "aurora":
            _load_aurora(kind, rows)
            what = f"{rows:,} rows"
        else:
            count = _load_dynamo(os.environ.get("DYNAMO_TABLE_PREFIX", "") + kind, megabytes)
            what = f"{megabytes} MB table ({count:,} items)"
        load = f"loaded in {time.perf_counter() - started:.0f} s"
        progress(f"memory: {backend} {what} {load}")
        try:
            kv = _child("kvstore", backend, kind)
            raw = _child("raw", backend, kind)
            found.append(_row(backend, what, kv, raw, load))
        finally:
            drop_table(backend, kind)
        progress(f"memory: put_many of large records on {backend}")
        found.append(put_many_row(backend, tag))
    return found
