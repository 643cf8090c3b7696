"""What the cases do: their records (two shapes: flat, and nested of about 150 bytes), sizes, targets.

Each case runs once per shape, on tables of its own. ``flat`` is the benchmark's historical record
(a handful of scalar fields and a short list); ``nested`` is a typical application record, with a
float, a list and a nested map (issue 17: kvstore's overhead grew with such records, which the
flat one hid). ``grouped`` records have a composite key ``(owner, seq)``: ``find_all`` reads one
owner's records, a Query on DynamoDB and a SELECT on PostgreSQL. ``indexed`` records (part 2 of the
contract) add the fields of two secondary indexes: ``email`` (one record each) and ``grp`` with
``rank`` (partitions of ``Sizes.page_group`` records, in ``rank`` order).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "GROUP_KEY",
    "INDEXES",
    "SHAPES",
    "Sizes",
    "Targets",
    "counter_field",
    "email_of",
    "group_of",
    "grouped_record",
    "indexed_record",
    "make_record",
    "owner_of",
    "price_field",
    "record_doc",
]

SHAPES = ("flat", "nested")
"""The record shapes, in the order the table shows them."""

GROUP_KEY = ("owner", "seq")
"""The id fields of the ``find_all`` kinds: partition key, sort key."""


class Sizes:
    """How big each case is (``quick`` shrinks them all for a smoke run)."""

    def __init__(self, quick: bool = False) -> None:
        self.calls = 20 if quick else 200  # single-record calls per timed sample (dynamo: half)
        self.batch_calls = 1 if quick else 3  # find_in / find_all / put_many calls per sample
        # DynamoDB Local's Query of 1,000 items took 50 to 550 ms from call to call on a loaded
        # machine: one call a sample, and more rounds for the median, steady it better.
        self.dynamo_batch_calls = 1
        self.find_in = 50 if quick else 1_000  # keys per find_in
        self.find_all = 50 if quick else 1_000  # records per find_all (one owner's)
        self.groups = 2 if quick else 10  # owners in the find_all kinds
        self.put_many = 200 if quick else 1_000  # records per put_many
        self.iter_rows = 1_000 if quick else 100_000  # aurora rows iter_all streams
        self.dynamo_rows = 300 if quick else 10_000  # DynamoDB read table (iter_all's Scan)
        # Part 2 (issues 13 to 15).
        self.indexed = 1_000 if quick else 100_000  # records of the indexed kind (issue 13)
        self.indexed_small = 100 if quick else 10_000  # ... of the small one (scale: same find)
        self.page = 50  # records a page (find_page's limit)
        self.page_group = 200 if quick else 1_000  # records of one index partition (grp)
        self.pages = 2 if quick else 10  # pages read a call, the first one without a cursor
        self.updated = 100 if quick else 1_000  # records of the kinds conditional writes change
        self.transaction = 10  # operations a transaction (5 puts, 5 increments)
        self.migrated = 100 if quick else 1_000  # records of the migrating kinds (issue 15)
        self.copied = 300 if quick else 5_000  # records a copy reads from DynamoDB Local
        self.copy_rounds = 1 if quick else 3  # timed copies of each variant (the median shows)


class Targets:
    """kvstore's time / the raw side's time must be at most these (issue 17 for most)."""

    AURORA_SINGLE = 1.10  # find by key, put, count
    AURORA_BATCH_READ = 1.15  # find_in, find_all
    AURORA_VERSUS_EXECUTEMANY = 1.0  # put_many against the pipelined executemany upsert
    AURORA_VERSUS_COPY = 1.8  # put_many against plain COPY
    DYNAMO_SINGLE = 1.05  # find by key, put
    DYNAMO_BATCH_READ = 1.10  # find_in, find_all
    STREAM = 1.20  # iter_all, both backends; and DynamoDB's put_many (no target named yet)
    INDEXED_FIND = 1.10  # find by an indexed field, both backends (issue 13)
    PAGE = 1.15  # a page of find_page with its cursor (issue 13)
    SCALE = 1.5  # the same indexed find on 100,000 records / on 10,000 (issue 13)
    CONDITIONAL = 1.10  # update with expect, update with increment (issue 14)
    TRANSACTION = 1.15  # a transaction of 10 operations (issue 14)
    DUALWRITE = 1.10  # a dualwrite put / the sum of the two backends' own puts (issue 15)
    SHADOW = 1.15  # a shadow find / the slower backend's own find (issue 15)


def _flat(number: int) -> dict[str, Any]:
    return {
        "name": f"customer {number}",
        "n": number,
        "score": number / 7,
        "active": number % 2 == 0,
        "tags": ["a", "b", str(number % 10)],
    }


def _nested(number: int) -> dict[str, Any]:
    # 140 to 150 bytes of compact JSON, key included.
    return {
        "name": f"widget {number}",
        "qty": number % 500,
        "price": round(1 + (number * 37 % 100_000) / 100, 2),
        "active": number % 3 == 0,
        "tags": ["red", "small", f"t{number % 10}"],
        "dims": {"w": 10.5 + number % 7, "h": 2.25 * (1 + number % 3), "unit": "cm"},
    }


_FIELDS = {"flat": _flat, "nested": _nested}


_COUNTERS = {"flat": "n", "nested": "qty"}
_PRICES = {"flat": "score", "nested": "price"}


def counter_field(shape: str) -> str:
    """The int field of ``shape`` that increments add to."""
    return _COUNTERS[shape]


def price_field(shape: str) -> str:
    """The float field of ``shape`` that conditional updates set."""
    return _PRICES[shape]


def make_record(number: int, shape: str = "flat") -> dict[str, Any]:
    """Record ``number`` of ``shape``, keyed by a string ``id``."""
    return {"id": f"{shape[0]}{number:08d}", **_FIELDS[shape](number)}


def owner_of(group: int) -> str:
    """The partition-key value of group ``group`` of the ``find_all`` kinds."""
    return f"o{group:04d}"


def grouped_record(group: int, seq: int, shape: str = "flat") -> dict[str, Any]:
    """Record ``seq`` of group ``group`` of ``shape``, keyed by ``(owner, seq)``."""
    return {"owner": owner_of(group), "seq": seq, **_FIELDS[shape](group * 100_000 + seq)}


def record_doc(record: dict[str, Any], key: tuple[str, ...] = ("id",)) -> dict[str, Any]:
    """The record's non-key fields (what kvstore keeps in the ``doc`` column)."""
    return {name: value for name, value in record.items() if name not in key}


INDEXES = (("by_email", ("email",)), ("by_grp", ("grp", "rank")))
"""The indexed kinds' secondary indexes: (name, fields); ``email`` and ``grp`` are strings,
``rank`` an int."""


def email_of(number: int, shape: str = "flat") -> str:
    """The ``email`` of indexed record ``number`` (unique in its kind)."""
    return f"{shape[0]}{number:08d}@example.com"


def group_of(group: int) -> str:
    """The ``grp`` (index partition) value of partition ``group``."""
    return f"g{group:05d}"


def indexed_record(number: int, shape: str, page_group: int) -> dict[str, Any]:
    """Record ``number`` of ``shape`` with the index fields: its ``email``, and ``rank`` in
    partition ``grp`` of ``page_group`` consecutive numbers."""
    return {
        **make_record(number, shape),
        "email": email_of(number, shape),
        "grp": group_of(number // page_group),
        "rank": number % page_group,
    }
