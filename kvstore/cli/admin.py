"""The commands about backends and tables: ``backends``, ``ensure``, ``migrate``, ``status``."""

from __future__ import annotations

from typing import Any

import click

from kvstore.cli.app import (
    Declaration,
    backend_spec,
    cli,
    kind_options,
    open_store,
    option_error,
    parse_spec,
    selected_backend,
    unknown_options,
)
from kvstore.cli.output import echo_json, format_option, print_records
from kvstore.errors import ConfigError

__all__: list[str] = []


def _json_flag(command: Any) -> Any:
    # Before --format, --json chose JSON lines; they are the default now. Kept for old scripts.
    return click.option("--json", "as_json", is_flag=True, hidden=True)(command)


@cli.command(short_help="installed backends, the selected one and why, its settings")
@format_option
@_json_flag
@click.pass_context
def backends(ctx: click.Context, /, output: str, as_json: bool) -> None:
    """List the installed backends, the selected one and why, and its settings (secrets masked):
    {"name", "extra", "selected"} a backend, "why" and "settings" for the selected one."""
    from kvstore.registry import backends as installed

    chosen, why = selected_backend(ctx.find_root().ensure_object(dict).get("backend"))
    name, options = parse_spec(chosen)
    entries = []
    for backend in sorted(installed().values(), key=lambda b: b.name):
        entry: dict[str, Any] = {"name": backend.name, "extra": backend.extra}
        entry["selected"] = backend.name == name
        if entry["selected"]:
            entry["why"] = why
            refused = unknown_options(name, options)
            if refused is not None:
                raise refused
            try:
                entry["settings"] = backend.describe(options)
            except TypeError as exc:
                raise option_error(name, options, exc) from None
        entries.append(entry)
    print_records(entries, output)
    if name not in installed():
        raise ConfigError(f"the selected backend {name!r} is not installed")


@cli.command(short_help='create tables where missing: {"ensured": [KIND, ...]}')
@click.argument("kinds", nargs=-1, required=True)
@kind_options
@click.pass_context
def ensure(ctx: click.Context, /, kinds: tuple[str, ...], declaration: Declaration) -> None:
    """Create each KIND's table (and --index indexes) where missing: {"ensured": [KIND, ...]}."""
    stores = [open_store(ctx, kind, declaration) for kind in kinds]  # every name checked first
    for store in stores:
        store.ensure()
    echo_json({"ensured": list(kinds)})


@cli.command(short_help="run the backend's migrations, or ensure the kinds")
@click.argument("kinds", nargs=-1)
@kind_options
@click.pass_context
def migrate(ctx: click.Context, /, kinds: tuple[str, ...], declaration: Declaration) -> None:
    """Bring the backend's tables up to date, as the backend does it: its own migrations where
    it has them (see `kvstore backends`), else create each KIND's table. Prints
    {"backend": NAME, "kinds": [KIND, ...], "summary": the backend's one-line summary}."""
    from kvstore.registry import get_backend

    name, options = parse_spec(backend_spec(ctx))
    drivers = [open_store(ctx, kind, declaration).driver for kind in kinds]
    summary = get_backend(name).migrate(drivers, options)
    echo_json({"backend": name, "kinds": list(kinds), "summary": summary})


@cli.command(short_help="each kind's stage in a move between backends (STORE_MIGRATION)")
@click.argument("kinds", nargs=-1)
@format_option
@_json_flag
@click.pass_context
def status(ctx: click.Context, /, kinds: tuple[str, ...], output: str, as_json: bool) -> None:
    """Show where each KIND (default: each STORE_MIGRATION entry) is in its move between
    backends: {"kind", "entry", "old", "new", "stage", "writes", "reads", "compared"} a kind
    ("stage" null: not moving; "compared": the fraction of reads compared)."""
    from kvstore.migration.spec import migration_status

    rows = migration_status(parse_spec(backend_spec(ctx))[0], kinds)
    if not rows:
        click.echo("no kind is moving (STORE_MIGRATION is unset or empty)", err=True)
    print_records(rows, output)
