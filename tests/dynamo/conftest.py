"""Fixtures of the dynamo tests: moto clients (one mock per test) and one DynamoDB Local per session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from kvstore.testing.dynamodb_local import DynamoDBLocal

REGION = "us-east-1"
FAKE_CREDENTIALS = {"aws_access_key_id": "kvstore", "aws_secret_access_key": "kvstore-test"}


def local_client(endpoint: str, **config: Any) -> Any:
    """A fresh low-level client on DynamoDB Local."""
    return boto3.client(
        "dynamodb",
        region_name=REGION,
        endpoint_url=endpoint,
        config=Config(**config) if config else None,
        **FAKE_CREDENTIALS,
    )


@pytest.fixture(scope="session")
def shared_local_client(dynamodb_local: DynamoDBLocal) -> Any:
    """The client the contract suite's stores share on DynamoDB Local."""
    return local_client(dynamodb_local.endpoint)


@pytest.fixture
def moto_client() -> Iterator[Any]:
    """A client created inside a fresh moto mock (in-process DynamoDB, what users unit-test with)."""
    with mock_aws():
        yield boto3.client("dynamodb", region_name=REGION)


@pytest.fixture(scope="class")
def class_moto_client() -> Iterator[Any]:
    """One moto mock for a whole test class (starting a mock costs ~0.1 s; kinds are unique)."""
    with mock_aws():
        yield boto3.client("dynamodb", region_name=REGION)


@pytest.fixture(params=["moto", "local"])
def client(request: pytest.FixtureRequest) -> Any:
    """A fresh client on moto, then on DynamoDB Local: for the tests that run on both."""
    if request.param == "moto":
        return request.getfixturevalue("moto_client")
    return local_client(request.getfixturevalue("dynamodb_local").endpoint)
