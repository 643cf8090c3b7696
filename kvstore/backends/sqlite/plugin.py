"""Registers the ``sqlite`` backend; cheap to import (the driver loads when a store is opened)."""

from __future__ import annotations

from collections.abc import Callable

from kvstore.backend import Backend, LazyBackend
from kvstore.hookspecs import hookimpl

__all__ = ["kvstore_register_backends"]


@hookimpl
def kvstore_register_backends(register: Callable[[Backend], None]) -> None:
    """Register the ``sqlite`` backend (its options: ``kvstore.backends.sqlite.settings``)."""
    register(
        LazyBackend(
            "sqlite",
            "kvstore.backends.sqlite.driver:open_driver",
            settings="kvstore.backends.sqlite.settings:describe",
        )
    )
