"""The migration cases (issue 15): a kind moving from DynamoDB Local (old) to PostgreSQL (new).

The direction is the one the issue's users take (DynamoDB to Aurora). The migrating stores are
made as users make them, ``create_store(kind, backend="dynamo", migration="aurora:STAGE",
migration_options=...)``; the new side's options give it the connection that the aurora store
measured beside it uses, so that both sides of the comparison draw one connection's latency.
There is no raw driver side: a migrating call is measured against kvstore's own calls on each
backend, on the same tables, in the same rounds.

- ``dualwrite`` put: against the sum of the two backends' own puts (one after the other).
- ``shadow`` find by key: against each backend's own find; the target applies against the slower
  one (the two reads overlap). Every read is compared (``STORE_MIGRATION_SAMPLE=1``), the
  costliest setting; the check before timing requires no mismatch.
- ``copy``: ``kvstore.copying.copy_records`` (what ``kvstore copy`` runs) from DynamoDB Local to
  PostgreSQL into an emptied table, in one segment and in four: records a second, no raw side.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.checks import check_reads
from bench.dynamo import load_items
from bench.harness import Case, Raw, Throughput, Variant
from bench.roundtrips import BotoCounter, Counters, PgCounter, track_psycopg_connections
from bench.workload import SHAPES, Sizes, Targets, make_record

__all__ = ["migration_cases"]

Record = dict[str, Any]

SEGMENTS = 4
"""The parallel copy's segments (``kvstore copy --segments 4``)."""


def migration_cases(
    conninfo: dict[str, Any], sizes: Sizes, tag: str
) -> tuple[list[Case | Throughput], Callable[[], None]]:
    """The migration cases, each shape in turn, and a cleanup callable (drops the tables on both
    servers)."""
    import psycopg

    from kvstore import create_store

    track_psycopg_connections()
    # Every read of a compared stage is compared, whatever the environment says.
    os.environ["STORE_MIGRATION_SAMPLE"] = "1"
    conn = psycopg.connect(**conninfo, autocommit=True)
    boto = BotoCounter()
    counter = Counters(PgCounter(), boto)
    kinds: list[str] = []
    cases: list[Case | Throughput] = []
    for shape in SHAPES:
        moved, copied = f"bench_{shape}_mig_{tag}", f"bench_{shape}_copy_{tag}"
        kinds += [moved, copied]
        old = create_store(moved, backend="dynamo", migration="off")
        new = create_store(moved, backend="aurora", connection=conn, migration="off")
        for store in (old, new):
            store.ensure()
        records = [make_record(n, shape) for n in range(sizes.migrated)]
        old.put_many(records)
        new.put_many(records)
        if shape == SHAPES[0]:  # kvstore's one client of this configuration, counted once
            boto.attach(old.native().client)
        cases += _cases(conn, moved, old, new, sizes, shape, counter)
        cases.append(_copy(conn, copied, sizes, shape, counter))

    def cleanup() -> None:
        from kvstore import migration_stats

        client = create_store(kinds[0], backend="dynamo", migration="off").native().client
        prefix = os.environ.get("DYNAMO_TABLE_PREFIX", "")
        for kind in kinds:
            client.delete_table(TableName=prefix + kind)
            conn.execute(f'DROP TABLE IF EXISTS "{kind}"')
        conn.close()
        print(f"migration reports of the run: {migration_stats()}", file=sys.stderr)

    return cases, cleanup


def _stats(kind: str, stage: str) -> dict[str, int]:
    from kvstore import migration_stats

    found: dict[str, int] = migration_stats().get(kind, {}).get(stage, {})
    return found


