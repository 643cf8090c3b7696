"""The differential test has teeth: it catches subtly broken backends on its own."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence

import pytest
from hypothesis import settings

from kvstore.backend import Backend, Key, Plan, Record
from kvstore.conditions import Absent, Eq
from kvstore.hookspecs import hookimpl
from kvstore.testing import registered
from kvstore.writes import Update, Write
from tests.test_plugin_backend import TinyBackend, TinyDriver

pytest_plugins = ["pytester"]


def loose_matches(record: Record, plan: Plan) -> bool:
    """Python's own ``==``: ``True == 1`` and ``[1] == [True]``, as a careless backend compares."""
    for name, condition in plan.filters:
        if isinstance(condition, Absent):
            if name in record:
                return False
        elif isinstance(condition, Eq):
            if record.get(name, object()) != condition.value:
                return False
        elif not condition.matches(name in record, record.get(name)):
            return False
    return True


class LooseEquality(TinyDriver):
    """Broken: filters compare with ``==``, so a bool equals a number (in counts and removes:
    core re-checks what reads return, so only what the driver counts or deletes shows it)."""

    def _selected(self, plan: Plan) -> list[Key]:
        table = self._table()
        return [key for key, record in table.items() if loose_matches(record, plan)]


class RemoveInFirstOnly(TinyDriver):
    """Broken: deleting the records of several keys deletes the first key's only."""

    def delete(self, plan: Plan) -> int:
        if plan.access == "key" and len(plan.keys) > 1:
            plan.keys = plan.keys[:1]
        return super().delete(plan)


class UpdateKeepsRemoved(TinyDriver):
    """Broken: ``update`` ignores the fields it should remove."""

    def write(self, op: Write) -> Record | None:
        if isinstance(op, Update):
            op.removes = ()
        return super().write(op)


class PutManyFirstWins(TinyDriver):
    """Broken: within one ``put_many`` batch, an existing record is not replaced."""

    def put_many(self, records: Sequence[Record]) -> None:
        with self.lock:
            table = self._table()
            for record in records:
                table.setdefault(self.schema.key_of(record), copy.deepcopy(record))


SUBTLE = {
    "diff_loose_equality": LooseEquality,
    "diff_remove_in_first_only": RemoveInFirstOnly,
    "diff_update_keeps_removed": UpdateKeepsRemoved,
    "diff_put_many_first_wins": PutManyFirstWins,
}


class SubtlePlugin:
    """Registers the subtly broken backends."""

    @hookimpl
    def kvstore_register_backends(self, register: Callable[[Backend], None]) -> None:
        register(TinyBackend("diff_tiny", TinyDriver))
        for name, driver in SUBTLE.items():
            register(TinyBackend(name, driver))


@pytest.fixture(scope="module", autouse=True)
def subtle_plugin() -> Iterator[None]:
    """Register the subtly broken backends for this module's tests."""
    with registered(SubtlePlugin(), "subtle-test-plugin"):
        yield


DIFFERENTIAL_ON = """
from hypothesis import Phase, settings

from kvstore.testing import BackendFixtures
from kvstore.testing.suite import AbstractDifferentialTests


class TestDifferential(AbstractDifferentialTests, BackendFixtures):
    backend = {name!r}
    differential_examples = 300


# Finding the failure is the point here; shrinking it would only take time.
settings.register_profile("no_shrink", phases=[Phase.generate])
settings.load_profile("no_shrink")
"""


def _run(pytester: pytest.Pytester, name: str) -> dict[str, int]:
    pytester.makepyfile(test_differential_run=DIFFERENTIAL_ON.format(name=name))
    try:
        result = pytester.runpytest_inprocess(
            "-p", "kvstore.testing.plugin", "-p", "no:cacheprovider", "--hypothesis-seed=0"
        )
    finally:
        settings.load_profile("default")
    return result.parseoutcomes()


@pytest.mark.parametrize("name", sorted(SUBTLE))
def test_the_differential_test_alone_catches_a_subtle_bug(
    pytester: pytest.Pytester, name: str
) -> None:
    assert _run(pytester, name).get("failed") == 1


def test_the_differential_test_passes_a_correct_backend(pytester: pytest.Pytester) -> None:
    assert _run(pytester, "diff_tiny").get("passed") == 1
