"""Checks that turn a call's arguments into canonical records, changes, filters and keys.

Core runs these before any I/O, the same way for every backend: names, values, keys, sizes, the
index fields a record must keep, the version and expiry fields, and filter conditions.
"""

from __future__ import annotations

import contextlib
import operator
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TypeVar

from kvstore.conditions import Absent, Condition, Eq, Exists, Increment, OneOf, one_of_values
from kvstore.errors import InvalidArgument
from kvstore.plan import Conditions
from kvstore.schema import Key, KindSchema, fits_index_type
from kvstore.values import (
    INT64_MAX,
    MAX_ITEM_SIZE,
    canonical_sized,
    check_field_name,
    check_field_names,
    check_item_size,
    check_key_value,
    item_size,
    normalize_value,
)

T = TypeVar("T")
Record = dict[str, Any]

__all__ = [
    "Changes",
    "chunked",
    "chunked_by_size",
    "copy_record",
    "prepare_changes",
    "prepare_filters",
    "prepare_in",
    "prepare_record",
    "prepare_sized",
    "sort_key",
]


def _fields(raw: object, what: str) -> Mapping[str, Any]:
    if type(raw) is not dict and not isinstance(raw, Mapping):  # a dict: no ABC check
        raise InvalidArgument(f"{what} must be a dict of field -> value, not {type(raw).__name__}")
    check_field_names(raw)
    return raw


def _canonical(raw: Mapping[str, Any], schema: KindSchema) -> tuple[Record, int]:
    """Normalise every field, dropping top-level ``None`` (absent) and checking key fields; with an
    upper bound of the result's ``item_size``, from the same pass.

    The bound counts strings, booleans and lists of ASCII strings exactly and a number as
    ``MAX_NUMBER_SIZE`` bytes (the most ``number_size`` gives); other values through
    ``item_size``. Checking the exact size only when the bound reaches the limit refuses exactly
    the same records.
    """
    out: Record = {}
    bound = 0
    id_fields = schema.id_fields
    for name, value in raw.items():
        if value is None:
            continue
        if name in id_fields:
            out[name] = value = check_key_value(
                value, name, schema.key_types[id_fields.index(name)]
            )
            size = len(value.encode("utf-8")) if isinstance(value, str) else 21
        else:
            kind = type(value)
            if kind is str and value.isascii() and "\x00" not in value:
                out[name] = value  # the commonest value, taken without a call
                size = len(value)
            else:
                if kind not in _PLAIN and isinstance(value, (Condition, Increment)):
                    raise InvalidArgument(f"field {name!r}: {value!r} is not a record value")
                out[name], size = canonical_sized(value, name)
        bound += size + len(name)  # a field name is ASCII (check_field_name)
    return out, bound


_PLAIN = frozenset({str, int, float, bool, list, dict})


def _require_key(record: Mapping[str, Any], schema: KindSchema, what: str) -> None:
    for field in schema.id_fields:
        if record.get(field) is None:
            missing = [field for field in schema.id_fields if record.get(field) is None]
            raise InvalidArgument(f"{what} lacks its key field(s) {', '.join(map(repr, missing))}")


def _check_types(record: Mapping[str, Any], schema: KindSchema) -> None:
    """The types the index and expiry fields of a record (or of changes) must have."""
    for index in schema.indexes:
        for field, key_type in zip(index.fields, index.key_types, strict=True):
            if field in record and not fits_index_type(record[field], key_type):
                raise InvalidArgument(
                    f"field {field!r}: index {index.name!r} needs "
                    f"{_type_text(key_type)}, not {record[field]!r:.80}"
                )
    ttl = schema.ttl_field
    if ttl is not None and ttl in record and type(record[ttl]) not in (int, float):
        raise InvalidArgument(
            f"field {ttl!r} (the ttl_field) holds seconds since the epoch, not {record[ttl]!r:.80}"
        )


def _type_text(key_type: type) -> str:
    if key_type is str:
        return "a non-empty string of at most 1024 UTF-8 bytes"
    return "an int" if key_type is int else "a number"


