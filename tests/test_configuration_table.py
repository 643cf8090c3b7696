"""The README's configuration table lists every environment variable the library reads, and the
test servers' variables are in its development section: the code is read for them, so a variable
added without a line in the README fails here."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
PACKAGES = ("kvstore", "kvstore_aurora", "kvstore_dynamo")
NAME = re.compile(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+_?$")
"""An environment variable's name (``DB_HOST``), or a prefix of one (``LOCAL_DB_``)."""
READERS = {"get", "getenv", "pop", "setdefault"}


def _variables(path: Path) -> set[str]:
    """Names given to ``env.get(...)``/``os.getenv(...)``/``environ[...]`` in ``path``, and the
    parts of names built as ``prefix + "HOST"``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        argument: ast.expr | None = None
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            if any(name.endswith("VARIABLE") for name in names):  # SAMPLE_VARIABLE = "STORE_..."
                argument = node.value
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in READERS and node.args:
                argument = node.args[0]
        elif isinstance(node, ast.Subscript):
            argument = node.slice
        if argument is None:
            continue
        if isinstance(argument, ast.BinOp) and isinstance(argument.right, ast.Constant):
            argument = argument.right  # prefix + "HOST": DB_HOST and LOCAL_DB_HOST
            if isinstance(argument.value, str) and argument.value.isupper():
                found.add("DB_" + argument.value)
            continue
        value = argument.value if isinstance(argument, ast.Constant) else None
        if isinstance(value, str) and NAME.match(value):
            found.add(value)
    return found


def _read_by(part: str) -> set[str]:
    names: set[str] = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            inside = "testing" in path.relative_to(ROOT).parts
            if inside == (part == "testing"):
                names |= _variables(path)
    return names


def _section(title: str) -> str:
    return README.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_the_code_reads_variables_this_test_can_see() -> None:
    library = _read_by("library")
    assert {"STORE_BACKEND", "DATABASE_URL", "KVSTORE_TIMEOUT", "DB_HOST"} <= library


def test_every_variable_the_library_reads_is_in_the_configuration_table() -> None:
    table = _section("Configuration")
    missing = sorted(name for name in _read_by("library") if f"`{name}`" not in table)
    # DB_* names built from a prefix are listed as their DB_ form (LOCAL_DB_* via SLS_STAGE).
    missing = [name for name in missing if f"`{name.replace('LOCAL_', '')}`" not in table]
    assert missing == []


def test_every_variable_the_test_servers_read_is_in_the_development_section() -> None:
    section = _section("Development")
    missing = sorted(name for name in _read_by("testing") if f"`{name}`" not in section)
    assert missing == []
