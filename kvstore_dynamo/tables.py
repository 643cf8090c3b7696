"""``ensure()``: a kind's table in the default layout, its global secondary indexes and its TTL,
created idempotently and safely when processes race.

The only place the backend calls DescribeTable, CreateTable, UpdateTable and the TTL calls
(production roles often lack those rights, and each costs a round trip). A new table is
PAY_PER_REQUEST, partition key = first id field, sort key = second, ``S`` or ``N`` by
``key_type``, with every declared index as a GSI (projection ALL). On an existing table, missing
indexes are added one UpdateTable at a time (DynamoDB creates one index at a time per table), each
waited for until ACTIVE. With a ``ttl_field``, DynamoDB's own TTL is turned on for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from kvstore.backend import Index, KindSchema
from kvstore.errors import BackendUnavailable, ConfigError
from kvstore_dynamo.errors import error_code, error_message

__all__ = [
    "ACTIVE_TIMEOUT",
    "INDEX_TIMEOUT",
    "attribute_definitions",
    "ensure_table",
    "ensure_ttl",
    "index_definition",
    "key_schema",
]

ACTIVE_TIMEOUT = 300.0
"""Seconds to wait for a new table to become ACTIVE (AWS takes seconds; local servers none)."""
INDEX_TIMEOUT = 1800.0
"""Seconds to wait for a new index to become ACTIVE (AWS backfills it from the whole table)."""

sleep: Callable[[float], None] = time.sleep


def _type(key_type: type) -> str:
    return "S" if key_type is str else "N"


def key_schema(fields: tuple[str, ...]) -> list[dict[str, str]]:
    """The ``KeySchema`` of a table or an index: its first field HASH, its second RANGE."""
    return [
        {"AttributeName": field, "KeyType": role}
        for field, role in zip(fields, ("HASH", "RANGE"), strict=False)
    ]


def attribute_definitions(schema: KindSchema) -> dict[str, str]:
    """The type (``S``/``N``) of every key attribute of the table and its indexes;
    ``ConfigError`` when the declarations give one attribute two types."""
    types: dict[str, str] = {}
    declared = [(schema.id_fields, schema.key_types, "the key")]
    declared += [(i.fields, i.key_types, f"index {i.name!r}") for i in schema.indexes]
    for fields, key_types, what in declared:
        for field, key_type in zip(fields, key_types, strict=True):
            wanted = _type(key_type)
            if types.setdefault(field, wanted) != wanted:
                raise ConfigError(
                    f"kind {schema.kind!r}: {what} declares field {field!r} as "
                    f"{key_type.__name__}, but another declaration gives it the other DynamoDB "
                    "type (S for str, N for int and float)"
                )
    return types


def index_definition(index: Index) -> dict[str, Any]:
    """The ``GlobalSecondaryIndexes`` entry of an index: its keys, every attribute projected."""
    return {
        "IndexName": index.name,
        "KeySchema": key_schema(index.fields),
        "Projection": {"ProjectionType": "ALL"},
    }


def _definitions(types: dict[str, str], fields: tuple[str, ...]) -> list[dict[str, str]]:
    return [{"AttributeName": field, "AttributeType": types[field]} for field in fields]


def _describe(client: Any, table: str) -> dict[str, Any] | None:
    try:
        description: dict[str, Any] = client.describe_table(TableName=table)["Table"]
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise
    return description


def _indexes(description: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {i["IndexName"]: i for i in description.get("GlobalSecondaryIndexes") or ()}


def _check_layout(description: dict[str, Any], table: str, schema: KindSchema) -> None:
    """``ConfigError`` unless the table's key, and each declared index it has, are the kind's."""
    types = {
        d["AttributeName"]: d["AttributeType"] for d in description.get("AttributeDefinitions", [])
    }
    wanted_types = attribute_definitions(schema)

    def shape(keys: list[dict[str, str]], known: dict[str, str]) -> list[tuple[Any, ...]]:
        return sorted(
            (k["AttributeName"], k["KeyType"], known.get(k["AttributeName"])) for k in keys
        )

    found = shape(description.get("KeySchema", []), types)
    wanted = shape(key_schema(schema.id_fields), wanted_types)
    if found != wanted:
        raise ConfigError(
            f"DynamoDB table {table!r} has key {found}, but kind {schema.kind!r} needs {wanted}"
        )
    existing = _indexes(description)
    for index in schema.indexes:
        if index.name not in existing:
            continue
        found = shape(existing[index.name].get("KeySchema", []), types)
        wanted = shape(key_schema(index.fields), wanted_types)
        if found != wanted:
            raise ConfigError(
                f"DynamoDB table {table!r} has an index {index.name!r} with key {found}, but "
                f"kind {schema.kind!r} declares {wanted}"
            )


def _wait(
    client: Any, table: str, ready: Callable[[dict[str, Any]], bool], timeout: float, what: str
) -> dict[str, Any]:
    """Describe ``table`` until ``ready`` says so (a bounded, growing pause between calls)."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        description = _describe(client, table)
        if description is not None and ready(description):
            return description
        if time.monotonic() > deadline:
            raise BackendUnavailable(
                f"DynamoDB {what} of table {table!r} did not become ACTIVE within {timeout:.0f} s; "
                "call ensure() again later"
            )
        sleep(delay)
        delay = min(delay * 2, 2.0)


