"""A kind's declaration: its name, key, secondary indexes, version and expiry fields.

``create_store`` checks every part (``InvalidArgument``) and hands drivers a ``KindSchema``: what a
driver needs to create the kind's table and indexes and to translate reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kvstore.errors import InvalidArgument
from kvstore.values import MAX_KEY_BYTES, check_field_name, check_kind

__all__ = ["MAX_INDEXES", "Index", "Key", "KindSchema"]

Key = tuple[Any, ...]
"""A record's key: the values of its id fields, in order."""

MAX_INDEXES = 20
"""At most this many secondary indexes a kind (DynamoDB's default quota of GSIs a table)."""

_INDEX_TYPES = {str: "str", int: "int", float: "number"}


def _sequence(value: object, what: str) -> tuple[Any, ...]:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise InvalidArgument(f"{what} must be a list or tuple")
    return tuple(value)


def _types(key_type: object, count: int, allowed: Iterable[type], what: str) -> tuple[type, ...]:
    types = (key_type,) * count if isinstance(key_type, type) else _sequence(key_type, what)
    allowed = tuple(allowed)
    if len(types) != count or any(t not in allowed for t in types):
        names = " or ".join(t.__name__ for t in allowed)
        raise InvalidArgument(f"{what} is {names}, or one of them per field")
    return types


class Index:
    """A secondary index: ``Index(name, fields, key_type=str)``.

    ``fields`` is one or two top-level field names: the partition field, then an optional sort
    field. ``key_type`` is one per field (or one for both): ``str``, ``int``, or ``float`` meaning
    any number. A record is in the index when it has the partition field; it must then have the
    sort field too, and every index field a value of its type.
    """

    __slots__ = ("_hash", "fields", "key_types", "name", "partition", "sort")

    def __init__(
        self, name: str, fields: str | Iterable[str], key_type: type | Iterable[type] = str
    ) -> None:
        if not (
            isinstance(name, str)
            and 3 <= len(name) <= 32
            and name.isascii()
            and name.isidentifier()
            and name.islower()
            and name[0] != "_"
        ):
            raise InvalidArgument(
                f"invalid index name {name!r}: 3 to 32 characters of [a-z0-9_], starting with a letter"
            )
        names = (fields,) if isinstance(fields, str) else _sequence(fields, "index fields")
        if not 1 <= len(names) <= 2:
            raise InvalidArgument(f"index {name!r} has one or two fields (partition, then sort)")
        for field in names:
            check_field_name(field)
        if len(set(names)) != len(names):
            raise InvalidArgument(f"index {name!r} names the same field twice")
        self.name: str = name
        self.fields: tuple[str, ...] = names
        self.key_types: tuple[type, ...] = _types(
            key_type, len(names), (str, int, float), f"index {name!r} key_type"
        )
        # Attributes, not properties: every indexed read and page asks for them several times.
        self.partition: str = names[0]
        """The partition field."""
        self.sort: str | None = names[1] if len(names) > 1 else None
        """The sort field, if the index has one."""
        self._hash = hash((name, names, self.key_types))  # a key of the drivers' caches

    def __repr__(self) -> str:
        types = ", ".join(t.__name__ for t in self.key_types)
        return f"Index({self.name!r}, {self.fields!r}, key_type=({types}))"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Index) and (self.name, self.fields, self.key_types) == (
            other.name,
            other.fields,
            other.key_types,
        )

    def __hash__(self) -> int:
        return self._hash


def fits_index_type(value: Any, key_type: type) -> bool:
    """Whether a canonical ``value`` may be stored in an index field of ``key_type``.

    A string is non-empty and at most 1024 UTF-8 bytes (as a key); ``float`` means any number.
    """
    kind = type(value)
    if key_type is str:
        return (
            kind is str
            and value != ""
            and (len(value) if value.isascii() else len(value.encode("utf-8"))) <= MAX_KEY_BYTES
        )
    if key_type is int:
        return kind is int
    return kind is int or kind is float


