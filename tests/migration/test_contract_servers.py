"""The whole contract suite on a store moving a kind from DynamoDB Local (the old side) to
PostgreSQL (the new side, backend ``aurora``), on the real servers, at each of the six stages; after
each test the two sides are checked (``MigratingFixtures``).

Capabilities: the migrating store can honour no more than its weaker side, so ``unsupported`` is
what either side's own contract class declares (DynamoDB Local's and aurora's), each skip keeping
its reason; a test that adds an index to an existing kind runs its DynamoDB side on the server
whose TTL sweeper never ran, as the DynamoDB Local contract class does (``ADDS_INDEXES``).

Runtime: the whole suite at all six stages (6,006 tests) took 6 to 8.5 minutes on a 2-core
machine shared with other test runs (about 60 to 75 s a stage, plus up to a minute of teardown
dropping the run's tables), which keeps CI well under its 90 minutes, so no stage runs a subset:
``off`` and ``complete`` also check that the side a stage does not use is never called.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from kvstore.testing import ContractTests
from kvstore.testing.migrating import MigratingFixtures
from tests.backends.aurora import test_contract as aurora_contract
from tests.backends.dynamo import test_contract as dynamo_contract
from tests.backends.dynamo.conftest import index_local, local_client
from tests.migration.conftest import Servers

__all__ = ["index_local"]  # the fixture, for the tests in ADDS_INDEXES


@pytest.fixture(scope="session")
def old_side_client(servers: Servers) -> Any:
    """The client every store's DynamoDB side shares on DynamoDB Local."""
    return local_client(servers.endpoint)


class _DynamoLocalToPostgres(MigratingFixtures):
    old_backend = "dynamo"
    new_backend = "aurora"
    unsupported: ClassVar[dict[str, str]] = {
        **dynamo_contract.TestDynamoLocalContract.unsupported,
        **aurora_contract.TestAuroraContract.unsupported,
    }

    @pytest.fixture
    def store_options(self, request: pytest.FixtureRequest, old_side_client: Any) -> dict[str, Any]:
        if request.node.originalname in dynamo_contract.ADDS_INDEXES:
            return {"client": local_client(request.getfixturevalue("index_local").endpoint)}
        return {"client": old_side_client}

    @pytest.fixture
    def migration_options(self, servers: Servers) -> dict[str, Any]:
        return {"settings": servers.pg_settings}


class TestOff(ContractTests, _DynamoLocalToPostgres):
    stage = "off"


class TestDualwrite(ContractTests, _DynamoLocalToPostgres):
    stage = "dualwrite"


class TestShadow(ContractTests, _DynamoLocalToPostgres):
    stage = "shadow"


class TestLive(ContractTests, _DynamoLocalToPostgres):
    stage = "live"


class TestRampdown(ContractTests, _DynamoLocalToPostgres):
    stage = "rampdown"


class TestComplete(ContractTests, _DynamoLocalToPostgres):
    stage = "complete"
