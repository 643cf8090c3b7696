"""A kind's table layout (key columns, real columns, ``doc``), read once and cached, and the
conversion of field values to and from its columns.

A field is stored in the column of its name when the table has one of a supported type (text,
bigint, numeric, double precision, boolean, jsonb); every other field goes into the ``jsonb`` column
``doc``. A value fits a column when the column stores it without loss.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from psycopg import pq, sql
from psycopg.types.json import Jsonb

from kvstore.backend import KindSchema, Record
from kvstore.errors import ConfigError, InvalidArgument
from kvstore.values import INT64_MAX, INT64_MIN

__all__ = [
    "UNFIT",
    "Column",
    "Layout",
    "check_rows",
    "decode",
    "forget",
    "probe_sql",
    "read_layout",
    "read_probe",
    "remember",
]

UNFIT: Any = object()
"""What ``Column.encode`` returns for a value the column cannot hold."""

_DOUBLE_EXACT = 2**53
_INT_RANGES = {
    "smallint": (-(2**15), 2**15 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "bigint": (INT64_MIN, INT64_MAX),
}
_KINDS = {
    "text": "text",
    "character varying": "text",
    "smallint": "int",
    "integer": "int",
    "bigint": "int",
    "numeric": "numeric",
    "double precision": "double",
    "boolean": "boolean",
    "jsonb": "jsonb",
}
_CASTS = {
    "text": "text",
    "int": "bigint",
    "numeric": "numeric",
    "double": "float8",
    "boolean": "boolean",
    "jsonb": "jsonb",
}


def _to_number(value: Decimal | float) -> int | float:
    """A number read from a numeric or double column as a canonical int or float."""
    if isinstance(value, float):
        if value.is_integer() and INT64_MIN <= value <= INT64_MAX:
            return int(value)
        return value
    if value == value.to_integral_value() and INT64_MIN <= value <= INT64_MAX:
        return int(value)
    return float(value)


# Column, Layout (and sql.Where, store._Pipeline) are plain classes, not NamedTuples: creating a
# NamedTuple class cost a cold start 0.2 to 0.33 ms each (its annotations and __new__ are compiled).


class Column:
    """One real column: its name, SQL type name, value kind and numeric precision/scale."""

    __slots__ = ("data_type", "kind", "name", "precision", "scale")

    def __init__(
        self,
        name: str,
        data_type: str,
        kind: str,
        precision: int | None = None,
        scale: int | None = None,
    ) -> None:
        self.name = name
        self.data_type = data_type
        self.kind = kind
        """``text``, ``int``, ``numeric``, ``double``, ``boolean``, ``jsonb`` or ``unsupported``."""
        self.precision = precision
        self.scale = scale

    def __repr__(self) -> str:
        return f"Column({self.name!r}, {self.data_type!r}, {self.kind!r})"

    @property
    def cast(self) -> sql.SQL:
        """The cast that types a bound parameter for this column."""
        return sql.SQL(_CASTS.get(self.kind, "text"))

    def encode(self, value: Any) -> Any:
        """The parameter storing ``value`` (canonical, not None) in this column, or ``UNFIT``."""
        kind = self.kind
        if kind == "jsonb":
            return Jsonb(value)
        if kind == "text":
            return value if isinstance(value, str) else UNFIT
        if kind == "boolean":
            return value if isinstance(value, bool) else UNFIT
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return UNFIT
        if kind == "int":
            low, high = _INT_RANGES.get(self.data_type, (INT64_MIN, INT64_MAX))
            return value if isinstance(value, int) and low <= value <= high else UNFIT
        if kind == "double":
            if isinstance(value, int) and abs(value) > _DOUBLE_EXACT:
                return UNFIT
            return float(value)
        if kind == "numeric":
            return self._numeric(value)
        return UNFIT

    def _numeric(self, value: int | float) -> Any:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        if self.precision is not None and number:
            scale = self.scale or 0
            _sign, digits, exponent = number.normalize().as_tuple()
            assert isinstance(exponent, int)
            if -exponent > scale or len(digits) + exponent > self.precision - scale:
                return UNFIT
        return number

    def decode(self, value: Any) -> Any:
        """A canonical value from what psycopg read from this column."""
        if self.kind in ("numeric", "double"):
            return _to_number(value)
        return value


class Layout:
    """Where a kind's fields live: its (quoted) table, key columns, real columns and ``doc``."""

    __slots__ = ("checked", "columns", "has_doc", "keys", "kind", "schema")

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
        self.checked = checked
        """The columns whose values a write checks (``check_rows``): all but text and bigint
        keys, which hold every valid key."""

    def __repr__(self) -> str:
        return f"<Layout {self.schema}.{self.kind} {self.selected}>"

    @property
    def table(self) -> sql.Identifier:
        """The schema-qualified, quoted table name."""
        return sql.Identifier(self.schema, self.kind)

    @property
    def selected(self) -> tuple[str, ...]:
        """The column names every SELECT reads, in the order ``decode`` expects."""
        names = tuple(column.name for column in self.keys)
        names += tuple(n for n, c in self.columns.items() if c.kind != "unsupported")
        return (*names, "doc") if self.has_doc else names

    def column(self, name: str) -> Column | None:
        """The key or real column holding field ``name``, if the table has one."""
        for key in self.keys:
            if key.name == name:
                return key
        return self.columns.get(name)

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


