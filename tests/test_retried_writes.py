"""A write whose first attempt was applied, but whose answer was lost, is a success: the driver
reports ``Conflict(current, retried=True)`` and core sees its own record there (issue 12, #1)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from kvstore import AlreadyExists, create_store
from kvstore.hookspecs import hookimpl
from kvstore.testing import registered, unique_kind
from tests.fakes import LostAnswers, TinyBackend, TinyDriver


class Plugin:
    @hookimpl
    def kvstore_register_backends(self, register: Any) -> None:
        register(TinyBackend("lost_answers", LostAnswers))
        register(TinyBackend("answers_kept", TinyDriver))


@pytest.fixture(autouse=True)
def plugin() -> Iterator[None]:
    with registered(Plugin(), "lost-answers-plugin"):
        yield


def test_a_create_applied_by_its_lost_first_attempt_returns_the_record() -> None:
    store = create_store(unique_kind(), backend="lost_answers")
    store.ensure()
    assert store.create({"id": "a", "n": 1}) == {"id": "a", "n": 1}
    assert store.find_all() == [{"id": "a", "n": 1}]


def test_find_or_create_applied_by_its_lost_first_attempt_counts_as_created() -> None:
    store = create_store(unique_kind(), backend="lost_answers")
    store.ensure()
    # The filters do not match the record: were the refusal taken for another writer's, the
    # caller would get AlreadyExists for its own record.
    found, created = store.find_or_create_outcome({"email": "x"}, {"id": "a", "n": 1})  # type: ignore[attr-defined]
    assert (found, created) == ({"id": "a", "n": 1}, True)


def test_a_refusal_by_another_record_is_still_already_exists() -> None:
    store = create_store(unique_kind(), backend="answers_kept")
    store.ensure()
    store.put({"id": "a", "n": 0})
    with pytest.raises(AlreadyExists):
        store.create({"id": "a", "n": 1})
