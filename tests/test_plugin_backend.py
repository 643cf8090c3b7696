"""A third-party backend, registered through pluggy, runs the contract suite; broken ones fail it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from kvstore import ConfigError, create_store
from kvstore.backend import Backend
from kvstore.hookspecs import hookimpl
from kvstore.testing import BackendFixtures, ContractTests, registered
from tests.fakes import CreateOverwrites, NoTableCheck, TinyBackend, TinyDriver, UpdateReplaces

pytest_plugins = ["pytester"]


BROKEN = {"tiny_update_replaces": UpdateReplaces, "tiny_create_overwrites": CreateOverwrites}
BROKEN["tiny_no_table_check"] = NoTableCheck


class TinyPlugin:
    """The plugin object, registered as a third party would be (pluggy, not core edits)."""

    @hookimpl
    def kvstore_register_backends(self, register: Callable[[Backend], None]) -> None:
        register(TinyBackend("tiny", TinyDriver))
        for name, driver in BROKEN.items():
            register(TinyBackend(name, driver))


@pytest.fixture(scope="module", autouse=True)
def tiny_plugin() -> Iterator[None]:
    """Register the tiny backends for this module's tests, and forget them after."""
    with registered(TinyPlugin(), "tiny-test-plugin"):
        yield


class TestTinyBackendContract(ContractTests, BackendFixtures):
    """The correct tiny backend passes the whole contract suite."""

    backend = "tiny"


def test_the_plugin_backend_is_listed_among_installed_backends() -> None:
    with pytest.raises(ConfigError) as info:
        create_store("abc", backend="nope")
    assert "tiny" in str(info.value)
    assert "memory" in str(info.value)
    assert create_store("abc", backend="tiny").backend == "tiny"  # type: ignore[attr-defined]


SUITE_ON = """
from kvstore.testing import BackendFixtures, ContractTests


class TestBroken(ContractTests, BackendFixtures):
    backend = {name!r}
"""


@pytest.mark.parametrize(
    ("name", "must_fail"),
    [
        ("tiny_update_replaces", "test_update_merges_sets_removes_and_keeps"),
        ("tiny_create_overwrites", "test_create_raises_already_exists_and_changes_nothing"),
        ("tiny_no_table_check", "test_every_call_on_a_missing_table_raises_config_error"),
    ],
)
def test_a_broken_backend_fails_the_suite(
    pytester: pytest.Pytester, name: str, must_fail: str
) -> None:
    pytester.makepyfile(test_broken=SUITE_ON.format(name=name))
    result = pytester.runpytest_inprocess("-p", "kvstore.testing.plugin", "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) > 0
    assert outcomes.get("passed", 0) > 0  # the suite ran; only the broken rules fail
    failed = [line for line in result.outlines if line.startswith("FAILED")]
    assert any(must_fail in line for line in failed), failed


def test_the_suites_failures_show_the_values_compared(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_broken=SUITE_ON.format(name="tiny_update_replaces"))
    result = pytester.runpytest_inprocess(
        "-p", "kvstore.testing.plugin", "-p", "no:cacheprovider", "-k", "update_merges"
    )
    output = result.stdout.str()
    assert result.parseoutcomes().get("failed", 0) == 1, output
    # Rewritten: the assertion shows both sides, as in a test module, not a bare AssertionError.
    assert "AssertionError: assert (" in output, output