def check_rows(layout: Layout, records: Iterable[Record]) -> None:
    """Raise ``InvalidArgument`` for the first value of ``records`` that ``layout`` cannot store.

    Writes send whole records as JSON (``kvstore_aurora.sql.json_insert_sql``), so this is all
    they check: a value must fit its column, and a field with no column needs ``doc``. Text and bigint
    key columns fit every valid key, so a table of the default layout checks nothing.
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


def decode(layout: Layout, row: tuple[Any, ...]) -> Record:
    """The record a SELECT of ``layout.selected`` returned (key fields first)."""
    if len(layout.keys) == 1 and not layout.columns and layout.has_doc:
        # The default layout (one key, doc): a key column (text or an integer) needs no decoding.
        key, value, stored = layout.keys[0].name, row[0], row[-1]
        if not stored:
            return {key: value}
        if None in stored.values():
            # A top-level null (written by another tool) is an absent field.
            stored = {field: item for field, item in stored.items() if item is not None}
        record = {key: value, **stored}
        record[key] = value  # a doc field named like the key column (another tool's) loses
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

Precision and scale come from the modifier here, not from information_schema's functions, whose
first call on a new server session cost a cold start 1.5 ms (4.2 against 2.75 ms).
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
            _KINDS.get(data_type, "unsupported"),
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


_PROBED_TYPES = {
    25: "text",
    1043: "character varying",
    20: "bigint",
    23: "integer",
    21: "smallint",
    3802: "jsonb",
}
"""The types, by OID and as ``format_type`` names them, that the columns of a probed table (its key
columns and ``doc``) may have."""


def probe_sql(schema: KindSchema, db_schema: str | None) -> sql.Composed:
    """A find by key (parameters: the key) that also shows whether the table has the default
    layout: its key columns and ``doc``, nothing else (``read_probe`` reads it).

    One statement where ``LAYOUT_QUERY`` and the select are two: on a new server session (a
    Lambda's cold start) the catalog query costs about 1 ms more than this whole statement. Beside
    ``t.*`` it reads the declared type of each key column and of ``doc`` (``pg_typeof`` shows a
    domain as itself, where a result's column description shows its base type), the schema
    ``LAYOUT_QUERY`` would look in, and the OID of the table it would find there.
    """
    names = (*schema.id_fields, "doc")
    match = [
        sql.SQL("t.{} = %s::{}").format(
            sql.Identifier(field), sql.SQL("text" if key_type is str else "bigint")
        )
        for field, key_type in zip(schema.id_fields, schema.key_types, strict=True)
    ]
    return sql.SQL(
        "SELECT to_regclass(quote_ident(COALESCE({db_schema}, current_schema())) || '.' || "
        "quote_ident({kind}))::oid, COALESCE({db_schema}, current_schema()), {declared}, t.* "
        "FROM (VALUES (1)) AS one LEFT JOIN {table} AS t ON {match}"
    ).format(
        db_schema=sql.Literal(db_schema),
        kind=sql.Literal(schema.kind),
        declared=sql.SQL(", ").join(
            sql.SQL("pg_typeof(t.{})::oid").format(sql.Identifier(name)) for name in names
        ),
        table=sql.Identifier(db_schema, schema.kind) if db_schema else sql.Identifier(schema.kind),
        match=sql.SQL(" AND ").join(match),
    )


def read_probe(
    schema: KindSchema, result: pq.abc.PGresult, row: tuple[Any, ...]
) -> tuple[Layout, tuple[Any, ...] | None] | None:
    """From ``probe_sql``'s result: the layout, and the matching row in ``layout.selected``'s
    order (``None``: no match). ``None`` when the table's layout is not provably the default one
    (the caller then reads ``LAYOUT_QUERY``).

    The layout is ``build_layout``'s from the rows ``LAYOUT_QUERY`` would return: every column is
    a key column or ``doc`` of a supported type, declared as such (no domain), of the very table
    ``LAYOUT_QUERY`` would read.
    """
    wanted = [name.encode() for name in (*schema.id_fields, "doc")]
    first = 2 + len(wanted)
    table_oid, namespace, declared = row[0], row[1], dict(zip(wanted, row[2:first], strict=True))
    names = [bytes(result.fname(index) or b"") for index in range(first, result.nfields)]
    if table_oid is None or sorted(names) != sorted(wanted):
        return None
    rows = []
    for index, name in enumerate(names, first):
        oid = result.ftype(index)
        if result.ftable(index) != table_oid or oid not in _PROBED_TYPES or declared[name] != oid:
            return None
        rows.append((name.decode(), _PROBED_TYPES[oid], result.fmod(index), namespace))
    layout = build_layout(schema, rows)
    assert layout is not None  # rows is not empty
    values = {column[0]: value for column, value in zip(rows, row[first:], strict=True)}
    if values[schema.id_fields[0]] is None:  # no match: a matched row's key equals the parameter
        return layout, None
    return layout, tuple(values[name] for name in layout.selected)


_cache: dict[tuple[Any, ...], Layout] = {}
_cache_lock = threading.Lock()


def read_layout(key: tuple[Any, ...]) -> Layout | None:
    """The cached layout under ``key`` (configuration, schema, kind), if read already."""
    return _cache.get(key)


def remember(key: tuple[Any, ...], layout: Layout) -> None:
    """Cache ``layout`` under ``key``."""
    with _cache_lock:
        _cache[key] = layout


def forget(key: tuple[Any, ...]) -> None:
    """Drop the cached layout under ``key`` (its table was dropped or changed)."""
    with _cache_lock:
        _cache.pop(key, None)
