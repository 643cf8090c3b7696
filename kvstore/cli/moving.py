"""The commands that move a kind between backends: ``copy`` and ``diff`` (``--fix``)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from kvstore.cli.app import (
    CommandError,
    Declaration,
    cli,
    kind_options,
    open_store,
    parse_spec,
)
from kvstore.cli.output import echo_json
from kvstore.copying import (
    ABSENT,
    Difference,
    DiffTotals,
    copy_records,
    diff_records,
    fix_differences,
    scan_segments,
)
from kvstore.progress import Progress

__all__ = ["stderr_is_tty"]


def stderr_is_tty() -> bool:
    """Whether progress is drawn as a bar (a terminal) or printed as plain lines."""
    return sys.stderr.isatty()


@cli.command(short_help='copy a kind between backends: {"copied": n, ...}')
@click.argument("kind")
@click.option("--from", "source", required=True, metavar="BACKEND", help="Backend to read.")
@click.option("--to", "target", required=True, metavar="BACKEND", help="Backend to write.")
@click.option(
    "--chunk",
    type=click.IntRange(min=1),
    default=500,
    show_default=True,
    help="Records brought over at once.",
)
@click.option(
    "--segments",
    type=click.IntRange(1, 64),
    help="Read the source in N segments at once, one thread each (DynamoDB's parallel scan; "
    "a backend that cannot split a scan reads one). Default: 1, or the checkpoint's.",
)
@click.option("--resume", is_flag=True, help="Continue where the checkpoint says a copy stopped.")
@click.option(
    "--checkpoint",
    "checkpoint_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The checkpoint file. Default: .kvstore/copy-KIND-FROM-TO-DIGEST.json here.",
)
@click.option("--ensure/--no-ensure", default=True, help="Create the target table when missing.")
@click.option("--no-count", is_flag=True, help="Do not count the source first (no ETA).")
@kind_options
@click.pass_context
def copy(
    ctx: click.Context,
    /,
    kind: str,
    source: str,
    target: str,
    chunk: int,
    segments: int | None,
    resume: bool,
    checkpoint_path: Path | None,
    ensure: bool,
    no_count: bool,
    declaration: Declaration,
) -> None:
    """Copy every record of KIND from one backend to another, streaming; safe beside live
    writers and to re-run. Prints {"copied", "read", "written", "unchanged", "skipped"}.

    "copied" counts the records the target holds as the copy read them (written, or unchanged:
    already there). Each write is guarded by the target's record being what the copy read there,
    so a record a live writer changes meanwhile is skipped (and counted), never set back. After
    each chunk the checkpoint records the last key copied in each segment; --resume continues
    from there. BACKEND is a name, with options after a colon: sqlite:path=/tmp/other.sqlite3.
    """
    from kvstore.checkpoint import Checkpoint, default_path

    if source == target:
        raise click.UsageError("--from and --to name the same backend: nothing to copy")
    reader = open_store(ctx, kind, declaration, source)
    writer = open_store(ctx, kind, declaration, target)
    path = checkpoint_path or default_path(kind, source, target)
    state = Checkpoint.load(path, kind, source, target) if resume else None
    if state is None:
        if resume:
            click.echo(f"no checkpoint at {path}: copying from the beginning", err=True)
        count = min(segments or 1, scan_segments(reader))
        if count < (segments or 1):
            click.echo(f"{reader.backend} reads a kind in at most {count} segment(s)", err=True)
        state = Checkpoint(path, kind, source, target, count)
    elif segments is not None and segments != state.segments:
        raise click.UsageError(
            f"the checkpoint {path} was made with --segments {state.segments}: resume with "
            "that, or start over without --resume"
        )
    else:
        done = len(state.done)
        click.echo(f"resuming from {path} ({done} of {state.segments} segments done)", err=True)
    total = None if no_count or resume else reader.count()  # before the target is made
    if ensure:
        writer.ensure()
    progress = Progress("copied", total, stderr_is_tty())
    try:
        counts = copy_records(reader, writer, chunk_size=chunk, checkpoint=state, progress=progress)
    except KeyboardInterrupt:
        raise CommandError(
            "INTERRUPTED", f"copy interrupted: add --resume to continue from {path}", 130
        ) from None
    progress.finish()
    echo_json(counts.as_dict())
    if counts.skipped:
        click.echo(
            f"{counts.skipped} record(s) skipped: changed on either side while they were copied "
            "(run the copy again, or `kvstore diff --fix`, to bring them over)",
            err=True,
        )


def _difference(difference: Difference, id_fields: tuple[str, ...]) -> dict[str, Any]:
    entry: dict[str, Any] = {"key": dict(zip(id_fields, difference.key, strict=True))}
    if difference.missing is not None:
        entry["missing_in"] = "from" if difference.missing == "left" else "to"
        return entry
    fields = []
    for change in difference.changes:
        field: dict[str, Any] = {"field": change.field}
        if change.left is not ABSENT:
            field["from"] = change.left
        if change.right is not ABSENT:
            field["to"] = change.right
        fields.append(field)
    entry["differs"] = fields
    return entry


@cli.command(short_help='compare a kind on two backends: {"differences": n, "compared": n}')
@click.argument("kind")
@click.option("--from", "source", required=True, metavar="BACKEND", help="One side.")
@click.option("--to", "target", required=True, metavar="BACKEND", help="The other side.")
@click.option("--fix", is_flag=True, help="Write the --from side's record over each difference.")
@click.option(
    "--delete-extra", is_flag=True, help="With --fix: also remove records found only in --to."
)
@kind_options
@click.pass_context
def diff(
    ctx: click.Context,
    /,
    kind: str,
    source: str,
    target: str,
    fix: bool,
    delete_extra: bool,
    declaration: Declaration,
) -> None:
    """Compare KIND on two backends: a JSON line per difference, then {"differences": n,
    "compared": k} (k keys, those of either side once; with --fix also "fixed" and "left");
    exit 1 when any difference is left.

    A line is {"key": ..., "missing_in": "from"|"to"} or {"key": ..., "differs": [{"field": ...,
    "from": ..., "to": ...}]} (a side lacking the field has no "from"/"to"). With --fix, --from
    is authoritative: each difference is fixed on --to, guarded by --to's record being what was
    read there (safe beside live writers), and its line says "fix": "written", "removed",
    "unchanged" (made equal meanwhile), "skipped" (changed meanwhile) or "extra" (only in --to,
    without --delete-extra); the exit code is 0 when every difference was fixed.
    """
    if delete_extra and not fix:
        raise click.UsageError("--delete-extra goes with --fix")
    left = open_store(ctx, kind, declaration, source)
    right = open_store(ctx, kind, declaration, target)
    progress = Progress("read", None, stderr_is_tty())
    totals = DiffTotals()
    found = unfixed = 0
    differences = diff_records(left, right, progress=progress, totals=totals)
    fixes: Iterator[tuple[Difference, str | None]]
    if fix:
        fixes = fix_differences(left, right, differences, delete_extra=delete_extra)
    else:
        fixes = ((difference, None) for difference in differences)
    for difference, outcome in fixes:
        entry = _difference(difference, left.id_fields)
        if outcome is not None:
            entry["fix"] = outcome
            unfixed += outcome in ("skipped", "extra")
        echo_json(entry)
        found += 1
    progress.finish()
    summary = {"differences": found, "compared": totals.compared}
    # The backends' names only: their options may hold secrets.
    sides = f"--from ({parse_spec(source)[0]}) and --to ({parse_spec(target)[0]})"
    prose = f"{found:,} difference(s) in {totals.compared:,} keys between {sides}"
    if fix:
        summary.update(fixed=found - unfixed, left=unfixed)
        prose += f": {found - unfixed:,} fixed, {unfixed:,} not"
    echo_json(summary)
    click.echo(prose, err=True)
    if unfixed or (found and not fix):
        ctx.exit(1)
