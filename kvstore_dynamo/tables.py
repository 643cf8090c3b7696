"""``ensure()``: create a kind's table in the default layout, idempotently and race-safely.

The only place the backend calls DescribeTable or CreateTable (production roles often lack those
rights, and each costs a round trip): PAY_PER_REQUEST, partition key = first id field, sort key =
second, ``S`` or ``N`` by ``key_type``.
"""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import ClientError

from kvstore.backend import KindSchema
from kvstore.errors import BackendUnavailable, ConfigError
from kvstore_dynamo.errors import error_code

__all__ = ["ACTIVE_TIMEOUT", "ensure_table", "key_schema"]

ACTIVE_TIMEOUT = 300.0
"""Seconds to wait for a new table to become ACTIVE (AWS takes seconds; local servers none)."""


def key_schema(schema: KindSchema) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The ``KeySchema`` and ``AttributeDefinitions`` of a kind's table."""
    roles = ("HASH", "RANGE")
    keys = [
        {"AttributeName": field, "KeyType": role}
        for field, role in zip(schema.id_fields, roles, strict=False)
    ]
    definitions = [
        {"AttributeName": field, "AttributeType": "N" if key_type is int else "S"}
        for field, key_type in zip(schema.id_fields, schema.key_types, strict=True)
    ]
    return keys, definitions


def _describe(client: Any, table: str) -> dict[str, Any] | None:
    try:
        description: dict[str, Any] = client.describe_table(TableName=table)["Table"]
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise
    return description


def _check_layout(description: dict[str, Any], table: str, schema: KindSchema) -> None:
    keys, definitions = key_schema(schema)
    types = {
        d["AttributeName"]: d["AttributeType"] for d in description.get("AttributeDefinitions", [])
    }
    found = [
        (k["AttributeName"], k["KeyType"], types.get(k["AttributeName"]))
        for k in description.get("KeySchema", [])
    ]
    wanted_types = {d["AttributeName"]: d["AttributeType"] for d in definitions}
    wanted = [(k["AttributeName"], k["KeyType"], wanted_types[k["AttributeName"]]) for k in keys]
    if sorted(found) != sorted(wanted):
        raise ConfigError(
            f"DynamoDB table {table!r} has key {found}, but kind {schema.kind!r} needs {wanted}"
        )


def ensure_table(client: Any, table: str, schema: KindSchema) -> None:
    """Create ``table`` for ``schema`` unless it exists, then wait until it is ACTIVE."""
    description = _describe(client, table)
    if description is None:
        keys, definitions = key_schema(schema)
        try:
            client.create_table(
                TableName=table,
                KeySchema=keys,
                AttributeDefinitions=definitions,
                BillingMode="PAY_PER_REQUEST",
            )
        except ClientError as exc:
            if error_code(exc) != "ResourceInUseException":  # another process won the race
                raise
        description = _describe(client, table)
    deadline = time.monotonic() + ACTIVE_TIMEOUT
    delay = 0.05
    while description is None or description.get("TableStatus") != "ACTIVE":
        if time.monotonic() > deadline:
            raise BackendUnavailable(f"DynamoDB table {table!r} did not become ACTIVE in time")
        time.sleep(delay)
        delay = min(delay * 2, 2.0)
        description = _describe(client, table)
    _check_layout(description, table, schema)
