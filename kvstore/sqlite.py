"""The ``sqlite`` backend's plugin: registers it; the driver is in ``kvstore.sqlite_store``."""

from __future__ import annotations

from collections.abc import Callable

from kvstore.backend import Backend, LazyBackend
from kvstore.hookspecs import hookimpl

__all__ = ["kvstore_register_backends"]


@hookimpl
def kvstore_register_backends(register: Callable[[Backend], None]) -> None:
    """Register the ``sqlite`` backend."""
    register(LazyBackend("sqlite", "kvstore.sqlite_store:open_driver"))
