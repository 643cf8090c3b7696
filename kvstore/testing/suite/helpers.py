"""Small helpers the suite's tests share: typed comparison, keys of results, a call's outcome."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any, TypeVar

from kvstore.errors import StoreError

__all__ = [
    "dynamo_string_record",
    "in_threads",
    "keys",
    "nest",
    "normalised",
    "outcome",
    "typed",
]

T = TypeVar("T")


def typed(value: Any) -> Any:
    """``value`` with every scalar tagged by its type, so ``==`` also compares types.

    Plain ``==`` says ``True == 1`` and ``2 == 2.0``; the contract says what comes back as which
    type, so the suite compares ``typed(a) == typed(b)``.
    """
    if isinstance(value, Mapping):
        return ("dict", {key: typed(item) for key, item in value.items()})
    if isinstance(value, list):
        return ("list", [typed(item) for item in value])
    return (type(value).__name__, value)


def normalised(value: int | float | Decimal) -> int | float:
    """A number as part 1 says it reads back: integral within int64 as ``int``, else ``float``
    (the double nearest it, as an ``int`` when that double is integral within int64: a value
    reads back as itself)."""
    exact = Decimal(value)
    if exact == exact.to_integral_value() and -(2**63) <= exact < 2**63:
        return int(exact)
    double = float(exact)
    return int(double) if double.is_integer() and -(2**63) <= double < 2**63 else double


def keys(records: Iterable[Mapping[str, Any]], field: str = "id") -> list[Any]:
    """The ``field`` of each record, in order."""
    return [record[field] for record in records]


def nest(levels: int, inner: Any = 1, container: str = "list") -> Any:
    """A value nesting ``levels`` lists (or dicts under key ``"k"``) around ``inner``."""
    value = inner
    for _ in range(levels):
        value = [value] if container == "list" else {"k": value}
    return value


def outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    """``("ok", typed result)`` or ``("error", error class name)`` of a store call.

    An iterator's records are drawn inside the call (its errors count) and sorted by ``id``.
    """
    try:
        result = call()
        if isinstance(result, Iterator):
            result = sorted(result, key=lambda record: record["id"])
    except StoreError as exc:
        return ("error", type(exc).__name__)
    return ("ok", typed(result))


def dynamo_string_record(size: int, char: str = "x", key: str = "k") -> dict[str, Any]:
    """A record ``{"id": key..., "blob": char * n}`` whose DynamoDB item size is exactly ``size``.

    By DynamoDB's rules a string attribute counts its name's and its value's UTF-8 bytes, so the
    size is ``len("id") + len(key) + len("blob") + n * len(char.encode())``; ``key`` is lengthened
    with ``"k"`` until ``n`` comes out whole.
    """
    width = len(char.encode("utf-8"))
    for pad in range(width):
        padded = key + "k" * pad
        rest = size - len(b"id") - len(padded.encode("utf-8")) - len(b"blob")
        if rest % width == 0:
            return {"id": padded, "blob": char * (rest // width)}
    raise AssertionError("unreachable: some padding makes the rest a multiple of the width")


def in_threads(count: int, work: Callable[[int], T]) -> list[T]:
    """``work(thread)`` for thread ``0 .. count - 1``, started together; their results in order.

    A barrier releases the threads at once so that they really race; an exception in one is
    raised here once every thread has finished.
    """
    barrier = threading.Barrier(count)

    def run(thread: int) -> T:
        barrier.wait(timeout=60)
        return work(thread)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))
