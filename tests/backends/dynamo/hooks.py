"""botocore event hooks for the dynamo tests: count API calls, fake unprocessed batch items."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders


class Calls:
    """Counts the API calls a client makes (``before-call`` fires once per call, not per retry)."""

    def __init__(self, client: Any) -> None:
        self.counts: Counter[str] = Counter()
        client.meta.events.register("before-call.dynamodb", self._record)

    def _record(self, model: Any, **_: Any) -> None:
        self.counts[model.name] += 1

    def __getitem__(self, operation: str) -> int:
        return self.counts[operation]

    def total(self) -> int:
        """Every call counted so far."""
        return sum(self.counts.values())

    def reset(self) -> None:
        """Start counting afresh."""
        self.counts.clear()


def _key(request: dict[str, Any], field: str) -> Any:
    body = (
        request["PutRequest"]["Item"]
        if "PutRequest" in request
        else request["DeleteRequest"]["Key"]
    )
    return next(iter(body[field].values()))


class Withhold:
    """Makes BatchWriteItem leave requests unprocessed, as a throttled DynamoDB does.

    For the first ``transient`` calls the second half of each batch is held back; requests for the
    ``stubborn`` keys (wire values of ``key_field``) are held back on every call. What is held back
    is never sent, and comes back as the call's ``UnprocessedItems``.
    """

    def __init__(
        self,
        client: Any,
        table: str,
        key_field: str = "id",
        *,
        transient: int = 0,
        stubborn: frozenset[Any] = frozenset(),
    ) -> None:
        self.table = table
        self.key_field = key_field
        self.transient = transient
        self.stubborn = stubborn
        self.withheld: list[dict[str, Any]] = []
        self.all_withheld = False
        self.sent_keys: list[Any] = []
        events = client.meta.events
        events.register("before-parameter-build.dynamodb.BatchWriteItem", self._trim)
        events.register("before-call.dynamodb.BatchWriteItem", self._short_circuit)
        events.register("after-call.dynamodb.BatchWriteItem", self._report)

    def _trim(self, params: dict[str, Any], **_: Any) -> None:
        requests = params["RequestItems"][self.table]
        held = [r for r in requests if _key(r, self.key_field) in self.stubborn]
        rest = [r for r in requests if _key(r, self.key_field) not in self.stubborn]
        if self.transient > 0 and len(rest) > 1:
            self.transient -= 1
            held += rest[len(rest) // 2 :]
            rest = rest[: len(rest) // 2]
        self.withheld = held
        self.all_withheld = not rest
        if rest:
            params["RequestItems"][self.table] = rest
            self.sent_keys += [_key(r, self.key_field) for r in rest]

    def _short_circuit(self, **_: Any) -> Any:
        if self.all_withheld:  # nothing left to send: answer without calling DynamoDB
            return AWSResponse("http://withheld", 200, HTTPHeaders(), None), {}
        return None

    def _report(self, parsed: dict[str, Any], **_: Any) -> None:
        if self.withheld:
            parsed["UnprocessedItems"] = {self.table: self.withheld}
        self.withheld = []
        self.all_withheld = False


class WithholdKeys:
    """Makes the first ``transient`` BatchGetItem calls leave their second half of keys unprocessed."""

    def __init__(self, client: Any, table: str, *, transient: int) -> None:
        self.table = table
        self.transient = transient
        self.withheld: list[Any] = []
        events = client.meta.events
        events.register("before-parameter-build.dynamodb.BatchGetItem", self._trim)
        events.register("after-call.dynamodb.BatchGetItem", self._report)

    def _trim(self, params: dict[str, Any], **_: Any) -> None:
        keys = params["RequestItems"][self.table]["Keys"]
        if self.transient > 0 and len(keys) > 1:
            self.transient -= 1
            self.withheld = keys[len(keys) // 2 :]
            params["RequestItems"][self.table]["Keys"] = keys[: len(keys) // 2]

    def _report(self, parsed: dict[str, Any], **_: Any) -> None:
        if self.withheld:
            parsed["UnprocessedKeys"] = {
                self.table: {"Keys": self.withheld, "ConsistentRead": True}
            }
        self.withheld = []


class _Body:
    """The raw body of a canned response (what ``AWSResponse.content`` reads)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Any:
        yield self.data


class FailAttempts:
    """Fails the first ``times`` attempts of ``operation`` on a client, without sending them (a
    ``before-send`` hook), each after ``seconds``: with ``error`` (an exception to raise, as the
    HTTP layer would) or with an answer of ``status`` and error ``code``. ``attempts`` counts
    every attempt seen, ``sent`` those let through to the server."""

    def __init__(
        self,
        client: Any,
        operation: str,
        *,
        times: int = 1,
        error: BaseException | None = None,
        status: int = 500,
        code: str = "InternalServerError",
        seconds: float = 0.0,
    ) -> None:
        self.times = times
        self.seconds = seconds
        self.error = error
        self.status = status
        self.code = code
        self.attempts = 0
        self.sent = 0
        client.meta.events.register(f"before-send.dynamodb.{operation}", self._answer)

    def _answer(self, request: Any, **_: Any) -> AWSResponse | None:
        self.attempts += 1
        if self.attempts > self.times:
            self.sent += 1
            return None
        time.sleep(self.seconds)
        if self.error is not None:
            raise self.error
        body = (
            b'{"__type":"com.amazonaws.dynamodb.v20120810#%s","message":"injected"}'
            % self.code.encode()
        )
        headers = HTTPHeaders()
        headers["x-amzn-ErrorType"] = self.code
        headers["Content-Type"] = "application/x-amz-json-1.0"
        return AWSResponse(request.url, self.status, headers, _Body(body))  # type: ignore[arg-type]
