"""The shared contract suite: every rule of CONTRACT.md as tests any backend can run.

Mixins named ``Abstract*Tests`` hold the tests (they are not collected on their own); a backend's
test file combines ``ContractTests`` with a fixtures class (see ``kvstore.testing.fixtures``) and
enables the plugin with ``pytest_plugins = ["kvstore.testing.plugin"]``.
"""

from __future__ import annotations

from kvstore.testing.fixtures import BackendFixtures, StoreFactory, StoreFixtures, unique_kind
from kvstore.testing.suite import ContractTests

__all__ = ["BackendFixtures", "ContractTests", "StoreFactory", "StoreFixtures", "unique_kind"]
