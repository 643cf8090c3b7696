"""The six stages of moving a kind between backends, and ``STORE_MIGRATION`` read into them.

A stage says which side is authoritative (written first, read, its answer returned), whether the
other side gets second writes, and whether reads are run on both sides and compared:

==============  ===============  ===============  =========
stage           authoritative    second writes    compared
==============  ===============  ===============  =========
``off``         old              no               no
``dualwrite``   old              to new           no
``shadow``      old              to new           yes
``live``        new              to old           yes
``rampdown``    new              to old           no
``complete``    new              no               no
==============  ===============  ===============  =========

``STORE_MIGRATION`` holds ``KIND=TARGET:STAGE`` entries separated by commas, ``*`` standing for
every kind that has no entry of its own; ``create_store(..., migration="TARGET:STAGE")`` sets one
store's, and ``migration="off"`` opts a store out whatever the environment says.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from kvstore.errors import ConfigError, InvalidArgument, StoreError
from kvstore.values import check_kind

__all__ = [
    "SAMPLE_VARIABLE",
    "STAGES",
    "VARIABLE",
    "Migration",
    "Stage",
    "migration_entries",
    "migration_for",
    "migration_status",
    "parse_migration",
    "sample_rate",
]

VARIABLE = "STORE_MIGRATION"
SAMPLE_VARIABLE = "STORE_MIGRATION_SAMPLE"


class Stage(NamedTuple):
    """What one stage does (see the module docstring)."""

    name: str
    new_first: bool
    """The new side is authoritative (else the old one)."""
    mirrored: bool
    """The other side gets second writes."""
    compared: bool
    """Reads run on both sides and a sampled fraction is compared."""


STAGES: dict[str, Stage] = {
    stage.name: stage
    for stage in (
        Stage("off", new_first=False, mirrored=False, compared=False),
        Stage("dualwrite", new_first=False, mirrored=True, compared=False),
        Stage("shadow", new_first=False, mirrored=True, compared=True),
        Stage("live", new_first=True, mirrored=True, compared=True),
        Stage("rampdown", new_first=True, mirrored=True, compared=False),
        Stage("complete", new_first=True, mirrored=False, compared=False),
    )
}
"""The six stages by name, in the order a migration goes through them."""


class Migration(NamedTuple):
    """A kind's move: to backend ``target``, at ``stage``."""

    target: str
    stage: Stage


def _parse(text: str, error: type[StoreError], where: str) -> Migration:
    target, colon, stage = text.strip().partition(":")
    target, stage = target.strip(), stage.strip()
    if not colon or not target or any(c in target for c in " =,*") or stage not in STAGES:
        raise error(
            f"{where}: {text.strip()!r} is not TARGET:STAGE, a backend name and one of "
            f"{', '.join(STAGES)} (e.g. 'sqlite:dualwrite')"
        )
    return Migration(target, STAGES[stage])


def parse_migration(value: object) -> Migration | None:
    """``create_store``'s ``migration=`` argument: ``"TARGET:STAGE"``, or ``"off"`` for no
    migration (``None``); ``InvalidArgument`` for anything else."""
    if not isinstance(value, str):
        raise InvalidArgument(f"migration is a 'TARGET:STAGE' string, not {value!r:.60}")
    if value.strip() == "off":
        return None
    return _parse(value, InvalidArgument, "migration")


def migration_entries(env: Mapping[str, str] | None = None) -> dict[str, Migration]:
    """Every entry of ``STORE_MIGRATION`` by kind (``*``: every other kind); ``{}`` when unset.

    ``ConfigError`` for a malformed value: an entry that is not ``KIND=TARGET:STAGE``, an invalid
    kind name, a kind named twice.
    """
    text = (os.environ if env is None else env).get(VARIABLE, "")
    entries: dict[str, Migration] = {}
    for raw in text.split(","):
        if not raw.strip():
            continue  # a trailing comma, or an empty value
        kind, equals, rest = raw.partition("=")
        kind = kind.strip()
        if not equals:
            raise ConfigError(f"{VARIABLE}: {raw.strip()!r} is not KIND=TARGET:STAGE")
        if kind != "*":
            try:
                check_kind(kind)
            except InvalidArgument as exc:
                raise ConfigError(f"{VARIABLE}: {exc.message}") from None
        if kind in entries:
            raise ConfigError(f"{VARIABLE} names {kind!r} twice")
        entries[kind] = _parse(rest, ConfigError, VARIABLE)
    return entries


def migration_for(kind: str, env: Mapping[str, str] | None = None) -> Migration | None:
    """The migration ``STORE_MIGRATION`` sets for ``kind``: its own entry, else ``*``'s."""
    entries = migration_entries(env)
    return entries.get(kind) or entries.get("*")


def sample_rate(env: Mapping[str, str] | None = None) -> float:
    """``STORE_MIGRATION_SAMPLE``: the fraction of reads compared, 0 to 1 (default 1)."""
    text = (os.environ if env is None else env).get(SAMPLE_VARIABLE, "").strip()
    if not text:
        return 1.0
    try:
        rate = float(text)
    except ValueError:
        rate = -1.0
    if not 0.0 <= rate <= 1.0:  # NaN fails both comparisons
        raise ConfigError(f"{SAMPLE_VARIABLE} is a fraction from 0 to 1, not {text!r:.40}")
    return rate


def migration_status(
    old: str, kinds: Sequence[str] = (), env: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """What ``STORE_MIGRATION`` does to each of ``kinds`` on backend ``old`` (all its entries when
    ``kinds`` is empty), as ``kvstore status`` shows it: ``kind``, ``entry`` (the entry that
    applies: the kind, ``*`` or ``None``), ``old``, ``new``, ``stage``, ``writes``, ``reads``,
    ``compared`` (the fraction of reads compared)."""
    entries = migration_entries(env)
    sample = sample_rate(env)
    rows = []
    for kind in kinds or list(entries):
        entry = kind if kind in entries else ("*" if "*" in entries else None)
        row: dict[str, Any] = {"kind": kind, "entry": entry, "old": old}
        migration = entries[entry] if entry is not None else None
        if migration is None or migration.target == old:
            row.update(new=None, stage=None, writes=old, reads=old, compared=0.0)
        else:
            stage = migration.stage
            first, second = (migration.target, old) if stage.new_first else (old, migration.target)
            row.update(
                new=migration.target,
                stage=stage.name,
                writes=f"{first}, then {second}" if stage.mirrored else first,
                reads=f"{first} (compared with {second})" if stage.compared else first,
                compared=sample if stage.compared else 0.0,
            )
        rows.append(row)
    return rows
