"""Issue 12, defect 3: every call is bounded in time, and botocore's own settings are honoured.

A call's time budget (``KVSTORE_TIMEOUT``, see README.md) covers connecting, waiting on locks, the
statement or request and the retries; past it the call raises ``BackendUnavailable`` saying which
limit it hit. Today aurora calls on a server that stops answering (or behind a held row lock)
block indefinitely, connecting waits ``DB_CONNECT_TIMEOUT`` (15 s), DynamoDB waits 30 s a read and
retries 5 times, and its client configuration ignores ``AWS_MAX_ATTEMPTS``/``AWS_RETRY_MODE``.

Each test gives a budget of ``BUDGET`` seconds and waits ``BUDGET + MARGIN`` for the call; a call
still running then fails the test (the proxy is switched back to pass-through and its connections
reset, so the call's thread can end).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, cast

import psycopg
import pytest
from botocore.awsrequest import AWSResponse
from psycopg import sql

from kvstore import BackendUnavailable, Store, increment, transaction
from tests.faults.conftest import PgServer
from tests.faults.helpers import BUDGET, MARGIN, Outcome, call_bounded
from tests.faults.proxy import FaultProxy

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def _budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KVSTORE_TIMEOUT", str(BUDGET))


def _release(proxy: FaultProxy) -> Callable[[], None]:
    """What lets a call stuck behind ``proxy`` end: traffic passes again, open connections drop."""

    def release() -> None:
        proxy.pass_through()
        proxy.reset_all()

    return release


def _assert_bounded(outcome: Outcome, limit: str = r"time|timed? ?out|budget") -> None:
    assert outcome.finished, f"no answer within budget + margin: {outcome.describe()}"
    assert outcome.elapsed < BUDGET + MARGIN, outcome.describe()
    assert isinstance(outcome.error, BackendUnavailable), outcome.describe()
    assert re.search(limit, str(outcome.error), re.IGNORECASE), (
        f"the error does not say which limit was hit: {outcome.error}"
    )


CALLS: dict[str, Callable[[Store], Any]] = {
    "find": lambda store: store.find({"id": "k0"}),
    "put": lambda store: store.put({"id": "k1", "n": 1}),
    "create": lambda store: store.create({"id": "k2"}),
    "update": lambda store: store.update({"id": "k0", "n": 2}),
    "put_many": lambda store: store.put_many({"id": f"m{i:04}"} for i in range(1200)),
    "iter_all": lambda store: list(store.iter_all()),
    "transaction": lambda store: _transaction(store),
}


def _transaction(store: Store) -> None:
    with transaction() as tx:
        tx.put(store, {"id": "t1"})
        tx.put(store, {"id": "t2"})
        tx.update(store, {"id": "k0", "n": increment(1)})


# -- aurora ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("call", CALLS)
def test_aurora_call_on_a_stalled_server_ends_within_its_budget(
    aurora: Callable[..., Store], pg_proxy: FaultProxy, call: str
) -> None:
    store = aurora(pg_proxy)
    store.put({"id": "k0", "n": 0})  # connected, layout read
    pg_proxy.stall()  # requests reach the server, its answers are dropped
    outcome = call_bounded(lambda: CALLS[call](store), BUDGET + MARGIN, _release(pg_proxy))
    _assert_bounded(outcome)


def test_aurora_store_works_again_once_a_stalled_server_answers(
    aurora: Callable[..., Store], pg_proxy: FaultProxy
) -> None:
    store = aurora(pg_proxy)
    store.put({"id": "k0", "n": 0})
    pg_proxy.stall()
    outcome = call_bounded(lambda: store.find({"id": "k0"}), BUDGET + MARGIN, _release(pg_proxy))
    _assert_bounded(outcome, limit=r"time budget of 2 s \(KVSTORE_TIMEOUT\)")
    pg_proxy.pass_through()
    # The connection the deadline gave up on was closed, not given back half-way through a
    # conversation: the next calls get a new one.
    assert store.find({"id": "k0"}) == {"id": "k0", "n": 0}
    assert store.put({"id": "k1"}) == {"id": "k1"}
    assert pg_proxy.accepted == 2


def test_aurora_connecting_to_a_silent_server_ends_within_its_budget(
    aurora: Callable[..., Store], pg_proxy: FaultProxy
) -> None:
    store = aurora(pg_proxy)  # no connection through the proxy yet
    pg_proxy.stall(requests=False)  # accepts, reads, answers nothing
    outcome = call_bounded(lambda: store.find({"id": "k0"}), BUDGET + MARGIN, _release(pg_proxy))
    _assert_bounded(outcome)


@pytest.fixture
def row_lock(pg: PgServer) -> Iterator[Callable[[str, str], psycopg.Connection[Any]]]:
    """``lock(kind, key)``: another session holds the row's lock (SELECT ... FOR UPDATE) until the
    test ends or rolls its connection back."""
    holders: list[psycopg.Connection[Any]] = []

    def lock(kind: str, key: str) -> psycopg.Connection[Any]:
        holder = psycopg.connect(pg.dsn())
        holders.append(holder)
        query = sql.SQL("SELECT 1 FROM {} WHERE id = %s FOR UPDATE").format(sql.Identifier(kind))
        assert holder.execute(query, (key,)).fetchone() == (1,)
        return holder

    yield lock
    for holder in holders:
        holder.close()


LOCKED_CALLS: dict[str, Callable[[Store], Any]] = {
    "put": lambda store: store.put({"id": "k0", "n": 1}),
    "update": lambda store: store.update({"id": "k0", "n": 1}),
    "remove": lambda store: store.remove({"id": "k0"}),
}


@pytest.mark.parametrize("call", LOCKED_CALLS)
def test_aurora_write_behind_a_held_row_lock_ends_within_its_budget(
    aurora: Callable[..., Store],
    row_lock: Callable[[str, str], psycopg.Connection[Any]],
    call: str,
) -> None:
    store = aurora()
    store.put({"id": "k0", "n": 0})
    holder = row_lock(store.kind, "k0")
    outcome = call_bounded(lambda: LOCKED_CALLS[call](store), BUDGET + MARGIN, holder.rollback)
    holder.rollback()
    _assert_bounded(outcome, limit=r"lock|time|budget")
    assert store.find({"id": "k0"}) == {"id": "k0", "n": 0}, "the refused write changed the record"


# -- DynamoDB ------------------------------------------------------------------------------------

DYNAMO_CALLS = {name: CALLS[name] for name in ("find", "put", "put_many", "transaction")}


@pytest.mark.parametrize("call", DYNAMO_CALLS)
def test_dynamo_call_on_a_stalled_endpoint_ends_within_its_budget(
    dynamo: Callable[..., Store], dynamo_proxy: FaultProxy, call: str
) -> None:
    store = dynamo(dynamo_proxy)
    store.put({"id": "k0", "n": 0})
    dynamo_proxy.stall()
    outcome = call_bounded(
        lambda: DYNAMO_CALLS[call](store), BUDGET + MARGIN, _release(dynamo_proxy)
    )
    _assert_bounded(outcome)


class _Body:
    """The raw body of a canned response (what ``AWSResponse.content`` reads)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


