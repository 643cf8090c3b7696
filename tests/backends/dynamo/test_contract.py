"""The whole contract suite on the dynamo backend: on moto, then on DynamoDB Local."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from kvstore.testing import BackendFixtures, ContractTests
from tests.backends.dynamo.conftest import local_client


class TestDynamoMotoContract(ContractTests, BackendFixtures):
    backend = "dynamo"
    unsupported: ClassVar[dict[str, str]] = {
        "atomic_conditional_writes": "moto's conditional writes are not atomic across threads",
        "exact_item_size": "moto sizes numbers its own way",
    }

    @pytest.fixture
    def store_options(self, class_moto_client: Any) -> dict[str, Any]:
        return {"client": class_moto_client}


ADDS_INDEXES = frozenset({"test_ensure_adds_missing_indexes_to_an_existing_kind"})
"""Tests that add an index to an existing table: on DynamoDB Local, they run on a server whose
TTL sweeper never ran (``index_local``: DynamoDB Local 3.3.0 never finishes such an index once it
has)."""


class TestDynamoLocalContract(ContractTests, BackendFixtures):
    backend = "dynamo"

    @pytest.fixture
    def store_options(
        self, request: pytest.FixtureRequest, shared_local_client: Any
    ) -> dict[str, Any]:
        if request.node.originalname in ADDS_INDEXES:
            return {"client": local_client(request.getfixturevalue("index_local").endpoint)}
        return {"client": shared_local_client}
