"""Every ``Abstract*Tests`` mixin of the contract suite, combined as ``ContractTests``.

One module a concern of CONTRACT.md; each mixin only needs the ``make_store`` fixture (see
``kvstore.testing.fixtures``). Tests needing what some servers lack call ``self.require(...)``.
"""

from __future__ import annotations

from kvstore.testing.suite.absent import AbstractAbsentTests
from kvstore.testing.suite.basics import AbstractBasicTests
from kvstore.testing.suite.batch import AbstractBatchTests
from kvstore.testing.suite.concurrency import AbstractConcurrencyTests
from kvstore.testing.suite.coordinated import CoordinatedWriteTests
from kvstore.testing.suite.creating import AbstractCreatingTests
from kvstore.testing.suite.differential import AbstractDifferentialTests
from kvstore.testing.suite.errors import AbstractErrorTests
from kvstore.testing.suite.filters import AbstractFilterTests
from kvstore.testing.suite.keys import AbstractKeyTests
from kvstore.testing.suite.names import AbstractNameTests
from kvstore.testing.suite.numbers import AbstractNumberTests
from kvstore.testing.suite.paging import AbstractPagingTests
from kvstore.testing.suite.queries import QueryTests
from kvstore.testing.suite.reads import AbstractReadTests
from kvstore.testing.suite.sizes import AbstractSizeTests
from kvstore.testing.suite.sorting import AbstractSortingTests
from kvstore.testing.suite.validate import AbstractValidateTests
from kvstore.testing.suite.values import AbstractValueTests
from kvstore.testing.suite.writes import AbstractWriteTests

__all__ = [
    "AbstractAbsentTests",
    "AbstractBasicTests",
    "AbstractBatchTests",
    "AbstractConcurrencyTests",
    "AbstractCreatingTests",
    "AbstractDifferentialTests",
    "AbstractErrorTests",
    "AbstractFilterTests",
    "AbstractKeyTests",
    "AbstractNameTests",
    "AbstractNumberTests",
    "AbstractPagingTests",
    "AbstractReadTests",
    "AbstractSizeTests",
    "AbstractSortingTests",
    "AbstractValidateTests",
    "AbstractValueTests",
    "AbstractWriteTests",
    "ContractTests",
    "CoordinatedWriteTests",
    "QueryTests",
]


class ContractTests(
    AbstractBasicTests,
    AbstractCreatingTests,
    AbstractValueTests,
    AbstractNumberTests,
    AbstractAbsentTests,
    AbstractNameTests,
    AbstractKeyTests,
    AbstractSizeTests,
    AbstractReadTests,
    AbstractWriteTests,
    AbstractFilterTests,
    AbstractSortingTests,
    AbstractBatchTests,
    AbstractPagingTests,
    AbstractValidateTests,
    AbstractErrorTests,
    AbstractConcurrencyTests,
    AbstractDifferentialTests,
    QueryTests,
    CoordinatedWriteTests,
):
    """The whole contract suite; combine it with a fixtures class to run it on a backend."""
