"""The pluggy registry: finding backends, its errors, lazy imports, and a test for every hook."""

from __future__ import annotations

import importlib.metadata
import inspect
import pathlib
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

from kvstore import ConfigError, create_store, hookspecs, registry
from kvstore.backend import Backend, LazyBackend
from kvstore.hookspecs import hookimpl
from kvstore.testing import registered

HEAVY = ("boto3", "botocore", "psycopg", "sqlalchemy", "pluggy", "click", "alembic")
"""Packages ``import kvstore`` must not import (a Lambda cold start pays for what it uses)."""


def _imported_modules(code: str) -> set[str]:
    """Top-level packages imported by running ``code`` in a fresh interpreter (-X importtime)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        check=True,
    )
    modules = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            modules.add(name.split(".")[0])
    assert "kvstore" in modules, done.stderr[-2000:]
    return modules


def test_import_kvstore_imports_no_driver_nor_plugin_machinery() -> None:
    imported = _imported_modules("import kvstore")
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))


def test_loading_every_plugin_imports_no_driver() -> None:
    code = "import kvstore.registry as r; assert r.backends()"
    imported = _imported_modules(code)
    assert "pluggy" in imported  # the check below would be vacuous if plugins never loaded
    drivers = {"boto3", "botocore", "psycopg", "sqlalchemy", "alembic"}
    assert not imported & drivers, sorted(imported & drivers)


def test_every_entry_point_is_a_registered_backend() -> None:
    names = {ep.name for ep in importlib.metadata.entry_points(group="kvstore")}
    assert {"memory", "sqlite", "aurora", "dynamo"} <= names
    assert names <= set(registry.backends())


def test_an_unknown_backend_is_a_config_error_listing_the_installed_ones() -> None:
    with pytest.raises(ConfigError) as info:
        registry.get_backend("nope")
    assert "nope" in str(info.value)
    for name in registry.backends():
        assert name in str(info.value)


@pytest.mark.parametrize("name", [None, ""])
def test_no_backend_is_a_config_error_listing_the_installed_ones(name: str | None) -> None:
    with pytest.raises(ConfigError) as info:
        registry.get_backend(name)
    assert "STORE_BACKEND" in str(info.value)
    for installed in registry.backends():
        assert installed in str(info.value)


class GhostPlugin:
    """A plugin whose backend's driver package is not installed."""

    @hookimpl
    def kvstore_register_backends(self, register: Callable[[Backend], None]) -> None:
        register(
            LazyBackend("ghost", "kvstore_ghost_driver_not_installed:open_driver", extra="ghost")
        )


@pytest.fixture
def ghost() -> Iterator[None]:
    """Register ``GhostPlugin`` for one test."""
    with registered(GhostPlugin()):
        yield


@pytest.mark.usefixtures("ghost")
def test_a_backend_whose_driver_is_missing_is_a_config_error_naming_the_extra() -> None:
    assert "ghost" in registry.backends()
    with pytest.raises(ConfigError) as info:
        create_store("abc", backend="ghost")
    assert "kvstore[ghost]" in str(info.value)
    assert "kvstore_ghost_driver_not_installed" in str(info.value)
    assert isinstance(info.value.__cause__, ModuleNotFoundError)


def test_registered_plugins_backends_are_seen_inside_the_block_only() -> None:
    assert "ghost" not in registry.backends()
    with registered(GhostPlugin(), "ghost-plugin"):
        assert "ghost" in registry.backends()
        assert registry.get_backend("ghost").name == "ghost"
    assert "ghost" not in registry.backends()


def test_reset_makes_a_newly_registered_plugin_visible() -> None:
    plugin = GhostPlugin()
    manager = registry.plugin_manager()
    before = set(registry.backends())
    manager.register(plugin)
    try:
        assert set(registry.backends()) == before  # collected once, until reset
        registry.reset()
        assert set(registry.backends()) == before | {"ghost"}
    finally:
        manager.unregister(plugin)
        registry.reset()
    assert set(registry.backends()) == before


