"""The ``kvstore`` command: inspect, move and compare a kind's records on any backend.

JSON in, JSON lines out, so it composes with ``jq``. Only the ``kvstore`` console script imports
this module (``import kvstore`` never does), and click is in the ``cli`` extra.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import click

from kvstore.copying import ABSENT, Difference, copy_records, diff_records, dumps
from kvstore.errors import ConfigError, InvalidArgument, StoreError
from kvstore.store import Store, create_store

__all__ = ["DEFAULT_BACKEND", "cli", "main"]

DEFAULT_BACKEND = "sqlite"
"""The command's backend when ``STORE_BACKEND`` is unset: the embedded one, nothing to start."""

F = TypeVar("F", bound=Callable[..., Any])


class _Cli(click.Group):
    """A group that reports kvstore's errors as ``error: CODE: message`` and exits 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except StoreError as exc:
            click.echo(f"error: {exc.code}: {exc.message}", err=True)
            ctx.exit(2)


def _selected(explicit: str | None) -> tuple[str, str]:
    """The backend the command uses and why."""
    if explicit:
        return explicit, "--backend"
    env = os.environ.get("STORE_BACKEND")
    if env:
        return env, "STORE_BACKEND"
    return DEFAULT_BACKEND, "the command's default (STORE_BACKEND is unset)"


def _parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``name`` or ``name:option=value,option=value`` (e.g. ``sqlite:path=/tmp/a.db``)."""
    name, _, rest = spec.partition(":")
    options: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        option, equals, value = item.partition("=")
        if not equals or not option:
            raise click.BadParameter(f"{item!r} is not option=value", param_hint="backend")
        options[option] = value
    return name, options


def _key_types(names: tuple[str, ...]) -> tuple[type, ...] | type:
    types = tuple(int if name == "int" else str for name in names)
    return types if len(types) > 1 else (types[0] if types else str)


def _open(ctx: click.Context, /, kind: str, spec: str | None = None) -> Store:
    settings = ctx.ensure_object(dict)
    name, options = _parse_spec(spec or _selected(settings.get("backend"))[0])
    id_fields: tuple[str, ...] = settings.get("id_field") or ("id",)
    return create_store(
        kind,
        backend=name,
        id_field=id_fields,
        key_type=_key_types(settings.get("key_type") or ()),
        **options,
    )


def _kind_options(command: F) -> F:
    """``--id-field`` and ``--key-type``: the kind's key, for kinds not keyed by a str ``id``."""
    command = click.option(
        "--key-type",
        "key_type",
        multiple=True,
        type=click.Choice(["str", "int"]),
        help="Type of each id field (repeat as --id-field; one applies to all). Default: str.",
    )(command)
    return click.option(
        "--id-field",
        "id_field",
        multiple=True,
        help="Key field (repeat for a composite key: partition then sort). Default: id.",
    )(command)


def _remember(ctx: click.Context, /, id_field: tuple[str, ...], key_type: tuple[str, ...]) -> None:
    settings = ctx.ensure_object(dict)
    settings["id_field"] = id_field
    settings["key_type"] = key_type


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _filters(ctx: click.Context, /, pairs: tuple[str, ...]) -> dict[str, Any]:
    """``field=value`` pairs; a value is JSON when it parses, except for a str key field."""
    settings = ctx.ensure_object(dict)
    id_fields = settings.get("id_field") or ("id",)
    types = _key_types(settings.get("key_type") or ())
    out: dict[str, Any] = {}
    for pair in pairs:
        field, equals, text = pair.partition("=")
        if not equals:
            raise click.BadParameter(f"{pair!r} is not field=value", param_hint="filters")
        key_type = None
        if field in id_fields:
            index = id_fields.index(field)
            key_type = types if isinstance(types, type) else types[min(index, len(types) - 1)]
        out[field] = text if key_type is str else _value(text)
    return out


def _echo_record(record: Mapping[str, Any]) -> None:
    click.echo(dumps(record))


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--backend",
    "-b",
    metavar="NAME[:OPT=VAL,...]",
    help=f"Backend (default: STORE_BACKEND, else {DEFAULT_BACKEND}), e.g. sqlite:path=/tmp/x.db.",
)
@click.version_option(package_name="kvstore")
@click.pass_context
def cli(ctx: click.Context, /, backend: str | None) -> None:
    """Inspect, move and compare kvstore kinds on any backend (JSON in, JSON lines out)."""
    ctx.ensure_object(dict)["backend"] = backend


