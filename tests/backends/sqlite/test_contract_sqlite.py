"""The whole contract suite on the sqlite backend, in one database file per test session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kvstore.testing import BackendFixtures, ContractTests


@pytest.fixture(scope="session")
def sqlite_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One file for the whole suite: every test uses its own kinds, hence its own tables."""
    return tmp_path_factory.mktemp("sqlite") / "contract.sqlite3"


class TestSqliteContract(ContractTests, BackendFixtures):
    backend = "sqlite"

    @pytest.fixture
    def store_options(self, sqlite_file: Path) -> dict[str, Any]:
        return {"path": str(sqlite_file)}
