"""The README's quickstart runs as written, and says what it returns."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest

from kvstore.backends.memory import driver as memory

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_quickstart_runs_and_its_comment_tells_the_truth(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    found = re.search(r"## Quickstart\n\n```python\n(.*?)```", README.read_text(), re.S)
    assert found, "README.md has no Quickstart code block"
    code = found.group(1)
    monkeypatch.setenv("STORE_BACKEND", "memory")
    # The quickstart names its kinds; give it a memory backend of its own, as a fresh process has.
    monkeypatch.setattr(memory, "_tables", {})
    namespace: dict[str, Any] = {}
    exec(compile(code, "README.md quickstart", "exec"), namespace)
    claimed = re.search(r'teams\.find\(\{"id": "t1"\}\)\s+# (\{.*\})', code)
    assert claimed, "the quickstart no longer shows what find returns"
    assert namespace["teams"].find({"id": "t1"}) == ast.literal_eval(claimed.group(1))
    assert namespace["members"].find_all() == [{"team_id": "t1", "seq": 1, "name": "Ada"}]
