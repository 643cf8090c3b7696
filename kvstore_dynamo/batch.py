"""BatchWriteItem (25 a call) and BatchGetItem (100 a call) with their leftovers retried, and the
``BatchWriter`` that ``put_many`` writes through.

DynamoDB may leave part of a batch unprocessed (throttling, the 16 MB response limit). Leftovers are
sent again after a jittered, bounded exponential backoff; what is still left after ``MAX_RETRIES``,
or when the next backoff and attempt would not fit in the call's time budget (``Limits``: each
batch of 25 or 100 keys has a budget of its own, from its first request), raises
``UnprocessedError`` listing the keys, so nothing is ever dropped silently.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from kvstore.backend import Record
from kvstore.errors import BackendUnavailable
from kvstore_dynamo.codec import Item, from_item, to_item
from kvstore_dynamo.settings import Limits

__all__ = [
    "BACKOFF_BASE",
    "BACKOFF_CAP",
    "GET_BATCH",
    "MAX_RETRIES",
    "WRITE_BATCH",
    "PutWriter",
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


class _Retries:
    """The leftovers' retries of one batch: at most ``MAX_RETRIES``, within its time budget."""

    __slots__ = ("attempt", "deadline", "limits")

    def __init__(self, limits: Limits | None) -> None:
        self.limits = limits
        self.deadline = time.monotonic() + limits.budget if limits is not None else math.inf
        self.attempt = 0

    def wait(self) -> str | None:
        """Back off before the next attempt; or, when none may follow, say why."""
        self.attempt += 1
        if self.attempt > MAX_RETRIES:
            return f"after {MAX_RETRIES} retries"
        delay = random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**self.attempt))
        limits = self.limits
        if limits is not None and time.monotonic() + delay + limits.attempt > self.deadline:
            return (
                f"after {self.attempt} attempts: no time left for another within the time "
                f"budget of {limits.budget:.3g} s (KVSTORE_TIMEOUT or timeout=)"
            )
        sleep(delay)
        return None


def _request_key(request: dict[str, Any], key_fields: Sequence[str]) -> dict[str, Any]:
    if "PutRequest" in request:
        item = request["PutRequest"]["Item"]
    else:
        item = request["DeleteRequest"]["Key"]
    return from_item({field: item[field] for field in key_fields})


def _give_up(what: str, table: str, keys: list[dict[str, Any]], why: str) -> UnprocessedError:
    shown = ", ".join(map(repr, keys[:20])) + (
        f" and {len(keys) - 20} more" if len(keys) > 20 else ""
    )
    return UnprocessedError(
        f"DynamoDB left {len(keys)} {what} of {table!r} unprocessed (throttled) {why}: {shown}",
        keys,
    )


def batch_write(
    client: Any,
    table: str,
    requests: Sequence[dict[str, Any]],
    key_fields: Sequence[str],
    limits: Limits | None = None,
) -> None:
    """Send Put/DeleteRequests, 25 a call, retrying leftovers (within ``limits``' budget for
    each call); one request per key (the last wins)."""
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
        retries = _Retries(limits)
        while pending:
            response = client.batch_write_item(RequestItems={table: pending})
            pending = response.get("UnprocessedItems", {}).get(table, [])
            if not pending:
                break
            stop = retries.wait()
            if stop is not None:
                left = pending + unique[start + WRITE_BATCH :]
                keys = [_request_key(r, key_fields) for r in left]
                raise _give_up("writes", table, keys, stop)


def batch_get(
    client: Any,
    table: str,
    keys: Sequence[Item],
    project: Sequence[str] = (),
    limits: Limits | None = None,
) -> Iterator[Item]:
    """Yield the items stored at ``keys`` (distinct), 100 keys a consistent call, leftovers retried
    (within ``limits``' budget for each call).

    With ``project``, the items hold only those attributes.
    """
    request: dict[str, Any] = {"ConsistentRead": True}
    if project:
        names = {f"#p{i}": field for i, field in enumerate(project)}
        request["ProjectionExpression"] = ", ".join(names)
        request["ExpressionAttributeNames"] = names
    for start in range(0, len(keys), GET_BATCH):
        pending: list[Item] = list(keys[start : start + GET_BATCH])
        retries = _Retries(limits)
        while pending:
            response = client.batch_get_item(RequestItems={table: {**request, "Keys": pending}})
            found = response.get("Responses", {}).get(table, [])
            pending = response.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
            # Back off before handing the items over: the caller's time between them is not
            # the batch's.
            stop = retries.wait() if pending else None
            yield from found
            if stop is not None:
                left = pending + list(keys[start + GET_BATCH :])
                raise _give_up("reads", table, [from_item(key) for key in left], stop)


class PutWriter:
    """``put_many``'s ``BatchWriter``: records become PutRequests (``encode``, no I/O); each
    chunk's slices go to ``send``, which ``store``s them (BatchWriteItems) in the caller's thread,
    or hands them to a write-behind thread that does. ``stored`` counts the chunks DynamoDB
    acknowledged, the first ones."""

    __slots__ = ("_write", "send", "stored")

    def __init__(self, write: Callable[[list[Any]], None]) -> None:
        self._write = write
        self.send: Callable[[list[Any]], None] = self.store
        self.stored = 0

    def encode(self, records: Sequence[Record]) -> list[dict[str, Any]]:
        """``records`` as BatchWriteItem put requests."""
        return [{"PutRequest": {"Item": to_item(record)}} for record in records]

    def store(self, batches: list[Any]) -> None:
        """Write one chunk's encoded slices, in order, and count it."""
        self._write(batches)
        self.stored += 1

    def write(self, batches: list[Any]) -> None:
        """Send one chunk's encoded slices."""
        self.send(batches)
