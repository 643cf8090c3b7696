"""Issue 12, defects 4 and 5: connections that died while idle or while a read streamed.

4. After a Lambda freeze behind a NAT that forgot the connection, the next request on it is
   answered by a reset and never reaches the server (``FaultProxy.forget``). A write that never
   reached the server is safe to send again, and ``remove``/``put_many`` are idempotent anyway:
   DynamoDB (botocore) retries them all; aurora must too.
5. A connection dropped while ``iter_all`` streams: DynamoDB resumes and completes; aurora must
   resume from the last key it returned, so every record comes exactly once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.faults.conftest import Faulty

pytestmark = pytest.mark.timeout(60)


# Each call, and what the store holds afterwards (it starts with a, b).
STALE_CALLS: dict[str, tuple[Callable[[Any], Any], Any, list[str]]] = {
    "create": (lambda s: s.create({"id": "c"}), {"id": "c"}, ["a", "b", "c"]),
    "remove": (lambda s: s.remove({"id": "a"}), 1, ["b"]),
    "put_many": (
        lambda s: s.put_many({"id": f"m{i:04}"} for i in range(1200)),  # 3 chunks
        1200,
        ["a", "b", *(f"m{i:04}" for i in range(1200))],
    ),
    "put": (lambda s: s.put({"id": "a", "n": 1}), {"id": "a", "n": 1}, ["a", "b"]),
    "update": (lambda s: s.update({"id": "a", "n": 1}), {"id": "a", "n": 1}, ["a", "b"]),
    "find": (lambda s: s.find({"id": "a"}), {"id": "a"}, ["a", "b"]),
}


@pytest.mark.parametrize(
    ("backend", "call"),
    [
        ("aurora", "create"),
        ("aurora", "remove"),
        ("aurora", "put_many"),
        ("aurora", "put"),
        ("aurora", "update"),
        ("aurora", "find"),
        ("dynamo", "create"),
        ("dynamo", "remove"),
        ("dynamo", "put_many"),
    ],
)
def test_a_call_on_a_connection_the_network_forgot_is_sent_again(
    faulty: Callable[..., Faulty], backend: str, call: str
) -> None:
    f = faulty(backend)
    f.direct.put_many([{"id": "a"}, {"id": "b"}])
    f.store.count()  # a connection through the proxy, idle in the pool now
    f.proxy.forget()
    run, expected, keys = STALE_CALLS[call]
    try:
        result = run(f.store)
    except Exception as exc:
        raise AssertionError(f"{call} failed: {type(exc).__name__}: {exc}") from exc
    assert result == expected
    assert [record["id"] for record in f.direct.find_all()] == keys


@pytest.mark.parametrize("backend", ["aurora", "dynamo"])
def test_iter_all_survives_a_dropped_connection_and_returns_every_record_once(
    faulty: Callable[..., Faulty], backend: str
) -> None:
    f = faulty(backend)
    keys = [f"r{number:05}" for number in range(2200)]
    f.direct.put_many({"id": key, "n": number} for number, key in enumerate(keys))
    records = f.store.iter_all()
    seen = [next(records)["id"] for _ in range(1500)]  # two pages of 1,000 read
    assert f.proxy.reset_all() >= 1, "no connection to drop"
    try:
        seen += [record["id"] for record in records]
    except Exception as exc:
        raise AssertionError(
            f"iter_all failed after {len(seen)} records: {type(exc).__name__}: {exc}"
        ) from exc
    assert len(seen) == len(keys), "a record came twice or not at all"
    assert sorted(seen) == keys
