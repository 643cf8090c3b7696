"""The cost of reads served by a key, a partition or an index: on kinds of 100,000 records,
PostgreSQL plans the driver's own statements as index scans, never a sequential scan, and pages
come out of the index in order (no sort)."""

from __future__ import annotations

from typing import Any

import pytest

from kvstore import Index, Store, between, create_store, ge, lt
from kvstore.testing import unique_kind
from kvstore_aurora.settings import PostgresSettings
from tests.backends.aurora.helpers import explain, plan_of, plan_of_in

RECORDS = 100_000
TEAMS = 1_000


@pytest.fixture(scope="module")
def users(pg_settings: PostgresSettings) -> Store:
    """100,000 users, 100 a team, with an index by email and one by (team, joined)."""
    store = create_store(
        unique_kind("explain"),
        backend="aurora",
        settings=pg_settings,
        indexes=[
            Index("by_email", "email"),
            Index("by_team", ("team", "joined"), key_type=(str, float)),
            Index("by_age", "age", key_type=int),
        ],
    )
    store.ensure()
    store.put_many(
        {
            "id": f"u{n:06}",
            "email": f"user{n}@example.com",
            "team": f"t{n % TEAMS}",
            "joined": n / 7,
            "age": n % 90,
            "name": f"User {n}",
        }
        for n in range(RECORDS)
    )
    return store


@pytest.fixture(scope="module")
def members(pg_settings: PostgresSettings) -> Store:
    """100,000 members keyed by (team_id, seq)."""
    store = create_store(
        unique_kind("explain"),
        backend="aurora",
        settings=pg_settings,
        id_field=("team_id", "seq"),
        key_type=(str, int),
    )
    store.ensure()
    store.put_many({"team_id": f"t{n % TEAMS}", "seq": n, "role": "dev"} for n in range(RECORDS))
    return store


def _indexed(shown: str, index: str) -> None:
    assert "Seq Scan" not in shown, shown
    assert index in shown, shown
    assert "Index" in shown, shown  # an Index Scan, Index Only Scan or Bitmap Index Scan


def _page(store: Store, filters: dict[str, Any], limit: int, descending: bool) -> Any:
    """The plan of the second page of a read (it has a start position)."""
    first = store.find_page(filters, limit=limit, descending=descending)
    assert first.cursor is not None
    from kvstore.pages import decode_cursor, query_digest
    from kvstore.records import prepare_filters

    prepared = prepare_filters(filters, store.schema)
    plan = plan_of(store, filters)
    start = decode_cursor(first.cursor, query_digest(store.kind, prepared, descending), plan)
    return plan.ordered(limit + 1, descending, start)


def test_an_index_read_is_an_index_scan(pg_settings: PostgresSettings, users: Store) -> None:
    kind = users.kind
    plan = plan_of(users, {"email": "user4242@example.com"})
    assert plan.explain() == "index:by_email"
    _indexed(explain(pg_settings, users, plan), f"{kind}__by_email")
    plan.limit = 2  # as find() reads it
    _indexed(explain(pg_settings, users, plan), f"{kind}__by_email")
    _indexed(explain(pg_settings, users, plan, statement="count"), f"{kind}__by_email")
    _indexed(explain(pg_settings, users, plan, statement="delete"), f"{kind}__by_email")
    for filters in (
        {"team": "t7"},
        {"team": "t7", "joined": ge(100.0)},
        {"team": "t7", "joined": between(10, 20000)},
        {"team": "t7", "joined": lt(5000), "name": "User 7"},
    ):
        plan = plan_of(users, filters)
        assert plan.explain() == "index:by_team"
        _indexed(explain(pg_settings, users, plan), f"{kind}__by_team")
    plan = plan_of(users, {"age": 42})
    _indexed(explain(pg_settings, users, plan, statement="count"), f"{kind}__by_age")
    _indexed(explain(pg_settings, users, plan_of_in(users, "email", ["a", "b"])), "__by_email")
    assert users.find({"email": "user4242@example.com"})["id"] == "u004242"


def test_a_page_of_an_index_is_read_in_the_index_order(
    pg_settings: PostgresSettings, users: Store
) -> None:
    for descending in (False, True):
        for filters in ({"team": "t7"}, {"team": "t7", "joined": ge(100.0)}):
            shown = explain(pg_settings, users, _page(users, filters, 20, descending))
            _indexed(shown, f"{users.kind}__by_team")
            assert "Sort" not in shown, shown
        shown = explain(pg_settings, users, _page(users, {"age": 3}, 50, descending))
        _indexed(shown, f"{users.kind}__by_age")
        assert "Sort" not in shown, shown
    page = users.find_page({"team": "t7"}, limit=20)
    assert [record["joined"] for record in page.records] == [
        n / 7 for n in range(7, 7 + 20 * TEAMS, TEAMS)
    ]


def test_a_partition_read_and_its_pages_use_the_primary_key(
    pg_settings: PostgresSettings, members: Store
) -> None:
    pkey = f"{members.kind}_pkey"
    for filters in ({"team_id": "t7"}, {"team_id": "t7", "seq": ge(50_000)}):
        plan = plan_of(members, filters)
        assert plan.explain() == "partition"
        _indexed(explain(pg_settings, members, plan), pkey)
        _indexed(explain(pg_settings, members, plan, statement="count"), pkey)
        for descending in (False, True):
            shown = explain(pg_settings, members, _page(members, filters, 20, descending))
            _indexed(shown, pkey)
            assert "Sort" not in shown, shown
    _indexed(explain(pg_settings, members, plan_of(members, {"team_id": "t7", "seq": 7})), pkey)
