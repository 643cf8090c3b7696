"""The whole contract suite on the dynamo backend: on moto, then on DynamoDB Local."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from kvstore.testing import BackendFixtures, ContractTests


class TestDynamoMotoContract(ContractTests, BackendFixtures):
    backend = "dynamo"
    unsupported: ClassVar[dict[str, str]] = {
        "atomic_conditional_writes": "moto's conditional writes are not atomic across threads",
        "exact_item_size": "moto sizes numbers its own way",
    }

    @pytest.fixture
    def store_options(self, class_moto_client: Any) -> dict[str, Any]:
        return {"client": class_moto_client}


class TestDynamoLocalContract(ContractTests, BackendFixtures):
    backend = "dynamo"

    @pytest.fixture
    def store_options(self, shared_local_client: Any) -> dict[str, Any]:
        return {"client": shared_local_client}
