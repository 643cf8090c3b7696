"""The statements can use the indexes: the GIN index on ``doc``, the primary key's btree."""

from __future__ import annotations

from typing import Any

import pytest

from kvstore import Store, create_store
from kvstore.testing import unique_kind
from kvstore_aurora.settings import PostgresSettings
from tests.backends.aurora.helpers import explain, plan_of, plan_of_in


@pytest.fixture
def store(pg_settings: PostgresSettings) -> Store:
    made = create_store(
        unique_kind("idx"),
        backend="aurora",
        settings=pg_settings,
        id_field=("a", "b"),
        key_type=(str, int),
    )
    made.ensure()
    made.put_many({"a": f"p{n % 10}", "b": n, "tag": f"t{n}", "m": {"x": n}} for n in range(300))
    return made


@pytest.mark.parametrize(
    "filters", [{"tag": "t7"}, {"m": {"x": 7}}, {"tag": "t7", "m": {"x": 7}}], ids=repr
)
def test_doc_filters_use_the_gin_index(
    pg_settings: PostgresSettings, store: Store, filters: dict[str, Any]
) -> None:
    shown = explain(pg_settings, store, plan_of(store, filters), seqscan=False)
    assert "_doc_gin" in shown, shown


def test_key_filters_use_the_primary_key(pg_settings: PostgresSettings, store: Store) -> None:
    for plan in (
        plan_of(store, {"a": "p1", "b": 11}),
        plan_of(store, {"a": "p1"}),
        plan_of_in(store, "a", ["p1", "p2"]),
    ):
        shown = explain(pg_settings, store, plan, seqscan=False)
        assert "_pkey" in shown, shown


def test_find_in_on_a_doc_field_uses_the_gin_index(
    pg_settings: PostgresSettings, store: Store
) -> None:
    shown = explain(pg_settings, store, plan_of_in(store, "tag", ["t1", "t2"]), seqscan=False)
    assert "_doc_gin" in shown, shown
    found = store.find_in("tag", ["t1", "t2", "t400"])
    assert sorted(record["b"] for record in found) == [1, 2]
    assert sorted(r["b"] for r in store.find_in("tag", ["t3", None])) == [3]
