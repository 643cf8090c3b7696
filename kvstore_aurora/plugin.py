"""Registers the ``aurora`` backend and its ``init-migrations`` command; cheap to import (psycopg
loads when a store is opened, click when the command line asks for the command)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from kvstore.backend import Backend, LazyBackend
from kvstore.hookspecs import hookimpl

if TYPE_CHECKING:
    import click

__all__ = ["kvstore_register_backends", "kvstore_register_commands"]


@hookimpl
def kvstore_register_backends(register: Callable[[Backend], None]) -> None:
    """Register the ``aurora`` backend (options: see ``kvstore_aurora.driver.open_driver``)."""
    register(
        LazyBackend(
            "aurora",
            "kvstore_aurora.driver:open_driver",
            extra="aurora",
            settings="kvstore_aurora.settings:describe",
            migrate="kvstore_aurora.migrate:migrate",
        )
    )


@hookimpl
def kvstore_register_commands(register: Callable[[click.Command], None]) -> None:
    """Add ``kvstore init-migrations`` (see ``kvstore_aurora.commands``)."""
    from kvstore_aurora.commands import init_migrations_command

    register(init_migrations_command)
