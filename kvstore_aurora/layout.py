"""A kind's table layout (key columns, real columns, ``doc``): read from the catalog, cached for
the process, and used to decode rows and to say where each field lives.

The cache is one ``Slot`` per (database, schema, kind) kept by ``kvstore.backend.shared``: every
driver of the kind holds the slot, so a layout read by one (or found by the probe, see
``kvstore_aurora.probe``) serves all, and a table found changed is forgotten for all.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import Any

from psycopg import sql

from kvstore.backend import KindSchema, Record, shared
from kvstore.errors import ConfigError, InvalidArgument
from kvstore_aurora.columns import KINDS, UNFIT, Column

__all__ = [
    "ALIAS",
    "LAYOUT_QUERY",
    "Layout",
    "Place",
    "Slot",
    "build_layout",
    "cached",
    "check_rows",
    "decode",
    "forget",
    "remember",
    "select_columns",
    "slot",
]

ALIAS = "r"
"""The alias of a kind's table in every statement (in ``ON CONFLICT``, the stored row)."""


class Place:
    """Where a field lives: ``key`` or ``column`` (a typed column: ``column``), ``json`` (``doc``
    when ``column`` is None, else a jsonb column), or ``none`` (the table cannot hold it)."""

    __slots__ = ("column", "field", "kind")

    def __init__(self, field: str, kind: str, column: Column | None = None) -> None:
        self.field = field
        self.kind = kind
        self.column = column

    def __repr__(self) -> str:
        return f"Place({self.field!r}, {self.kind!r}, {self.column!r})"


class Layout:
    """Where a kind's fields live: its table, key columns, real columns and ``doc``."""

    __slots__ = (
        "_places",
        "checked",
        "columns",
        "default",
        "has_doc",
        "index_kinds",
        "keys",
        "kind",
        "schema",
        "selected",
    )

    def __init__(
        self,
        schema: str,
        kind: str,
        keys: tuple[Column, ...],
        columns: Mapping[str, Column],
        has_doc: bool,
        checked: tuple[Column, ...] = (),
    ) -> None:
        self.schema = schema
        self.kind = kind
        self.keys = keys
        self.columns = columns
        """Real columns by name, key columns excluded."""
        self.has_doc = has_doc
        self.default = has_doc and not columns
        """Whether the table has only its key columns and ``doc`` (``ensure()``'s layout)."""
        self.checked = checked
        """The columns whose values a write checks (``check_rows``): all but text and bigint
        keys, which hold every valid key."""
        names = tuple(column.name for column in keys)
        names += tuple(n for n, c in columns.items() if c.kind != "unsupported")
        self.selected: tuple[str, ...] = (*names, "doc") if has_doc else names
        """The column names every SELECT reads, in the order ``decode`` expects."""
        self._places: dict[str, Place] = {}
        self.index_kinds: dict[Any, list[str]] = {}
        """What each index's expressions compare as, by index (``statements._index_kinds``)."""

    def __repr__(self) -> str:
        return f"<Layout {self.schema}.{self.kind} {self.selected}>"

    @property
    def table(self) -> sql.Identifier:
        """The schema-qualified, quoted table name."""
        return sql.Identifier(self.schema, self.kind)

    def column(self, name: str) -> Column | None:
        """The key or real column holding field ``name``, if the table has one."""
        for key in self.keys:
            if key.name == name:
                return key
        return self.columns.get(name)

    def place(self, field: str) -> Place:
        """Where ``field`` lives in this table."""
        found = self._places.get(field)
        if found is None:
            column = self.column(field)
            if column is not None and column in self.keys:
                found = Place(field, "key", column)
            elif column is not None and column.kind == "jsonb":
                found = Place(field, "json", column)
            elif column is not None and column.kind != "unsupported":
                found = Place(field, "column", column)
            elif self.has_doc and column is None:
                found = Place(field, "json")
            else:
                found = Place(field, "none", column)
            self._places[field] = found
        return found

    def encode(self, field: str, value: Any) -> Any:
        """``column.encode`` that raises ``InvalidArgument`` for a value that does not fit."""
        column = self.column(field)
        if column is None:
            raise InvalidArgument(
                f"field {field!r}: table {self.schema}.{self.kind} has no column {field!r} "
                "and no 'doc' column for other fields"
            )
        encoded = column.encode(value)
        if encoded is UNFIT:
            raise InvalidArgument(
                f"field {field!r}: {type(value).__name__} {value!r:.80} does not fit column "
                f"{self.kind}.{field} of type {column.data_type}"
            )
        return encoded


def select_columns(layout: Layout) -> sql.Composable:
    """The columns every SELECT reads (``layout.selected``), qualified by the table's alias."""
    return sql.SQL(", ").join(sql.Identifier(ALIAS, name) for name in layout.selected)


