"""A first find by key reads the default layout from its own statement (``layout.probe_sql``).

Each table shape runs the first find both ways, the probe (a fresh layout cache) and
``LAYOUT_QUERY`` then the select, and both must give the same layout and the same answer or error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple
from unittest.mock import ANY

import psycopg
import pytest

from kvstore import ConfigError, Store, create_store
from kvstore.testing import unique_kind
from kvstore_aurora import layout as layouts
from kvstore_aurora.driver import AuroraDriver
from kvstore_aurora.settings import PostgresSettings
from tests.backends.aurora.helpers import connect

Outcome = tuple[str, Any]
"""("value", what a call returned) or (its exception's class name, its message)."""


@pytest.fixture
def admin(pg_settings: PostgresSettings) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection for DDL, with a text domain and a jsonb domain."""
    with connect(pg_settings) as connection:
        connection.execute(
            "DO $$ BEGIN CREATE DOMAIN probe_text AS text; CREATE DOMAIN probe_doc AS jsonb;"
            " EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        )
        yield connection


@pytest.fixture
def layout_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The kinds whose layout was read with ``LAYOUT_QUERY`` (not the probe) from now on."""
    reads: list[str] = []
    read = AuroraDriver._read_layout

    def counting(self: AuroraDriver, connection: Any) -> Any:
        if layouts.cached(self._layout_key) is None:
            reads.append(self.schema.kind)
        return read(self, connection)

    monkeypatch.setattr(AuroraDriver, "_read_layout", counting)
    return reads


def _driver(store: Store) -> AuroraDriver:
    driver = store._driver  # type: ignore[attr-defined]
    assert isinstance(driver, AuroraDriver)
    return driver


def _outcome(call: Callable[[], Any]) -> Outcome:
    try:
        return "value", call()
    except Exception as exc:  # the error is the outcome compared
        return type(exc).__name__, str(exc)


def _described(layout: layouts.Layout | None) -> Any:
    """Everything a layout holds, as comparable values."""
    if layout is None:
        return None

    def column(c: layouts.Column) -> tuple[Any, ...]:
        return (c.name, c.data_type, c.kind, c.precision, c.scale)

    return (
        layout.schema,
        layout.kind,
        [column(c) for c in layout.keys],
        {name: column(c) for name, c in layout.columns.items()},
        layout.has_doc,
        [column(c) for c in layout.checked],
    )


def both_ways(store: Store, key: dict[str, Any], reads: list[str]) -> tuple[Any, Any, bool]:
    """The first find's (layout, outcome) by the probe, and by ``LAYOUT_QUERY`` (each from an
    empty layout cache), and whether the probe's side needed ``LAYOUT_QUERY``."""
    driver = _driver(store)
    layouts.forget(driver._layout_key)
    before = len(reads)
    probed = _outcome(lambda: store.find(key))
    probe_side = (_described(layouts.cached(driver._layout_key)), probed)
    queried = len(reads) > before
    layouts.forget(driver._layout_key)
    read = _outcome(driver.layout)
    query_side = (
        _described(read[1] if read[0] == "value" else None),
        _outcome(lambda: store.find(key)),
    )
    layouts.forget(driver._layout_key)
    return probe_side, query_side, queried


def default_table(
    connection: psycopg.Connection[Any], table: str, doc: str | None, *, temporary: bool = False
) -> None:
    """Create ``table`` (a quoted, maybe qualified name) in the default layout, holding record
    ``a`` with ``doc`` (JSON text) unless it is None."""
    kind = "TEMPORARY TABLE" if temporary else "TABLE"
    connection.execute(f"CREATE {kind} {table} (id text PRIMARY KEY, doc jsonb)")
    if doc is not None:
        connection.execute(f"INSERT INTO {table} VALUES (%s, %s)", ("a", doc))


class Shape(NamedTuple):
    """A table to probe: its columns, the store's key, and whether the probe alone knows it."""

    columns: str
    probed: bool
    id_field: Any = "id"
    key_type: Any = str
    row: str = "'7', '{\"n\": 1}'"
    """The values of the one row stored (keys 7 or '7'), in column order."""


SHAPES = {
    "default": Shape("id text PRIMARY KEY, doc jsonb NOT NULL DEFAULT '{}'", True),
    "doc first": Shape("doc jsonb, id text PRIMARY KEY", True, row="'{\"n\": 1}', '7'"),
    "varchar key": Shape("id varchar(10) PRIMARY KEY, doc jsonb", True),
    "bigint key": Shape("id bigint PRIMARY KEY, doc jsonb", True, key_type=int),
    "integer key": Shape("id integer PRIMARY KEY, doc jsonb", True, key_type=int),
    "smallint key": Shape("id smallint PRIMARY KEY, doc jsonb", True, key_type=int),
    "two keys": Shape(
        "team text, seq bigint, doc jsonb, PRIMARY KEY (team, seq)",
        True,
        ("team", "seq"),
        (str, int),
        "'7', 7, '{\"n\": 1}'",
    ),
    "text domain key": Shape("id probe_text PRIMARY KEY, doc jsonb", False),
    "jsonb domain doc": Shape("id text PRIMARY KEY, doc probe_doc", False),
    "a real column": Shape(
        "id text PRIMARY KEY, name text, doc jsonb", False, row="'7', 'x', '{}'"
    ),
    "no doc": Shape("id text PRIMARY KEY, name text", False, row="'7', 'x'"),
    "wrong key type": Shape("id bigint PRIMARY KEY, doc jsonb", False),
    "missing key": Shape("other text PRIMARY KEY, doc jsonb", False),
}


@pytest.mark.parametrize("name", SHAPES)
def test_the_probe_and_the_layout_query_agree(
    name: str,
    admin: psycopg.Connection[Any],
    pg_settings: PostgresSettings,
    layout_reads: list[str],
) -> None:
    shape = SHAPES[name]
    kind = unique_kind("probe")
    admin.execute(f'CREATE TABLE "{kind}" ({shape.columns})')
    admin.execute(f'INSERT INTO "{kind}" VALUES ({shape.row})')
    store = create_store(
        kind,
        backend="aurora",
        settings=pg_settings,
        id_field=shape.id_field,
        key_type=shape.key_type,
    )
    for value in (7, 8):  # a match, then none
        key = (
            {"team": str(value), "seq": 7}
            if isinstance(shape.id_field, tuple)
            else {"id": value if shape.key_type is int else str(value)}
        )
        probe, query, queried = both_ways(store, key, layout_reads)
        assert probe == query, name
        assert queried is not shape.probed
        if shape.probed:
            assert probe[1] == (("value", {**key, "n": 1}) if value == 7 else ("NotFound", ANY))


def test_the_probe_finds_the_record_and_caches_the_layout(
    admin: psycopg.Connection[Any], pg_settings: PostgresSettings, layout_reads: list[str]
) -> None:
    kind = unique_kind("probe")
    default_table(admin, f'"{kind}"', '{"n": 1, "s": "x"}')
    store = create_store(kind, backend="aurora", settings=pg_settings)
    layouts.forget(_driver(store)._layout_key)
    assert store.find({"id": "a"}) == {"id": "a", "n": 1, "s": "x"}
    assert layouts.cached(_driver(store)._layout_key) is not None
    assert store.find_all() == [{"id": "a", "n": 1, "s": "x"}]
    assert layout_reads == []


@pytest.mark.parametrize("relation", ["VIEW", "MATERIALIZED VIEW"])
def test_views_are_probed_like_tables(
    relation: str,
    admin: psycopg.Connection[Any],
    pg_settings: PostgresSettings,
    layout_reads: list[str],
) -> None:
    base, kind = unique_kind("probe"), unique_kind("probe")
    default_table(admin, f'"{base}"', '{"n": 1}')
    admin.execute(f'CREATE {relation} "{kind}" AS SELECT * FROM "{base}"')
    store = create_store(kind, backend="aurora", settings=pg_settings)
    probe, query, queried = both_ways(store, {"id": "a"}, layout_reads)
    assert probe == query
    assert probe[1] == ("value", {"id": "a", "n": 1})
    assert not queried


def test_a_missing_table_is_the_same_config_error(
    pg_settings: PostgresSettings, layout_reads: list[str]
) -> None:
    kind = unique_kind("probe")
    store = create_store(kind, backend="aurora", settings=pg_settings)
    probe, query, _ = both_ways(store, {"id": "a"}, layout_reads)
    assert probe == query
    assert probe[1][0] == "ConfigError"
    assert "has no table" in probe[1][1]


def test_the_table_of_the_current_schema_wins_over_a_temporary_one(
    admin: psycopg.Connection[Any], pg_settings: PostgresSettings, layout_reads: list[str]
) -> None:
    # A temporary table hides the current schema's from unqualified names; LAYOUT_QUERY reads the
    # current schema's, so must the probe.
    kind = unique_kind("probe")
    default_table(admin, f'"{kind}"', '{"where": "public"}')
    with connect(pg_settings) as connection:
        default_table(connection, f'"{kind}"', '{"where": "temp"}', temporary=True)
        store = create_store(kind, backend="aurora", settings=pg_settings, connection=connection)
        probe, query, _ = both_ways(store, {"id": "a"}, layout_reads)
    assert probe == query
    assert probe[1] == ("value", {"id": "a", "where": "public"})


def test_a_table_of_a_later_search_path_schema_is_missing_both_ways(
    admin: psycopg.Connection[Any], pg_settings: PostgresSettings, layout_reads: list[str]
) -> None:
    kind, schema = unique_kind("probe"), unique_kind("probe_schema")
    admin.execute(f'CREATE SCHEMA "{schema}"')
    default_table(admin, f'"{schema}"."{kind}"', None)
    with connect(pg_settings) as connection:
        connection.execute(f'SET search_path = public, "{schema}"')
        store = create_store(kind, backend="aurora", settings=pg_settings, connection=connection)
        probe, query, _ = both_ways(store, {"id": "a"}, layout_reads)
    assert probe == query
    assert probe[1][0] == "ConfigError"


def test_a_named_schema_is_probed(
    admin: psycopg.Connection[Any], pg_settings: PostgresSettings, layout_reads: list[str]
) -> None:
    kind, schema = unique_kind("probe"), unique_kind("probe_schema")
    admin.execute(f'CREATE SCHEMA "{schema}"')
    default_table(admin, f'"{schema}"."{kind}"', '{"n": 2}')
    store = create_store(kind, backend="aurora", settings=pg_settings, schema=schema)
    layouts.forget(_driver(store)._layout_key)
    assert store.find({"id": "a"}) == {"id": "a", "n": 2}
    assert layout_reads == []
    found = layouts.cached(_driver(store)._layout_key)
    assert found is not None
    assert found.schema == schema


@pytest.mark.parametrize("inside", ["transaction", "pipeline"])
def test_no_probe_inside_a_transaction_so_a_missing_table_does_not_abort_it(
    pg_settings: PostgresSettings, inside: str
) -> None:
    # The caller's pipeline is one transaction up to its next Sync.
    kind = unique_kind("probe")
    with connect(pg_settings) as connection:
        store = create_store(kind, backend="aurora", settings=pg_settings, connection=connection)
        with connection.transaction() if inside == "transaction" else connection.pipeline():
            with pytest.raises(ConfigError):
                store.find({"id": "a"})
            # A failed probe would have aborted the caller's transaction.
            assert connection.execute("SELECT 1").fetchone() == (1,)


def test_a_missing_schema_is_the_same_error_both_ways(
    pg_settings: PostgresSettings, layout_reads: list[str]
) -> None:
    kind = unique_kind("probe")
    store = create_store(
        kind, backend="aurora", settings=pg_settings, schema=unique_kind("no_schema")
    )
    probe, query, queried = both_ways(store, {"id": "a"}, layout_reads)
    assert probe == query
    assert probe[1][0] == "ConfigError"
    assert queried  # the probe's error sent it to the catalog
