"""Streaming reads ask DynamoDB for pages of bounded item counts, so memory stays flat (issue 5)."""

from __future__ import annotations

from typing import Any

import pytest

from kvstore import create_store
from kvstore.testing import unique_kind
from kvstore_dynamo import queries


class ScanPages:
    """Records each Scan call's ``Limit`` and how many items its page held."""

    def __init__(self, client: Any) -> None:
        self.limits: list[int | None] = []
        self.sizes: list[int] = []
        client.meta.events.register("provide-client-params.dynamodb.Scan", self._params)
        client.meta.events.register("after-call.dynamodb.Scan", self._page)

    def _params(self, params: dict[str, Any], **_: Any) -> None:
        self.limits.append(params.get("Limit"))

    def _page(self, parsed: dict[str, Any], **_: Any) -> None:
        self.sizes.append(len(parsed.get("Items", [])))


def test_iter_all_reads_pages_of_at_most_the_stream_limit(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queries, "STREAM_PAGE_LIMIT", 7)
    store = create_store(unique_kind(), backend="dynamo", client=client)
    store.ensure()
    written = [{"id": f"k{i:03}", "v": i} for i in range(30)]
    store.put_many(written)
    pages = ScanPages(client)
    read = sorted(store.iter_all(), key=lambda record: record["id"])
    assert read == written
    assert pages.limits
    assert set(pages.limits) == {7}
    assert max(pages.sizes) <= 7
    assert len(pages.sizes) >= -(-len(written) // 7)


def test_a_limited_find_keeps_full_pages(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # find() selects with a limit: a selective filter must not cost one call per 7 items scanned.
    monkeypatch.setattr(queries, "STREAM_PAGE_LIMIT", 7)
    store = create_store(unique_kind(), backend="dynamo", client=client)
    store.ensure()
    store.put_many([{"id": f"k{i:03}", "tag": "x" if i == 17 else "y"} for i in range(30)])
    pages = ScanPages(client)
    assert store.find({"tag": "x"}) == {"id": "k017", "tag": "x"}
    assert pages.limits == [None]


def test_reads_core_collects_whole_keep_full_pages(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # find_all and find_in return every record at once: bounded pages would save no memory and
    # cost calls (1,000 records in pages of 1,000 took a second, empty Query).
    monkeypatch.setattr(queries, "STREAM_PAGE_LIMIT", 7)
    store = create_store(
        unique_kind(), backend="dynamo", client=client, id_field=("grp", "n"), key_type=(str, int)
    )
    store.ensure()
    written = [{"grp": f"g{i % 2}", "n": i} for i in range(30)]
    store.put_many(written)
    pages = ScanPages(client)
    queried: list[int | None] = []
    client.meta.events.register(
        "provide-client-params.dynamodb.Query",
        lambda params, **_: queried.append(params.get("Limit")),
    )
    assert store.find_all() == sorted(written, key=lambda r: (r["grp"], r["n"]))
    assert store.find_all({"grp": "g0"}) == [r for r in written if r["grp"] == "g0"]
    assert len(store.find_in("grp", ["g0", "g1"])) == 30
    assert pages.limits == [None]
    assert queried == [None, None, None]
    assert len(list(store.iter_all({"grp": "g1"}))) == 15
    assert queried[3:] == [7, 7, 7]
