"""The dynamo cases: kvstore's dynamo backend against the boto3 low-level client, same tables."""

from __future__ import annotations

import os
import time
from decimal import Decimal
from typing import Any

from bench.aurora import BATCH, SINGLE, Sizes, make_record
from bench.harness import Case, Raw
from bench.roundtrips import BotoCounter

__all__ = ["dynamo_cases", "dynamo_environment", "scan_record"]


def dynamo_environment(endpoint: str, prefix: str) -> None:
    """Point boto3 (ours and kvstore's) at ``endpoint``, with dummy credentials and ``prefix``."""
    os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = endpoint
    os.environ.setdefault("AWS_REGION", "us-east-1")
    os.environ.setdefault("AWS_DEFAULT_REGION", os.environ["AWS_REGION"])
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ["DYNAMO_TABLE_PREFIX"] = prefix


def scan_record(number: int, padding: int = 500) -> dict[str, Any]:
    """A record padded so that a few thousand of them span several 1 MB Scan pages."""
    return {**make_record(number), "text": "x" * padding}


def _decimals(record: dict[str, Any]) -> dict[str, Any]:
    # What a boto3 user keeps: TypeSerializer takes Decimal, not float.
    return {k: Decimal(repr(v)) if isinstance(v, float) else v for k, v in record.items()}


def batch_write(client: Any, table: str, items: list[dict[str, Any]]) -> None:
    """BatchWriteItem ``items`` (already typed) 25 at a time, retrying what comes back unprocessed."""
    for start in range(0, len(items), 25):
        requests = {table: [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]}
        delay = 0.05
        while requests:
            requests = client.batch_write_item(RequestItems=requests).get("UnprocessedItems")
            if requests:
                time.sleep(delay)
                delay = min(delay * 2, 1.0)


def dynamo_cases(sizes: Sizes, tag: str) -> tuple[list[Case], Any]:
    """The dynamo cases and a cleanup callable (deletes the benchmark's tables)."""
    import boto3
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

    from kvstore import create_store

    client = boto3.client("dynamodb")
    # kvstore gets a client of its own, made the same way, to count its calls; not through
    # store.native(), which (kvstore_dynamo as of this writing) registers boto3's resource
    # handlers on the client it shares, breaking the store's later calls.
    kv_client = boto3.client("dynamodb")
    serialize = TypeSerializer().serialize
    deserialize = TypeDeserializer().deserialize
    prefix = os.environ.get("DYNAMO_TABLE_PREFIX", "")
    read_kind, write_kind = f"bench_read_{tag}", f"bench_write_{tag}"
    reads = create_store(read_kind, backend="dynamo", client=kv_client)
    writes = create_store(write_kind, backend="dynamo", client=kv_client)
    reads.ensure()
    writes.ensure()
    read_table, write_table = prefix + read_kind, prefix + write_kind

    def typed(record: dict[str, Any]) -> dict[str, Any]:
        return {name: serialize(value) for name, value in record.items()}

    def plain(item: dict[str, Any]) -> dict[str, Any]:
        return {name: deserialize(value) for name, value in item.items()}

    rows = sizes.dynamo_scan_rows
    batch_write(client, read_table, [typed(_decimals(scan_record(n))) for n in range(rows)])

    def cleanup() -> None:
        for table in (read_table, write_table):
            client.delete_table(TableName=table)

    counter = BotoCounter()
    counter.attach(client)
    counter.attach(kv_client)

    keys = [scan_record(n)["id"] for n in range(0, rows, 7)][: sizes.calls // 2]
    in_keys = [scan_record(n)["id"] for n in range(0, rows, 3)][: sizes.find_in]
    puts = [make_record(n) for n in range(sizes.calls // 2)]
    raw_puts = [_decimals(record) for record in puts]
    batch = [make_record(n) for n in range(sizes.put_many)]
    raw_batch = [_decimals(record) for record in batch]

    def raw_find() -> list[dict[str, Any]]:
        found = []
        for key in keys:
            answer = client.get_item(
                TableName=read_table, Key={"id": {"S": key}}, ConsistentRead=True
            )
            found.append(plain(answer["Item"]))
        return found

    def kv_find() -> list[dict[str, Any]]:
        return [reads.find({"id": key}) for key in keys]

    def raw_put() -> None:
        for record in raw_puts:
            client.put_item(TableName=write_table, Item=typed(record))

    def kv_put() -> None:
        for record in puts:
            writes.put(record)

    def raw_find_in() -> list[dict[str, Any]]:
        found = []
        for start in range(0, len(in_keys), 100):
            wanted: dict[str, Any] = {
                read_table: {
                    "Keys": [{"id": {"S": key}} for key in in_keys[start : start + 100]],
                    "ConsistentRead": True,
                }
            }
            delay = 0.05
            while wanted:
                answer = client.batch_get_item(RequestItems=wanted)
                found += [plain(item) for item in answer["Responses"].get(read_table, [])]
                wanted = answer.get("UnprocessedKeys")
                if wanted:
                    time.sleep(delay)
                    delay = min(delay * 2, 1.0)
        return found

    def raw_put_many() -> None:
        batch_write(client, write_table, [typed(record) for record in raw_batch])

    def raw_scan() -> None:
        pages = client.get_paginator("scan").paginate(TableName=read_table, ConsistentRead=True)
        for page in pages:
            for item in page["Items"]:
                _record = plain(item)

    def kv_scan() -> None:
        for _record in reads.iter_all():
            pass

    cases = [
        Case(
            "find by key",
            "dynamo",
            kv_find,
            [Raw("GetItem", raw_find, SINGLE)],
            ops=len(keys),
            calls=len(keys),
            counter=counter,
        ),
        Case(
            "put",
            "dynamo",
            kv_put,
            [Raw("PutItem", raw_put, SINGLE)],
            ops=len(puts),
            calls=len(puts),
            counter=counter,
        ),
        Case(
            f"find_in {len(in_keys)} keys",
            "dynamo",
            lambda: reads.find_in("id", in_keys),
            [Raw("BatchGetItem", raw_find_in, BATCH)],
            ops=len(in_keys),
            unit="records",
            counter=counter,
        ),
        Case(
            f"put_many {len(batch):,}",
            "dynamo",
            lambda: writes.put_many(batch),
            [Raw("BatchWriteItem", raw_put_many, BATCH)],
            ops=len(batch),
            unit="records",
            counter=counter,
        ),
        Case(
            f"iter_all {rows:,} rows (~{rows * 600 // 1_000_000 or 1} MB)",
            "dynamo",
            kv_scan,
            [Raw("paginated Scan", raw_scan, BATCH)],
            ops=rows,
            unit="records",
            counter=counter,
        ),
    ]
    return cases, cleanup
