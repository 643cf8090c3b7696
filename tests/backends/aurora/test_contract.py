"""The whole contract suite on the aurora backend, against a real PostgreSQL server."""

from __future__ import annotations

from typing import Any

import pytest

from kvstore.testing import BackendFixtures, ContractTests


class TestAuroraContract(ContractTests, BackendFixtures):
    backend = "aurora"

    @pytest.fixture
    def store_options(self, aurora_options: dict[str, Any]) -> dict[str, Any]:
        return aurora_options
