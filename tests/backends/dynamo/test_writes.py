"""Guarded writes on dynamo: the record a refusal reports, on servers with and without
``ReturnValuesOnConditionCheckFailure``; a refusal after botocore retried a write whose first
answer was lost; the expressions sent (placeholders only)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders

from kvstore import (
    AlreadyExists,
    ConditionFailed,
    InvalidArgument,
    NotFound,
    Store,
    create_store,
    ge,
    increment,
    transaction,
)
from kvstore.testing import unique_kind
from tests.backends.dynamo.hooks import Calls

OPTION = "ReturnValuesOnConditionCheckFailure"


def make(client: Any, **kwargs: Any) -> Store:
    store = create_store(unique_kind(), backend="dynamo", client=client, **kwargs)
    store.ensure()
    return store


class WithoutOldOnFailure:
    """Makes the client answer as a server that does not know ``OPTION`` (an older DynamoDB
    Local): any write sending it is refused with a ValidationException, unsent."""

    def __init__(self, client: Any) -> None:
        self.refused = 0
        self._asked = False
        events = client.meta.events
        for operation in ("PutItem", "UpdateItem", "DeleteItem"):
            events.register(f"provide-client-params.dynamodb.{operation}", self._note)
            events.register(f"before-call.dynamodb.{operation}", self._refuse)

    def _note(self, params: dict[str, Any], **_: Any) -> None:
        self._asked = OPTION in params

    def _refuse(self, **_: Any) -> Any:
        if not self._asked:
            return None
        self.refused += 1
        error = {
            "Error": {
                "Code": "ValidationException",
                "Message": f"1 validation error detected: Unknown parameter {OPTION}",
            },
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }
        return AWSResponse("http://refused", 400, HTTPHeaders(), None), error


def test_a_server_without_old_values_on_failure_gets_a_read_after_the_refusal(
    client: Any,
) -> None:
    store = make(client, version_field="version")
    store.create({"id": "a", "x": 1})
    refusing = WithoutOldOnFailure(client)
    calls = Calls(client)
    with pytest.raises(AlreadyExists):
        store.create({"id": "a", "x": 2})
    assert refusing.refused == 1  # asked once; the driver remembers the server's answer
    with pytest.raises(ConditionFailed):
        store.update({"id": "a", "x": 3, "version": 7})
    with pytest.raises(ConditionFailed):
        store.put({"id": "a", "x": 4}, expect={"x": 2})
    assert refusing.refused == 1
    assert calls["GetItem"] == 3  # each refusal read the record it found, right after
    assert store.update({"id": "a", "x": increment(1)})["x"] == 2
    assert store.find({"id": "a"}) == {"id": "a", "x": 2, "version": 2}


def test_a_refusal_after_a_retry_that_shows_our_own_record_is_success(client: Any) -> None:
    # botocore retried a conditional put whose first answer was lost: the retry finds the record
    # the first attempt wrote. Conflict.retried lets core tell that from a real clash.
    store = make(client)
    store.create({"id": "a", "x": 1})

    def retried(parsed: dict[str, Any], **_: Any) -> None:
        parsed.setdefault("ResponseMetadata", {})["RetryAttempts"] = 1

    client.meta.events.register("after-call.dynamodb.PutItem", retried)
    assert store.create({"id": "a", "x": 1}) == {"id": "a", "x": 1}
    with pytest.raises(AlreadyExists):
        store.create({"id": "a", "x": 2})  # another record: a real clash, retried or not


def test_names_and_values_are_placeholders_in_every_expression(client: Any) -> None:
    sent: list[dict[str, Any]] = []
    for operation in ("PutItem", "UpdateItem", "Query", "Scan"):
        client.meta.events.register(
            f"provide-client-params.dynamodb.{operation}",
            lambda params, **_: sent.append(dict(params)),
        )
    store = make(client, id_field="name", ttl_field="ttl")
    store.put({"name": "n", "status": "open", "count": 1}, expect={"status": None})
    store.update({"name": "n", "count": increment(1), "data": "x"}, expect={"count": ge(1)})
    store.find_all({"status": "open", "count": 2})
    assert len(sent) == 3
    for params in sent:
        for key in ("ConditionExpression", "UpdateExpression", "FilterExpression"):
            text = params.get(key, "")
            for word in ("status", "count", "data", "name", "ttl", "open"):
                assert word not in text, (key, text)


def test_an_expect_of_a_string_and_an_increment_send_what_the_raw_code_sends(client: Any) -> None:
    # A string equals only a string on both servers, and a field that must equal one is present
    # only on a stored record: the condition is the equality alone, as a user would write it.
    sent: list[dict[str, Any]] = []
    client.meta.events.register(
        "provide-client-params.dynamodb.UpdateItem", lambda params, **_: sent.append(dict(params))
    )
    store = make(client)
    store.put({"id": "a", "name": "ada", "n": 1, "flag": True, "tags": ["ada"]})
    assert store.update({"id": "a", "n": 2}, expect={"name": "ada"})["n"] == 2
    assert sent[-1]["ConditionExpression"] == "#n1 = :v1"
    assert sent[-1]["UpdateExpression"] == "SET #n0 = :v0"
    assert store.update({"id": "a", "n": increment(3)})["n"] == 5
    assert sent[-1]["UpdateExpression"] == "ADD #n0 :v0"
    assert store.update({"id": "a", "m": increment(-1.5)})["m"] == -1.5  # ADD on an absent field
    for field in ("n", "flag", "tags"):  # a string never equals a number, a bool or a list
        with pytest.raises(ConditionFailed):
            store.update({"id": "a", "n": 0}, expect={field: "ada"})
    with pytest.raises(NotFound):  # no record: still NotFound, not ConditionFailed
        store.update({"id": "b", "n": 0}, expect={"name": "ada"})
    with pytest.raises(InvalidArgument):  # the increment's guard still refuses a string
        store.update({"id": "a", "name": increment(1)})
    assert store.find({"id": "a"}) == {
        "id": "a",
        "name": "ada",
        "n": 5,
        "m": -1.5,
        "flag": True,
        "tags": ["ada"],
    }


def test_an_increment_of_a_number_beyond_int64_is_sent_again_with_the_exact_bounds(
    client: Any,
) -> None:
    # The first request bounds an int increment on one side only; a stored number beyond the
    # int64 range (a float, which takes any amount) is refused by it, and only then the exact
    # checks are sent. A refusal they confirm is not sent a third time.
    store = make(client)
    store.put_many([{"id": "big", "n": 1e19}, {"id": "max", "n": 2**63 - 1}, {"id": "s", "n": 1}])
    calls = Calls(client)
    assert store.update({"id": "s", "n": increment(1)})["n"] == 2
    assert calls["UpdateItem"] == 1
    assert store.update({"id": "big", "n": increment(1)})["n"] == 1e19
    # Two attempts, then the write that stores 1e19 + 1 as the double it reads as.
    assert calls["UpdateItem"] == 4
    assert [r["id"] for r in store.find_all({"n": 1e19})] == ["big"]
    with pytest.raises(InvalidArgument):
        store.update({"id": "max", "n": increment(1)})
    assert calls["UpdateItem"] == 5
    with transaction() as tx:
        tx.update(store, {"id": "s", "n": increment(1)})
        tx.update(store, {"id": "big", "n": increment(-1)})  # the lower bound takes it
    assert calls["TransactWriteItems"] == 1
    with transaction() as tx:
        tx.update(store, {"id": "s", "n": increment(1)})
        tx.update(store, {"id": "big", "n": increment(1)})
    assert calls["TransactWriteItems"] == 3

    def past_the_range() -> None:
        with transaction() as tx:
            tx.update(store, {"id": "s", "n": increment(1)})
            tx.update(store, {"id": "max", "n": increment(1)})

    with pytest.raises(InvalidArgument) as refused:
        past_the_range()
    assert refused.value.index == 1
    assert calls["TransactWriteItems"] == 4
    assert [r["n"] for r in store.find_all()] == [1e19, 2**63 - 1, 4]


def test_an_update_whose_expressions_carry_no_varying_value_builds_them_once() -> None:
    from kvstore_dynamo.writes import _PARTS, _update_parts

    store = create_store("parts_kind", backend="dynamo", endpoint_url="http://127.0.0.1:9")
    schema = store._schema  # type: ignore[attr-defined]

    def parts(changes: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
        return _update_parts(schema, store.update_op(changes), False)  # type: ignore[attr-defined]

    _PARTS.clear()
    first = parts({"id": "a", "n": increment(1)})
    first[2]["ExpressionAttributeValues"].clear()  # what a hook might do to a request
    assert parts({"id": "b", "n": increment(1)})[2]["ExpressionAttributeValues"]
    assert len(_PARTS) == 1
    sent = [parts({"id": "a", "n": increment(a)}) for a in (1.0, 2, 0.5)]  # 1.0 is not 1
    assert [p["ExpressionAttributeValues"][":v0"]["N"] for _u, _c, p in sent] == ["1.0", "2", "0.5"]
    assert len(_PARTS) == 4
    parts({"id": "a", "n": increment(1), "x": 2})  # a value set: built each time
    assert len(_PARTS) == 4
