"""Fixtures of the CLI tests: a runner on a fresh sqlite file, STORE_BACKEND unset."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from kvstore.cli import cli

Run = Callable[..., Result]


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The sqlite file the command uses by default in this test."""
    path = tmp_path / "default.sqlite3"
    monkeypatch.delenv("STORE_BACKEND", raising=False)
    monkeypatch.setenv("KVSTORE_SQLITE_PATH", str(path))
    return path


@pytest.fixture
def run(db: Path) -> Run:
    """Run ``kvstore ARGS...`` in-process; ``input`` feeds stdin."""

    def invoke(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)

    return invoke


def lines(text: str) -> list[Any]:
    """The JSON lines of ``text``."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]
