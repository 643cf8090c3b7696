"""The ``kvstore`` command group: its conventions, error reporting, backend selection, kind options.

The command modules (``records``, ``admin``, ``moving``) add their commands to ``cli``.
"""

from __future__ import annotations

import difflib
import functools
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, NoReturn, TypeVar

import click

from kvstore.create import create_store
from kvstore.errors import InvalidArgument, StoreError
from kvstore.schema import Index
from kvstore.store import RecordStore

__all__ = [
    "DEFAULT_BACKEND",
    "CommandError",
    "Declaration",
    "cli",
    "kind_options",
    "open_store",
    "parse_spec",
    "selected_backend",
    "unknown_options",
]

DEFAULT_BACKEND = "sqlite"
"""The command's backend when ``STORE_BACKEND`` is unset: the embedded one, nothing to start."""

DEBUG_VARIABLE = "KVSTORE_DEBUG"
"""Set to 1, an unexpected exception (a bug) shows its traceback instead of one error line."""

F = TypeVar("F", bound=Callable[..., Any])

HELP = """Inspect, move and compare kvstore kinds on any backend.

\b
The backend: --backend NAME[:OPT=VAL,...], else STORE_BACKEND, else sqlite
(the file KVSTORE_SQLITE_PATH, default ./kvstore.sqlite3).

\b
Output: data on stdout as JSON lines (find, ls: --format json|jsonl|csv|table).
Every command that writes or counts prints one JSON summary object on stdout:
  count     {"count": n}          put       {"written": n}
  rm        {"removed": n}        truncate  {"removed": n}
  purge     {"purged": n}         ensure    {"ensured": [KIND, ...]}
  migrate   {"backend": NAME, "kinds": [...], "summary": TEXT}
  copy      {"copied": n, "read": n, "written": n, "unchanged": n, "skipped": n}
  diff      a line per difference, then {"differences": n, "compared": KEYS}
Progress and prose go to stderr. An error is one line on stderr,
"error: CODE: message". Exit status: 0 done, 1 diff found differences
(with --fix: some were left), 2 error, 130 interrupted.

\b
Filters (find, ls, count, rm), all of them must hold:
  FIELD=VALUE           equal (VALUE null: the field is absent)
  FIELD!=VALUE          present and not equal
  FIELD<VALUE   FIELD<=VALUE   FIELD>VALUE   FIELD>=VALUE
  FIELD^=PREFIX         a string starting with PREFIX (always text)
  FIELD:between=LO,HI   LO <= value <= HI
  FIELD:one_of=A,B,...  equal to one of A, B, ... (1 to 100)
  FIELD:exists          present, whatever its value
  FIELD:OP=VALUE        by name: eq ne lt le gt ge begins_with
A VALUE is JSON when it parses (30, 2.5, true, "30", [1,2], {"a":1}, null),
else the text itself; for a field declared str (a str key field, a str
--index field) it is always the text. LO,HI and A,B,... are such values
split at commas, or one JSON list (["a,b", "c"]). Quote filters holding
< or > in a shell ('age>=30'), or use the names (age:ge=30).

\b
The kind (every command taking KIND): --id-field/--key-type for a key other
than a str "id"; --index NAME:FIELD[,SORT][:TYPE[,TYPE]] (TYPE str, int,
or float: any number; default str) for its secondary indexes, which
--explain, paging and ensure use; --ttl-field, --version-field.
"""