def _settings_of(name: str) -> dict[str, Any]:
    from kvstore import config

    if name == "sqlite":
        return {"path": os.path.abspath(config.sqlite_path())}
    if name == "aurora":
        settings = config.postgres_settings()._asdict()
        settings["password"] = str(settings["password"])  # masked: "***"
        return settings
    if name == "dynamo":
        return config.dynamo_settings()._asdict()
    return {}


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per backend.")
@click.pass_context
def backends(ctx: click.Context, /, as_json: bool) -> None:
    """List the installed backends, the selected one and why, and its settings (secrets masked)."""
    from kvstore.registry import backends as installed

    chosen, why = _selected(ctx.obj.get("backend"))
    name = _parse_spec(chosen)[0]
    for backend in sorted(installed().values(), key=lambda b: b.name):
        selected = backend.name == name
        settings = _settings_of(backend.name) if selected else {}
        if as_json:
            entry: dict[str, Any] = {"name": backend.name, "extra": backend.extra}
            entry["selected"] = selected
            if selected:
                entry["why"] = why
                entry["settings"] = settings
            click.echo(dumps(entry))
            continue
        extra = f" (pip install 'kvstore[{backend.extra}]')" if backend.extra else ""
        click.echo(f"{'*' if selected else ' '} {backend.name}{extra}")
        if selected:
            click.echo(f"    selected by {why}")
            for key, value in settings.items():
                click.echo(f"    {key}: {value}")
    if name not in installed():
        raise ConfigError(f"the selected backend {name!r} is not installed")


@cli.command()
@click.argument("kinds", nargs=-1, required=True)
@_kind_options
@click.pass_context
def ensure(ctx: click.Context, /, kinds: tuple[str, ...], **key: Any) -> None:
    """Create each KIND's table when it is missing."""
    _remember(ctx, **key)
    for kind in kinds:
        _open(ctx, kind).ensure()
        click.echo(f"ensured {kind}", err=True)


def _json_lines(stream: Any) -> Iterator[Any]:
    for number, line in enumerate(stream, 1):
        if line.strip():
            try:
                yield json.loads(line)
            except ValueError as exc:
                raise InvalidArgument(f"stdin line {number} is not JSON: {exc}") from None


@cli.command()
@click.argument("kind")
@click.argument("record", required=False)
@_kind_options
@click.pass_context
def put(ctx: click.Context, /, kind: str, record: str | None, **key: Any) -> None:
    """Store RECORD (a JSON object), or every JSON line of stdin (through put_many)."""
    _remember(ctx, **key)
    store = _open(ctx, kind)
    if record is not None:
        try:
            parsed = json.loads(record)
        except ValueError as exc:
            raise InvalidArgument(f"RECORD is not JSON: {exc}") from None
        _echo_record(store.put(parsed))
        return
    written = store.put_many(_json_lines(sys.stdin))
    click.echo(dumps({"written": written}))


@cli.command()
@click.argument("kind")
@click.argument("filters", nargs=-1, required=True, metavar="FIELD=VALUE...")
@_kind_options
@click.pass_context
def find(ctx: click.Context, /, kind: str, filters: tuple[str, ...], **key: Any) -> None:
    """Print the one record matching the filters (NOT_FOUND or MULTIPLE_FOUND otherwise)."""
    _remember(ctx, **key)
    _echo_record(_open(ctx, kind).find(_filters(ctx, filters)))


@cli.command(name="ls")
@click.argument("kind")
@click.argument("filters", nargs=-1, metavar="[FIELD=VALUE...]")
@click.option("--sort", is_flag=True, help="Sort by key (reads every match into memory first).")
@_kind_options
@click.pass_context
def ls_(ctx: click.Context, /, kind: str, filters: tuple[str, ...], sort: bool, **key: Any) -> None:
    """Print the matching records as JSON lines (streamed, unordered unless --sort)."""
    _remember(ctx, **key)
    store = _open(ctx, kind)
    prepared = _filters(ctx, filters)
    records = store.find_all(prepared) if sort else store.iter_all(prepared)
    for record in records:
        _echo_record(record)


@cli.command()
@click.argument("kind")
@click.argument("filters", nargs=-1, metavar="[FIELD=VALUE...]")
@_kind_options
@click.pass_context
def count(ctx: click.Context, /, kind: str, filters: tuple[str, ...], **key: Any) -> None:
    """Print the number of matching records."""
    _remember(ctx, **key)
    click.echo(_open(ctx, kind).count(_filters(ctx, filters)))


@cli.command()
@click.argument("kind")
@click.argument("filters", nargs=-1, required=True, metavar="FIELD=VALUE...")
@_kind_options
@click.pass_context
def rm(ctx: click.Context, /, kind: str, filters: tuple[str, ...], **key: Any) -> None:
    """Delete every record matching the filters; print how many."""
    _remember(ctx, **key)
    click.echo(_open(ctx, kind).remove(_filters(ctx, filters)))


@cli.command()
@click.argument("kind")
@click.option("--force", is_flag=True, help="Required: truncate deletes every record.")
@_kind_options
@click.pass_context
def truncate(ctx: click.Context, /, kind: str, force: bool, **key: Any) -> None:
    """Delete every record of KIND (only with --force); print how many."""
    _remember(ctx, **key)
    click.echo(_open(ctx, kind).truncate(force=force))


