"""Fixtures of the dynamo tests: moto clients (one mock per test) and one DynamoDB Local per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from kvstore.testing._servers.dynamodb_local import DynamoDBLocal

REGION = "us-east-1"
FAKE_CREDENTIALS = {"aws_access_key_id": "kvstore", "aws_secret_access_key": "kvstore-test"}


def local_client(endpoint: str, **config: Any) -> Any:
    """A fresh low-level client on DynamoDB Local."""
    return boto3.client(
        "dynamodb",
        region_name=REGION,
        endpoint_url=endpoint,
        config=Config(**config) if config else None,
        aws_access_key_id=FAKE_CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=FAKE_CREDENTIALS["aws_secret_access_key"],
    )


@pytest.fixture(scope="session")
def shared_local_client(dynamodb_local: DynamoDBLocal) -> Any:
    """The client the contract suite's stores share on DynamoDB Local."""
    return local_client(dynamodb_local.endpoint)


@pytest.fixture(scope="session")
def index_local(pytestconfig: pytest.Config) -> Iterator[DynamoDBLocal]:
    """A second DynamoDB Local, for tests that add indexes to existing tables.

    DynamoDB Local 3.3.0 never finishes a global secondary index added by UpdateTable (it stays
    CREATING, and a Query on it fails with InternalFailure) once its TTL sweeper has been deleting
    expired items of other tables, which the expiry tests make it do. On this server no table
    has TTL. (With DYNAMODB_LOCAL_ENDPOINT set, it is that same server.)
    """
    from kvstore.testing._servers.dynamodb_local import start

    cache = Path(pytestconfig.rootpath) / ".cache" / "dynamodb-local"
    server = start(cache, log_path=cache / "server-indexes.log")
    yield server
    server.stop()


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


@pytest.fixture(params=["moto", "local"])
def index_client(request: pytest.FixtureRequest) -> Any:
    """As ``client``, on the DynamoDB Local without TTL (``index_local``) for tests that add
    indexes to existing tables."""
    if request.param == "moto":
        return request.getfixturevalue("moto_client")
    return local_client(request.getfixturevalue("index_local").endpoint)
