"""Resumable reads on dynamo (``kvstore copy``): a segment is a parallel Scan's segment, resumed
after a key with ``ExclusiveStartKey``; the segments together hold every record once."""

from __future__ import annotations

import itertools
from typing import Any

from kvstore import Store, create_store
from kvstore.copying import read_segment, scan_segments
from kvstore.testing import unique_kind


def kind(client: Any) -> Store:
    store = create_store(
        unique_kind(),
        backend="dynamo",
        client=client,
        id_field=("team", "seq"),
        key_type=(str, int),
    )
    store.ensure()
    store.put_many({"team": f"t{n % 7}", "seq": n, "v": n} for n in range(120))
    return store


def test_segments_hold_every_record_once(client: Any) -> None:
    store = kind(client)
    assert scan_segments(store) == 1000  # type: ignore[arg-type]
    sent: list[dict[str, Any]] = []
    client.meta.events.register(
        "provide-client-params.dynamodb.Scan", lambda params, **_: sent.append(dict(params))
    )
    keys = [
        (record["team"], record["seq"])
        for segment in range(4)
        for record in read_segment(store, segment, 4)  # type: ignore[arg-type]
    ]
    assert sorted(keys) == sorted((f"t{n % 7}", n) for n in range(120))
    assert {(params["Segment"], params["TotalSegments"]) for params in sent} == {
        (segment, 4) for segment in range(4)
    }
    assert all(params["ConsistentRead"] for params in sent)


def test_a_segment_resumes_after_the_last_key_taken(client: Any) -> None:
    store = kind(client)
    whole = list(read_segment(store, 1, 3))  # type: ignore[arg-type]
    assert len(whole) > 10
    for stop in (1, 7, len(whole) - 1):
        taken = list(itertools.islice(read_segment(store, 1, 3), stop))  # type: ignore[arg-type]
        last = (taken[-1]["team"], taken[-1]["seq"])
        rest = list(read_segment(store, 1, 3, after=last))  # type: ignore[arg-type]
        assert taken + rest == whole
    # The last key taken may have been removed since: the read resumes from its position.
    last = (whole[4]["team"], whole[4]["seq"])
    store.remove({"team": last[0], "seq": last[1]})
    assert list(read_segment(store, 1, 3, after=last)) == whole[5:]  # type: ignore[arg-type]