@cli.command()
@click.argument("kinds", nargs=-1)
@_kind_options
@click.pass_context
def migrate(ctx: click.Context, /, kinds: tuple[str, ...], **key: Any) -> None:
    """Aurora: run the alembic migrations (upgrade head). Other backends: ensure each KIND."""
    _remember(ctx, **key)
    name = _parse_spec(_selected(ctx.obj.get("backend"))[0])[0]
    if name == "aurora":
        import importlib

        # Imported by name: the aurora package is an optional extra.
        importlib.import_module("kvstore_aurora.migrate").upgrade()
        click.echo("aurora: alembic upgrade head done", err=True)
        return
    if not kinds:
        raise click.UsageError(f"{name} has no migrations: name the kinds to ensure")
    for kind in kinds:
        _open(ctx, kind).ensure()
        click.echo(f"ensured {kind}", err=True)


class _Progress:
    """Progress on stderr: a redrawn line on a terminal, a plain line every few seconds otherwise."""

    def __init__(self, verb: str, total: int | None, tty: bool) -> None:
        self.verb, self.total, self.tty = verb, total, tty
        self.start = self.last = time.monotonic()
        self.done = 0

    def line(self, done: int) -> str:
        elapsed = max(time.monotonic() - self.start, 1e-9)
        rate = done / elapsed
        text = f"{self.verb} {done:,}"
        if self.total is not None:
            text += f"/{self.total:,}"
        text += f" records, {rate:,.0f} records/s"
        if self.total is not None and rate > 0 and done < self.total:
            eta = int((self.total - done) / rate)
            text += f", ETA {eta // 60}:{eta % 60:02d}"
        return text

    def __call__(self, done: int) -> None:
        self.done = done
        now = time.monotonic()
        if self.tty and now - self.last >= 0.2:
            click.echo("\r" + self.line(done).ljust(72), nl=False, err=True)
            self.last = now
        elif not self.tty and now - self.last >= 5:
            click.echo(self.line(done), err=True)
            self.last = now

    def finish(self) -> None:
        """Print the final figures (over the bar on a terminal)."""
        click.echo(
            ("\r" if self.tty else "") + self.line(self.done).ljust(72 if self.tty else 0), err=True
        )


def _stderr_is_tty() -> bool:
    return sys.stderr.isatty()


@cli.command()
@click.argument("kind")
@click.option("--from", "source", required=True, metavar="BACKEND", help="Backend to read.")
@click.option("--to", "target", required=True, metavar="BACKEND", help="Backend to write.")
@click.option("--chunk", default=500, show_default=True, help="Records per put_many call.")
@click.option("--ensure/--no-ensure", default=True, help="Create the target table when missing.")
@click.option("--no-count", is_flag=True, help="Do not count the source first (no ETA).")
@_kind_options
@click.pass_context
def copy(
    ctx: click.Context,
    /,
    kind: str,
    source: str,
    target: str,
    chunk: int,
    ensure: bool,
    no_count: bool,
    **key: Any,
) -> None:
    """Copy every record of KIND from one backend to another, streaming; safe to re-run.

    BACKEND is a name, with options after a colon: sqlite:path=/tmp/other.sqlite3.
    """
    _remember(ctx, **key)
    if chunk < 1:
        raise click.BadParameter("must be at least 1", param_hint="--chunk")
    if source == target:
        raise click.UsageError("--from and --to name the same backend: nothing to copy")
    reader, writer = _open(ctx, kind, source), _open(ctx, kind, target)
    if ensure:
        writer.ensure()
    total = None if no_count else reader.count()
    progress = _Progress("copied", total, _stderr_is_tty())
    copy_records(reader, writer, chunk_size=chunk, progress=progress)
    progress.finish()


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


@cli.command()
@click.argument("kind")
@click.option("--from", "source", required=True, metavar="BACKEND", help="One side.")
@click.option("--to", "target", required=True, metavar="BACKEND", help="The other side.")
@_kind_options
@click.pass_context
def diff(ctx: click.Context, /, kind: str, source: str, target: str, **key: Any) -> None:
    """Compare KIND on two backends: one JSON line per difference; exit 1 when any.

    A line is {"key": ..., "missing_in": "from"|"to"} or {"key": ..., "differs": [{"field": ...,
    "from": ..., "to": ...}]} (a side lacking the field has no "from"/"to").
    """
    _remember(ctx, **key)
    left, right = _open(ctx, kind, source), _open(ctx, kind, target)
    progress = _Progress("compared", None, _stderr_is_tty())
    found = 0
    for difference in diff_records(left, right, progress=progress):
        click.echo(dumps(_difference(difference, left.id_fields)))
        found += 1
    progress.finish()
    click.echo(f"{found} difference(s) between {source} and {target}", err=True)
    if found:
        ctx.exit(1)


def main() -> None:
    """The ``kvstore`` console script."""
    cli(prog_name="kvstore")


if __name__ == "__main__":
    main()
