"""The shared contract suite: every rule of CONTRACT.md as tests any backend can run.

Mixins named ``Abstract*Tests`` hold the tests (they are not collected on their own); a backend's
test file combines ``ContractTests`` with a fixtures class (see ``kvstore.testing.fixtures``) and
enables the plugin with ``pytest_plugins = ["kvstore.testing.plugin"]`` in its root conftest::

    class TestMine(ContractTests, BackendFixtures):
        backend = "mine"
        unsupported = {"exact_item_size": "why the server cannot"}  # see CAPABILITIES
        many_records = 300  # records of the paging tests
        differential_examples = 30  # hypothesis examples of the differential test

The differential test compares every call's result and error with the memory backend's.
"""

from __future__ import annotations

from kvstore.testing.fixtures import (
    CAPABILITIES,
    BackendFixtures,
    StoreFactory,
    StoreFixtures,
    registered,
    unique_kind,
)
from kvstore.testing.suite import ContractTests

__all__ = [
    "CAPABILITIES",
    "BackendFixtures",
    "ContractTests",
    "StoreFactory",
    "StoreFixtures",
    "registered",
    "unique_kind",
]
