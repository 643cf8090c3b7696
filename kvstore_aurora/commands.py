"""The aurora backend's own ``kvstore`` command, ``init-migrations`` (added through the
``kvstore_register_commands`` hook; click is imported only by the command line)."""

from __future__ import annotations

from pathlib import Path

import click

from kvstore.cli.app import parse_index
from kvstore.cli.output import echo_json

__all__ = ["init_migrations_command"]


@click.command(
    "init-migrations",
    short_help='write alembic.ini and DIR/ for aurora migrations: {"created": [PATH, ...]}',
)
@click.argument("directory", metavar="DIR", type=click.Path(path_type=Path))
@click.option(
    "--ini",
    type=click.Path(path_type=Path),
    default=Path("alembic.ini"),
    show_default=True,
    help="Where to write alembic.ini (its script_location points at DIR).",
)
@click.option("--kind", metavar="KIND", help="Also write a first migration creating KIND's table.")
@click.option(
    "--id-field",
    multiple=True,
    metavar="FIELD",
    help="KIND's key field (repeat for a composite key: partition then sort). Default: id.",
)
@click.option(
    "--key-type",
    multiple=True,
    type=click.Choice(["str", "int"]),
    help="Type of each id field (repeat as --id-field; one applies to all). Default: str.",
)
@click.option(
    "--index",
    "indexes",
    multiple=True,
    metavar="NAME:FIELD[,SORT][:TYPE[,TYPE]]",
    help="A secondary index the migration creates for KIND (repeatable; TYPE str, int or "
    "float; default str).",
)
def init_migrations_command(
    directory: Path,
    ini: Path,
    kind: str | None,
    id_field: tuple[str, ...],
    key_type: tuple[str, ...],
    indexes: tuple[str, ...],
) -> None:
    """Write a working alembic setup for this project's aurora kinds: --ini (alembic.ini, no URL
    in it), DIR/env.py (connects with the store's settings: DATABASE_URL, DB_*, LOCAL_DB_*,
    DB_SCHEMA), DIR/script.py.mako, DIR/versions/, and with --kind a first migration creating
    KIND's table and --index indexes. Existing files are never overwritten. Prints
    {"created": [PATH, ...]}; then run `kvstore --backend aurora migrate` (or with
    STORE_BACKEND=aurora) or `alembic upgrade head`."""
    from kvstore.errors import InvalidArgument
    from kvstore_aurora.scaffold import init_migrations

    if kind is None and (id_field or key_type or indexes):
        raise InvalidArgument("--id-field, --key-type and --index describe a --kind: give it")
    types = tuple(int if name == "int" else str for name in key_type) or (str,)
    created = init_migrations(
        directory,
        ini=ini,
        kind=kind,
        id_field=id_field or "id",
        key_type=types if len(types) > 1 else types[0],
        indexes=[parse_index(text) for text in indexes],
    )
    echo_json({"created": [str(path) + ("/" if path.is_dir() else "") for path in created]})
    written = f"{directory / 'versions'} holds the migration creating {kind}; " if kind else ""
    click.echo(
        f"next: {written}add migrations with `alembic revision -m '...'`, then, with "
        "DATABASE_URL (or DB_*) set, run `kvstore --backend aurora migrate` or "
        "`alembic upgrade head`",
        err=True,
    )
