"""Retries on a client kvstore makes: botocore's own decision, bounded by the call's time budget,
and never a second attempt of a write that is not idempotent once the first may have reached the
server (``kvstore_dynamo.retries``). Failures are injected before sending (``FailAttempts``), so
the server sees only the attempts the test lets through."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import (
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from kvstore import BackendUnavailable, Store, create_store, increment
from kvstore.testing import unique_kind
from kvstore_dynamo import queries
from kvstore_dynamo.retries import KVSTORE_RETRIES
from tests.backends.dynamo.conftest import FAKE_CREDENTIALS
from tests.backends.dynamo.hooks import FailAttempts

URL = "http://dynamodb.invalid"
SENT_AND_LOST: dict[str, Callable[[], BaseException]] = {
    "read timeout": lambda: ReadTimeoutError(endpoint_url=URL),
    "dropped connection": lambda: ConnectionClosedError(endpoint_url=URL),
}
"""Failures after a request may have reached DynamoDB (it may have applied it)."""


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake credentials; no retry setting, budget or AWS config file from the developer's shell."""
    for name in ("AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE", "KVSTORE_TIMEOUT", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FAKE_CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_CREDENTIALS["aws_secret_access_key"])


@pytest.fixture
def open_store(dynamodb_local: Any) -> Callable[..., Store]:
    """``open_store(**options)``: a store on a new kind of DynamoDB Local, whose client kvstore
    made (from ``endpoint_url``), with ``{"id": "a", "n": 1}`` stored (by a store with the
    default budget: a small one is for the test's own calls)."""

    def make(**options: Any) -> Store:
        kind = unique_kind()
        first = create_store(kind, backend="dynamo", endpoint_url=dynamodb_local.endpoint)
        first.ensure()
        first.put({"id": "a", "n": 1})
        return create_store(kind, backend="dynamo", endpoint_url=dynamodb_local.endpoint, **options)

    return make


def client_of(store: Store) -> Any:
    return store.native().client


