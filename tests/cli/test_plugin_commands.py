"""Plugins add commands to ``kvstore`` through ``kvstore_register_commands``: loaded only when a
name is not built in (or for ``--help``), never replacing a built-in command, a broken plugin
leaving the built-in commands working; the aurora backend adds ``init-migrations`` this way."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import click
import pytest

from kvstore.cli import cli
from kvstore.errors import InvalidArgument
from kvstore.hookspecs import hookimpl
from kvstore.testing.fixtures import registered
from tests.cli.conftest import KVSTORE, Run


@click.command("hello")
@click.argument("name")
def hello(name: str) -> None:
    """Greet NAME (a plugin's command)."""
    if name == "nobody":
        raise InvalidArgument("nobody to greet")
    click.echo(f'{{"hello": "{name}"}}')


@click.command("count")
def fake_count() -> None:
    """A plugin's command named like a built-in one: never added."""
    click.echo("the plugin's count")


class GreeterPlugin:
    """A third-party plugin, registered as an installed one would be."""

    @hookimpl
    def kvstore_register_commands(self, register: Callable[[click.Command], None]) -> None:
        register(hello)
        register(fake_count)


class BrokenPlugin:
    @hookimpl
    def kvstore_register_commands(self, register: Callable[[click.Command], None]) -> None:
        raise RuntimeError("this plugin is broken")


@pytest.fixture
def fresh_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    """The group as a new process has it: built-in commands only, plugins not asked yet."""
    built_in = {
        name: command
        for name, command in cli.commands.items()
        if getattr(command.callback, "__module__", "").startswith("kvstore.cli.")
    }
    assert {"count", "migrate", "ensure"} <= set(built_in)
    monkeypatch.setattr(cli, "commands", built_in)
    monkeypatch.setattr(cli, "_plugins_added", False)


def test_hook_kvstore_register_commands(fresh_cli: None, run: Run) -> None:
    with registered(GreeterPlugin(), "greeter-test-plugin"):
        # A built-in command does not ask the plugins.
        assert run("count", "teams", "--help").exit_code == 0
        assert "hello" not in cli.commands
        # A name that is not built in does.
        result = run("hello", "ada")
        assert result.exit_code == 0, result.output
        assert result.stdout == '{"hello": "ada"}\n'
        # Never replacing a built-in command: the plugin's "count" is refused, and said so.
        assert result.stderr == "warning: a plugin's command 'count' is taken\n"
        assert cli.commands["count"] is not fake_count
        # A plugin's command follows the convention: one error line, exit 2.
        failed = run("hello", "nobody")
        assert failed.exit_code == 2
        assert failed.stderr == "error: INVALID_ARGUMENT: nobody to greet\n"
        listed = run("--help").stdout
        assert "hello" in listed
        assert "init-migrations" in listed  # the aurora backend's, by the same hook


def test_a_broken_plugin_leaves_the_other_commands_working(fresh_cli: None, run: Run) -> None:
    with registered(BrokenPlugin(), "broken-test-plugin"):
        assert run("ensure", "teams").exit_code == 0
        result = run("--help")
        assert result.exit_code == 0
        assert result.stderr == (
            "warning: the commands of plugin 'broken-test-plugin' are not loaded: "
            "RuntimeError: this plugin is broken\n"
        )
        assert "ensure" in result.stdout
        assert "init-migrations" in result.stdout  # the other plugins' commands are there


def test_init_migrations_is_there_for_the_console_script(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(KVSTORE), "init-migrations", "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "--kind" in done.stdout
    assert "never overwritten" in done.stdout
    assert list(tmp_path.iterdir()) == []  # --help writes nothing
