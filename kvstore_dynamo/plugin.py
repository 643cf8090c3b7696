"""Registers the ``dynamo`` backend; cheap to import (botocore loads when a store is opened)."""

from __future__ import annotations

from collections.abc import Callable

from kvstore.backend import Backend, LazyBackend
from kvstore.hookspecs import hookimpl

__all__ = ["kvstore_register_backends"]


@hookimpl
def kvstore_register_backends(register: Callable[[Backend], None]) -> None:
    """Register the ``dynamo`` backend (its options: ``kvstore_dynamo.driver.open_driver``)."""
    register(
        LazyBackend(
            "dynamo",
            "kvstore_dynamo.driver:open_driver",
            extra="dynamo",
            settings="kvstore_dynamo.settings:describe",
        )
    )
