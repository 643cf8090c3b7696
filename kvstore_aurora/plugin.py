"""Registers the ``aurora`` backend; cheap to import (psycopg loads when a store is opened)."""

from __future__ import annotations

from collections.abc import Callable

from kvstore.backend import Backend, LazyBackend
from kvstore.hookspecs import hookimpl

__all__ = ["kvstore_register_backends"]


@hookimpl
def kvstore_register_backends(register: Callable[[Backend], None]) -> None:
    """Register the ``aurora`` backend (options: see ``kvstore_aurora.store.open_driver``)."""
    register(LazyBackend("aurora", "kvstore_aurora.store:open_driver", extra="aurora"))
