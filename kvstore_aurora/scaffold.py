"""``kvstore init-migrations``: writes an alembic setup for a project's own kinds (aurora backend).

``init_migrations(directory)`` writes ``alembic.ini`` (no URL in it), ``DIR/env.py`` (connects
through ``kvstore_aurora.alembic_env`` with the store's settings), ``DIR/script.py.mako`` (new
revisions import kvstore's migration helpers), ``DIR/versions/``, and with ``kind=`` a first
migration creating that kind's table and indexes. The templates ship in the wheel
(``kvstore_aurora/templates``). Nothing is ever overwritten.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from string import Template

from kvstore.errors import ConfigError, InvalidArgument
from kvstore.schema import Index, KindSchema

__all__ = ["init_migrations", "kind_migration"]


def _template(name: str) -> str:
    return (resources.files("kvstore_aurora") / "templates" / name).read_text(encoding="utf-8")


def _script_location(ini: Path, directory: Path) -> str:
    """``script_location`` for ``directory``, relative to the ini file's own directory
    (``%(here)s``), so that alembic finds it from any working directory."""
    try:
        relative = os.path.relpath(directory.resolve(), ini.parent.resolve())
    except ValueError:  # another drive (Windows): no relative path exists
        return directory.resolve().as_posix().replace("%", "%%")
    return "%(here)s/" + Path(relative).as_posix().replace("%", "%%")


def _literal(values: Sequence[str]) -> str:
    """``"a"`` or ``("a", "b")``: Python source, double-quoted as formatters write it (kinds and
    field names are ASCII identifiers, so a JSON string is the same Python string)."""
    quoted = [json.dumps(value) for value in values]
    return quoted[0] if len(quoted) == 1 else f"({', '.join(quoted)})"


def _types(types: Sequence[type]) -> str:
    names = [t.__name__ for t in types]
    return names[0] if len(set(names)) == 1 else f"({', '.join(names)})"


def _index(index: Index) -> str:
    source = f"Index({json.dumps(index.name)}, {_literal(index.fields)}"
    if any(t is not str for t in index.key_types):
        source += f", key_type={_types(index.key_types)}"
    return source + ")"


def kind_migration(schema: KindSchema, revision: str | None = None) -> tuple[str, str]:
    """``(file name, source)`` of a first migration creating ``schema``'s table and indexes with
    ``create_kind_table``/``create_kind_index`` (``drop_kind_table`` as its downgrade)."""
    revision = revision or uuid.uuid4().hex[-12:]  # as alembic's own revision ids
    indexes = "".join(f"\n    {_index(index)}," for index in schema.indexes)
    source = Template(_template("kind_migration.py.tmpl")).substitute(
        kind=schema.kind,
        with_indexes=" and its indexes" if schema.indexes else "",
        revision=revision,
        date=datetime.now(timezone.utc).isoformat(" ", "seconds"),
        id_fields=_literal(schema.id_fields),
        key_types=_types(schema.key_types),
        indexes=f"[{indexes}\n]" if indexes else "[]",
    )
    return f"{revision}_create_{schema.kind}.py", source


def init_migrations(
    directory: str | os.PathLike[str],
    *,
    ini: str | os.PathLike[str] | None = None,
    kind: str | None = None,
    id_field: str | Iterable[str] = "id",
    key_type: type | Iterable[type] = str,
    indexes: Iterable[Index] = (),
) -> list[Path]:
    """Write a working alembic setup for the project's kinds; return the paths created.

    ``directory`` gets ``env.py``, ``script.py.mako`` and ``versions/``; ``ini`` (default
    ``./alembic.ini``, as ``alembic init`` does) points at it. With ``kind``, ``versions/`` also
    gets a first migration creating that kind (``id_field``, ``key_type`` and ``indexes`` as
    ``create_store`` takes them, checked the same way: ``InvalidArgument``). ``ConfigError``,
    before anything is written, when one of those files already exists (nothing is
    overwritten), or when ``kind`` is given and ``versions/`` already holds migrations.
    """
    folder = Path(directory)
    ini_path = Path(ini) if ini is not None else Path("alembic.ini")
    indexes = tuple(indexes)
    schema = None
    if kind is not None:
        schema = KindSchema.declare(kind, id_field, key_type, indexes)
    elif indexes:
        raise InvalidArgument("indexes belong to a kind: give the kind too")
    versions = folder / "versions"
    planned = {
        ini_path: Template(_template("alembic.ini.tmpl")).substitute(
            script_location=_script_location(ini_path, folder)
        ),
        folder / "env.py": _template("env.py.tmpl"),
        folder / "script.py.mako": _template("script.py.mako"),
    }
    if schema is not None:
        name, source = kind_migration(schema)
        planned[versions / name] = source
    _check_free(planned, folder, versions, with_kind=schema is not None)
    created: list[Path] = []
    if not versions.is_dir():
        versions.mkdir(parents=True)
        created.append(versions)
    for path, text in planned.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("x", encoding="utf-8") as file:  # "x": never over a file made meanwhile
            file.write(text)
        created.append(path)
    return created


def _check_free(planned: dict[Path, str], folder: Path, versions: Path, *, with_kind: bool) -> None:
    """``ConfigError`` unless every file can be written without replacing anything."""
    for place in (folder, versions):
        if place.exists() and not place.is_dir():
            raise ConfigError(f"{place} exists and is not a directory")
    taken = [str(path) for path in planned if path.exists() or path.is_symlink()]
    if taken:
        raise ConfigError(
            f"refusing to overwrite {', '.join(taken)}: kvstore init-migrations writes a new "
            "alembic setup only (move those files away, or choose another directory or --ini); "
            "to connect an existing env.py with kvstore's settings, make it call "
            "kvstore_aurora.alembic_env.run_migrations(context)"
        )
    if with_kind and versions.is_dir() and any(versions.glob("*.py")):
        raise ConfigError(
            f"{versions} already holds migrations: add the kind in a new revision instead "
            "(alembic revision -m 'create KIND', then create_kind_table in its upgrade())"
        )
