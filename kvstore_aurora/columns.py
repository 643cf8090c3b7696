"""Column types and values: which Python values a column holds, and the JSON of ``doc``.

A field lives in the column of its name when the table has one of a supported type (text, an
integer type, numeric, double precision, boolean, jsonb); every other field lives in the ``jsonb``
column ``doc``. A value fits a column when the column stores it without loss; ``Column.encode``
returns ``UNFIT`` for one that does not.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from json.scanner import make_scanner
from typing import Any

from psycopg import sql
from psycopg.abc import Buffer
from psycopg.adapt import Loader
from psycopg.types.json import Jsonb

from kvstore.values import (
    DOUBLE_EXACT,
    INT64_MAX,
    INT64_MIN,
    number_from_float_text,
    number_from_text,
)

__all__ = ["KINDS", "UNFIT", "Column", "DocLoader", "decimal", "dumps", "loads"]

UNFIT: Any = object()
"""What ``Column.encode`` returns for a value the column cannot hold."""

INT_RANGES = {
    "smallint": (-(2**15), 2**15 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "bigint": (INT64_MIN, INT64_MAX),
}
KINDS = {
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
"""Column kind by the type's ``format_type`` name; other types are ``unsupported``."""
_CASTS = {
    "text": "text",
    "int": "bigint",
    "numeric": "numeric",
    "double": "float8",
    "boolean": "boolean",
    "jsonb": "jsonb",
}


def _int(text: str) -> int | float:
    """An integer literal: an int within the signed 64-bit range, else a float (as
    ``number_from_text`` says, without its checks for a literal that has no point)."""
    value = int(text)
    return value if INT64_MIN <= value <= INT64_MAX else float(value)


_decoder = json.JSONDecoder(parse_int=_int, parse_float=number_from_float_text)
_decode = _decoder.decode
"""One decoder for every document: ``json.loads`` with hooks builds a new decoder per call."""
_scan: Callable[[str, int], tuple[Any, int]] = make_scanner(_decoder)  # type: ignore[arg-type]
"""The decoder's own scanner, called directly: a document from the server has no whitespace
around it, which ``decode`` looks for with two regular expressions a document."""


def loads(text: str | Buffer) -> Any:
    """JSON to canonical values (numbers through ``kvstore.values.number_from_text``)."""
    # psycopg hands over bytes or a memoryview; the scanner takes only str (str() decodes either
    # without copying a memoryview to bytes first).
    if not isinstance(text, str):
        text = str(text, "utf-8")
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        return _decode(text)  # not a JSON value: the decoder's own error
    return value if end == len(text) else _decode(text)  # whitespace, or an error, after it


class DocLoader(Loader):
    """psycopg's loader of ``json`` and ``jsonb`` text through ``loads``, with no step between
    (psycopg's own copies a memoryview to bytes, then calls the function it was given)."""

    def load(self, data: Buffer) -> Any:
        """The value of one column's JSON text."""
        return loads(data)


def _refuse(value: object) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_iterencode = (
    None
    if c_make_encoder is None
    else c_make_encoder(None, _refuse, encode_basestring, None, ":", ",", False, False, False)
)


def dumps(value: Any) -> str:
    """Canonical values to JSON (``repr`` of a float is exact, so floats round-trip): what
    ``json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode``
    gives.

    Its C encoder is made once, not at every call as ``encode`` makes it, and without the check
    for circular references: core's values nest at most ``MAX_DEPTH`` deep, so they have none.
    """
    if _iterencode is None:  # an interpreter without json's C accelerator
        return _encoder.encode(value)
    return "".join(_iterencode(value, 0))


def decimal(value: int | float) -> Decimal:
    """A canonical number as the exact ``Decimal`` its text means (a float by its ``repr``)."""
    return Decimal(value) if type(value) is int else Decimal(repr(value))


class Column:
    """One real column: its name, SQL type name, value kind and numeric precision/scale."""

    # A plain slotted class, not a NamedTuple: creating a NamedTuple class costs a cold start.
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

    @property
    def numeric(self) -> bool:
        """Whether the column holds numbers."""
        return self.kind in ("int", "numeric", "double")

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
            low, high = INT_RANGES.get(self.data_type, (INT64_MIN, INT64_MAX))
            return value if isinstance(value, int) and low <= value <= high else UNFIT
        if kind == "double":
            if isinstance(value, int) and abs(value) > DOUBLE_EXACT:
                return UNFIT
            return float(value)
        if kind == "numeric":
            return self._numeric(value)
        return UNFIT

    def _numeric(self, value: int | float) -> Any:
        number = decimal(value)
        if self.precision is not None and number:
            scale = self.scale or 0
            _sign, digits, exponent = number.normalize().as_tuple()
            assert isinstance(exponent, int)
            if -exponent > scale or len(digits) + exponent > self.precision - scale:
                return UNFIT
        return number

    def decode(self, value: Any) -> Any:
        """A canonical value from what psycopg read from this column."""
        kind = self.kind
        if kind == "numeric":
            return number_from_text(str(value)) if value.is_finite() else float(value)
        if kind == "double":
            if value.is_integer() and INT64_MIN <= value <= INT64_MAX:
                return int(value)
            return value
        return value