def check_version(value: object, field: str) -> int:
    """A version given in a write: an int of at least 0 (not a bool, nor an integral float)
    that the store can still step (below the signed 64-bit maximum)."""
    if type(value) is not int or not 0 <= value < INT64_MAX:
        raise InvalidArgument(
            f"field {field!r} (the version_field) is an int >= 0, not {value!r:.80}"
        )
    return value


def prepare_record(raw: object, schema: KindSchema, what: str = "record") -> Record:
    """A whole record for ``put``/``create``: valid names and values, key fields, size limit, and
    the index and expiry fields' rules. A version field is kept as given (checked when present)."""
    return prepare_sized(raw, schema, what)[0]


def prepare_sized(
    raw: object, schema: KindSchema, what: str = "record", stamped: bool = False
) -> tuple[Record, int]:
    """``prepare_record``'s record, with an upper bound of its size by the item-size rules
    (``stamped``: the store writes the version field, a put's or a create's, after this)."""
    fields = _fields(raw, what)
    version = schema.version_field
    if version is not None and fields.get(version) is not None:
        check_version(fields[version], version)  # as given: 1.0 is no version, though it reads as 1
    record, bound = _canonical(fields, schema)
    _require_key(record, schema, what)
    # The exact size only when the bound does not already show the record is small enough
    # (put_many checks every record; sizing each number exactly was a quarter of its time).
    if bound >= MAX_ITEM_SIZE:
        check_item_size(record)
    if schema.indexes or schema.ttl_field is not None:
        _check_types(record, schema)
        for index in schema.indexes:
            sort = index.sort
            if sort is None or (stamped and sort == version):
                continue
            if index.partition in record and sort not in record:
                raise InvalidArgument(
                    f"a record with {index.partition!r} needs {sort!r} too (index {index.name!r})"
                )
    return record, bound


class Changes:
    """``update``'s changes, checked: the key, the fields to set, to remove (given as ``None``)
    and to increment, and the conditions the stored record must meet for the merged record to
    keep the index rules (``required``)."""

    __slots__ = ("increments", "key", "removes", "required", "sets", "size_bound", "version")

    def __init__(
        self,
        key: Key,
        sets: Record,
        removes: tuple[str, ...],
        increments: dict[str, int | float],
        required: Conditions,
        version: int | None,
        size_bound: int | None = None,
    ) -> None:
        self.key = key
        self.sets = sets
        self.removes = removes
        self.increments = increments
        self.required = required
        self.version = version
        """The version the caller read (``None``: not given), for a kind with a version_field."""
        self.size_bound = size_bound
        """At least the ``item_size`` of the key's fields and ``sets`` together."""


def prepare_changes(raw: object, schema: KindSchema) -> Changes:
    """``update``'s changes (see ``Changes``); every rule that needs no stored record, checked."""
    changes = _fields(raw, "changes")
    id_fields = schema.id_fields
    version_field = schema.version_field
    removed: list[str] = []
    increments: dict[str, int | float] = {}
    plain: dict[str, Any] = {}
    version: int | None = None
    for name, value in changes.items():
        if value is None:
            # The version is the store's: None there means "no version given", not "remove it".
            if name not in id_fields and name != version_field:
                removed.append(name)
        elif isinstance(value, Increment):
            if name in id_fields or name == version_field:
                raise InvalidArgument(f"field {name!r} cannot be incremented (the store keeps it)")
            increments[name] = value.prepared(name).amount
        elif name == version_field:
            version = check_version(value, name)
        else:
            plain[name] = value
    removes = tuple(removed) if removed else ()
    record, bound = _canonical(plain, schema)
    _require_key(record, schema, "changes")
    if bound >= MAX_ITEM_SIZE:  # only then can the exact size reach the limit
        check_item_size(record)
    key = schema.key_of(record)
    for field in id_fields:  # the fields that remain are the ones to set
        del record[field]
    sets = record
    required: list[tuple[str, Condition]] = []
    if schema.indexes or schema.ttl_field is not None:
        _check_types(sets, schema)
        for index in schema.indexes:
            required += _index_requirements(
                index.name, index.fields, index.key_types, sets, removes, increments, version_field
            )
    return Changes(
        key,
        sets,
        removes,
        increments,
        tuple(required) if required else (),
        version,
        bound,
    )