def test_hook_kvstore_register_backends() -> None:
    seen: list[Backend] = []
    registry.plugin_manager().hook.kvstore_register_backends(register=seen.append)
    names = [backend.name for backend in seen]
    assert {"memory", "sqlite", "aurora", "dynamo"} <= set(names)
    assert len(names) == len(set(names))
    extras = {backend.name: backend.extra for backend in seen}
    assert extras["aurora"] == "aurora"
    assert extras["dynamo"] == "dynamo"


def _hook_names() -> list[str]:
    return [
        name
        for name, function in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(function, "kvstore_spec")
    ]


def test_every_hook_has_a_test_of_its_own() -> None:
    # As datasette does: a hook added to hookspecs without a test_hook_<name> fails here.
    hooks = _hook_names()
    assert hooks == ["kvstore_register_backends"] or len(hooks) > 1
    tests = pathlib.Path(__file__).parent
    source = "\n".join(path.read_text() for path in tests.rglob("test_*.py"))
    missing = [hook for hook in hooks if f"def test_hook_{hook}(" not in source]
    assert not missing, f"hooks without a test_hook_<name>: {missing}"


def _first_entry_points(group: str) -> dict[str, str]:
    """importlib.metadata's view: the first entry point of each name, extras dropped."""
    found: dict[str, str] = {}
    for point in importlib.metadata.entry_points(group=group):
        found.setdefault(point.name, point.value.split("[", 1)[0].strip())
    return found


def test_entry_points_agree_with_importlib_metadata_on_every_installed_group() -> None:
    groups = {
        point.group
        for distribution in importlib.metadata.distributions()
        for point in distribution.entry_points
    }
    assert "kvstore" in groups
    assert len(groups) > 3
    for group in sorted(groups):
        assert registry.entry_points(group) == _first_entry_points(group), group


ENTRY_POINTS_TXT = """\
[console_scripts]
ghost = ghost.cli:main

[kvstore]
# a comment
ghost = ghost_plugin:hooks.register [extra]
 spaced   =   spaced_plugin

[other]
ghost = elsewhere
"""