class Refuse:
    """Answers every DynamoDB request of a client with an error of its own, without sending it
    (a ``before-send`` hook); counts the attempts, and may take ``seconds`` to answer each."""

    def __init__(self, client: Any, status: int, code: str, seconds: float = 0.0) -> None:
        self.client = client
        self.status = status
        self.code = code
        self.seconds = seconds
        self.attempts = 0
        self.stopped = False
        self._lock = threading.Lock()
        client.meta.events.register("before-send.dynamodb", self._answer)

    def stop(self) -> None:
        """Let requests through to the server again."""
        self.stopped = True

    def close(self) -> None:
        """Unhook from the client."""
        self.stop()
        self.client.meta.events.unregister("before-send.dynamodb", self._answer)

    def _answer(self, request: Any, **_: Any) -> AWSResponse | None:
        if self.stopped:
            return None
        with self._lock:
            self.attempts += 1
        time.sleep(self.seconds)
        body = (
            b'{"__type":"com.amazonaws.dynamodb.v20120810#%s","message":"injected by the test"}'
            % self.code.encode()
        )
        headers = {"x-amzn-ErrorType": self.code, "Content-Type": "application/x-amz-json-1.0"}
        return AWSResponse(request.url, self.status, cast(Any, headers), _Body(body))


@pytest.fixture
def refuse() -> Iterator[Callable[..., Refuse]]:
    """``refuse(client, status, code, seconds=0)``: a ``Refuse`` hook, unhooked when the test ends."""
    made: list[Refuse] = []

    def make(client: Any, status: int, code: str, seconds: float = 0.0) -> Refuse:
        made.append(Refuse(client, status, code, seconds))
        return made[-1]

    yield make
    for hook in made:
        hook.close()


def test_dynamo_call_under_persistent_throttling_ends_within_its_budget(
    dynamo: Callable[..., Store], dynamo_proxy: FaultProxy, refuse: Callable[..., Refuse]
) -> None:
    store = dynamo(dynamo_proxy)  # the proxy gives this test a client of its own
    store.put({"id": "k0"})
    # Each throttled answer takes 1.2 s, so 5 attempts take at least 6 s, past budget + margin.
    throttle = refuse(store.native().client, 400, "ThrottlingException", seconds=1.2)
    outcome = call_bounded(lambda: store.find({"id": "k0"}), BUDGET + MARGIN, throttle.stop)
    assert throttle.attempts >= 1, "the fault was not injected"
    _assert_bounded(outcome, limit=r"throttl|time|budget")


@pytest.mark.parametrize(("mode", "attempts"), [("standard", 2), ("legacy", 3)])
def test_dynamo_honours_aws_max_attempts_and_retry_mode(
    dynamo: Callable[..., Store],
    dynamo_proxy: FaultProxy,
    monkeypatch: pytest.MonkeyPatch,
    refuse: Callable[..., Refuse],
    mode: str,
    attempts: int,
) -> None:
    monkeypatch.setenv("AWS_RETRY_MODE", mode)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", str(attempts))
    monkeypatch.delenv("KVSTORE_TIMEOUT")  # the default budget: attempts, not time, are counted
    store = dynamo(dynamo_proxy)  # a client of its own, made with these settings
    store.put({"id": "k0"})
    failing = refuse(store.native().client, 500, "InternalServerError")
    with pytest.raises(BackendUnavailable):
        store.find({"id": "k0"})
    assert failing.attempts == attempts
