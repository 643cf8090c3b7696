"""The errors every backend raises, with the stable ``code`` each one carries.

The tree::

    StoreError                      (code STORE_ERROR: a driver error no row below names)
    ├── NotFound                    (NOT_FOUND, also LookupError)
    ├── MultipleFound               (MULTIPLE_FOUND, also LookupError)
    ├── AlreadyExists               (ALREADY_EXISTS)
    ├── InvalidArgument             (INVALID_ARGUMENT, also ValueError)
    ├── OperationRejected           (OPERATION_REJECTED)
    ├── ConditionFailed             (CONDITION_FAILED)
    ├── ConfigError                 (CONFIG_ERROR)
    └── BackendUnavailable          (BACKEND_UNAVAILABLE, also ConnectionError)

A driver's own exception never escapes: a backend maps it to one of these, and anything it cannot
name becomes a plain ``StoreError`` whose ``__cause__`` is the original.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

__all__ = [
    "AlreadyExists",
    "BackendUnavailable",
    "ConditionFailed",
    "ConfigError",
    "InvalidArgument",
    "MultipleFound",
    "NotFound",
    "OperationRejected",
    "StoreError",
    "changed_index",
]


class StoreError(Exception):
    """Base of every error kvstore raises; ``code`` names the case for logs and API responses."""

    code: ClassVar[str] = "STORE_ERROR"

    index: int | None = None
    """In a failed ``transaction()``: the position of the operation that failed (from 0)."""
    written: int | None = None
    """From an interrupted ``put_many``: how many records (distinct keys) were confirmed stored
    before the error, the first ones given; the others may or may not be stored."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class NotFound(StoreError, LookupError):
    """No record matches (``find``), or ``update`` names a key that is not stored."""

    code = "NOT_FOUND"


class MultipleFound(StoreError, LookupError):
    """``find`` or ``find_or_create`` matched more than one record."""

    code = "MULTIPLE_FOUND"


class AlreadyExists(StoreError):
    """``create`` (or ``find_or_create``) hit a key that is already taken."""

    code = "ALREADY_EXISTS"


class InvalidArgument(StoreError, ValueError):
    """A bad kind, field name, value, key, filter or record size; raised before any I/O."""

    code = "INVALID_ARGUMENT"


class OperationRejected(StoreError):
    """A call the store refuses as asked: ``truncate`` without ``force=True``, a scan on a store
    opened with ``scan=False``, a page of a read that no key or index serves."""

    code = "OPERATION_REJECTED"


class ConditionFailed(StoreError):
    """A write's ``expect`` (or its version check) did not hold on the stored record; nothing
    was changed."""

    code = "CONDITION_FAILED"


class ConfigError(StoreError):
    """Unknown backend, missing settings or driver, missing table, or a refused login."""

    code = "CONFIG_ERROR"


class BackendUnavailable(StoreError, ConnectionError):
    """The server cannot be reached, timed out, dropped the connection, or throttles us."""

    code = "BACKEND_UNAVAILABLE"


def changed_index(
    kind: str, index: str, found: Sequence[str] | None, declared: Sequence[str], where: str
) -> ConfigError:
    """The ``ConfigError`` of ``ensure()`` finding, under a declared index's name, an index on
    other fields (``found``, when the backend can tell them) than the kind declares: it would
    serve no read of the declared one."""
    fields = "other fields" if found is None else repr(list(found))
    return ConfigError(
        f"kind {kind!r} has an index {index!r} on {fields} in {where}, but declares it on "
        f"{list(declared)}: drop that index, or give the new one another name"
    )