def test_entry_points_are_read_from_dist_info_directories_and_zips(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import zipfile

    folder = tmp_path / "site"
    (folder / "ghost-1.0.dist-info").mkdir(parents=True)
    (folder / "ghost-1.0.dist-info" / "METADATA").write_text("Name: ghost\nVersion: 1.0\n")
    (folder / "ghost-1.0.dist-info" / "entry_points.txt").write_text(ENTRY_POINTS_TXT)
    (folder / "broken-1.0.dist-info").mkdir()  # no entry_points.txt: skipped
    archive = tmp_path / "zipped.zip"
    with zipfile.ZipFile(archive, "w") as made:
        made.writestr("zipped-2.0.dist-info/METADATA", "Name: zipped\nVersion: 2.0\n")
        made.writestr("zipped-2.0.dist-info/entry_points.txt", "[kvstore]\nzipped = zipped_mod\n")
    monkeypatch.setattr(sys, "path", [str(folder), str(archive), str(tmp_path / "missing")])
    found = registry.entry_points("kvstore")
    assert found == {
        "ghost": "ghost_plugin:hooks.register",
        "spaced": "spaced_plugin",
        "zipped": "zipped_mod",
    }
    assert found == _first_entry_points("kvstore")
    assert registry.entry_points("other") == {"ghost": "elsewhere"}


def test_an_entry_point_names_a_module_or_an_attribute_path() -> None:
    assert (
        registry._load("kvstore.backends.sqlite.plugin")
        is sys.modules["kvstore.backends.sqlite.plugin"]
    )
    assert registry._load("kvstore.hookspecs:hookimpl.project_name") == "kvstore"


@pytest.fixture
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """A registry that has loaded nothing yet (the process's own is put back afterwards)."""
    monkeypatch.setattr(registry, "_manager", None)
    monkeypatch.setattr(registry, "_complete", False)
    monkeypatch.setattr(registry, "_order", [])
    monkeypatch.setattr(registry, "_backends", None)
    monkeypatch.setattr(registry, "_named", {})


def _site(tmp_path: pathlib.Path, plugins: dict[str, str]) -> str:
    """A site directory holding one distribution per plugin module, ``entry point name -> code``,
    each module registering ``LazyBackend``s (its code names them)."""
    folder = tmp_path / "site"
    for index, (name, code) in enumerate(plugins.items()):
        module = f"twin_plugin_{tmp_path.name}_{index}"
        (folder / f"{module}.py").parent.mkdir(parents=True, exist_ok=True)
        (folder / f"{module}.py").write_text(
            "from kvstore.backend import LazyBackend\n"
            "from kvstore.hookspecs import hookimpl\n\n"
            "@hookimpl\n"
            "def kvstore_register_backends(register):\n"
            f"    {code}\n"
        )
        info = folder / f"{chr(ord('a') + index)}_dist-1.0.dist-info"  # sys.path order: a, b, ...
        info.mkdir()
        (info / "entry_points.txt").write_text(f"[kvstore]\n{name} = {module}\n")
    return str(folder)


TWINS = {
    "first": "register(LazyBackend('twin', 'from_first:open'))",
    "twin": "register(LazyBackend('twin', 'from_twin:open'))",
}
"""Two plugins registering backend ``twin``: the first in sys.path order, and the one named so."""


def _target(name: str) -> str:
    backend = registry.get_backend(name)
    assert isinstance(backend, LazyBackend)
    return backend.driver


@pytest.mark.usefixtures("fresh_registry")
def test_get_backend_loads_only_the_plugin_named_like_the_backend(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = _site(tmp_path, {**TWINS, "third": "register(LazyBackend('solo', 'from_third:open'))"})
    monkeypatch.syspath_prepend(site)
    monkeypatch.setattr(sys, "path", [site])
    assert _target("twin") == "from_twin:open"
    loaded = {name for name, _ in registry._new_manager().list_name_plugin()}
    assert loaded == {"twin"}  # the others were not even imported
    # Listing every backend loads the rest, and the plugin named "twin" still provides "twin",
    # though "first" registers the name earlier in sys.path order.
    assert isinstance(registry.backends()["twin"], LazyBackend)
    assert registry.backends()["twin"].driver == "from_twin:open"  # type: ignore[attr-defined]
    assert registry.backends()["solo"].driver == "from_third:open"  # type: ignore[attr-defined]
    registry.reset()
    assert _target("twin") == "from_twin:open"


@pytest.mark.usefixtures("fresh_registry")
def test_every_plugin_loads_before_the_shortcut_and_gives_the_same_answer(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = _site(tmp_path, TWINS)
    monkeypatch.setattr(sys, "path", [site])
    assert registry.backends()["twin"].driver == "from_twin:open"  # type: ignore[attr-defined]
    assert _target("twin") == "from_twin:open"


@pytest.mark.usefixtures("fresh_registry")
def test_a_name_no_plugin_is_called_or_provides_loads_every_plugin(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = _site(
        tmp_path,
        {
            "first": "register(LazyBackend('shared', 'from_first:open'))",
            "second": "register(LazyBackend('shared', 'from_second:open'))",
            "misnamed": "register(LazyBackend('other', 'from_misnamed:open'))",
        },
    )
    monkeypatch.setattr(sys, "path", [site])
    # No plugin is called "shared": the first one in sys.path order that registers it wins.
    assert _target("shared") == "from_first:open"
    registry.reset()
    registry._complete = False  # as in a new process: the shortcut tries "misnamed" first
    assert _target("other") == "from_misnamed:open"
    with pytest.raises(ConfigError) as info:
        registry.get_backend("misnamed")
    assert "unknown backend 'misnamed'" in str(info.value)
    assert "shared" in str(info.value)


def test_opening_a_store_imports_no_other_backends_plugin() -> None:
    code = (
        "import sys, kvstore\n"
        "kvstore.create_store('abc', backend='sqlite')\n"
        "others = {'kvstore.backends.memory.plugin', 'kvstore_aurora.plugin', 'kvstore_dynamo.plugin'}\n"
        "assert 'kvstore.backends.sqlite.plugin' in sys.modules\n"
        "assert not others & set(sys.modules), sorted(others & set(sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]


def test_entry_point_finds_what_entry_points_maps_the_name_to() -> None:
    everything = registry.entry_points("kvstore")
    for name, target in everything.items():
        assert registry.entry_point("kvstore", name) == target
    assert registry.entry_point("kvstore", "no_such_plugin") is None
