"""Checks, before a case is timed, that its raw side does the same work as kvstore: same records.

A raw side that returned other records (a wrong index, a page out of order, an update that missed
its condition) would make its ratio meaningless, so a case whose sides disagree is not timed: the
section fails with both answers. Raw records may hold ``Decimal`` numbers (boto3's) or floats that
kvstore returns as ints (``2.0`` reads back as ``2``): both are compared as canonical numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

__all__ = ["canonical", "check_reads", "check_writes"]

Records = Sequence[dict[str, Any]]


def canonical(value: Any) -> Any:
    """``value`` with every number as kvstore returns it (an integral number as ``int``, any other
    as ``float``), tuples as lists, nested values included."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float, Decimal)):
        if value == int(value) and -(2**63) <= int(value) < 2**63:
            return int(value)
        return float(value)
    if isinstance(value, dict):
        return {key: canonical(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(item) for item in value]
    return value


def _same(case: str, kvstore: Any, raw: Any) -> None:
    mine, theirs = canonical(kvstore), canonical(raw)
    if mine != theirs:
        raise RuntimeError(
            f"{case}: the raw side's records differ from kvstore's; the case would time different "
            f"work.\n  kvstore: {str(mine)[:600]}\n  raw:     {str(theirs)[:600]}"
        )
    if not mine:
        raise RuntimeError(f"{case}: both sides returned nothing; the check would prove nothing")


def check_reads(case: str, kvstore: Callable[[], Any], raw: Callable[[], Any]) -> None:
    """Run both sides once; ``RuntimeError`` unless they return the same records (in order)."""
    _same(case, kvstore(), raw())


def check_writes(
    case: str,
    reset: Callable[[], None],
    kvstore: Callable[[], Any],
    raw: Callable[[], Any],
    read_back: Callable[[], Records],
) -> None:
    """Run each side once from the same state (``reset`` before each); ``RuntimeError`` unless
    they return the same records (when they return any: a transaction returns nothing) and leave
    the same records (``read_back``). ``reset`` runs once more at the end."""
    reset()
    mine = kvstore()
    kept = read_back()
    reset()
    theirs = raw()
    if mine is not None or theirs is not None:
        _same(case + " (returned)", mine, theirs)
    _same(case + " (stored)", kept, read_back())
    reset()
