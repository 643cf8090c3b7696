"""The commands on a kind's records: ``put``, ``find``, ``ls``, ``count``, ``rm``, ``truncate``,
``purge``."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from decimal import Decimal
from typing import IO, Any

import click

from kvstore.cli.app import CommandError, Declaration, cli, kind_options, open_store
from kvstore.cli.filters import parse_filters
from kvstore.cli.output import echo_json, format_option, print_records
from kvstore.errors import InvalidArgument, OperationRejected, StoreError
from kvstore.records import prepare_record
from kvstore.schema import KindSchema
from kvstore.store import RecordStore

__all__ = ["StdinRecords"]


def _explain_option(command: Any) -> Any:
    return click.option(
        "--explain",
        is_flag=True,
        help='Print how the read is served ({"explain": "key"|"partition"|"index:NAME"|"scan"}) '
        "and do nothing else (no I/O).",
    )(command)


def _filters(declaration: Declaration, texts: tuple[str, ...]) -> dict[str, Any]:
    return parse_filters(texts, declaration.field_type)


def _explained(store: RecordStore, filters: dict[str, Any]) -> None:
    echo_json({"explain": store.explain(filters)})


def _loads(text: str) -> Any:
    """A JSON text whose numbers with a point or an exponent are read exactly (``Decimal``), so
    the number rules judge what was written: 43 digits are refused, not rounded to a float."""
    return json.loads(text, parse_float=Decimal)


class StdinRecords:
    """The JSON lines of a stream as checked records, for ``put_many``.

    It stops, rather than raises, at the first line that is not JSON, not an object or not a
    valid record, so that ``put_many`` writes every line before it and none after it; ``error``
    then says which line and why.
    """

    def __init__(self, stream: IO[Any], schema: KindSchema) -> None:
        self.stream, self.schema = stream, schema
        self.error: str | None = None
        self.line = 0

    def _text(self, raw: str | bytes) -> str:
        if isinstance(raw, bytes):
            try:  # a byte order mark (some Windows tools write one) is no part of line 1
                return raw.decode("utf-8-sig" if self.line == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise ValueError(f"is not UTF-8 ({exc.reason} at byte {exc.start})") from None
        return raw

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for number, raw in enumerate(self.stream, 1):
            self.line = number
            try:
                text = self._text(raw)
                if not text.strip():
                    continue
                try:
                    parsed = _loads(text)
                except ValueError as exc:
                    raise ValueError(f"is not JSON: {exc}") from None
                if not isinstance(parsed, dict):
                    raise ValueError(f"is not a JSON object but {type(parsed).__name__}")
                record = prepare_record(parsed, self.schema)
            except InvalidArgument as exc:
                self.error = f"stdin line {self.line}: {exc.message}"
                return
            except ValueError as exc:
                self.error = f"stdin line {self.line} {exc}"
                return
            yield record

    def written(self) -> str:
        """Which lines were written, when the stream stopped at ``self.line``."""
        before = self.line - 1
        if before < 1:
            return "nothing was written"
        return "line 1 was written" if before == 1 else f"lines 1-{before} were written"


def _stdin() -> IO[Any]:
    """stdin as bytes when it has them (each line decoded on its own, so a line that is not
    UTF-8 is reported as that line)."""
    return getattr(sys.stdin, "buffer", sys.stdin)


@cli.command(short_help='store a record, or JSON lines from stdin: {"written": n}')
@click.argument("kind")
@click.argument("record", required=False)
@kind_options
@click.pass_context
def put(ctx: click.Context, /, kind: str, record: str | None, declaration: Declaration) -> None:
    """Store RECORD (a JSON object), or every JSON line of stdin (in batches, through put_many);
    print {"written": n}.

    A stdin line that is not JSON, not an object or not a valid record stops the command with
    an error naming it: every line before it is written, none after it. Records from stdin are
    stored as given (versions neither checked nor stepped); with --version-field, put RECORD
    writes only over the version RECORD carries (none: only where no record is) and prints the
    new one, {"written": 1, "version": n}.
    """
    store = open_store(ctx, kind, declaration)
    if record is not None:
        try:
            parsed = _loads(record)
        except ValueError as exc:
            raise InvalidArgument(f"RECORD is not JSON: {exc}") from None
        stored = store.put(parsed)
        summary: dict[str, Any] = {"written": 1}
        if declaration.version_field is not None:
            summary["version"] = stored.get(declaration.version_field)
        echo_json(summary)
        return
    lines = StdinRecords(_stdin(), store.schema)
    try:
        written = store.put_many(lines)
    except StoreError as exc:
        if not exc.written:
            raise
        raise CommandError(
            exc.code,
            f"{exc.message}; the first {exc.written} record(s) (distinct keys) were written, "
            "those after them may or may not be",
        ) from exc
    if lines.error is not None:
        raise CommandError("INVALID_ARGUMENT", f"{lines.error}; {lines.written()}")
    echo_json({"written": written})


@cli.command(short_help="print the one record matching the filters")
@click.argument("kind")
@click.argument("filters", nargs=-1, required=True, metavar="FILTER...")
@format_option
@_explain_option
@kind_options
@click.pass_context
def find(
    ctx: click.Context,
    /,
    kind: str,
    filters: tuple[str, ...],
    output: str,
    explain: bool,
    declaration: Declaration,
) -> None:
    """Print the one record matching the filters (NOT_FOUND or MULTIPLE_FOUND otherwise)."""
    store = open_store(ctx, kind, declaration)
    prepared = _filters(declaration, filters)
    if explain:
        _explained(store, prepared)
        return
    print_records([store.find(prepared)], output)


@cli.command(name="ls", short_help="print the matching records (--format; --limit pages)")
@click.argument("kind")
@click.argument("filters", nargs=-1, metavar="[FILTER...]")
@click.option("--sort", is_flag=True, help="Sort by key (reads every match into memory first).")
@click.option(
    "--limit",
    type=click.IntRange(1, 1000),
    help="Print one page of at most N records, in the serving key's order (filters a key or an "
    "--index serves); the next page's cursor ends the output.",
)
@click.option("--cursor", help="With --limit: the page that starts where CURSOR says.")
@click.option("--descending", is_flag=True, help="With --limit: pages in reverse order.")
@format_option
@_explain_option
@kind_options
@click.pass_context
def ls_(
    ctx: click.Context,
    /,
    kind: str,
    filters: tuple[str, ...],
    sort: bool,
    limit: int | None,
    cursor: str | None,
    descending: bool,
    output: str,
    explain: bool,
    declaration: Declaration,
) -> None:
    """Print the matching records (streamed in no order, unless --sort or --limit).

    With --limit, the page's records are followed by the next page's cursor: a last line
    {"cursor": C} (jsonl), {"records": [...], "cursor": C} (json), and on stderr "next cursor: C"
    (every format); C is null on the last page. Pass it back with --cursor and the same filters.
    """
    if limit is None and (cursor is not None or descending):
        raise click.UsageError("--cursor and --descending go with --limit")
    if limit is not None and sort:
        raise click.UsageError("--sort does not go with --limit (a page is in its key's order)")
    store = open_store(ctx, kind, declaration)
    prepared = _filters(declaration, filters)
    if explain:
        _explained(store, prepared)
        return
    if limit is None:
        records = store.find_all(prepared) if sort else store.iter_all(prepared)
        print_records(records, output)
        return
    if store.explain(prepared) == "scan":
        raise OperationRejected(
            "ls --limit pages through what a key or an --index serves, and these filters need "
            "a scan (--explain says how a read is served); without --limit, ls streams every "
            "match"
        )
    page = store.find_page(prepared, limit=limit, cursor=cursor, descending=descending)
    print_records(page.records, output, cursor=page.cursor, paged=True)
    if page.cursor is not None:
        click.echo(f"next cursor: {page.cursor}", err=True)


@cli.command(short_help='count the matching records: {"count": n}')
@click.argument("kind")
@click.argument("filters", nargs=-1, metavar="[FILTER...]")
@_explain_option
@kind_options
@click.pass_context
def count(
    ctx: click.Context,
    /,
    kind: str,
    filters: tuple[str, ...],
    explain: bool,
    declaration: Declaration,
) -> None:
    """Count the matching records: {"count": n}."""
    store = open_store(ctx, kind, declaration)
    prepared = _filters(declaration, filters)
    if explain:
        _explained(store, prepared)
        return
    echo_json({"count": store.count(prepared)})


@cli.command(short_help='delete the matching records: {"removed": n}')
@click.argument("kind")
@click.argument("filters", nargs=-1, required=True, metavar="FILTER...")
@_explain_option
@kind_options
@click.pass_context
def rm(
    ctx: click.Context,
    /,
    kind: str,
    filters: tuple[str, ...],
    explain: bool,
    declaration: Declaration,
) -> None:
    """Delete every record matching the filters: {"removed": n}."""
    store = open_store(ctx, kind, declaration)
    prepared = _filters(declaration, filters)
    if explain:
        _explained(store, prepared)
        return
    echo_json({"removed": store.remove(prepared)})


@cli.command(short_help='delete every record (--force): {"removed": n}')
@click.argument("kind")
@click.option("--force", is_flag=True, help="Required: truncate deletes every record.")
@kind_options
@click.pass_context
def truncate(ctx: click.Context, /, kind: str, force: bool, declaration: Declaration) -> None:
    """Delete every record of KIND (only with --force): {"removed": n}."""
    if not force:
        raise OperationRejected(f"truncate deletes every {kind} record: add --force")
    echo_json({"removed": open_store(ctx, kind, declaration).truncate(force=force)})


@cli.command(short_help='delete the expired records (--ttl-field): {"purged": n}')
@click.argument("kind")
@kind_options
@click.pass_context
def purge(ctx: click.Context, /, kind: str, declaration: Declaration) -> None:
    """Delete KIND's expired records (--ttl-field FIELD, required: at or before now):
    {"purged": n}."""
    if declaration.ttl_field is None:
        raise click.UsageError(
            "purge needs --ttl-field FIELD, the field that says when a record expires"
        )
    echo_json({"purged": open_store(ctx, kind, declaration).purge_expired()})
