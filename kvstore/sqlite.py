"""The ``sqlite`` backend: one file, one table per kind (placeholder until issue 5 lands)."""

from __future__ import annotations

from collections.abc import Callable

from kvstore.backend import Backend, LazyBackend
from kvstore.hookspecs import hookimpl

__all__ = ["kvstore_register_backends"]


@hookimpl
def kvstore_register_backends(register: Callable[[Backend], None]) -> None:
    """Register the ``sqlite`` backend."""
    register(LazyBackend("sqlite", "kvstore.sqlite_store:open_driver"))
