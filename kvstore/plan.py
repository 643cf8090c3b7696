"""How a read is served: the ``Plan`` core makes from filters once, and every driver translates.

A plan says which part of the kind a read touches (``access``):

- ``"key"``: the records at ``keys`` (whole primary keys; one for ``find``, many for ``find_in``);
- ``"partition"``: the records whose partition key is one of ``partitions``, narrowed by ``sort``,
  a condition on the primary key's sort field;
- ``"index"``: the records of secondary index ``index`` whose partition field is one of
  ``partitions``, narrowed by ``sort``, a condition on the index's sort field;
- ``"scan"``: every record.

Then ``filters``, the conditions left to apply on top (``Plan.accepts``), and for ordered reads
(pages) the order (``descending``), a position to continue after (``start``) and a ``limit``. A
scan may also be one segment of a resumable read (``Plan.resumable``: ``kvstore copy``).
The first rule that applies decides the access, from the filters and the declared key and indexes
alone (so ``explain`` answers the same on every backend): every key field by plain equality, the
partition key by plain equality, the first declared index whose partition field is filtered by
plain equality, else a scan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kvstore.conditions import (
    BeginsWith,
    Between,
    Condition,
    Eq,
    OneOf,
    Range,
)
from kvstore.schema import Index, Key, KindSchema, fits_index_type
from kvstore.values import INT64_MAX, INT64_MIN, check_key_value

__all__ = ["Conditions", "DirectPlans", "Plan", "plan_in", "plan_read", "segment_of"]

Conditions = tuple[tuple[str, Condition], ...]
"""Conditions on top-level fields, all of which a record must match (a field may appear twice)."""

_NARROWING = (Eq, Range, Between, BeginsWith)
"""Conditions on a serving key's sort field that narrow the read (a key condition)."""