def _active(description: dict[str, Any]) -> bool:
    return description.get("TableStatus") == "ACTIVE"


def _create(client: Any, table: str, schema: KindSchema) -> None:
    types = attribute_definitions(schema)
    request: dict[str, Any] = {
        "TableName": table,
        "KeySchema": key_schema(schema.id_fields),
        "AttributeDefinitions": _definitions(types, tuple(types)),
        "BillingMode": "PAY_PER_REQUEST",
    }
    if schema.indexes:
        request["GlobalSecondaryIndexes"] = [index_definition(i) for i in schema.indexes]
    try:
        client.create_table(**request)
    except ClientError as exc:
        if error_code(exc) != "ResourceInUseException":  # another process won the race
            raise


def _add_index(
    client: Any, table: str, schema: KindSchema, index: Index, description: dict[str, Any]
) -> dict[str, Any]:
    """Add ``index`` to ``table`` and wait until it is ACTIVE (another process may be adding it
    too, or another index: DynamoDB creates one at a time); return the table's description.

    The request defines every key attribute of the table, of its indexes and of the new one
    (moto keeps only the definitions an UpdateTable sends)."""
    types = {
        d["AttributeName"]: d["AttributeType"] for d in description.get("AttributeDefinitions", [])
    }
    types.update(attribute_definitions(schema))
    used = [*schema.id_fields, *index.fields]
    for existing in _indexes(description).values():
        used += [k["AttributeName"] for k in existing.get("KeySchema", [])]
    used = [field for field in dict.fromkeys(used) if field in types]
    deadline = time.monotonic() + INDEX_TIMEOUT
    delay = 0.05
    while True:
        try:
            client.update_table(
                TableName=table,
                AttributeDefinitions=_definitions(types, tuple(used)),
                GlobalSecondaryIndexUpdates=[{"Create": index_definition(index)}],
            )
            break
        except ClientError as exc:
            code, message = error_code(exc), error_message(exc)
            if code == "ValidationException" and "already exists" in message:
                break  # another process added it
            busy = code in ("LimitExceededException", "ResourceInUseException")
            if not busy or time.monotonic() > deadline:
                raise
        sleep(delay)  # another index is being created: wait for our turn
        delay = min(delay * 2, 2.0)

    return _wait(client, table, _index_active(index), INDEX_TIMEOUT, f"index {index.name!r}")


def _index_active(index: Index) -> Callable[[dict[str, Any]], bool]:
    def ready(description: dict[str, Any]) -> bool:
        found = _indexes(description).get(index.name)
        return found is not None and found.get("IndexStatus") == "ACTIVE" and _active(description)

    return ready


def ensure_ttl(client: Any, table: str, field: str) -> None:
    """Turn DynamoDB's TTL on for ``field`` unless it is on already (``ConfigError`` when the
    table expires items by another attribute)."""
    for _attempt in range(2):
        description = client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        status = description.get("TimeToLiveStatus")
        name = description.get("AttributeName")
        if status in ("ENABLED", "ENABLING") and name == field:
            return
        if status in ("ENABLED", "ENABLING", "DISABLING"):
            raise ConfigError(
                f"DynamoDB table {table!r} has TTL {status.lower()} on attribute {name!r}, "
                f"not on the kind's ttl_field {field!r}: change it with your infrastructure code"
            )
        try:
            client.update_time_to_live(
                TableName=table,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": field},
            )
            return
        except ClientError as exc:  # another process turned it on meanwhile: look again
            if error_code(exc) != "ValidationException" or "already" not in error_message(exc):
                raise
    raise ConfigError(f"DynamoDB table {table!r}: TTL could not be turned on for {field!r}")


def ensure_table(client: Any, table: str, schema: KindSchema) -> None:
    """Create ``table`` for ``schema`` unless it exists, add its missing indexes, wait until all
    are ACTIVE, and turn TTL on for the ``ttl_field``."""
    attribute_definitions(schema)  # conflicting declarations fail before any call
    description = _describe(client, table)
    if description is None:
        _create(client, table, schema)
    description = _wait(client, table, _active, ACTIVE_TIMEOUT, "table")
    _check_layout(description, table, schema)
    for index in schema.indexes:
        found = _indexes(description).get(index.name)
        if found is None:
            description = _add_index(client, table, schema, index, description)
        elif found.get("IndexStatus") != "ACTIVE":  # another process is adding it
            description = _wait(
                client, table, _index_active(index), INDEX_TIMEOUT, f"index {index.name!r}"
            )
    if schema.ttl_field is not None:
        ensure_ttl(client, table, schema.ttl_field)