def _cases(
    conn: Any, kind: str, old: Any, new: Any, sizes: Sizes, shape: str, counter: Counters
) -> list[Case]:
    from kvstore import create_store

    options = {"connection": conn}
    dual = create_store(
        kind, backend="dynamo", migration="aurora:dualwrite", migration_options=options
    )
    shadow = create_store(
        kind, backend="dynamo", migration="aurora:shadow", migration_options=options
    )
    calls = min(sizes.calls // 2, sizes.migrated)
    # Records already there, with another name: the first round changes both sides.
    puts = [{**make_record(n, shape), "name": f"moved {n}"} for n in range(calls)]
    step = max(1, sizes.migrated // calls)
    keys = [make_record(n, shape)["id"] for n in range(0, sizes.migrated, step)][:calls]

    def kv_dual() -> list[Record]:
        return [dual.put(record) for record in puts]

    def own_puts() -> list[Record]:
        found = []
        for record in puts:
            found.append(old.put(record))
            new.put(record)
        return found

    def check_dual() -> None:
        check_reads(f"dualwrite put [{shape}]", kv_dual, own_puts)
        put_keys = [record["id"] for record in puts]
        # Both sides hold what the dualwrite puts wrote, and no second write failed.
        kv_dual()
        check_reads(
            f"dualwrite put, both sides [{shape}]",
            lambda: old.find_in("id", put_keys),
            lambda: new.find_in("id", put_keys),
        )
        failures = _stats(kind, "dualwrite").get("second_write_failures", 0)
        if failures:
            raise RuntimeError(f"dualwrite put [{shape}]: {failures} second writes failed")

    def kv_shadow() -> list[Record]:
        return [shadow.find({"id": key}) for key in keys]

    def old_find() -> list[Record]:
        return [old.find({"id": key}) for key in keys]

    def new_find() -> list[Record]:
        return [new.find({"id": key}) for key in keys]

    def check_shadow() -> None:
        check_reads(f"shadow find [{shape}]", kv_shadow, old_find)
        check_reads(f"shadow find, the new side [{shape}]", kv_shadow, new_find)
        time.sleep(0.5)  # comparisons finish on the shadow pool
        stats = _stats(kind, "shadow")
        if stats.get("compared", 0) < len(keys) or stats.get("mismatches", 0):
            raise RuntimeError(f"shadow find [{shape}]: reads compared {stats}")

    def common(**more: Any) -> dict[str, Any]:
        return {"shape": shape, "counter": counter, "ops": calls, "calls": calls, **more}

    return [
        Case(
            "dualwrite put, dynamo -> aurora",
            "migration",
            kv_dual,
            [Raw("dynamo put + aurora put (kvstore)", own_puts, Targets.DUALWRITE)],
            **common(check=check_dual),
        ),
        Case(
            "shadow find by key, dynamo -> aurora",
            "migration",
            kv_shadow,
            [
                Raw("dynamo find (kvstore)", old_find, Targets.SHADOW),
                Raw("aurora find (kvstore)", new_find, Targets.SHADOW),
            ],
            slowest_only=True,
            **common(check=check_shadow),
        ),
    ]


def _copy(conn: Any, kind: str, sizes: Sizes, shape: str, counter: Counters) -> Throughput:
    """``copy_records`` from a DynamoDB kind of ``sizes.copied`` records to an emptied table."""
    from kvstore import InvalidArgument, create_store
    from kvstore.copying import copy_records

    source = create_store(kind, backend="dynamo", migration="off")
    # The target is configured as `kvstore copy` configures it: from the environment.
    target = create_store(kind, backend="aurora", migration="off")
    source.ensure()
    target.ensure()
    prefix = os.environ.get("DYNAMO_TABLE_PREFIX", "")
    client = source.native().client
    load_items(client, prefix + kind, (make_record(n, shape) for n in range(sizes.copied)))

    def empty_target() -> None:
        conn.execute(f'TRUNCATE "{kind}"')

    def copy(segments: int) -> Callable[[], None]:
        def run() -> None:
            counts = copy_records(source, target, segments=segments)  # type: ignore[arg-type]
            if counts.written != sizes.copied:
                raise RuntimeError(f"copy wrote {counts.as_dict()}, not {sizes.copied} records")

        return run

    variants = [Variant("1 segment", copy(1)), Variant(f"{SEGMENTS} segments", copy(SEGMENTS))]

    def refused(exc: Exception) -> str:
        # read_segment's refusal of more segments than the driver can read: said in the row.
        if isinstance(exc, InvalidArgument) and "segment" in str(exc):
            return f"not supported by the dynamo driver: {exc}"
        return ""

    def check() -> None:
        if variants[-1].unsupported:  # its first run emptied the target, then was refused
            return
        # The target holds every record, as the last first run left it.
        held = conn.execute(f'SELECT count(*) FROM "{kind}"').fetchone()
        if held is None or held[0] != sizes.copied:
            raise RuntimeError(f"the copy left {held} records, not {sizes.copied}")

    return Throughput(
        f"copy DynamoDB Local -> PostgreSQL, {sizes.copied:,} records",
        "migration",
        variants,
        ops=sizes.copied,
        rounds=sizes.copy_rounds,
        shape=shape,
        before=empty_target,
        counter=counter,
        refused=refused,
        check=check,
    )