class Plan:
    """One read, as core decided to serve it; see the module docstring.

    Drivers translate ``access`` with ``keys``/``partitions``/``index``/``sort`` exactly, may apply
    ``filters`` as far as they can (core checks every record it is given with ``accepts``), and
    for an ordered read (``descending`` is not ``None``) yield records in ``order_fields`` order,
    ascending or descending, strictly after ``start`` when it is set. ``limit`` says how many
    matching records core will take at most: a driver may size its pages by it, but must not stop
    before it while records remain unless its translation of ``filters`` is exact.

    **Segments and resumable scans.** A ``"scan"`` plan with ``stable`` set (``resumable``; never
    ordered, never limited) is one segment of a read of the whole kind that a copy can stop and
    resume; ``read`` is the only call that gets one. The driver yields only the records of
    segment ``segment`` of ``segments``, in its *stable order*, strictly after the record whose
    key is ``after`` when it is set:

    - Segments partition the kind: for one ``segments`` count, each record is in exactly one
      segment, and stays in it while it exists unchanged (decide it from the key). Core reads the
      segments at once, one thread each, and asks for at most ``Driver.scan_segments`` of them; a
      driver that cannot split a scan keeps ``scan_segments = 1`` and only sees ``segments == 1``.
    - The stable order is the order the driver reads a segment in, the same in every process:
      key order where the server can sort by key (memory, sqlite, a SQL table's primary key), the
      server's own scan order otherwise. DynamoDB: a ``Scan`` with ``Segment=segment`` and
      ``TotalSegments=segments`` (when ``segments > 1``), continued with ``ExclusiveStartKey`` set
      to the key attributes of ``after`` (the last record core took, which may have been deleted
      since; the server resumes from the key's position all the same).
    - Over any number of reads stopped and resumed after the last key core took, every record
      that exists unchanged throughout is yielded exactly once; records written meanwhile may or
      may not be.
    """

    # Class-level defaults, so that a plan sets only what differs: a find by key builds one for
    # every call. (Attributes, not __slots__: a slot cannot have a class-level default.)
    keys: Sequence[Key] = ()
    """``access == "key"``: the keys to read."""
    partitions: Sequence[Any] = ()
    """``"partition"``/``"index"``: the values of the partition field to read."""
    index: Index | None = None
    sort: Condition | None = None
    """A condition on ``sort_field`` (``Eq``, a ``Range``, ``Between`` or ``BeginsWith``)."""
    filters: Conditions = ()
    never = False
    """No record can match (a value no key or index field can hold): core does no I/O."""
    descending: bool | None = None
    limit: int | None = None
    start: tuple[Any, ...] | None = None
    collected = False
    """The caller takes every record at once (``find_all``, ``find_in``), never stopping early:
    a streaming read's bounded pieces save no memory there, and a driver may read in larger
    ones."""
    stable = False
    """A resumable scan: one segment, in the driver's stable order, after ``after``."""
    segment = 0
    segments = 1
    after: Key | None = None

    def __init__(
        self,
        schema: KindSchema,
        access: str,
        *,
        keys: Sequence[Key] = (),
        partitions: Sequence[Any] = (),
        index: Index | None = None,
        sort: Condition | None = None,
        filters: Conditions = (),
        never: bool = False,
    ) -> None:
        self.schema = schema
        self.access = access
        """``"key"``, ``"partition"``, ``"index"`` or ``"scan"``."""
        if keys:
            self.keys = keys
        if partitions:
            self.partitions = partitions
        if index is not None:
            self.index = index
        if sort is not None:
            self.sort = sort
        if filters:
            self.filters = filters
        if never:
            self.never = never

    @classmethod
    def by_key(cls, schema: KindSchema, key: Key, filters: Conditions = ()) -> Plan:
        """The plan of a read of the record at ``key`` (the commonest read: built directly)."""
        plan = cls.__new__(cls)
        plan.schema = schema
        plan.access = "key"
        plan.keys = (key,)
        if filters:
            plan.filters = filters
        return plan

    def __repr__(self) -> str:
        parts = [self.explain()]
        names = ("keys", "partitions", "sort", "filters", "descending", "limit", "start", "after")
        for name in names:
            value = getattr(self, name)
            if value:
                parts.append(f"{name}={value!r}")
        return f"<Plan {' '.join(parts)}{' never' if self.never else ''}>"

    def explain(self) -> str:
        """How the read is served: ``'key'``, ``'partition'``, ``'index:NAME'`` or ``'scan'``."""
        return f"index:{self.index.name}" if self.index is not None else self.access

    @property
    def partition_field(self) -> str | None:
        """The field ``partitions`` are values of (``None`` for a key read or a scan)."""
        if self.index is not None:
            return self.index.partition
        return self.schema.partition if self.access == "partition" else None

    @property
    def sort_field(self) -> str | None:
        """The serving key's sort field, which ``sort`` narrows and pages are ordered by."""
        if self.index is not None:
            return self.index.sort
        return self.schema.sort if self.access == "partition" else None

    @property
    def order_fields(self) -> tuple[str, ...]:
        """The fields an ordered read is ordered by: the index's sort field then the primary
        key for an index read, the primary key's sort field for a partition, the key otherwise."""
        if self.index is not None:
            sort = self.index.sort
            return ((sort,) if sort is not None else ()) + self.schema.id_fields
        if self.access == "partition":
            sort = self.schema.sort
            assert sort is not None  # a kind without a sort key reads a partition as a key
            return (sort,)
        return self.schema.id_fields

    def position(self, record: Mapping[str, Any]) -> tuple[Any, ...]:
        """Where ``record`` stands in the read's order: its ``order_fields`` values."""
        return tuple(record[field] for field in self.order_fields)

    def accepts(self, record: Mapping[str, Any]) -> bool:
        """Whether ``record`` matches ``filters`` (what a driver may leave to core)."""
        for field, condition in self.filters:
            present = field in record
            if not condition.matches(present, record[field] if present else None):
                return False
        return True

    def selects(self, record: Mapping[str, Any]) -> bool:
        """Whether ``record`` is in the plan's access (key, partition and ``sort``, or index)
        and matches its filters: the whole test, for drivers that evaluate plans in memory."""
        access = self.access
        if access == "key":
            if self.schema.key_of(record) not in self.keys:
                return False
        elif access != "scan":
            field = self.partition_field
            assert field is not None
            if field not in record or not any(
                Eq(value).matches(True, record[field]) for value in self.partitions
            ):
                return False
            if self.index is not None and not _in_index(self.index, record):
                return False
            sort_field = self.sort_field
            if self.sort is not None and sort_field is not None:
                present = sort_field in record
                if not self.sort.matches(present, record.get(sort_field)):
                    return False
        return self.accepts(record)

    def after_start(self, record: Mapping[str, Any]) -> bool:
        """Whether ``record`` comes strictly after ``start`` in the read's order."""
        if self.start is None:
            return True
        position = self.position(record)
        return position < self.start if self.descending else position > self.start

    def ordered(self, limit: int | None, descending: bool, start: tuple[Any, ...] | None) -> Plan:
        """This plan as an ordered read (a page): its order, a position to continue after, and
        how many matches core will take."""
        self.descending = descending
        self.limit = limit
        self.start = start
        return self

    def collect(self) -> Plan:
        """This plan as a read whose every record the caller takes at once (``collected``)."""
        self.collected = True
        return self

    def resumable(self, segment: int, segments: int, after: Key | None) -> Plan:
        """This scan as segment ``segment`` (from 0) of ``segments``, read in the driver's stable
        order strictly after the record with key ``after`` (see "Segments" above)."""
        assert self.access == "scan"
        assert 0 <= segment < segments
        self.stable = True
        self.segment = segment
        self.segments = segments
        self.after = after
        return self

    def in_segment(self, key: Key) -> bool:
        """Whether the record at ``key`` is in the plan's segment, for drivers that split a scan
        with ``segment_of`` (in-process ones)."""
        return self.segments == 1 or segment_of(key, self.segments) == self.segment


