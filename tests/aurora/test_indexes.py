"""The statements can use the indexes: the GIN index on ``doc``, the primary key's btree."""

from __future__ import annotations

from typing import Any

import pytest
from psycopg import sql

from kvstore import create_store
from kvstore.config import PostgresSettings
from kvstore.testing import unique_kind
from kvstore_aurora.sql import find_in_clause, where_clause
from tests.aurora.helpers import connect


@pytest.fixture
def driver(pg_settings: PostgresSettings) -> Any:
    store = create_store(
        unique_kind("idx"),
        backend="aurora",
        settings=pg_settings,
        id_field=("a", "b"),
        key_type=(str, int),
    )
    store.ensure()
    store.put_many({"a": f"p{n % 10}", "b": n, "tag": f"t{n}", "m": {"x": n}} for n in range(300))
    return store._driver  # type: ignore[attr-defined]


def plan(settings: PostgresSettings, driver: Any, where: Any) -> str:
    layout = driver.layout()
    query = sql.SQL("EXPLAIN ") + driver._select_sql(layout, where)
    with connect(settings) as connection:
        connection.execute("SET enable_seqscan = off")  # show what the indexes can serve
        connection.execute(f'ANALYZE "{layout.kind}"')
        rows = connection.execute(query, where.params).fetchall()
    return "\n".join(row[0] for row in rows)


@pytest.mark.parametrize(
    "filters", [{"tag": "t7"}, {"m": {"x": 7}}, {"tag": "t7", "m": {"x": 7}}], ids=repr
)
def test_doc_filters_use_the_gin_index(
    pg_settings: PostgresSettings, driver: Any, filters: dict[str, Any]
) -> None:
    shown = plan(pg_settings, driver, where_clause(driver.layout(), filters))
    assert "_doc_gin" in shown, shown


def test_key_filters_use_the_primary_key(pg_settings: PostgresSettings, driver: Any) -> None:
    layout = driver.layout()
    for where in (
        where_clause(layout, {"a": "p1", "b": 11}),
        where_clause(layout, {"a": "p1"}),
        find_in_clause(layout, "a", ["p1", "p2"]),
    ):
        shown = plan(pg_settings, driver, where)
        assert "_pkey" in shown, shown


def test_find_in_on_a_doc_field_uses_the_gin_index(
    pg_settings: PostgresSettings, driver: Any
) -> None:
    where = find_in_clause(driver.layout(), "tag", ["t1", "t2"])
    assert "_doc_gin" in plan(pg_settings, driver, where)
    found = driver.find_in("tag", ["t1", "t2", "t400"])
    assert sorted(record["b"] for record in found) == [1, 2]
    assert sorted(r["b"] for r in driver.find_in("tag", ["t3", None])) == [3]
