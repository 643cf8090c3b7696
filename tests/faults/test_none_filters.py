"""Issue 12, defect 8: ``None`` where the contract needs a filters dict is ``InvalidArgument``.

Today ``RecordStore._filters`` turns ``None`` into ``{}``, so ``find(None)`` matches every record and
``find_or_create(None, {"id": "zz"})`` returned an unrelated one. Only ``find_all``, ``count`` and
``iter_all`` default to every record, when their argument is omitted. A core rule: the same on
every backend, before any I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kvstore import InvalidArgument, Store, create_store
from tests.faults.conftest import new_kind
from tests.faults.helpers import outcome_of

pytestmark = pytest.mark.timeout(60)

BACKENDS = ["memory", "sqlite", "aurora", "dynamo"]

UNRELATED = {"id": "u1", "note": "unrelated"}


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    """A store of a new kind holding one unrelated record, on each backend."""
    backend: str = request.param
    made: Store
    if backend in ("memory", "sqlite"):
        monkeypatch.setenv("KVSTORE_SQLITE_PATH", str(tmp_path / "none.sqlite3"))
        made = create_store(new_kind("n"), backend=backend)
        made.ensure()
    else:
        factory: Callable[..., Store] = request.getfixturevalue(backend)
        made = factory()
    made.put(UNRELATED)
    return made


CALLS: dict[str, Callable[[Store], Any]] = {
    "find": lambda store: store.find(None),  # type: ignore[arg-type]
    "find_or_create": lambda store: store.find_or_create(None, {"id": "zz"}),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("call", CALLS)
def test_none_filters_are_invalid_argument(store: Store, call: str) -> None:
    outcome = outcome_of(lambda: CALLS[call](store))
    assert isinstance(outcome.error, InvalidArgument), f"{call}(None): {outcome.describe()}"
    assert store.find_all() == [UNRELATED], "the call wrote something"


def test_remove_with_none_filters_stays_invalid_argument(store: Store) -> None:
    with pytest.raises(InvalidArgument):
        store.remove(None)  # type: ignore[arg-type]
    assert store.find_all() == [UNRELATED]


def test_omitted_filters_still_mean_every_record(store: Store) -> None:
    assert store.find_all() == [UNRELATED]
    assert store.count() == 1
    assert list(store.iter_all()) == [UNRELATED]


@pytest.mark.parametrize("call", CALLS)
def test_none_filters_are_refused_before_any_io(call: str) -> None:
    missing = create_store(new_kind("n"), backend="memory")  # its table was never made
    outcome = outcome_of(lambda: CALLS[call](missing))
    assert isinstance(outcome.error, InvalidArgument), f"{call}(None): {outcome.describe()}"
