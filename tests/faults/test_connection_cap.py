"""Issue 12, defect 10: aurora opens at most a set number of connections per process.

Today ``Pool`` opens one server connection per busy thread, without a cap (32 threads, 32
connections), which exhausts a small Aurora instance or RDS Proxy when a container fans out. The
cap (``DB_MAX_CONNECTIONS`` / ``max_connections=``, see README.md) makes callers wait for a free
connection, and a caller that waited past its time budget gets ``BackendUnavailable``. The proxy
counts the connections the store opens.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from kvstore import BackendUnavailable, Store
from tests.faults.helpers import BUDGET, MARGIN, call_bounded
from tests.faults.proxy import FaultProxy

pytestmark = pytest.mark.timeout(60)

CAP = 4
THREADS = 16


@pytest.mark.parametrize("how", ["DB_MAX_CONNECTIONS", "max_connections"])
def test_aurora_opens_at_most_max_connections_per_process(
    aurora: Callable[..., Store],
    pg_proxy: FaultProxy,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    options: dict[str, Any] = {}
    if how == "DB_MAX_CONNECTIONS":
        monkeypatch.setenv("DB_MAX_CONNECTIONS", str(CAP))
    else:
        options["max_connections"] = CAP
    store = aurora(pg_proxy, **options)
    store.put({"id": "a"})
    pg_proxy.delay(0.05)  # calls overlap: each takes 0.1 s or more
    errors: list[BaseException] = []
    found: list[Any] = []

    def work() -> None:
        try:
            for _ in range(3):
                found.append(store.find({"id": "a"}))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30.0)
    assert not any(thread.is_alive() for thread in threads), "callers still waiting after 30 s"
    assert errors == []
    assert found == [{"id": "a"}] * (3 * THREADS)
    assert pg_proxy.peak_open <= CAP, f"{pg_proxy.peak_open} connections open at once"


def test_a_caller_waiting_for_a_connection_past_its_budget_gets_backend_unavailable(
    aurora: Callable[..., Store], pg_proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DB_MAX_CONNECTIONS", "1")
    monkeypatch.setenv("KVSTORE_TIMEOUT", str(BUDGET))
    store = aurora(pg_proxy)
    # More than a page (1,000 rows), so iter_all streams through a server-side cursor, whose
    # connection it holds until the iteration ends (a read of one page holds none).
    store.put_many({"id": f"r{n:04}"} for n in range(1100))
    records = store.iter_all()
    next(records)  # the iteration holds the only connection until it ends
    try:
        outcome = call_bounded(lambda: store.find({"id": "r0001"}), BUDGET + MARGIN)  # a thread
    finally:
        list(records)  # the iteration ends: its connection is free again
    assert outcome.finished, outcome.describe()
    assert isinstance(outcome.error, BackendUnavailable), outcome.describe()
    assert "budget" in str(outcome.error), "the error does not say which limit was hit"
    assert pg_proxy.peak_open == 1
