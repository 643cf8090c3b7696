"""BatchWriteItem (25 a call) and BatchGetItem (100 a call) with their leftovers retried.

DynamoDB may leave part of a batch unprocessed (throttling, the 16 MB response limit). Leftovers are
sent again after a jittered, bounded exponential backoff; what is still left after ``MAX_RETRIES``
raises ``UnprocessedError`` listing the keys, so nothing is ever dropped silently.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from kvstore.errors import BackendUnavailable
from kvstore_dynamo.codec import Item, from_item

__all__ = [
    "BACKOFF_BASE",
    "BACKOFF_CAP",
    "GET_BATCH",
    "MAX_RETRIES",
    "WRITE_BATCH",
    "UnprocessedError",
    "batch_get",
    "batch_write",
]

WRITE_BATCH = 25
"""DynamoDB's limit of requests per BatchWriteItem."""
GET_BATCH = 100
"""DynamoDB's limit of keys per BatchGetItem."""
MAX_RETRIES = 8
"""How many times leftovers are sent again before giving up."""
BACKOFF_BASE = 0.05
"""Seconds: the first retry waits up to this, each next one up to twice as long..."""
BACKOFF_CAP = 2.0
"""...but never more than this (full jitter: a uniform draw below the bound)."""

sleep: Callable[[float], None] = time.sleep


class UnprocessedError(BackendUnavailable):
    """DynamoDB kept refusing part of a batch; ``keys`` lists the keys that were not processed."""

    def __init__(self, message: str, keys: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.keys = keys


def _backoff(attempt: int) -> None:
    sleep(random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)))


def _request_key(request: dict[str, Any], key_fields: Sequence[str]) -> dict[str, Any]:
    if "PutRequest" in request:
        item = request["PutRequest"]["Item"]
    else:
        item = request["DeleteRequest"]["Key"]
    return from_item({field: item[field] for field in key_fields})


def _give_up(what: str, table: str, keys: list[dict[str, Any]]) -> UnprocessedError:
    shown = ", ".join(map(repr, keys[:20])) + (
        f" and {len(keys) - 20} more" if len(keys) > 20 else ""
    )
    return UnprocessedError(
        f"DynamoDB left {len(keys)} {what} of {table!r} unprocessed after {MAX_RETRIES} retries: "
        f"{shown}",
        keys,
    )


def batch_write(
    client: Any, table: str, requests: Sequence[dict[str, Any]], key_fields: Sequence[str]
) -> None:
    """Send Put/DeleteRequests, 25 a call, retrying leftovers; one request per key (the last wins)."""
    by_key: dict[tuple[Any, ...], dict[str, Any]] = {}
    for request in requests:
        item = (
            request["PutRequest"]["Item"]
            if "PutRequest" in request
            else request["DeleteRequest"]["Key"]
        )
        key = tuple(next(iter(item[field].values())) for field in key_fields)
        by_key.pop(key, None)  # DynamoDB rejects a batch naming a key twice
        by_key[key] = request
    unique = list(by_key.values())
    for start in range(0, len(unique), WRITE_BATCH):
        pending = unique[start : start + WRITE_BATCH]
        attempt = 0
        while pending:
            response = client.batch_write_item(RequestItems={table: pending})
            pending = response.get("UnprocessedItems", {}).get(table, [])
            if not pending:
                break
            attempt += 1
            if attempt > MAX_RETRIES:
                left = pending + unique[start + WRITE_BATCH :]
                raise _give_up("writes", table, [_request_key(r, key_fields) for r in left])
            _backoff(attempt)


def batch_get(
    client: Any, table: str, keys: Sequence[Item], project: Sequence[str] = ()
) -> Iterator[Item]:
    """Yield the items stored at ``keys`` (distinct), 100 keys a consistent call, leftovers retried.

    With ``project``, the items hold only those attributes.
    """
    request: dict[str, Any] = {"ConsistentRead": True}
    if project:
        names = {f"#p{i}": field for i, field in enumerate(project)}
        request["ProjectionExpression"] = ", ".join(names)
        request["ExpressionAttributeNames"] = names
    for start in range(0, len(keys), GET_BATCH):
        pending: list[Item] = list(keys[start : start + GET_BATCH])
        attempt = 0
        while pending:
            response = client.batch_get_item(RequestItems={table: {**request, "Keys": pending}})
            yield from response.get("Responses", {}).get(table, [])
            pending = response.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
            if not pending:
                break
            attempt += 1
            if attempt > MAX_RETRIES:
                left = pending + list(keys[start + GET_BATCH :])
                raise _give_up("reads", table, [from_item(key) for key in left])
            _backoff(attempt)