def segment_of(key: Key, segments: int) -> int:
    """A segment for ``key`` among ``segments``, the same in every process (a CRC-32 of the
    key's text): how in-process drivers split a scan."""
    import zlib  # only segmented copies need it

    return zlib.crc32(repr(tuple(key)).encode("utf-8")) % segments


def _in_index(index: Index, record: Mapping[str, Any]) -> bool:
    return all(
        field in record and fits_index_type(record[field], key_type)
        for field, key_type in zip(index.fields, index.key_types, strict=True)
    )


def _narrows(condition: Condition | None, key_type: type) -> tuple[Condition | None, bool]:
    """``condition`` as a key condition on a sort field of ``key_type``: the condition (``None``
    when it does not narrow) and whether nothing can match (an operand of another class)."""
    if not isinstance(condition, _NARROWING):
        return None, False
    if isinstance(condition, Eq):
        return condition, not fits_index_type(condition.value, key_type)
    if isinstance(condition, BeginsWith):
        return condition, key_type is not str
    operand = condition.low if isinstance(condition, Between) else condition.value
    return condition, (type(operand) is str) != (key_type is str)


def plan_read(schema: KindSchema, filters: Mapping[str, Condition], extra: Conditions = ()) -> Plan:
    """The plan of a read with ``filters`` (prepared: one condition a field); ``extra``
    conditions (core's own, such as ``NotExpired``) are applied on top."""
    fields = schema.id_fields
    if len(fields) == 1:
        only = filters.get(fields[0])
        if type(only) is Eq:
            if len(filters) == 1:
                return Plan.by_key(schema, (only.value,), extra)
            rest = tuple((f, c) for f, c in filters.items() if f != fields[0]) + extra
            return Plan.by_key(schema, (only.value,), rest)
    else:
        equal = [filters.get(field) for field in fields]
        if all(isinstance(condition, Eq) for condition in equal):
            key = tuple(condition.value for condition in equal if isinstance(condition, Eq))
            rest = tuple((f, c) for f, c in filters.items() if f not in fields) + extra
            return Plan.by_key(schema, key, rest)
    partition = filters.get(fields[0])
    if type(partition) is Eq:
        assert len(fields) == 2  # one id field filtered by equality is the whole key
        sort, never = _narrows(filters.get(fields[1]), schema.key_types[1])
        used = {fields[0], fields[1]} if sort is not None else {fields[0]}
        rest = tuple((f, c) for f, c in filters.items() if f not in used) + extra
        return Plan(
            schema,
            "partition",
            partitions=[partition.value],
            sort=sort,
            filters=rest,
            never=never,
        )
    for index in schema.indexes:
        wanted = filters.get(index.partition)
        if type(wanted) is not Eq:
            continue
        value = wanted.value
        never = not fits_index_type(value, index.key_types[0])
        sort = None
        used = {index.partition}
        if index.sort is not None:
            sort, unreachable = _narrows(filters.get(index.sort), index.key_types[1])
            never = never or unreachable
            if sort is not None:
                used.add(index.sort)
        rest = tuple((f, c) for f, c in filters.items() if f not in used) + extra
        return Plan(
            schema, "index", partitions=[value], index=index, sort=sort, filters=rest, never=never
        )
    return Plan(schema, "scan", filters=tuple(filters.items()) + extra)


