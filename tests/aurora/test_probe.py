"""A first find by key reads the default layout from its own statement (``layout.probe_sql``).

Each table shape runs the first find both ways, the probe (a fresh layout cache) and
``LAYOUT_QUERY`` then the select, and both must give the same layout and the same answer or error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from kvstore import ConfigError, Store, create_store
from kvstore.config import PostgresSettings
from kvstore.testing import unique_kind
from kvstore_aurora import layout as layouts
from kvstore_aurora.store import AuroraDriver
from tests.aurora.helpers import connect

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
        if layouts.read_layout(self._layout_key) is None:
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
    probe_side = (_described(layouts.read_layout(driver._layout_key)), probed)
    queried = len(reads) > before
    layouts.forget(driver._layout_key)
    read = _outcome(driver.layout)
    query_side = (
        _described(read[1] if read[0] == "value" else None),
        _outcome(lambda: store.find(key)),
    )
    layouts.forget(driver._layout_key)
    return probe_side, query_side, queried


SHAPES: dict[str, tuple[str, Any, Any, bool]] = {
    # name: (columns, id_field, key_type, whether the probe alone knows the layout)
    "default": ("id text PRIMARY KEY, doc jsonb NOT NULL DEFAULT '{}'", "id", str, True),
    "doc first": ("doc jsonb, id text PRIMARY KEY", "id", str, True),
    "varchar key": ("id varchar(10) PRIMARY KEY, doc jsonb", "id", str, True),
    "bigint key": ("id bigint PRIMARY KEY, doc jsonb", "id", int, True),
    "integer key": ("id integer PRIMARY KEY, doc jsonb", "id", int, True),
    "smallint key": ("id smallint PRIMARY KEY, doc jsonb", "id", int, True),
    "two keys": (
        "team text, seq bigint, doc jsonb, PRIMARY KEY (team, seq)",
        ("team", "seq"),
        (str, int),
        True,
    ),
    "text domain key": ("id probe_text PRIMARY KEY, doc jsonb", "id", str, False),
    "jsonb domain doc": ("id text PRIMARY KEY, doc probe_doc", "id", str, False),
    "a real column": ("id text PRIMARY KEY, name text, doc jsonb", "id", str, False),
    "no doc": ("id text PRIMARY KEY, name text", "id", str, False),
    "wrong key type": ("id bigint PRIMARY KEY, doc jsonb", "id", str, False),
    "missing key": ("other text PRIMARY KEY, doc jsonb", "id", str, False),
}


def _key(id_field: Any, value: str) -> dict[str, Any]:
    if isinstance(id_field, tuple):
        return {"team": value, "seq": 7}
    return {"id": value}


@pytest.mark.parametrize("shape", SHAPES)
def test_the_probe_and_the_layout_query_agree(
    shape: str,
    admin: psycopg.Connection[Any],
    pg_settings: PostgresSettings,
    layout_reads: list[str],
) -> None:
    columns, id_field, key_type, probed_alone = SHAPES[shape]
    kind = unique_kind("probe")
    admin.execute(f'CREATE TABLE "{kind}" ({columns})')
    store = create_store(
        kind, backend="aurora", settings=pg_settings, id_field=id_field, key_type=key_type
    )
    stored = 7 if key_type is int else "7"
    if shape in ("default", "doc first", "varchar key", "bigint key", "integer key"):
        admin.execute(f'INSERT INTO "{kind}" (id, doc) VALUES (%s, %s)', (stored, '{"n": 1}'))
    elif shape == "two keys":
        admin.execute(f'INSERT INTO "{kind}" VALUES (%s, 7, %s)', ("7", '{"n": 1}'))
    for value in ("7", "8"):  # a match, then none
        key = _key(id_field, value)
        if key_type is int:
            key = {"id": int(value)}
        probe, query, queried = both_ways(store, key, layout_reads)
        assert probe == query, shape
        assert queried is not probed_alone


def test_the_probe_finds_the_record_and_caches_the_layout(
    admin: psycopg.Connection[Any], pg_settings: PostgresSettings, layout_reads: list[str]
) -> None:
    kind = unique_kind("probe")
    admin.execute(f'CREATE TABLE "{kind}" (id text PRIMARY KEY, doc jsonb)')
    admin.execute(f'INSERT INTO "{kind}" VALUES (%s, %s)', ("a", '{"n": 1, "s": "x"}'))
    store = create_store(kind, backend="aurora", settings=pg_settings)
    layouts.forget(_driver(store)._layout_key)
    assert store.find({"id": "a"}) == {"id": "a", "n": 1, "s": "x"}
    assert layouts.read_layout(_driver(store)._layout_key) is not None
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
    admin.execute(f'CREATE TABLE "{base}" (id text PRIMARY KEY, doc jsonb)')
    admin.execute(f'INSERT INTO "{base}" VALUES (%s, %s)', ("a", '{"n": 1}'))
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
    assert "does not exist" in probe[1][1]


def test_the_table_of_the_current_schema_wins_over_a_temporary_one(
    admin: psycopg.Connection[Any], pg_settings: PostgresSettings, layout_reads: list[str]
) -> None:
    # A temporary table hides the current schema's from unqualified names; LAYOUT_QUERY reads the
    # current schema's, so must the probe.
    kind = unique_kind("probe")
    admin.execute(f'CREATE TABLE "{kind}" (id text PRIMARY KEY, doc jsonb)')
    admin.execute(f'INSERT INTO "{kind}" VALUES (%s, %s)', ("a", '{"where": "public"}'))
    with connect(pg_settings) as connection:
        connection.execute(f'CREATE TEMPORARY TABLE "{kind}" (id text PRIMARY KEY, doc jsonb)')
        connection.execute(f'INSERT INTO "{kind}" VALUES (%s, %s)', ("a", '{"where": "temp"}'))
        store = create_store(kind, backend="aurora", settings=pg_settings, connection=connection)
        probe, query, _ = both_ways(store, {"id": "a"}, layout_reads)
    assert probe == query
    assert probe[1] == ("value", {"id": "a", "where": "public"})


def test_a_table_of_a_later_search_path_schema_is_missing_both_ways(
    admin: psycopg.Connection[Any], pg_settings: PostgresSettings, layout_reads: list[str]
) -> None:
    kind, schema = unique_kind("probe"), unique_kind("probe_schema")
    admin.execute(f'CREATE SCHEMA "{schema}"')
    admin.execute(f'CREATE TABLE "{schema}"."{kind}" (id text PRIMARY KEY, doc jsonb)')
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
    admin.execute(f'CREATE TABLE "{schema}"."{kind}" (id text PRIMARY KEY, doc jsonb)')
    admin.execute(f'INSERT INTO "{schema}"."{kind}" VALUES (%s, %s)', ("a", '{"n": 2}'))
    store = create_store(kind, backend="aurora", settings=pg_settings, schema=schema)
    layouts.forget(_driver(store)._layout_key)
    assert store.find({"id": "a"}) == {"id": "a", "n": 2}
    assert layout_reads == []
    found = layouts.read_layout(_driver(store)._layout_key)
    assert found is not None
    assert found.schema == schema


def test_no_probe_inside_a_transaction_so_a_missing_table_does_not_abort_it(
    pg_settings: PostgresSettings,
) -> None:
    kind = unique_kind("probe")
    with connect(pg_settings) as connection:
        store = create_store(kind, backend="aurora", settings=pg_settings, connection=connection)
        with connection.transaction():
            with pytest.raises(ConfigError):
                store.find({"id": "a"})
            # A failed probe would have aborted the caller's transaction.
            assert connection.execute("SELECT 1").fetchone() == (1,)
