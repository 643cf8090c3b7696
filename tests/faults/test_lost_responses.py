"""Issue 12, defects 1 and 11: writes whose outcome the network hid from the caller.

1. A ``create`` whose response was lost after the server applied it must return the record: the
   call's own earlier attempt holds the key, which is success, not ``AlreadyExists`` (the same on
   both backends). A key some other record holds is still ``AlreadyExists``.
11. A ``put_many`` that fails midway must say how many records it is sure it stored (``.written``
   on the error, see README.md), and those records must be stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kvstore import AlreadyExists, BackendUnavailable, increment, transaction
from tests.faults.conftest import Faulty
from tests.faults.helpers import Outcome, outcome_of, wait_for_count

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize(
    "backend",
    [
        "aurora",
        "dynamo",
    ],
)
def test_create_whose_response_was_lost_returns_the_record(
    faulty: Callable[..., Faulty], backend: str
) -> None:
    f = faulty(backend)
    f.store.count()  # a connection is open: the next response on it is the create's
    record = {"id": "c1", "n": 1}
    f.proxy.cut(after=0)
    outcome = outcome_of(lambda: f.store.create(record))
    assert f.proxy.cuts == 1, "the fault was not injected"
    assert f.direct.find_all() == [record], "the server did not apply the create"
    assert outcome.error is None, outcome.describe()
    assert outcome.value == record


@pytest.mark.parametrize("backend", ["aurora", "dynamo"])
def test_create_on_a_taken_key_stays_already_exists_when_its_response_is_lost(
    faulty: Callable[..., Faulty], backend: str
) -> None:
    f = faulty(backend)
    theirs = {"id": "c1", "owner": "someone else"}
    f.direct.put(theirs)
    f.store.count()
    f.proxy.cut(after=0)
    outcome = outcome_of(lambda: f.store.create({"id": "c1", "owner": "me"}))
    assert f.proxy.cuts == 1, "the fault was not injected"
    assert isinstance(outcome.error, AlreadyExists), outcome.describe()
    assert f.direct.find_all() == [theirs]


@pytest.mark.parametrize("backend", ["aurora", "dynamo"])
def test_an_increment_whose_response_was_lost_is_not_sent_again(
    faulty: Callable[..., Faulty], backend: str
) -> None:
    # DynamoDB: botocore would send it again after the dropped answer and add twice.
    f = faulty(backend)
    outcome = _answer_lost(f, lambda: f.store.update({"id": "c", "n": increment(1)}))
    _assert_may_have_been_applied(outcome)
    assert f.direct.find({"id": "c"}) == {"id": "c", "n": 2}, "applied other than once"


def _answer_lost(f: Faulty, call: Callable[[], Any]) -> Outcome:
    """``call``'s outcome when the answer to its first request is lost (the record ``c`` holds
    ``n`` 1 before it)."""
    f.direct.put({"id": "c", "n": 1})
    f.store.count()  # a connection is open: the next response on it is the call's
    f.proxy.cut(after=0)
    outcome = outcome_of(call)
    assert f.proxy.cuts == 1, "the fault was not injected"
    return outcome


def _assert_may_have_been_applied(outcome: Outcome) -> None:
    """The caller cannot know whether the write was applied: the error says so."""
    assert isinstance(outcome.error, BackendUnavailable), outcome.describe()
    assert "may have been applied" in str(outcome.error), outcome.describe()


def test_an_idempotent_update_whose_response_was_lost_returns_the_record(
    faulty: Callable[..., Faulty],
) -> None:
    f = faulty("dynamo")
    f.direct.put({"id": "c", "n": 1})
    f.store.count()
    f.proxy.cut(after=0)
    outcome = outcome_of(lambda: f.store.update({"id": "c", "m": 2}, expect={"n": 1}))
    assert f.proxy.cuts == 1, "the fault was not injected"
    assert outcome.error is None, outcome.describe()
    assert outcome.value == {"id": "c", "n": 1, "m": 2}
    assert f.direct.find({"id": "c"}) == outcome.value


def test_a_remove_whose_response_was_lost_never_reports_a_wrong_count(
    faulty: Callable[..., Faulty],
) -> None:
    # DynamoDB: one conditional DeleteItem, sent again after the dropped answer.
    f = faulty("dynamo")
    f.direct.put_many([{"id": "a"}, {"id": "b", "x": 1}])
    f.store.count()
    f.proxy.cut(after=0)  # the refusal is lost; the retry is refused too, and b is still there
    outcome = outcome_of(lambda: f.store.remove({"id": "b", "x": 2}))
    assert f.proxy.cuts == 1, "the fault was not injected"
    assert outcome.error is None, outcome.describe()
    assert outcome.value == 0
    f.proxy.cut(after=0)  # a is removed by the first attempt: the retry finds nothing
    outcome = outcome_of(lambda: f.store.remove({"id": "a"}))
    assert f.proxy.cuts == 2, "the fault was not injected"
    assert isinstance(outcome.error, BackendUnavailable), outcome.describe()
    assert "may have removed it" in str(outcome.error)
    assert f.direct.find_all() == [{"id": "b", "x": 1}]


@pytest.mark.parametrize("backend", ["aurora", "dynamo"])
def test_a_transaction_whose_response_was_lost_applied_all_or_nothing(
    faulty: Callable[..., Faulty], backend: str
) -> None:
    f = faulty(backend)

    def block() -> None:
        with transaction() as tx:
            tx.put(f.store, {"id": "p1"})
            tx.put(f.store, {"id": "p2"})
            tx.update(f.store, {"id": "c", "n": increment(1)})

    outcome = _answer_lost(f, block)
    found = f.direct.find_all()
    applied = [{"id": "c", "n": 2}, {"id": "p1"}, {"id": "p2"}]
    assert found in ([{"id": "c", "n": 1}], applied), found
    if outcome.error is not None:
        _assert_may_have_been_applied(outcome)
    else:
        assert found == applied  # a success applied it once


def _records_resetting(f: Faulty, count: int, reset_at: int) -> Iterator[dict[str, Any]]:
    """``count`` records; when core asks for record ``reset_at`` (chunks before it were handed to
    the driver), wait until the server stored the first 1,000, then reset every connection and
    refuse new ones (the server is gone)."""
    for number in range(count):
        if number == reset_at:
            wait_for_count(f.direct, 1000)
            f.proxy.reset()
            f.proxy.reset_all()
        yield {"id": f"r{number:05}", "pad": "x" * 100}


@pytest.mark.parametrize("backend", ["aurora", "dynamo"])
def test_an_interrupted_put_many_says_how_many_records_it_stored(
    faulty: Callable[..., Faulty], backend: str
) -> None:
    f = faulty(backend)
    f.store.count()
    outcome = outcome_of(lambda: f.store.put_many(_records_resetting(f, 1500, reset_at=1300)))
    assert isinstance(outcome.error, BackendUnavailable), outcome.describe()
    stored = f.direct.count()
    assert stored >= 1000, "the first two chunks were not stored before the reset"
    written = getattr(outcome.error, "written", None)
    assert isinstance(written, int), f"the error carries no .written count: {outcome.describe()}"
    assert 0 <= written <= stored
    # Chunks are written in order, and records in key order: the first `written` are stored.
    confirmed = [f"r{number:05}" for number in range(written)]
    assert len(f.direct.find_in("id", confirmed)) == written
