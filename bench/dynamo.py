"""The dynamo cases: kvstore's dynamo backend against the low-level boto3 client, same tables.

The raw side is the fastest straightforward botocore code: the low-level client with boto3's
``TypeSerializer``/``TypeDeserializer``, consistent reads, ``BatchGetItem`` in 100s and
``BatchWriteItem`` in 25s (retrying what comes back unprocessed), paginated ``Query`` and ``Scan``.
Its records hold ``Decimal`` numbers, as a boto3 user's do (``TypeSerializer`` refuses floats), so
it converts no float in the timed call; kvstore must.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

from bench.harness import Case, Raw
from bench.roundtrips import BotoCounter
from bench.workload import (
    GROUP_KEY,
    SHAPES,
    Sizes,
    Targets,
    grouped_record,
    make_record,
    owner_of,
)

__all__ = [
    "batch_write",
    "decimals",
    "dynamo_cases",
    "dynamo_environment",
    "load_items",
    "scan_record",
]

Record = dict[str, Any]


def dynamo_environment(endpoint: str, prefix: str) -> None:
    """Point boto3 (ours and kvstore's) at ``endpoint``, with dummy credentials and ``prefix``."""
    os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = endpoint
    os.environ.setdefault("AWS_REGION", "us-east-1")
    os.environ.setdefault("AWS_DEFAULT_REGION", os.environ["AWS_REGION"])
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ["DYNAMO_TABLE_PREFIX"] = prefix


def scan_record(number: int, padding: int = 500) -> Record:
    """A flat record padded so that a few thousand of them span several 1 MB Scan pages."""
    return {**make_record(number), "text": "x" * padding}


def decimals(value: Any) -> Any:
    """``value`` with every float, nested ones included, as a ``Decimal`` (what boto3 takes)."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {key: decimals(item) for key, item in value.items()}
    if isinstance(value, list):
        return [decimals(item) for item in value]
    return value


def batch_write(client: Any, table: str, items: list[Record]) -> None:
    """BatchWriteItem ``items`` (already typed) 25 at a time, retrying what comes back unprocessed."""
    for start in range(0, len(items), 25):
        requests = {table: [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]}
        delay = 0.05
        while requests:
            requests = client.batch_write_item(RequestItems=requests).get("UnprocessedItems")
            if requests:
                time.sleep(delay)
                delay = min(delay * 2, 1.0)


def load_items(client: Any, table: str, records: Iterable[Record]) -> None:
    """Write ``records`` (plain, floats allowed) into ``table``, from 4 threads (untimed loading)."""
    from boto3.dynamodb.types import TypeSerializer

    serialize = TypeSerializer().serialize
    items = [{k: serialize(v) for k, v in decimals(record).items()} for record in records]
    chunks = [items[start : start + 1000] for start in range(0, len(items), 1000)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda chunk: batch_write(client, table, chunk), chunks))


class _Tables:
    """One shape's kinds (read, write, grouped), made with kvstore's ``ensure()`` and loaded."""

    def __init__(self, client: Any, sizes: Sizes, tag: str, shape: str) -> None:
        from kvstore import create_store

        prefix = os.environ.get("DYNAMO_TABLE_PREFIX", "")
        read, write, group = (f"bench_{shape}_{use}_{tag}" for use in ("read", "write", "group"))
        # kvstore makes its own client, as it does for its users (one a configuration, shared by
        # every store): its configuration is part of what is measured.
        self.reads = create_store(read, backend="dynamo")
        self.writes = create_store(write, backend="dynamo")
        self.groups = create_store(group, id_field=GROUP_KEY, key_type=(str, int), backend="dynamo")
        for store in (self.reads, self.writes, self.groups):
            store.ensure()
        self.read, self.write, self.group = prefix + read, prefix + write, prefix + group
        load_items(client, self.read, (make_record(n, shape) for n in range(sizes.dynamo_rows)))
        grouped = (
            grouped_record(g, seq, shape)
            for g in range(sizes.groups)
            for seq in range(sizes.find_all)
        )
        load_items(client, self.group, grouped)

    def drop(self, client: Any) -> None:
        for table in (self.read, self.write, self.group):
            client.delete_table(TableName=table)


def dynamo_cases(
    sizes: Sizes, tag: str, peers: bool = False
) -> tuple[list[Case], Callable[[], None]]:
    """The dynamo cases, each shape in turn (part 1's, then part 2's: ``bench.dynamo_part2``),
    and a cleanup callable (deletes the tables)."""
    import boto3
    from botocore.config import Config

    from bench.dynamo_part2 import Part2Tables, part2_cases

    # Without botocore's parameter validation (PynamoDB turns it off too): straightforward fast
    # code. It cost 2% of a PutItem of a nested record here, nothing measurable of a GetItem.
    client = boto3.client("dynamodb", config=Config(parameter_validation=False))
    counter = BotoCounter()
    counter.attach(client)
    tables = {shape: _Tables(client, sizes, tag, shape) for shape in SHAPES}
    more = {shape: Part2Tables(client, sizes, tag, shape) for shape in SHAPES}
    # native() is the public way to kvstore's client (boto3's resource gets a client of its own).
    counter.attach(tables[SHAPES[0]].reads.native().client)
    peer_sides: Any = None
    if peers:
        from bench.peers_dynamo import DynamoPeers

        peer_sides = DynamoPeers(counter)
    cases: list[Case] = []
    for shape in SHAPES:
        found = _shape_cases(client, tables[shape], sizes, shape, counter)
        if peer_sides is not None:
            peer_sides.add_to(found, tables[shape], sizes, shape)
        cases += found + part2_cases(client, more[shape], sizes, shape, counter)

    def cleanup() -> None:
        for shape_tables in tables.values():
            shape_tables.drop(client)
        for part2_tables in more.values():
            part2_tables.drop(client)

    return cases, cleanup


def _shape_cases(
    client: Any, tables: _Tables, sizes: Sizes, shape: str, counter: BotoCounter
) -> list[Case]:
    """One shape's cases: kvstore's call against the raw client doing the same work."""
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

    serialize = TypeSerializer().serialize
    deserialize = TypeDeserializer().deserialize
    reads, writes, groups = tables.reads, tables.writes, tables.groups

    def typed(record: Record) -> Record:
        return {name: serialize(value) for name, value in record.items()}

    def plain(item: Record) -> Record:
        return {name: deserialize(value) for name, value in item.items()}

    rows = sizes.dynamo_rows
    keys = [make_record(n, shape)["id"] for n in range(0, rows, 7)][: sizes.calls // 2]
    in_keys = [make_record(n, shape)["id"] for n in range(0, rows, 3)][: sizes.find_in]
    owners = [owner_of(g % sizes.groups) for g in range(sizes.dynamo_batch_calls)]
    puts = [make_record(n, shape) for n in range(sizes.calls // 2)]
    raw_puts = [decimals(record) for record in puts]
    batch = [make_record(n, shape) for n in range(sizes.put_many)]
    raw_batch = [decimals(record) for record in batch]

    def raw_find() -> list[Record]:
        found = []
        for key in keys:
            answer = client.get_item(
                TableName=tables.read, Key={"id": {"S": key}}, ConsistentRead=True
            )
            found.append(plain(answer["Item"]))
        return found

    def raw_put() -> None:
        for record in raw_puts:
            client.put_item(TableName=tables.write, Item=typed(record))

    def kv_put() -> None:
        for record in puts:
            writes.put(record)

    def raw_find_in() -> list[Record]:
        found: list[Record] = []
        for _ in range(sizes.dynamo_batch_calls):
            for start in range(0, len(in_keys), 100):
                wanted: dict[str, Any] = {
                    tables.read: {
                        "Keys": [{"id": {"S": key}} for key in in_keys[start : start + 100]],
                        "ConsistentRead": True,
                    }
                }
                delay = 0.05
                while wanted:
                    answer = client.batch_get_item(RequestItems=wanted)
                    found += [plain(item) for item in answer["Responses"].get(tables.read, [])]
                    wanted = answer.get("UnprocessedKeys")
                    if wanted:
                        time.sleep(delay)
                        delay = min(delay * 2, 1.0)
        return found

    def kv_find_in() -> list[Record]:
        found: list[Record] = []
        for _ in range(sizes.dynamo_batch_calls):
            found += reads.find_in("id", in_keys)
        return found

    query = client.get_paginator("query")

    def raw_find_all() -> list[Record]:
        found: list[Record] = []
        for owner in owners:
            pages = query.paginate(
                TableName=tables.group,
                KeyConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},  # OWNER is a reserved word
                ExpressionAttributeValues={":owner": {"S": owner}},
                ConsistentRead=True,
            )
            for page in pages:
                found += [plain(item) for item in page["Items"]]
        return found

    def kv_find_all() -> list[Record]:
        found: list[Record] = []
        for owner in owners:
            found += groups.find_all({"owner": owner})
        return found

    def raw_put_many() -> None:
        batch_write(client, tables.write, [typed(record) for record in raw_batch])

    scan = client.get_paginator("scan")

    def raw_scan() -> None:
        for page in scan.paginate(TableName=tables.read, ConsistentRead=True):
            for item in page["Items"]:
                _record = plain(item)

    def kv_scan() -> None:
        for _record in reads.iter_all():
            pass

    def common(**more: Any) -> dict[str, Any]:
        return {"shape": shape, "counter": counter, **more}

    return [
        Case(
            "find by key",
            "dynamo",
            lambda: [reads.find({"id": key}) for key in keys],
            [Raw("GetItem", raw_find, Targets.DYNAMO_SINGLE)],
            **common(ops=len(keys), calls=len(keys)),
        ),
        Case(
            "put",
            "dynamo",
            kv_put,
            [Raw("PutItem", raw_put, Targets.DYNAMO_SINGLE)],
            **common(ops=len(puts), calls=len(puts)),
        ),
        Case(
            f"find_in {len(in_keys):,} keys",
            "dynamo",
            kv_find_in,
            [Raw("BatchGetItem", raw_find_in, Targets.DYNAMO_BATCH_READ)],
            **common(
                ops=len(in_keys) * sizes.dynamo_batch_calls,
                calls=sizes.dynamo_batch_calls,
                unit="records",
            ),
        ),
        Case(
            f"find_all {sizes.find_all:,} records",
            "dynamo",
            kv_find_all,
            [Raw("paginated Query", raw_find_all, Targets.DYNAMO_BATCH_READ)],
            **common(ops=sizes.find_all * len(owners), calls=len(owners), unit="records"),
        ),
        Case(
            f"put_many {len(batch):,}",
            "dynamo",
            lambda: writes.put_many(batch),
            [Raw("BatchWriteItem", raw_put_many, Targets.STREAM)],
            **common(ops=len(batch), unit="records"),
        ),
        Case(
            f"iter_all {rows:,} rows",
            "dynamo",
            kv_scan,
            [Raw("paginated Scan", raw_scan, Targets.STREAM)],
            **common(ops=rows, unit="records"),
        ),
    ]