def test_a_kvstore_client_takes_its_timeouts_from_the_budget_and_kvstores_retries(
    open_store: Callable[..., Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = client_of(open_store(timeout=3)).meta.config
    assert (config.connect_timeout, config.read_timeout) == (0.75, 1.0)
    assert config.retries == dict(KVSTORE_RETRIES)
    monkeypatch.setenv("KVSTORE_TIMEOUT", "12")
    config = client_of(open_store()).meta.config
    assert (config.connect_timeout, config.read_timeout) == (1.0, 4.0)


def test_botocore_retry_settings_win_over_kvstores_when_set(
    open_store: Callable[..., Store], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    assert client_of(open_store()).meta.config.retries["total_max_attempts"] == 2
    monkeypatch.delenv("AWS_MAX_ATTEMPTS")
    config_file = tmp_path / "config"
    config_file.write_text("[default]\nretry_mode = legacy\nmax_attempts = 3\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config_file))
    store = open_store()
    retries = client_of(store).meta.config.retries
    assert (retries["mode"], retries["total_max_attempts"]) == ("legacy", 3)
    # The legacy handler kvstore rebuilt counts attempts as botocore's would.
    failing = FailAttempts(client_of(store), "GetItem", times=5)
    with pytest.raises(BackendUnavailable, match="after 3 attempts"):
        store.find({"id": "a"})
    assert failing.attempts == 3


def test_clients_are_shared_by_configuration_only(
    open_store: Callable[..., Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    one, two = open_store(timeout=4), open_store(timeout=4)
    assert client_of(one) is client_of(two)
    assert client_of(open_store(timeout=5)) is not client_of(one)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    assert client_of(open_store(timeout=4)) is not client_of(one)


@pytest.mark.parametrize("failure", SENT_AND_LOST)
def test_an_increment_is_not_sent_again_once_it_may_have_reached_dynamodb(
    open_store: Callable[..., Store], failure: str
) -> None:
    store = open_store()
    failing = FailAttempts(client_of(store), "UpdateItem", error=SENT_AND_LOST[failure]())
    with pytest.raises(BackendUnavailable, match="not sent again") as info:
        store.update({"id": "a", "n": increment(1)})
    assert failing.attempts == 1
    assert "may have been applied" in str(info.value)
    assert store.find({"id": "a"}) == {"id": "a", "n": 1}


def test_a_versioned_update_is_not_sent_again_after_a_server_error(
    open_store: Callable[..., Store],
) -> None:
    store = open_store(version_field="version")
    store.put({"id": "v", "n": 1})  # version 1
    failing = FailAttempts(client_of(store), "UpdateItem", status=500)
    with pytest.raises(BackendUnavailable, match="InternalServerError"):
        store.update({"id": "v", "n": 2})  # steps the version: an increment
    assert failing.attempts == 1
    assert store.find({"id": "v"}) == {"id": "v", "n": 1, "version": 1}


def test_an_update_whose_condition_reads_what_it_changes_is_not_sent_again(
    open_store: Callable[..., Store],
) -> None:
    store = open_store()
    failing = FailAttempts(client_of(store), "UpdateItem", error=SENT_AND_LOST["read timeout"]())
    with pytest.raises(BackendUnavailable):
        store.update({"id": "a", "n": 2}, expect={"n": 1})
    assert failing.attempts == 1


@pytest.mark.parametrize("failure", SENT_AND_LOST)
def test_an_idempotent_update_is_sent_again(open_store: Callable[..., Store], failure: str) -> None:
    store = open_store()
    failing = FailAttempts(client_of(store), "UpdateItem", error=SENT_AND_LOST[failure]())
    assert store.update({"id": "a", "m": 2}, expect={"n": 1}) == {"id": "a", "n": 1, "m": 2}
    assert (failing.attempts, failing.sent) == (2, 1)


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (EndpointConnectionError(endpoint_url=URL), 0, ""),
        (None, 400, "ThrottlingException"),
        (None, 400, "ProvisionedThroughputExceededException"),
    ],
    ids=["no connection", "throttled", "over capacity"],
)
def test_an_increment_refused_before_it_was_applied_is_sent_again(
    open_store: Callable[..., Store], error: BaseException | None, status: int, code: str
) -> None:
    store = open_store()
    failing = FailAttempts(client_of(store), "UpdateItem", error=error, status=status, code=code)
    assert store.update({"id": "a", "n": increment(1)}) == {"id": "a", "n": 2}
    assert (failing.attempts, failing.sent) == (2, 1)
    assert store.find({"id": "a"})["n"] == 2


@pytest.mark.parametrize("failure", SENT_AND_LOST)
def test_puts_and_transactions_are_sent_again(
    open_store: Callable[..., Store], failure: str
) -> None:
    from kvstore import transaction

    store = open_store()
    client = client_of(store)
    puts = FailAttempts(client, "PutItem", error=SENT_AND_LOST[failure]())
    assert store.put({"id": "b", "n": 1}) == {"id": "b", "n": 1}
    transactions = FailAttempts(client, "TransactWriteItems", error=SENT_AND_LOST[failure]())
    with transaction() as tx:
        tx.update(store, {"id": "a", "n": increment(5)})  # the ClientRequestToken dedupes it
    assert (puts.attempts, transactions.attempts) == (2, 2)
    assert store.find({"id": "a"})["n"] == 6


def test_retries_stop_when_the_next_would_not_fit_in_the_budget(
    open_store: Callable[..., Store],
) -> None:
    # Budget 1 s: an attempt may take 0.25 + 0.33 s. Each failure takes 0.2 s, so a second
    # attempt fits and a third does not (botocore alone would make 6).
    store = open_store(timeout=1)
    failing = FailAttempts(client_of(store), "GetItem", times=100, status=500, seconds=0.2)
    started = time.monotonic()
    with pytest.raises(BackendUnavailable, match="time budget of 1 s") as info:
        store.find({"id": "a"})
    assert time.monotonic() - started < 1.0
    assert failing.attempts == 2
    assert "after 2 attempts" in str(info.value)
    assert "(KVSTORE_TIMEOUT or timeout=)" in str(info.value)


def test_batch_and_streaming_calls_have_a_budget_per_request(
    open_store: Callable[..., Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every request takes 0.4 s more: put_many's 6 BatchWriteItems and iter_all's 5 pages take
    # longer than the budget of 3 s in all, and each is within it.
    monkeypatch.setattr(queries, "STREAM_PAGE_LIMIT", 30)
    store = open_store(timeout=3)
    store.remove({"id": "a"})

    def slow(**_: Any) -> None:
        time.sleep(0.4)

    client = client_of(store)
    for operation in ("BatchWriteItem", "Scan"):
        client.meta.events.register(f"before-send.dynamodb.{operation}", slow)
    started = time.monotonic()
    assert store.put_many({"id": f"k{n:03}", "n": n} for n in range(150)) == 150
    assert sum(1 for _ in store.iter_all()) == 150
    assert time.monotonic() - started > 4.0