def plan_in(schema: KindSchema, field: str, wanted: OneOf, extra: Conditions = ()) -> Plan:
    """The plan of ``find_in``/``remove_in``: the records whose ``field`` equals one of
    ``wanted``'s values (or is absent, when it says so), each once.

    By the primary key when ``field`` is the whole key or its partition key, by the first index
    whose partition field it is when no record lacking the field is wanted, else a scan.
    """
    fields = schema.id_fields
    if field == fields[0]:
        if len(fields) == 1:
            return Plan(schema, "key", keys=[(value,) for value in wanted.values], filters=extra)
        return Plan(schema, "partition", partitions=wanted.values, filters=extra)
    if not wanted.absent:
        for index in schema.indexes:
            if index.partition == field:
                values = [v for v in wanted.values if fits_index_type(v, index.key_types[0])]
                return Plan(
                    schema,
                    "index",
                    partitions=values,
                    index=index,
                    filters=extra,
                    never=not values,
                )
    return Plan(schema, "scan", filters=((field, wanted), *extra))


class DirectPlans:
    """``find``'s commonest plans made directly: ``{field: value}`` where ``field`` is the
    one-field key or the partition field of an index, and ``value`` a plain ASCII string or
    int64. ``plan`` returns what ``plan_read`` makes of ``prepare_filters``' ``Eq`` for it, or
    ``None`` for anything else (which takes the general path, with its checks and errors).

    Not for a kind with a ``ttl_field``, whose every read carries core's own condition."""

    __slots__ = ("indexes", "key", "schema")

    def __init__(self, schema: KindSchema) -> None:
        self.schema = schema
        fields = schema.id_fields
        self.key: str | None = fields[0] if len(fields) == 1 else None
        self.indexes: dict[str, Index] = {}
        """Each partition field outside the key and the first index it partitions (the one
        ``plan_read`` serves it by)."""
        for index in schema.indexes:
            if index.partition not in fields:
                self.indexes.setdefault(index.partition, index)
        if schema.ttl_field is not None:
            self.key, self.indexes = None, {}

    def plan(self, filters: object) -> Plan | None:
        """The plan of ``filters`` when it is one of the reads above, else ``None``."""
        if type(filters) is not dict or len(filters) != 1:
            return None
        ((field, value),) = filters.items()
        kind = type(value)
        if kind is str:
            if not value.isascii() or "\x00" in value:
                return None
        elif kind is not int or not INT64_MIN <= value <= INT64_MAX:
            return None
        schema = self.schema
        if field == self.key:
            if kind is not schema.key_types[0]:
                return None
            return Plan.by_key(schema, (check_key_value(value, field, kind),))
        index = self.indexes.get(field)
        if index is None:
            return None
        never = not fits_index_type(value, index.key_types[0])
        return Plan(schema, "index", partitions=[value], index=index, never=never)
