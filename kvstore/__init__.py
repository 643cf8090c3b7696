"""kvstore: one record-store API over DynamoDB, PostgreSQL, sqlite, memory and any backend plugin.

``create_store(kind)`` returns a ``Store`` on the backend ``STORE_BACKEND`` names; see CONTRACT.md.
Importing this package imports no database driver and no plugin machinery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kvstore.api import Store
from kvstore.conditions import (
    begins_with,
    between,
    exists,
    ge,
    gt,
    increment,
    le,
    lt,
    ne,
    one_of,
)
from kvstore.create import create_store
from kvstore.errors import (
    AlreadyExists,
    BackendUnavailable,
    ConditionFailed,
    ConfigError,
    InvalidArgument,
    MultipleFound,
    NotFound,
    OperationRejected,
    StoreError,
)
from kvstore.schema import Index
from kvstore.transactions import transaction

if TYPE_CHECKING:
    from kvstore.migration.reports import migration_stats
    from kvstore.pages import Page

__all__ = [
    "AlreadyExists",
    "BackendUnavailable",
    "ConditionFailed",
    "ConfigError",
    "Index",
    "InvalidArgument",
    "MultipleFound",
    "NotFound",
    "OperationRejected",
    "Page",
    "Store",
    "StoreError",
    "begins_with",
    "between",
    "create_store",
    "exists",
    "ge",
    "gt",
    "increment",
    "le",
    "lt",
    "migration_stats",
    "ne",
    "one_of",
    "transaction",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # Imported on first use: a cold start that never pages nor migrates pays for none of it.
    if name == "Page":
        from kvstore.pages import Page

        return Page
    if name == "migration_stats":
        from kvstore.migration.reports import migration_stats

        return migration_stats
    raise AttributeError(f"module 'kvstore' has no attribute {name!r}")
