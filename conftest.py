"""Root pytest configuration: the contract suite's plugin and the servers shared by every test dir."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from kvstore.testing._servers.dynamodb_local import DynamoDBLocal

pytest_plugins = ["kvstore.testing.plugin"]


@pytest.fixture(scope="session")
def dynamodb_local(pytestconfig: pytest.Config) -> Iterator[DynamoDBLocal]:
    """One DynamoDB Local for the whole run (installed and started when needed; never skipped)."""
    from kvstore.testing._servers.dynamodb_local import start

    server = start(Path(pytestconfig.rootpath) / ".cache" / "dynamodb-local")
    yield server
    server.stop()