class CommandError(Exception):
    """An error the command reports as ``error: CODE: message`` (for what is not a
    ``StoreError``, or a ``StoreError`` told with more context)."""

    def __init__(self, code: str, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.code, self.message, self.exit_code = code, message, exit_code


def _fail(code: str, message: str, exit_code: int = 2) -> NoReturn:
    """Report an error on stderr, one line, and leave with ``exit_code``."""
    text = " ".join(str(message).split()) or "(no message)"
    click.echo(f"error: {code}: {text}", err=True)
    raise click.exceptions.Exit(exit_code)


def _silence_stdout() -> None:
    """After a broken pipe: send what is left of stdout nowhere, so that the interpreter's last
    flush does not fail too (the way Python's documentation recommends)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass  # not a real file (a test runner's buffer): nothing will flush it


def _warn(what: str, exc: Exception) -> None:
    message = " ".join(f"{type(exc).__name__}: {exc}".split())
    click.echo(f"warning: {what}: {message}", err=True)


class _Cli(click.Group):
    """A group that reports every error as ``error: CODE: message`` on stderr and exits 2, and
    adds the plugins' commands (``kvstore_register_commands``) when they are asked for."""

    _plugins_added = False

    def _add_plugin_commands(self) -> None:
        """Add the commands the installed plugins register, once. This loads every plugin, so
        it happens only for a name that is not built in, or for the list in ``--help``."""
        if self._plugins_added:
            return
        self._plugins_added = True
        from kvstore.registry import plugin_manager

        found: list[click.Command] = []
        try:
            hooks = plugin_manager().hook.kvstore_register_commands.get_hookimpls()
        except Exception as exc:  # a plugin that does not load: the built-in commands still work
            _warn("the plugins' commands are not loaded", exc)
            return
        for hook in reversed(hooks):  # pluggy's order: the last registered first
            # One plugin at a time, so that a broken one loses only its own commands.
            try:
                hook.function(**({"register": found.append} if hook.argnames else {}))
            except Exception as exc:
                _warn(f"the commands of plugin {hook.plugin_name!r} are not loaded", exc)
        for command in found:
            if command.name is None or command.name in self.commands:
                click.echo(f"warning: a plugin's command {command.name!r} is taken", err=True)
                continue
            self.add_command(command)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and not self._plugins_added:
            self._add_plugin_commands()
            command = super().get_command(ctx, cmd_name)
        return command

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._add_plugin_commands()
        return super().list_commands(ctx)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except StoreError as exc:
            _fail(exc.code, exc.message)
        except CommandError as exc:
            _fail(exc.code, exc.message, exc.exit_code)
        except KeyboardInterrupt:
            _fail("INTERRUPTED", "interrupted", 130)
        except BrokenPipeError:
            _silence_stdout()  # `kvstore ls KIND | head`: stop quietly, as Unix tools do
            raise click.exceptions.Exit(141) from None
        except OSError as exc:
            _fail("OS_ERROR", str(exc))
        except Exception as exc:
            if os.environ.get(DEBUG_VARIABLE) == "1":
                raise
            _fail(
                "INTERNAL",
                f"{type(exc).__name__}: {exc} (a bug in kvstore: please report it; "
                f"{DEBUG_VARIABLE}=1 shows where)",
            )

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the command; usage errors and interruptions are reported like every error."""
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.ClickException as exc:
            message = exc.format_message()
            context = getattr(exc, "ctx", None)
            if isinstance(context, click.Context):
                message += f" (see '{context.command_path} --help')"
            click.echo(f"error: INVALID_ARGUMENT: {' '.join(message.split())}", err=True)
            code = 2
        except click.Abort:
            click.echo("error: INTERRUPTED: interrupted", err=True)
            code = 130
        code = code if isinstance(code, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code


def selected_backend(explicit: str | None) -> tuple[str, str]:
    """The backend specification the command uses, and why."""
    if explicit:
        return explicit, "--backend"
    env = os.environ.get("STORE_BACKEND")
    if env:
        return env, "STORE_BACKEND"
    return DEFAULT_BACKEND, "the command's default (STORE_BACKEND is unset)"


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``name`` or ``name:option=value,option=value`` (e.g. ``sqlite:path=/tmp/a.db``)."""
    name, _, rest = spec.partition(":")
    options: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        option, equals, value = item.partition("=")
        if not equals or not option:
            raise InvalidArgument(
                f"backend {name!r}: {option or item!r} is not option=value "
                "(NAME:OPTION=VALUE,OPTION=VALUE, e.g. sqlite:path=/tmp/x.sqlite3)"
            )
        options[option] = value
    return name, options


def _options_taken(name: str) -> tuple[str, ...] | None:
    """The options backend ``name`` takes, when it says (a ``LazyBackend`` does, by importing its
    driver's module)."""
    from kvstore.registry import get_backend

    try:
        listed = getattr(get_backend(name), "options", None)
        return tuple(listed()) if callable(listed) else None
    except Exception:  # best effort: the error that led here is reported instead
        return None


def unknown_options(name: str, options: dict[str, Any]) -> InvalidArgument | None:
    """The error for the options backend ``name`` does not take, if any (option names only,
    never values: a value may be a secret)."""
    takes = _options_taken(name) if options else None
    unknown = [option for option in options if takes is not None and option not in takes]
    if takes is None or not unknown:
        return None
    message = (
        f"backend {name!r} has no option {', '.join(map(repr, unknown))} "
        f"(its options: {', '.join(takes) or 'none'})"
    )
    for option in unknown:
        close = difflib.get_close_matches(option, takes, n=1)
        if close:
            message += f"; did you mean {close[0]!r} for {option!r}?"
    return InvalidArgument(message)


def option_error(name: str, options: dict[str, Any], exc: TypeError) -> InvalidArgument:
    """The error for backend options that ``create_store`` refused with ``exc``."""
    return unknown_options(name, options) or InvalidArgument(f"backend {name!r}: {exc}")


def _key_types(names: Sequence[str]) -> tuple[type, ...] | type:
    types = tuple(int if name == "int" else str for name in names)
    return types if len(types) > 1 else (types[0] if types else str)


_INDEX_TYPES = {"str": str, "int": int, "float": float}


def parse_index(text: str) -> Index:
    """``NAME:FIELD[,SORT][:TYPE[,TYPE]]`` as an ``Index`` (TYPE ``str``, ``int`` or ``float``)."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise InvalidArgument(
            f"--index {text!r} is not NAME:FIELD[,SORT][:TYPE[,TYPE]] "
            "(e.g. by_email:email, or by_team:team_id,joined:str,float)"
        )
    fields = tuple(parts[1].split(","))
    names = parts[2].split(",") if len(parts) == 3 else ["str"]
    if any(name not in _INDEX_TYPES for name in names):
        raise InvalidArgument(f"--index {text!r}: each TYPE is str, int or float (any number)")
    types = tuple(_INDEX_TYPES[name] for name in names)
    return Index(parts[0], fields, types if len(types) > 1 else types[0])


class Declaration(NamedTuple):
    """A kind as the command line declares it (what ``create_store`` takes besides the backend)."""

    id_fields: tuple[str, ...] = ("id",)
    key_types: tuple[type, ...] | type = str
    indexes: tuple[Index, ...] = ()
    ttl_field: str | None = None
    version_field: str | None = None

    def field_type(self, field: str) -> type | None:
        """The type declared for ``field``: a key field's, else the first index's naming it."""
        if field in self.id_fields:
            types = self.key_types
            if isinstance(types, type):
                return types
            return types[min(self.id_fields.index(field), len(types) - 1)]
        for index in self.indexes:
            if field in index.fields:
                return index.key_types[index.fields.index(field)]
        return None


def kind_options(command: F) -> F:
    """The options declaring the kind (``--id-field``, ``--key-type``, ``--index``,
    ``--ttl-field``, ``--version-field``), given to ``command`` as one ``declaration``."""

    @functools.wraps(command)
    def wrapper(
        *args: Any,
        id_field: tuple[str, ...],
        key_type: tuple[str, ...],
        index: tuple[str, ...],
        ttl_field: str | None,
        version_field: str | None,
        **kwargs: Any,
    ) -> Any:
        declaration = Declaration(
            id_field or ("id",),
            _key_types(key_type),
            tuple(parse_index(text) for text in index),
            ttl_field,
            version_field,
        )
        return command(*args, declaration=declaration, **kwargs)

    options = [
        click.option(
            "--id-field",
            multiple=True,
            metavar="FIELD",
            help="Key field (repeat for a composite key: partition then sort). Default: id.",
        ),
        click.option(
            "--key-type",
            multiple=True,
            type=click.Choice(["str", "int"]),
            help="Type of each id field (repeat as --id-field; one applies to all). Default: str.",
        ),
        click.option(
            "--index",
            multiple=True,
            metavar="NAME:FIELD[,SORT][:TYPE[,TYPE]]",
            help="A secondary index of the kind (repeatable; TYPE str, int or float; default "
            "str): reads it serves are not scans, ls pages through it, ensure creates it.",
        ),
        click.option(
            "--ttl-field",
            metavar="FIELD",
            help="The kind's expiry field (seconds since the epoch): expired records are not read.",
        ),
        click.option(
            "--version-field",
            metavar="FIELD",
            help="The kind's version field: put RECORD writes only over the version it carries.",
        ),
    ]
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper  # type: ignore[return-value]


def backend_spec(ctx: click.Context) -> str:
    """The ``--backend`` given to the group (``None`` when it was not)."""
    return selected_backend(ctx.find_root().ensure_object(dict).get("backend"))[0]


def open_store(
    ctx: click.Context, kind: str, declaration: Declaration, spec: str | None = None
) -> RecordStore:
    """KIND's store on the backend ``spec`` names (default: the command's), never a migrating
    one: a command works on the backend it names, whatever ``STORE_MIGRATION`` says."""
    name, options = parse_spec(spec or backend_spec(ctx))
    try:
        store = create_store(
            kind,
            backend=name,
            id_field=declaration.id_fields,
            key_type=declaration.key_types,
            indexes=declaration.indexes,
            ttl_field=declaration.ttl_field,
            version_field=declaration.version_field,
            migration="off",
            **options,
        )
    except TypeError as exc:  # an option the backend does not take, or a value of a wrong type
        raise option_error(name, options, exc) from None
    assert isinstance(store, RecordStore)
    return store


@click.group(
    cls=_Cli,
    help=HELP,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--backend",
    "-b",
    metavar="NAME[:OPT=VAL,...]",
    help=f"Backend (default: STORE_BACKEND, else {DEFAULT_BACKEND}), e.g. sqlite:path=/tmp/x.db.",
)
@click.version_option(package_name="kvstore")
@click.pass_context
def cli(ctx: click.Context, /, backend: str | None) -> None:
    ctx.ensure_object(dict)["backend"] = backend
