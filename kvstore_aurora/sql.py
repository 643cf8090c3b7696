"""WHERE clauses for filters and ``find_in`` with the contract's exact, typed equality.

A real column compares with ``=`` on a parameter cast to its type (a value that cannot be stored
in the column matches nothing); a ``doc`` field compares ``doc -> 'f'`` with a jsonb value (jsonb
equality is typed, numeric for numbers, deep for lists and dicts), after a ``doc @> ...``
containment test that a GIN index on ``doc`` serves. A filter value ``None`` means "absent".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from psycopg import sql
from psycopg.types.json import Jsonb

from kvstore_aurora.layout import UNFIT, Layout

__all__ = ["Where", "find_in_clause", "where_clause"]

_TRUE = sql.SQL("TRUE")
MAX_CONTAINMENTS = 200
"""Up to this many values, ``find_in`` on a ``doc`` field is written so the GIN index serves it."""


class Where(NamedTuple):
    """A WHERE clause, its parameters, and whether it can never match (then skip the I/O)."""

    clause: sql.Composable
    params: list[Any]
    never: bool = False


_NEVER = Where(sql.SQL("FALSE"), [], never=True)


def where_clause(layout: Layout, filters: Mapping[str, Any]) -> Where:
    """The clause matching records equal to ``filters`` (AND of each field's equality)."""
    contained: dict[str, Any] = {}
    parts: list[sql.Composable] = []
    params: list[Any] = []
    for field, value in filters.items():
        name = sql.Identifier(field)
        column = layout.column(field)
        if column is not None:
            if value is None:
                parts.append(sql.SQL("{} IS NULL").format(name))
                continue
            encoded = column.encode(value)
            if encoded is UNFIT:
                return _NEVER
            parts.append(sql.SQL("{} = %s::{}").format(name, column.cast))
            params.append(encoded)
        elif not layout.has_doc:
            # The table cannot hold this field: it is absent from every record.
            if value is not None:
                return _NEVER
        elif value is None:
            parts.append(sql.SQL("NOT (doc ? %s)"))
            params.append(field)
        else:
            contained[field] = value
            parts.append(sql.SQL("(doc -> %s) = %s::jsonb"))
            params += [field, Jsonb(value)]
    if contained:
        parts.insert(0, sql.SQL("doc @> %s::jsonb"))
        params.insert(0, Jsonb(contained))
    clause = sql.SQL(" AND ").join(parts) if parts else _TRUE
    return Where(clause, params)


def find_in_clause(layout: Layout, field: str, values: Sequence[Any]) -> Where:
    """The clause matching records whose ``field`` equals one of ``values`` (None: absent)."""
    name = sql.Identifier(field)
    absent = any(value is None for value in values)
    present = [value for value in values if value is not None]
    column = layout.column(field)
    parts: list[sql.Composable] = []
    params: list[Any] = []
    if column is not None:
        encoded = [column.encode(value) for value in present]
        encoded = [value for value in encoded if value is not UNFIT]
        if encoded:
            parts.append(sql.SQL("{} = ANY(%s::{}[])").format(name, column.cast))
            params.append(encoded)
        if absent:
            parts.append(sql.SQL("{} IS NULL").format(name))
    elif layout.has_doc:
        if present:
            exact: sql.Composable = sql.SQL("(doc -> %s) = ANY(%s::jsonb[])")
            if len(present) <= MAX_CONTAINMENTS:
                # GIN cannot serve "= ANY": an OR of containments lets it (a BitmapOr).
                contained = sql.SQL(" OR ").join([sql.SQL("doc @> %s::jsonb")] * len(present))
                exact = sql.SQL("(({}) AND {})").format(contained, exact)
                params += [Jsonb({field: value}) for value in present]
            parts.append(exact)
            params += [field, [Jsonb(value) for value in present]]
        if absent:
            parts.append(sql.SQL("NOT (doc ? %s)"))
            params.append(field)
    elif absent:
        return Where(_TRUE, [])
    if not parts:
        return _NEVER
    return Where(sql.SQL("({})").format(sql.SQL(" OR ").join(parts)), params)
