"""How the command prints records: JSON lines, a JSON array, CSV or a plain text table.

``jsonl`` and ``json`` stream; ``csv`` and ``table`` hold every record first (their header is the
union of the records' fields, in the order first seen). Values other than strings are shown as
JSON text (a nested list or dict, a number, ``true``); a field a record lacks is an empty cell.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import click

from kvstore.copying import dumps

__all__ = ["FORMATS", "echo_json", "format_option", "print_records"]

FORMATS = ("jsonl", "json", "csv", "table")
"""The output formats of ``find``, ``ls``, ``backends`` and ``status``."""

F = TypeVar("F", bound=Callable[..., Any])

Record = Mapping[str, Any]


def format_option(command: F) -> F:
    """``--format json|jsonl|csv|table`` (default ``jsonl``)."""
    return click.option(
        "--format",
        "output",
        type=click.Choice(FORMATS),
        default="jsonl",
        show_default=True,
        help="jsonl: a JSON object a line; json: one JSON array; csv: a header of every field "
        "then a row a record; table: plain aligned text. Values that are not strings are JSON.",
    )(command)


def echo_json(value: object) -> None:
    """``value`` as one line of JSON on stdout."""
    click.echo(dumps(value))


def _cell(value: Any, table: bool) -> str:
    if isinstance(value, str):
        if table:  # one line a row: control characters shown as JSON escapes
            return value if value.isprintable() else dumps(value)[1:-1]
        return value
    return dumps(value)


def _columns(records: list[Record]) -> list[str]:
    columns: dict[str, None] = {}
    for record in records:
        for field in record:
            columns.setdefault(field, None)
    return list(columns)


def _csv(records: list[Record]) -> None:
    if not records:
        return
    columns = _columns(records)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for record in records:
        writer.writerow([_cell(record[c], False) if c in record else "" for c in columns])
        if buffer.tell() > 1 << 16:
            click.echo(buffer.getvalue(), nl=False)
            buffer.seek(0)
            buffer.truncate()
    click.echo(buffer.getvalue(), nl=False)


def _is_number(value: object) -> bool:
    return type(value) in (int, float)


def _table(records: list[Record]) -> None:
    if not records:
        return
    columns = _columns(records)
    rows = [[_cell(r[c], True) if c in r else "" for c in columns] for r in records]
    widths = [max(len(column), *(len(row[i]) for row in rows)) for i, column in enumerate(columns)]
    numeric = [
        all(_is_number(r[c]) for r in records if c in r) and any(c in r for r in records)
        for c in columns
    ]

    def line(cells: list[str]) -> str:
        parts = (
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, right in zip(cells, widths, numeric, strict=True)
        )
        return "  ".join(parts).rstrip()

    click.echo(line(columns))
    click.echo(line(["-" * width for width in widths]))
    for row in rows:
        click.echo(line(row))


def print_records(
    records: Iterable[Record], output: str, *, cursor: str | None = None, paged: bool = False
) -> int:
    """Print ``records`` in format ``output``; how many. ``paged``: they are a page whose next
    page starts at ``cursor`` (``None``: the last page); ``jsonl`` then ends with a line
    ``{"cursor": ...}`` and ``json`` prints ``{"records": [...], "cursor": ...}``."""
    count = 0
    if output == "jsonl":
        for record in records:
            click.echo(dumps(record))
            count += 1
        if paged:
            echo_json({"cursor": cursor})
    elif output == "json":
        click.echo('{"records": [' if paged else "[", nl=False)
        for record in records:
            click.echo(("" if count == 0 else ",\n ") + dumps(record), nl=False)
            count += 1
        click.echo("]" + (f', "cursor": {dumps(cursor)}}}' if paged else ""))
    else:
        held = list(records)
        count = len(held)
        (_csv if output == "csv" else _table)(held)
    return count
