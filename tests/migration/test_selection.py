"""Which store create_store makes: STORE_MIGRATION (KIND=TARGET:STAGE entries, ``*`` for every other
kind) read at creation, or migration= which wins; malformed values are ConfigError from the
environment and InvalidArgument from the argument."""

from __future__ import annotations

from typing import Any

import pytest

from kvstore import ConfigError, InvalidArgument, create_store
from kvstore.migration import MigratingStore
from kvstore.migration.spec import migration_entries, sample_rate
from kvstore.store import RecordStore
from kvstore.testing import unique_kind


@pytest.fixture
def sqlite_path(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    path = str(tmp_path / "new.sqlite3")
    monkeypatch.setenv("KVSTORE_SQLITE_PATH", path)
    monkeypatch.setenv("STORE_BACKEND", "memory")
    return path


def test_the_environment_names_a_stage_per_kind_and_star_for_the_others(
    sqlite_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STORE_MIGRATION", " teams=sqlite:shadow , *=sqlite:dualwrite,")
    teams: Any = create_store("teams")
    other: Any = create_store("members", id_field=("team", "seq"), key_type=(str, int))
    assert isinstance(teams, MigratingStore)
    assert (teams.stage, teams.old.backend, teams.new.backend) == ("shadow", "memory", "sqlite")
    assert other.stage == "dualwrite"
    # The new side is opened with the same declaration, configured by its own environment.
    assert other.new.schema == other.old.schema
    other.new.ensure()
    assert other.new.native().path == sqlite_path
    # Read when the store is made: a store made before a change keeps its stage.
    monkeypatch.setenv("STORE_MIGRATION", "teams=sqlite:live")
    assert teams.stage == "shadow"
    assert create_store("teams").stage == "live"  # type: ignore[attr-defined]
    assert isinstance(create_store("members"), RecordStore)


def test_the_argument_wins_and_off_opts_out(
    sqlite_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STORE_MIGRATION", "*=sqlite:shadow")
    assert create_store("teams", migration="sqlite:rampdown").stage == "rampdown"  # type: ignore[attr-defined]
    assert isinstance(create_store("teams", migration="off"), RecordStore)
    monkeypatch.delenv("STORE_MIGRATION")
    assert create_store("teams", migration="sqlite:off").stage == "off"  # type: ignore[attr-defined]


def test_a_kind_already_on_the_target_is_not_moved(
    sqlite_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STORE_MIGRATION", "*=memory:shadow")
    store = create_store("teams")
    assert isinstance(store, RecordStore)
    assert store.backend == "memory"
    with pytest.raises(InvalidArgument, match="onto the backend it is on"):
        create_store("teams", migration="memory:shadow")
    # Another configuration of the same backend is another place: that is a move.
    other: Any = create_store(
        "teams",
        backend="sqlite",
        migration="sqlite:dualwrite",
        migration_options={"path": ":memory:"},
    )
    assert other.stage == "dualwrite"


@pytest.mark.parametrize(
    "value",
    [
        "teams",
        "teams=sqlite",
        "teams=sqlite:sideways",
        "teams=:shadow",
        "Teams=sqlite:shadow",
        "teams=sqlite:shadow,teams=sqlite:live",
        "*=sqlite:shadow,*=sqlite:live",
        "teams=sql ite:shadow",
    ],
)
def test_a_malformed_environment_is_a_config_error(
    sqlite_path: str, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("STORE_MIGRATION", value)
    with pytest.raises(ConfigError, match="STORE_MIGRATION"):
        create_store("members")


@pytest.mark.parametrize("value", ["sqlite", "sqlite:", ":shadow", "sqlite:sideways", 3, "a=b:off"])
def test_a_malformed_argument_is_invalid(sqlite_path: str, value: Any) -> None:
    with pytest.raises(InvalidArgument, match="migration"):
        create_store("teams", migration=value)


def test_the_new_side_must_be_an_installed_backend_and_its_options_known(
    sqlite_path: str,
) -> None:
    with pytest.raises(ConfigError, match="no_such_backend"):
        create_store("teams", migration="no_such_backend:dualwrite")
    with pytest.raises(TypeError, match="migration_options"):
        create_store("teams", migration="sqlite:dualwrite", migration_options={"nope": 1})
    with pytest.raises(InvalidArgument, match="migration_options"):
        create_store("teams", migration="sqlite:dualwrite", migration_options=["path"])  # type: ignore[call-overload]


def test_the_sample_is_a_fraction_from_zero_to_one() -> None:
    assert sample_rate({}) == 1.0
    assert sample_rate({"STORE_MIGRATION_SAMPLE": "0.25"}) == 0.25
    for bad in ("-0.1", "1.5", "half", "nan"):
        with pytest.raises(ConfigError, match="STORE_MIGRATION_SAMPLE"):
            sample_rate({"STORE_MIGRATION_SAMPLE": bad})


def test_entries_are_parsed_once_for_every_kind() -> None:
    entries = migration_entries({"STORE_MIGRATION": "teams=aurora:live,*=dynamo:off"})
    assert {kind: (m.target, m.stage.name) for kind, m in entries.items()} == {
        "teams": ("aurora", "live"),
        "*": ("dynamo", "off"),
    }
    assert migration_entries({}) == {}


def test_a_migrating_store_is_made_without_io(sqlite_path: str) -> None:
    kind = unique_kind()
    store = create_store(kind, migration="sqlite:shadow")
    with pytest.raises(ConfigError):  # neither side's table was made
        store.count()


def test_importing_kvstore_or_making_a_store_that_is_not_moving_imports_no_migration_code() -> None:
    import subprocess
    import sys

    code = (
        "import sys, kvstore\n"
        "store = kvstore.create_store('teams', backend='memory')\n"
        "assert not [m for m in sys.modules if m.startswith('kvstore.migration')], sys.modules\n"
        "assert callable(kvstore.migration_stats)\n"
        "assert 'kvstore.migration.reports' in sys.modules\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("STORE_")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
