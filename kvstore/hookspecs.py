"""The hooks a kvstore plugin implements (pluggy project name ``kvstore``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

from kvstore.backend import Backend

if TYPE_CHECKING:
    import click

    from kvstore.migration.reports import MigrationEvent

__all__ = [
    "hookimpl",
    "hookspec",
    "kvstore_migration_event",
    "kvstore_register_backends",
    "kvstore_register_commands",
]

hookspec = pluggy.HookspecMarker("kvstore")
hookimpl = pluggy.HookimplMarker("kvstore")


@hookspec
def kvstore_register_backends(register: Callable[[Backend], None]) -> None:
    """Register the backends this plugin provides.

    :param register: call it once per backend, with an object following ``kvstore.backend.Backend``.
        Registering must stay cheap: import the driver in ``Backend.open``, not here.
    """


@hookspec
def kvstore_migration_event(event: MigrationEvent) -> None:
    """Called once for each mismatch between the two sides' reads and each failed second write
    of a store moving between backends (see CONTRACT.md, "Moving a kind between backends").

    :param event: what happened, as a ``kvstore.migration.MigrationEvent``: ``kind``, ``stage``,
        ``operation``, ``key``, ``outcome`` (``'mismatch'`` or ``'second_write_failed'``),
        ``fields`` (the names of the fields that differ, never their values) and ``error`` (an
        error class name, or ``None``). Called in the thread of the store call, after the
        WARNING line on the ``kvstore.migration`` logger; what the hook raises is logged there
        and never reaches the caller, so keep it quick (hand the event to a queue or a metric).
    """


@hookspec
def kvstore_register_commands(register: Callable[[click.Command], None]) -> None:
    """Add commands of this plugin to the ``kvstore`` command line (a backend's own tools).

    :param register: call it once per command, with a ``click.Command`` (import click inside the
        hook: it is called only by the command line, which has click). The plugins' commands are
        loaded only when a name is not one of kvstore's own commands, or for ``--help``, so the
        built-in commands never pay for them; a command named like a built-in one, or like an
        earlier plugin's, is not added, and a hook that raises loses only its own plugin's
        commands (a warning on stderr says so, each time). Errors follow the command
        line's convention when they are ``kvstore.StoreError``s: one ``error: CODE: message``
        line, exit status 2.
    """
