"""The dynamo backend reads its region, endpoint, table prefix and time budget from the environment."""

from __future__ import annotations

import boto3
import pytest

from kvstore import ConfigError, InvalidArgument
from kvstore.config import DEFAULT_TIMEOUT
from kvstore.registry import get_backend
from kvstore_dynamo.settings import Limits, describe, dynamo_settings, resolve


def test_dynamo_settings_read_region_endpoint_prefix_and_timeout() -> None:
    env = {
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_DYNAMODB": "http://localhost:8000",
        "DYNAMO_TABLE_PREFIX": "svc-dev-",
        "KVSTORE_TIMEOUT": "2.5",
    }
    assert dynamo_settings(env) == ("eu-west-1", "http://localhost:8000", "svc-dev-", 2.5)
    assert dynamo_settings({"AWS_DEFAULT_REGION": "us-east-1"}).region == "us-east-1"
    assert dynamo_settings({}) == (None, None, "", DEFAULT_TIMEOUT)


def test_the_timeout_option_wins_over_kvstore_timeout() -> None:
    env = {"KVSTORE_TIMEOUT": "2.5"}
    assert resolve(timeout=4, env=env).timeout == 4.0
    assert resolve(timeout=4, env={"KVSTORE_TIMEOUT": "soon"}).timeout == 4.0  # not read
    with pytest.raises(ConfigError, match="KVSTORE_TIMEOUT"):
        resolve(env={"KVSTORE_TIMEOUT": "soon"})
    assert resolve(timeout="3", env=env).timeout == 3.0  # --backend dynamo:timeout=3
    for bad in (0, -1, "soon", True):
        with pytest.raises(InvalidArgument, match="timeout"):
            resolve(timeout=bad, env=env)


def test_the_client_timeouts_leave_room_for_one_retry_within_the_budget() -> None:
    for budget in (0.5, 2.0, 10.0, 29.0):
        limits = Limits.of(budget)
        assert limits.budget == budget
        assert 0 < limits.connect_timeout <= 1.0
        assert limits.read_timeout == budget / 3
        # A first attempt that waited its whole read timeout leaves room for a whole second one.
        assert limits.read_timeout + limits.attempt <= budget


def test_describe_shows_where_the_tables_are_and_no_credential(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("DYNAMO_TABLE_PREFIX", "svc-dev-")
    monkeypatch.setenv("KVSTORE_TIMEOUT", "6")
    for name in ("AWS_ENDPOINT_URL_DYNAMODB", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE"):
        monkeypatch.delenv(name, raising=False)
    shown = describe()
    assert shown == {
        "region": "eu-west-1",
        "endpoint_url": "(AWS)",
        "table_prefix": "svc-dev-",
        "timeout": 6.0,
        "connect_timeout": 1.0,
        "read_timeout": 2.0,
        "retries": shown["retries"],
    }
    assert shown["retries"].startswith("standard, at most 6 attempts, within the time budget")
    assert describe(timeout=3)["read_timeout"] == 1.0
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    assert describe()["retries"] == "botocore's (AWS_MAX_ATTEMPTS=2), within the time budget"
    secret = "wJalrXUtnFEMI-K7MDENG-SECRETKEY"
    client = boto3.client(
        "dynamodb",
        region_name="us-east-2",
        endpoint_url="http://127.0.0.1:8000",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key=secret,
    )
    shown = describe(client=client, table_prefix="other-")
    assert shown == {
        "region": "us-east-2",
        "endpoint_url": "http://127.0.0.1:8000",
        "table_prefix": "other-",
        "timeout": 6.0,
        "client": "given",
        "retries": "the given client's own (its timeouts and retries are used as they are)",
    }
    assert secret not in repr(shown)
    assert "AKIDEXAMPLE" not in repr(shown)


def test_the_backend_shows_its_settings_and_takes_keyword_options() -> None:
    backend = get_backend("dynamo")
    assert backend.describe({"endpoint_url": "http://localhost:8000"})["region"] == "us-east-1"
    with pytest.raises(TypeError, match="region"):
        backend.describe({"region": 3})
    with pytest.raises(ConfigError, match="prefix"):
        backend.describe({"table_prefix": "bad prefix/"})