def check_rows(layout: Layout, records: Iterable[Record]) -> None:
    """Raise ``InvalidArgument`` for the first value of ``records`` that ``layout`` cannot store.

    Writes send whole records as JSON (``kvstore_aurora.statements.json_insert_sql``), so this is
    all they check: a value must fit its column, and a field with no column needs ``doc``. Text
    and bigint key columns fit every valid key, so a table of the default layout checks nothing.
    """
    checked, has_doc = layout.checked, layout.has_doc
    if not checked and has_doc:
        return
    stored = set(layout.selected)
    for record in records:
        for column in checked:
            value = record.get(column.name)
            if value is not None and column.encode(value) is UNFIT:
                layout.encode(column.name, value)  # raises, saying why
        if not has_doc:
            for field, value in record.items():
                if field not in stored:
                    layout.encode(field, value)  # raises: no column for it


def decode(layout: Layout, row: tuple[Any, ...] | list[Any]) -> Record:
    """The record a SELECT of ``layout.selected`` returned (key fields first)."""
    if not layout.columns and layout.has_doc:
        # The default layout (key columns, doc): a key column (text or an integer) needs no
        # decoding. One key and two keys are spelt out: every row read goes through here.
        stored = row[-1]
        if stored and None in stored.values():
            # A top-level null (written by another tool) is an absent field.
            stored = {field: item for field, item in stored.items() if item is not None}
        keys = layout.keys
        if len(keys) == 1:
            key, value = keys[0].name, row[0]
            if not stored:
                return {key: value}
            record = {key: value, **stored}
            record[key] = value  # a doc field named like the key column (another tool's) loses
            return record
        first, second, one, two = keys[0].name, keys[1].name, row[0], row[1]
        if not stored:
            return {first: one, second: two}
        record = {first: one, second: two, **stored}
        record[first] = one
        record[second] = two
        return record
    record = {column.name: column.decode(row[i]) for i, column in enumerate(layout.keys)}
    index = len(layout.keys)
    doc: dict[str, Any] = row[-1] if layout.has_doc and row[-1] else {}
    for column in layout.columns.values():
        if column.kind == "unsupported":
            continue
        value = row[index]
        index += 1
        if value is not None:
            record[column.name] = column.decode(value)
    for field, value in doc.items():
        if value is not None:  # a top-level null (written by another tool) is an absent field
            record.setdefault(field, value)
    return record


LAYOUT_QUERY = """
SELECT a.attname, format_type(a.atttypid, NULL), a.atttypmod, n.nspname
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE n.nspname = COALESCE(%s, current_schema()) AND c.relname = %s
   AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
 ORDER BY a.attnum
"""
"""The columns of a kind's table: name, type, type modifier, schema.

Precision and scale come from the type modifier, not from information_schema's functions, whose
first call on a new server session is slow (see docs/PERFORMANCE.md).
"""


def _precision_scale(data_type: str, typmod: int) -> tuple[int | None, int | None]:
    """A numeric column's precision and scale from its type modifier (``None``: unconstrained).

    PostgreSQL packs them as ``((precision << 16) | scale) + 4``; since version 15 the scale is an
    11-bit signed number (it may be negative), which reads the same as before for 0 to 1000.
    """
    if data_type != "numeric" or typmod < 4:
        return None, None
    bits = typmod - 4
    return (bits >> 16) & 0xFFFF, ((bits & 0x7FF) ^ 1024) - 1024


def build_layout(schema: KindSchema, rows: list[tuple[Any, ...]]) -> Layout | None:
    """The layout from ``LAYOUT_QUERY``'s rows; ``None`` when the table does not exist."""
    if not rows:
        return None
    found = {
        name: Column(
            name,
            data_type,
            KINDS.get(data_type, "unsupported"),
            *_precision_scale(data_type, typmod),
        )
        for name, data_type, typmod, _ in rows
    }
    table = f"{rows[0][3]}.{schema.kind}"
    keys = []
    for field, key_type in zip(schema.id_fields, schema.key_types, strict=True):
        column = found.pop(field, None)
        wanted = "text" if key_type is str else "int"
        if column is None or column.kind != wanted:
            raise ConfigError(
                f"table {table} needs a key column {field!r} of type "
                f"{'text' if key_type is str else 'bigint'} (found "
                f"{column.data_type if column else 'none'}); check id_field/key_type"
            )
        keys.append(column)
    doc = found.pop("doc", None)
    if doc is not None and doc.kind != "jsonb":
        raise ConfigError(f"table {table}: column 'doc' must be jsonb, not {doc.data_type}")
    checked = [key for key in keys if key.kind != "text" and key.data_type != "bigint"]
    return Layout(
        rows[0][3], schema.kind, tuple(keys), found, doc is not None, (*checked, *found.values())
    )


class Slot:
    """The cached layout of one table (``None``: not read yet, or forgotten)."""

    __slots__ = ("layout",)

    def __init__(self) -> None:
        self.layout: Layout | None = None


def slot(key: Hashable) -> Slot:
    """The process's slot for ``key`` (database, schema, kind schema)."""
    return shared("kvstore_aurora.layout", key, Slot)


def cached(key: Hashable) -> Layout | None:
    """The cached layout under ``key``, if read already."""
    return slot(key).layout


def remember(key: Hashable, layout: Layout) -> None:
    """Cache ``layout`` under ``key``."""
    slot(key).layout = layout


def forget(key: Hashable) -> None:
    """Drop the cached layout under ``key`` (its table was dropped or changed)."""
    slot(key).layout = None
