"""The pytest plugin of the contract suite: ``--kvstore-backend`` and the fixtures it needs.

Enable it in a ``conftest.py`` with ``pytest_plugins = ["kvstore.testing.plugin"]``.
"""

from __future__ import annotations

import os

import pytest

__all__ = ["kvstore_backend", "pytest_addoption"]


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--kvstore-backend``."""
    parser.addoption(
        "--kvstore-backend",
        default=None,
        help="backend the contract suite runs on when a test class names none "
        "(default: STORE_BACKEND, else memory)",
    )


@pytest.fixture(scope="session")
def kvstore_backend(request: pytest.FixtureRequest) -> str:
    """The backend chosen for this run: ``--kvstore-backend``, else ``STORE_BACKEND``, else memory."""
    chosen = request.config.getoption("--kvstore-backend")
    return str(chosen or os.environ.get("STORE_BACKEND") or "memory")
