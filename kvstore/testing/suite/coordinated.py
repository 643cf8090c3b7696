"""Contract part 2, "Conditional writes, versions, counters", "Expiry" and "Transactions" as one mixin.

Not yet part of ``ContractTests``: a backend runs it beside the suite with
``class TestMine(CoordinatedWriteTests, BackendFixtures)`` until the features land everywhere.
"""

from __future__ import annotations

from kvstore.testing.suite.conditional import AbstractConditionalWriteTests
from kvstore.testing.suite.counters import AbstractIncrementTests
from kvstore.testing.suite.expiry import AbstractExpiryTests
from kvstore.testing.suite.transactions import AbstractTransactionTests
from kvstore.testing.suite.versions import AbstractVersionTests

__all__ = [
    "AbstractConditionalWriteTests",
    "AbstractExpiryTests",
    "AbstractIncrementTests",
    "AbstractTransactionTests",
    "AbstractVersionTests",
    "CoordinatedWriteTests",
]


class CoordinatedWriteTests(
    AbstractConditionalWriteTests,
    AbstractVersionTests,
    AbstractIncrementTests,
    AbstractExpiryTests,
    AbstractTransactionTests,
):
    """Every test of coordinated writes: ``expect``, versions, ``increment``, expiry, transactions."""
