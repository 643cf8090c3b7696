"""Peers on DynamoDB (``--peers``): boto3's ``Table`` resource and PynamoDB doing the dynamo reads.

Each is written the way its documentation shows: the resource's ``get_item``, ``batch_get_item``,
``query`` and ``scan`` (following ``LastEvaluatedKey``, retrying ``UnprocessedKeys``), and a
PynamoDB model per kind with typed attributes (``get``, ``batch_get``, ``query``, ``scan``, all
consistent). PynamoDB's results are its model instances, which is what its users work with; the
resource's are dicts of ``Decimal`` numbers. Each has its own client, whose calls are counted.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from importlib.metadata import version
from typing import Any

from bench.harness import Case, Peer
from bench.roundtrips import BotoCounter
from bench.workload import GROUP_KEY, Sizes, make_record, owner_of

__all__ = ["DynamoPeers"]


def _models(tables: Any, shape: str) -> tuple[Any, Any]:
    """PynamoDB model classes of ``shape`` for the read and grouped tables."""
    from pynamodb.attributes import (
        BooleanAttribute,
        ListAttribute,
        MapAttribute,
        NumberAttribute,
        UnicodeAttribute,
    )
    from pynamodb.models import Model

    class Dims(MapAttribute[str, Any]):
        w = NumberAttribute()
        h = NumberAttribute()
        unit = UnicodeAttribute()

    def fields() -> dict[str, Any]:  # new attribute objects for each model
        found: dict[str, Any] = {"name": UnicodeAttribute(), "active": BooleanAttribute()}
        found["tags"] = ListAttribute(of=UnicodeAttribute)
        if shape == "flat":
            found |= {"n": NumberAttribute(), "score": NumberAttribute()}
        else:
            dims = Dims()  # type: ignore[no-untyped-call]
            found |= {"qty": NumberAttribute(), "price": NumberAttribute(), "dims": dims}
        return found

    def meta(table: str) -> type:
        host = os.environ["AWS_ENDPOINT_URL_DYNAMODB"]
        return type("Meta", (), {"table_name": table, "host": host, "region": _region()})

    read = type(
        f"Read{shape.title()}",
        (Model,),
        {"Meta": meta(tables.read), "id": UnicodeAttribute(hash_key=True), **fields()},
    )
    owner, seq = GROUP_KEY
    group = type(
        f"Group{shape.title()}",
        (Model,),
        {
            "Meta": meta(tables.group),
            owner: UnicodeAttribute(hash_key=True),
            seq: NumberAttribute(range_key=True),
            **fields(),
        },
    )
    return read, group


def _region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


class DynamoPeers:
    """The DynamoDB peers' clients, and the peer sides of each shape's read cases."""

    def __init__(self, counter: BotoCounter) -> None:
        import boto3

        self.counter = counter
        self.resource = boto3.resource("dynamodb")
        counter.attach(self.resource.meta.client)
        self.boto3 = f"boto3 Table {version('boto3')}"
        self.pynamodb = f"PynamoDB {version('pynamodb')}"

    def add_to(self, cases: list[Case], tables: Any, sizes: Sizes, shape: str) -> None:
        """Add the peers to ``cases`` (one shape's): find by key, find_in, find_all, iter_all."""
        from boto3.dynamodb.conditions import Key

        resource = self.resource
        read, group = resource.Table(tables.read), resource.Table(tables.group)
        read_model, group_model = _models(tables, shape)
        for model in (read_model, group_model):
            self.counter.attach(model._get_connection().connection.client)
        rows = sizes.dynamo_rows
        keys = [make_record(n, shape)["id"] for n in range(0, rows, 7)][: sizes.calls // 2]
        in_keys = [make_record(n, shape)["id"] for n in range(0, rows, 3)][: sizes.find_in]
        owners = [owner_of(g % sizes.groups) for g in range(sizes.dynamo_batch_calls)]

        def table_find() -> list[Any]:
            return [read.get_item(Key={"id": key}, ConsistentRead=True)["Item"] for key in keys]

        def table_find_in() -> list[Any]:
            found: list[Any] = []
            for _ in range(sizes.dynamo_batch_calls):
                for start in range(0, len(in_keys), 100):
                    wanted: dict[str, Any] = {
                        tables.read: {
                            "Keys": [{"id": key} for key in in_keys[start : start + 100]],
                            "ConsistentRead": True,
                        }
                    }
                    delay = 0.05
                    while wanted:
                        answer = resource.batch_get_item(RequestItems=wanted)
                        found += answer["Responses"].get(tables.read, [])
                        wanted = answer.get("UnprocessedKeys")
                        if wanted:
                            time.sleep(delay)
                            delay = min(delay * 2, 1.0)
            return found

        def table_items(table: Any, method: str, **params: Any) -> Iterator[Any]:
            while True:
                page = getattr(table, method)(ConsistentRead=True, **params)
                yield from page["Items"]
                if "LastEvaluatedKey" not in page:
                    return
                params["ExclusiveStartKey"] = page["LastEvaluatedKey"]

        def table_find_all() -> list[Any]:
            found: list[Any] = []
            for owner in owners:
                found += table_items(group, "query", KeyConditionExpression=Key("owner").eq(owner))
            return found

        def table_scan() -> None:
            for _item in table_items(read, "scan"):
                pass

        def model_scan() -> None:
            for _item in read_model.scan(consistent_read=True):
                pass

        def model_find() -> list[Any]:
            return [read_model.get(key, consistent_read=True) for key in keys]

        def model_find_in() -> list[Any]:
            found: list[Any] = []
            for _ in range(sizes.dynamo_batch_calls):
                found += read_model.batch_get(in_keys, consistent_read=True)
            return found

        def model_find_all() -> list[Any]:
            found: list[Any] = []
            for owner in owners:
                found += group_model.query(owner, consistent_read=True)
            return found

        sides = {
            "find by key": (table_find, model_find),
            "find_in": (table_find_in, model_find_in),
            "find_all": (table_find_all, model_find_all),
            "iter_all": (table_scan, model_scan),
        }
        for case in cases:
            for prefix, (table_side, model_side) in sides.items():
                if case.operation.startswith(prefix):
                    case.peers += [Peer(self.boto3, table_side), Peer(self.pynamodb, model_side)]
