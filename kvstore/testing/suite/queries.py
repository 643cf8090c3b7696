"""Contract part 2's query sections (conditions, indexes, pages) combined as ``QueryTests``.

Not yet part of ``ContractTests``: a backend's test class adds it once the features exist::

    class TestMineQueries(QueryTests, BackendFixtures):
        backend = "mine"
"""

from __future__ import annotations

from kvstore.testing.suite.conditions import AbstractConditionTests
from kvstore.testing.suite.cursors import AbstractCursorTests
from kvstore.testing.suite.indexes import AbstractIndexTests
from kvstore.testing.suite.pages import AbstractPageTests
from kvstore.testing.suite.scans import AbstractScanGuardTests

__all__ = [
    "AbstractConditionTests",
    "AbstractCursorTests",
    "AbstractIndexTests",
    "AbstractPageTests",
    "AbstractScanGuardTests",
    "QueryTests",
]


class QueryTests(
    AbstractConditionTests,
    AbstractIndexTests,
    AbstractScanGuardTests,
    AbstractPageTests,
    AbstractCursorTests,
):
    """Conditions in filters, indexes and how a read is served, pages."""
