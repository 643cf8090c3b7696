"""Fixtures of the CLI tests: a runner on a fresh sqlite file, STORE_BACKEND unset; the console
script for the tests that need a real process (stdin, exit codes, pipes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from kvstore.cli import cli

Run = Callable[..., Result]
Script = Callable[..., "subprocess.CompletedProcess[str]"]

KVSTORE = Path(sys.executable).with_name("kvstore")
"""The ``kvstore`` console script of the interpreter running the tests (the project's .venv)."""


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The sqlite file the command uses by default in this test."""
    path = tmp_path / "default.sqlite3"
    monkeypatch.delenv("STORE_BACKEND", raising=False)
    monkeypatch.delenv("STORE_MIGRATION", raising=False)
    monkeypatch.setenv("KVSTORE_SQLITE_PATH", str(path))
    return path


@pytest.fixture
def run(db: Path) -> Run:
    """Run ``kvstore ARGS...`` in-process; ``input`` feeds stdin."""

    def invoke(*args: str, input: str | bytes | None = None) -> Result:
        return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)

    return invoke


@pytest.fixture
def script(db: Path, tmp_path: Path) -> Script:
    """Run the ``kvstore`` console script in a process of its own (in ``tmp_path``, on ``db``);
    ``input`` feeds stdin."""
    if not KVSTORE.exists():
        pytest.fail(f"no console script at {KVSTORE}: install the project (pip install -e .)")

    def invoke(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(KVSTORE), *args],
            input=input,
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=dict(os.environ),
            timeout=120,
        )

    return invoke


def lines(text: str) -> list[Any]:
    """The JSON lines of ``text``."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]
