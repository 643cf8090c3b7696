"""The whole contract suite on a store moving a kind from memory to sqlite, at each of the six
stages; after each test the two sides are checked (``MigratingFixtures``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kvstore.testing import ContractTests
from kvstore.testing.migrating import MigratingFixtures


@pytest.fixture(scope="session")
def new_side_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One sqlite file for the whole suite: every test uses its own kinds."""
    return tmp_path_factory.mktemp("migration") / "new.sqlite3"


class _MemoryToSqlite(MigratingFixtures):
    old_backend = "memory"
    new_backend = "sqlite"

    @pytest.fixture
    def migration_options(self, new_side_file: Path) -> dict[str, Any]:
        return {"path": str(new_side_file)}


class TestOff(ContractTests, _MemoryToSqlite):
    stage = "off"


class TestDualwrite(ContractTests, _MemoryToSqlite):
    stage = "dualwrite"


class TestShadow(ContractTests, _MemoryToSqlite):
    stage = "shadow"


class TestLive(ContractTests, _MemoryToSqlite):
    stage = "live"


class TestRampdown(ContractTests, _MemoryToSqlite):
    stage = "rampdown"


class TestComplete(ContractTests, _MemoryToSqlite):
    stage = "complete"
