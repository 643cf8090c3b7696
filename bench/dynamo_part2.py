"""The dynamo cases of the contract's part 2: indexed reads and pages (issue 13), conditional writes,
increments and transactions (issue 14), against the low-level client on the same tables.

The raw side is written as in ``bench.dynamo`` (the low-level client, boto3's type serializers,
``Decimal`` numbers): a ``Query`` on kvstore's global secondary index (``IndexName``; an index
has no consistent reads, on either side), pages with ``Limit`` and ``ExclusiveStartKey``,
``UpdateItem`` with a ``ConditionExpression`` and ``ReturnValues=ALL_NEW`` (kvstore's ``update``
returns the whole record), ``ADD`` for an increment, and ``TransactWriteItems``.

An increment, alone or in a transaction, has two raw sides. Its target is against ``ADD`` whose
condition keeps the contract's int64 range, as kvstore's increment does and as the aurora raw
side's ``::bigint`` does: on DynamoDB Local that condition costs the server more than the whole of
kvstore's client work. ``ADD`` with only ``attribute_exists`` is shown beside it, with no target,
so what the rule costs stays in the table.
"""

from __future__ import annotations

import os
from typing import Any

from bench.checks import check_reads, check_writes
from bench.dynamo import decimals, load_items
from bench.harness import Action, Case, Raw
from bench.roundtrips import BotoCounter
from bench.workload import (
    INDEXES,
    Sizes,
    Targets,
    counter_field,
    email_of,
    group_of,
    indexed_record,
    make_record,
    price_field,
)

__all__ = ["Part2Tables", "part2_cases"]

Record = dict[str, Any]

PLAIN_ADD = "UpdateItem ADD"
ONLY_EXISTS = "attribute_exists only"
IN_RANGE_INCREMENT = f"{PLAIN_ADD}, int64 condition"
"""The raw increment that keeps the same number rules as kvstore's (its target's side)."""
IN_RANGE_TRANSACTION = "TransactWriteItems, int64 condition"
"""The raw transaction whose increments keep the same number rules as kvstore's."""


def _indexes() -> list[Any]:
    from kvstore import Index

    types = {"email": str, "grp": str, "rank": int}
    return [
        Index(name, fields, key_type=tuple(types[field] for field in fields))
        for name, fields in INDEXES
    ]


class Part2Tables:
    """One shape's part-2 kinds, made with kvstore's ``ensure()`` and loaded with BatchWriteItem:
    the indexed kind (``Sizes.indexed`` records) and a ten times smaller one, and the kind that
    conditional updates, increments and transactions change."""

    def __init__(self, client: Any, sizes: Sizes, tag: str, shape: str) -> None:
        from kvstore import create_store

        prefix = os.environ.get("DYNAMO_TABLE_PREFIX", "")
        big, small, update = (f"bench_{shape}_{use}_{tag}" for use in ("idx", "idx_small", "upd"))
        self.bigs = create_store(big, backend="dynamo", indexes=_indexes())
        self.smalls = create_store(small, backend="dynamo", indexes=_indexes())
        self.updates = create_store(update, backend="dynamo")
        for store in (self.bigs, self.smalls, self.updates):
            store.ensure()
        self.big, self.small, self.update = prefix + big, prefix + small, prefix + update
        for table, rows in ((self.big, sizes.indexed), (self.small, sizes.indexed_small)):
            load_items(
                client, table, (indexed_record(n, shape, sizes.page_group) for n in range(rows))
            )
        load_items(client, self.update, (make_record(n, shape) for n in range(sizes.updated)))

    def drop(self, client: Any) -> None:
        """Delete the kinds' tables."""
        for table in (self.big, self.small, self.update):
            client.delete_table(TableName=table)


def part2_cases(
    client: Any, tables: Part2Tables, sizes: Sizes, shape: str, counter: BotoCounter
) -> list[Case]:
    """One shape's part-2 cases (issues 13 and 14), each checked to return the same records on
    both sides before it is timed."""
    return _read_cases(client, tables, sizes, shape, counter) + _write_cases(
        client, tables, sizes, shape, counter
    )


def _plain() -> Any:
    from boto3.dynamodb.types import TypeDeserializer

    deserialize = TypeDeserializer().deserialize

    def plain(item: Record) -> Record:
        return {name: deserialize(value) for name, value in item.items()}

    return plain


