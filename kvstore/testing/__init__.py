"""The shared contract suite: every rule of CONTRACT.md as tests any backend can run.

Mixins named ``Abstract*Tests`` hold the tests (they are not collected on their own); a backend's
test file combines ``ContractTests`` with a fixtures class (see ``kvstore.testing.fixtures``) and
enables the plugin with ``pytest_plugins = ["kvstore.testing.plugin"]`` in its root conftest::

    class TestMine(ContractTests, BackendFixtures):
        backend = "mine"
        unsupported = {"exact_item_size": "why the server cannot"}  # see Capabilities
        many_records = 300  # records of the paging tests
        differential_examples = 30  # hypothesis examples of the differential test

The differential test compares every call's result and error with the memory backend's. A store
moving a kind between two backends runs the same suite with ``MigratingFixtures``
(``kvstore.testing.migrating``), at each stage.
"""

from __future__ import annotations

import pytest

# Before the suite is imported: its assertions then show the values that failed (pytest rewrites
# assertions only in test modules and in modules registered this way).
pytest.register_assert_rewrite(
    "kvstore.testing.suite", "kvstore.testing.fixtures", "kvstore.testing.migrating"
)

from kvstore.testing.fixtures import (  # noqa: E402
    CAPABILITIES,
    BackendFixtures,
    Capabilities,
    StoreFactory,
    StoreFixtures,
    registered,
    unique_kind,
)
from kvstore.testing.migrating import MigratingFixtures  # noqa: E402
from kvstore.testing.suite import ContractTests  # noqa: E402

__all__ = [
    "CAPABILITIES",
    "BackendFixtures",
    "Capabilities",
    "ContractTests",
    "MigratingFixtures",
    "StoreFactory",
    "StoreFixtures",
    "registered",
    "unique_kind",
]