class KindSchema:
    """A kind's name, key (id fields, partition then optional sort, and their types), secondary
    indexes, and the fields the store maintains (``version_field``) or expires by (``ttl_field``).
    """

    __slots__ = ("_hash", "id_fields", "indexes", "key_types", "kind", "ttl_field", "version_field")

    def __init__(
        self,
        kind: str,
        id_fields: tuple[str, ...],
        key_types: tuple[type, ...],
        indexes: tuple[Index, ...] = (),
        version_field: str | None = None,
        ttl_field: str | None = None,
    ) -> None:
        self.kind = kind
        self.id_fields = id_fields
        self.key_types = key_types
        self.indexes = indexes
        self.version_field = version_field
        self.ttl_field = ttl_field
        self._hash = hash((kind, id_fields, key_types, indexes, version_field, ttl_field))

    @classmethod
    def declare(
        cls,
        kind: str,
        id_field: str | Iterable[str] = "id",
        key_type: type | Iterable[type] = str,
        indexes: Iterable[Index] = (),
        version_field: str | None = None,
        ttl_field: str | None = None,
    ) -> KindSchema:
        """The schema ``create_store``'s arguments declare, checked (``InvalidArgument``)."""
        check_kind(kind)
        fields = (id_field,) if isinstance(id_field, str) else _sequence(id_field, "id_field")
        if not 1 <= len(fields) <= 2:
            raise InvalidArgument("id_field names one or two fields (partition key, sort key)")
        for name in fields:
            check_field_name(name)
        if len(set(fields)) != len(fields):
            raise InvalidArgument("id_field names the same field twice")
        types = _types(key_type, len(fields), (str, int), "key_type")
        declared = _sequence(indexes, "indexes")
        for index in declared:
            if not isinstance(index, Index):
                raise InvalidArgument(f"indexes holds Index objects, not {index!r:.80}")
        if len(declared) > MAX_INDEXES:
            raise InvalidArgument(f"a kind has at most {MAX_INDEXES} indexes")
        if len({index.name for index in declared}) != len(declared):
            raise InvalidArgument("two indexes of the kind have the same name")
        special: dict[str, str] = {}
        for what, field in (("version_field", version_field), ("ttl_field", ttl_field)):
            if field is None:
                continue
            check_field_name(field)
            if field in fields:
                raise InvalidArgument(f"{what} {field!r} is a key field")
            if field in special:
                raise InvalidArgument(f"version_field and ttl_field are the same field {field!r}")
            special[field] = what
        for index in declared:
            for field, typed in zip(index.fields, index.key_types, strict=True):
                if field in special and typed is str:
                    raise InvalidArgument(
                        f"index {index.name!r} types {special[field]} {field!r} as a string; "
                        "it holds a number (key_type int or float)"
                    )
        return cls(kind, tuple(fields), types, declared, version_field, ttl_field)

    def key_of(self, record: Mapping[str, Any]) -> Key:
        """The key of a canonical record (its id fields' values, in order)."""
        fields = self.id_fields
        if len(fields) == 1:  # most kinds: no generator to start
            return (record[fields[0]],)
        return tuple(record[field] for field in fields)

    def key_filters(self, key: Key) -> dict[str, Any]:
        """The filters naming exactly the record at ``key``."""
        return dict(zip(self.id_fields, key, strict=True))

    def key_type_of(self, field: str) -> type | None:
        """The key type of an id field, ``None`` for any other field."""
        fields = self.id_fields
        if field == fields[0]:
            return self.key_types[0]
        if len(fields) > 1 and field == fields[1]:
            return self.key_types[1]
        return None

    @property
    def partition(self) -> str:
        """The partition key field."""
        return self.id_fields[0]

    @property
    def sort(self) -> str | None:
        """The sort key field, if the key has one."""
        return self.id_fields[1] if len(self.id_fields) > 1 else None

    def index(self, name: str) -> Index:
        """The declared index called ``name`` (``KeyError`` when there is none)."""
        for index in self.indexes:
            if index.name == name:
                return index
        raise KeyError(name)

    def _parts(self) -> tuple[Any, ...]:
        return (
            self.kind,
            self.id_fields,
            self.key_types,
            self.indexes,
            self.version_field,
            self.ttl_field,
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KindSchema) and self._parts() == other._parts()

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        types = ", ".join(t.__name__ for t in self.key_types)
        extra = "".join(
            f", {name}={value!r}"
            for name, value in (
                ("indexes", self.indexes),
                ("version_field", self.version_field),
                ("ttl_field", self.ttl_field),
            )
            if value
        )
        return f"KindSchema({self.kind!r}, {self.id_fields!r}, ({types}){extra})"
