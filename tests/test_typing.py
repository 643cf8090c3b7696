"""Typed records: ``create_store(..., record_type=User)`` gives a ``Store[User]`` that mypy checks."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api", reason="mypy is in the dev extra")

USER_MODULE = textwrap.dedent(
    """
    from typing import Any, TypedDict

    from kvstore import Store, create_store
    from kvstore.store import RecordStore


    class User(TypedDict, total=False):
        id: str
        email: str
        age: int


    users = create_store("users", record_type=User)
    found: User = users.find({"id": "u1"})
    many: list[User] = users.find_all()
    stored: User = users.put({"id": "u1", "email": "ada@example.com", "age": 36})
    untyped = create_store("teams")
    team: dict[str, Any] = untyped.find({"id": "t1"})
    plain: Store = untyped


    def conforms(store: RecordStore) -> Store:
        return store  # RecordStore follows the Store protocol
    """
)


def _check(tmp_path: Path, code: str) -> tuple[str, int]:
    module = tmp_path / "user_module.py"
    module.write_text(code)
    out, err, status = mypy_api.run(
        ["--strict", "--no-incremental", "--cache-dir", str(tmp_path / ".mypy"), str(module)]
    )
    return out + err, status


@pytest.mark.slow
def test_a_typed_store_returns_its_record_type_and_the_module_checks(tmp_path: Path) -> None:
    output, status = _check(tmp_path, USER_MODULE)
    assert status == 0, output


@pytest.mark.slow
@pytest.mark.parametrize(
    ("line", "complaint"),
    [
        ('users.put({"id": "u1", "emial": "x"})', '"emial"'),
        ('print(users.find({"id": "u1"})["nmae"])', '"nmae"'),
        ('users.put({"id": "u1", "age": "36"})', "age"),
        ('wrong: int = users.find({"id": "u1"})', "User"),
    ],
)
def test_a_misspelt_or_mistyped_field_is_a_type_error(
    tmp_path: Path, line: str, complaint: str
) -> None:
    output, status = _check(tmp_path, USER_MODULE + line + "\n")
    assert status == 1, output
    assert complaint in output