def _index_requirements(
    name: str,
    fields: tuple[str, ...],
    key_types: tuple[type, ...],
    sets: Mapping[str, Any],
    removes: tuple[str, ...],
    increments: Mapping[str, int | float],
    stamped: str | None,
) -> list[tuple[str, Condition]]:
    """What the stored record must meet for an update to keep one index's rules (``stamped``:
    the version field, which every update writes)."""
    for field, key_type in zip(fields, key_types, strict=True):
        amount = increments.get(field)
        if amount is not None and (
            key_type is str or (key_type is int and type(amount) is not int)
        ):
            raise InvalidArgument(
                f"field {field!r}: index {name!r} needs {_type_text(key_type)}; "
                f"increment({amount!r}) cannot keep it one"
            )
    if len(fields) == 1:
        return []
    partition, sort = fields
    gives_partition = partition in sets or partition in increments or partition == stamped
    gives_sort = sort in sets or sort in increments or sort == stamped
    if gives_partition and sort in removes:
        raise InvalidArgument(f"a record with {partition!r} needs {sort!r} too (index {name!r})")
    if gives_partition and not gives_sort:
        return [(sort, Exists())]
    if sort in removes and partition not in removes and not gives_partition:
        return [(partition, Absent())]
    return []


def prepare_filters(raw: object, schema: KindSchema) -> dict[str, Condition]:
    """Filters as conditions: a plain value is typed equality (``Eq``), ``None`` absent; key
    fields' values are valid keys; condition operands are checked and made canonical."""
    filters = _fields(raw, "filters")
    out: dict[str, Condition] = {}
    id_fields = schema.id_fields
    for name, value in filters.items():
        if name not in id_fields and type(value) is str and value.isascii() and "\x00" not in value:
            out[name] = Eq(value)  # the commonest filter, taken without the calls below
            continue
        key_type = schema.key_type_of(name)
        if isinstance(value, Condition):
            prepared = value.prepared(name)
            if key_type is not None and isinstance(prepared, OneOf):
                if prepared.absent:
                    raise InvalidArgument(f"key field {name!r} is never absent: None is not a key")
                prepared = one_of_values(name, prepared.values, key_type)
            out[name] = prepared
        elif isinstance(value, Increment):
            raise InvalidArgument(f"field {name!r}: increment() is for update's changes")
        elif key_type is not None:
            out[name] = Eq(check_key_value(value, name, key_type))
        elif value is None:
            out[name] = Absent()
        else:
            out[name] = Eq(normalize_value(value, name))
    return out


def prepare_in(field: object, values: object, schema: KindSchema) -> tuple[str, OneOf]:
    """``find_in``/``remove_in`` arguments: a valid field and its distinct canonical values
    (``None`` means absent, except for a key field, where it is ``InvalidArgument``)."""
    name = check_field_name(field)
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        raise InvalidArgument(f"values for {name!r} must be a list, tuple or other iterable")
    return name, one_of_values(name, values, schema.key_type_of(name))


def sort_key(schema: KindSchema) -> Any:
    """A ``sorted`` key function ordering records by their key fields (strings by code point)."""
    return operator.itemgetter(*schema.id_fields)  # in C: a tuple for a composite key


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of ``size`` (the last may be shorter), consuming them lazily."""
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def chunked_by_size(items: Iterable[T], size: int, max_bytes: int) -> Iterator[list[T]]:
    """``items`` in lists of ``size``, a list ending early once its items reach ``max_bytes`` by
    the item-size rules (values the caller gives, not yet checked: one that cannot be sized counts
    as nothing here and is refused by the checks after)."""
    chunk: list[T] = []
    weight = 0
    for item in items:
        chunk.append(item)
        with contextlib.suppress(TypeError, AttributeError, UnicodeEncodeError):
            weight += item_size({"v": item})
        if len(chunk) >= size or weight >= max_bytes:
            yield chunk
            chunk, weight = [], 0
    if chunk:
        yield chunk


def copy_record(record: Record) -> Record:
    """A deep copy of a canonical record, so callers and stores never share mutable values.

    Canonical values are dicts, lists and immutable scalars, so only dicts and lists are copied.
    """
    return {name: _copied(value) for name, value in record.items()}


def _copied(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        return {key: _copied(item) for key, item in value.items()}
    if kind is list:
        return [_copied(item) for item in value]
    return value
