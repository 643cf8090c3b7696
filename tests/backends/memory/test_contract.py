"""The whole contract suite on the memory backend, the reference implementation."""

from __future__ import annotations

from kvstore.testing import BackendFixtures, ContractTests


class TestMemoryContract(ContractTests, BackendFixtures):
    backend = "memory"
