"""Every hook a plugin can implement has a test of its own, named ``test_hook_<hook name>``
somewhere under tests/ (as datasette does): a new hookspec without one fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kvstore import hookspecs

TESTS = Path(__file__).resolve().parent


def _hookspecs() -> list[str]:
    return sorted(
        name
        for name, value in vars(hookspecs).items()
        if callable(value) and hasattr(value, "kvstore_spec")
    )


def test_hookspecs_are_found() -> None:
    assert "kvstore_register_backends" in _hookspecs()
    assert "kvstore_migration_event" in _hookspecs()


@pytest.mark.parametrize("hook", _hookspecs())
def test_each_hookspec_has_a_test_of_its_own(hook: str) -> None:
    pattern = re.compile(rf"^\s*def test_hook_{hook}\b", re.M)
    found = [p for p in TESTS.rglob("test_*.py") if pattern.search(p.read_text(encoding="utf-8"))]
    assert found, f"no test named test_hook_{hook}... under tests/: every hook needs one"