def _read_cases(
    client: Any, tables: Part2Tables, sizes: Sizes, shape: str, counter: BotoCounter
) -> list[Case]:
    plain = _plain()
    big, small = tables.bigs, tables.smalls
    calls = sizes.calls // 2
    step = max(1, sizes.indexed // calls)
    emails = [email_of(n, shape) for n in range(0, sizes.indexed, step)][:calls]
    small_step = max(1, sizes.indexed_small // calls)
    small_emails = [email_of(n, shape) for n in range(0, sizes.indexed_small, small_step)]
    small_emails = small_emails[: len(emails)]
    groups = sizes.indexed // sizes.page_group
    partitions = [group_of(g * 7 % groups) for g in range(sizes.batch_calls)]
    limit = sizes.page

    def raw_find() -> list[Record]:
        found = []
        for value in emails:
            answer = client.query(
                TableName=tables.big,
                IndexName="by_email",
                KeyConditionExpression="#e = :e",
                ExpressionAttributeNames={"#e": "email"},
                ExpressionAttributeValues={":e": {"S": value}},
            )
            found.append(plain(answer["Items"][0]))
        return found

    def kv_find() -> list[Record]:
        return [big.find({"email": value}) for value in emails]

    def kv_find_small() -> list[Record]:
        return [small.find({"email": value}) for value in small_emails]

    def raw_small() -> list[Record]:
        return [big.find({"email": value}) for value in small_emails]

    def raw_pages() -> list[Record]:
        found: list[Record] = []
        for partition in partitions:
            params: dict[str, Any] = {
                "TableName": tables.big,
                "IndexName": "by_grp",
                "KeyConditionExpression": "#g = :g",
                "ExpressionAttributeNames": {"#g": "grp"},
                "ExpressionAttributeValues": {":g": {"S": partition}},
                "Limit": limit,
            }
            for _ in range(sizes.pages):
                answer = client.query(**params)
                found += [plain(item) for item in answer["Items"]]
                params["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
        return found

    def kv_pages() -> list[Record]:
        found: list[Record] = []
        for partition in partitions:
            page = big.find_page({"grp": partition}, limit=limit)
            for _ in range(sizes.pages - 1):
                found += page.records
                page = big.find_page({"grp": partition}, limit=limit, cursor=page.cursor)
            found += page.records
        return found

    pages = sizes.pages * len(partitions)

    def common(**more: Any) -> dict[str, Any]:
        return {"shape": shape, "counter": counter, **more}

    return [
        Case(
            f"find by indexed field on {sizes.indexed:,} records",
            "dynamo",
            kv_find,
            [Raw("Query on the index", raw_find, Targets.INDEXED_FIND)],
            **common(
                ops=len(emails),
                calls=len(emails),
                check=lambda: check_reads(f"dynamo indexed find [{shape}]", kv_find, raw_find),
            ),
        ),
        Case(
            f"find_page of {limit} by index partition, with cursor",
            "dynamo",
            kv_pages,
            [Raw("Query, Limit + ExclusiveStartKey", raw_pages, Targets.PAGE)],
            **common(
                ops=pages,
                calls=pages,
                unit="pages",
                check=lambda: check_reads(f"dynamo find_page [{shape}]", kv_pages, raw_pages),
            ),
        ),
        Case(
            f"find by indexed field, {sizes.indexed:,} / {sizes.indexed_small:,} records",
            "dynamo",
            kv_find,
            [Raw("kvstore on the small kind", kv_find_small, Targets.SCALE)],
            **common(
                ops=len(emails),
                calls=len(emails),
                check=lambda: check_reads(
                    f"dynamo find on the small kind [{shape}]", kv_find_small, raw_small
                ),
            ),
        ),
    ]


def _write_cases(
    client: Any, tables: Part2Tables, sizes: Sizes, shape: str, counter: BotoCounter
) -> list[Case]:
    from boto3.dynamodb.types import TypeSerializer

    from kvstore import increment, transaction

    serialize = TypeSerializer().serialize
    plain = _plain()
    writes, table = tables.updates, tables.update
    price, counter_name = price_field(shape), counter_field(shape)
    calls = min(sizes.calls // 2, sizes.updated)
    originals = {n: make_record(n, shape) for n in range(sizes.updated)}
    keys = [originals[n]["id"] for n in range(calls)]
    names = [originals[n]["name"] for n in range(calls)]
    prices = [round(n * 1.25 + 0.5, 2) for n in range(calls)]
    raw_prices = [decimals(value) for value in prices]
    half = sizes.transaction // 2
    transactions = [
        (
            [make_record(sizes.updated + t * half + k, shape) for k in range(half)],
            [originals[(t * half + k) % sizes.updated]["id"] for k in range(half)],
        )
        for t in range(max(1, sizes.calls // 2 // sizes.transaction))
    ]
    raw_puts = [[decimals(record) for record in puts] for puts, _ in transactions]
    # ADD with only the record's existence checked, and ADD that also keeps the number rules'
    # int64 range, as kvstore's increment and the aurora side's `::bigint + 1` do: the server's
    # work of the second is the same as kvstore's (a stored string fails its comparison).
    add = {
        "UpdateExpression": "ADD #c :one",
        "ConditionExpression": "attribute_exists(id)",
        "ExpressionAttributeNames": {"#c": counter_name},
        "ExpressionAttributeValues": {":one": {"N": "1"}},
    }
    add_in_range = {
        **add,
        "ConditionExpression": "attribute_exists(id) AND "
        "(attribute_not_exists(#c) OR #c <= :below_max)",
        "ExpressionAttributeValues": {":one": {"N": "1"}, ":below_max": {"N": str(2**63 - 2)}},
    }

    def raw_update() -> list[Record]:
        found = []
        for key, name, value in zip(keys, names, raw_prices, strict=True):
            answer = client.update_item(
                TableName=table,
                Key={"id": {"S": key}},
                UpdateExpression="SET #p = :p",
                ConditionExpression="#name = :name",
                ExpressionAttributeNames={"#p": price, "#name": "name"},
                ExpressionAttributeValues={":p": serialize(value), ":name": {"S": name}},
                ReturnValues="ALL_NEW",
            )
            found.append(plain(answer["Attributes"]))
        return found

    def kv_update() -> list[Record]:
        return [
            writes.update({"id": key, price: value}, expect={"name": name})
            for key, name, value in zip(keys, names, prices, strict=True)
        ]

    def raw_increment(condition: dict[str, Any]) -> Action:
        def run() -> list[Record]:
            found = []
            for key in keys:
                answer = client.update_item(
                    TableName=table, Key={"id": {"S": key}}, ReturnValues="ALL_NEW", **condition
                )
                found.append(plain(answer["Attributes"]))
            return found

        return run

    def kv_increment() -> list[Record]:
        return [writes.update({"id": key, counter_name: increment(1)}) for key in keys]

    def raw_transaction(condition: dict[str, Any]) -> Action:
        def run() -> None:
            for puts, (_, incremented) in zip(raw_puts, transactions, strict=True):
                items: list[dict[str, Any]] = [
                    {"Put": {"TableName": table, "Item": {k: serialize(v) for k, v in r.items()}}}
                    for r in puts
                ]
                items += [
                    {"Update": {"TableName": table, "Key": {"id": {"S": key}}, **condition}}
                    for key in incremented
                ]
                client.transact_write_items(TransactItems=items)  # botocore adds the token

        return run

    def kv_transaction() -> None:
        for puts, incremented in transactions:
            with transaction() as tx:
                for record in puts:
                    tx.put(writes, record)
                for key in incremented:
                    tx.update(writes, {"id": key, counter_name: increment(1)})

    touched = sorted({*keys, *(key for _, incs in transactions for key in incs)})
    touched += sorted(record["id"] for puts, _ in transactions for record in puts)

    def reset() -> None:
        writes.put_many(originals.values())

    def read_back() -> list[Record]:
        return writes.find_in("id", touched)

    def checked(name: str, kv_side: Action, raw_side: Action) -> Action:
        return lambda: check_writes(f"dynamo {name} [{shape}]", reset, kv_side, raw_side, read_back)

    def common(**more: Any) -> dict[str, Any]:
        return {"shape": shape, "counter": counter, **more}

    tx_calls = len(transactions)
    return [
        Case(
            "update with expect",
            "dynamo",
            kv_update,
            [Raw("UpdateItem, ConditionExpression", raw_update, Targets.CONDITIONAL)],
            **common(ops=calls, calls=calls, check=checked("update", kv_update, raw_update)),
        ),
        Case(
            "update with increment",
            "dynamo",
            kv_increment,
            [
                Raw(IN_RANGE_INCREMENT, raw_increment(add_in_range), Targets.CONDITIONAL),
                Raw(f"{PLAIN_ADD}, {ONLY_EXISTS}", raw_increment(add), None),
            ],
            **common(
                ops=calls,
                calls=calls,
                check=checked("increment", kv_increment, raw_increment(add_in_range)),
            ),
        ),
        Case(
            f"transaction of {sizes.transaction} operations",
            "dynamo",
            kv_transaction,
            [
                Raw(IN_RANGE_TRANSACTION, raw_transaction(add_in_range), Targets.TRANSACTION),
                Raw(f"TransactWriteItems, {ONLY_EXISTS}", raw_transaction(add), None),
            ],
            **common(
                ops=tx_calls,
                calls=tx_calls,
                check=checked("transaction", kv_transaction, raw_transaction(add_in_range)),
            ),
        ),
    ]
