"""Core names no backend: no module of ``kvstore/`` outside ``kvstore/testing/`` imports a driver
library or mentions a backend by name, so ``kvstore_aurora`` and ``kvstore_dynamo`` could be
published apart with no change to core."""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parent.parent / "kvstore"
FORBIDDEN = re.compile(r"\b(aurora|dynamo|psycopg|botocore|boto3|sqlalchemy|pynamodb)\b", re.I)


def _core_modules() -> list[Path]:
    return sorted(p for p in CORE.rglob("*.py") if "testing" not in p.relative_to(CORE).parts)


def _mentions(path: Path) -> list[str]:
    """Every name, string or comment of ``path`` that names a backend or a driver library."""
    found = []
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline)
    for token in tokens:
        named = token.type in (tokenize.NAME, tokenize.STRING, tokenize.COMMENT)
        if named and FORBIDDEN.search(token.string):
            where = f"{path.relative_to(CORE.parent)}:{token.start[0]}"
            found.append(f"{where}: {token.string[:60]}")
    return found


def test_core_has_modules_to_check() -> None:
    assert len(_core_modules()) > 15
    assert CORE / "store.py" in _core_modules()


@pytest.mark.parametrize("path", _core_modules(), ids=lambda p: str(p.relative_to(CORE)))
def test_a_core_module_names_no_backend_and_no_driver(path: Path) -> None:
    assert _mentions(path) == []


def test_the_check_catches_a_mention(tmp_path: Path) -> None:
    planted = tmp_path / "planted.py"
    planted.write_text('import json\nNAME = "aurora"  # talks to psycopg\n', encoding="utf-8")
    original = CORE
    try:
        globals()["CORE"] = tmp_path
        assert len(_mentions(planted)) == 2
    finally:
        globals()["CORE"] = original
