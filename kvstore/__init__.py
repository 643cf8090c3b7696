"""kvstore: one record-store API over DynamoDB, Aurora PostgreSQL, sqlite and memory.

``create_store(kind)`` returns a ``Store`` on the backend ``STORE_BACKEND`` names; see CONTRACT.md.
Importing this package imports no database driver and no plugin machinery.
"""

from __future__ import annotations

from kvstore.errors import (
    AlreadyExists,
    BackendUnavailable,
    ConfigError,
    InvalidArgument,
    MultipleFound,
    NotFound,
    OperationRejected,
    StoreError,
)
from kvstore.store import Store, create_store

__all__ = [
    "AlreadyExists",
    "BackendUnavailable",
    "ConfigError",
    "InvalidArgument",
    "MultipleFound",
    "NotFound",
    "OperationRejected",
    "Store",
    "StoreError",
    "create_store",
]

__version__ = "0.1.0"
