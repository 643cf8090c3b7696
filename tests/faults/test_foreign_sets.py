"""Issue 12, defect 12: a filter equal to what a read returns finds the record, foreign sets too.

Another DynamoDB tool may write string or number sets (``SS``/``NS``); the contract reads them back
as lists sorted in Python's order. A filter equal to that list must find the record, but today the
filter was sent as a list (``L``) only, which DynamoDB never finds equal to a set; a list that a set
reads back as now also matches the set. Sets are written here with the raw boto3 client, on moto
and on DynamoDB Local.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import boto3
import pytest
from moto import mock_aws

from kvstore import Store, create_store
from tests.faults.conftest import REGION, new_kind

pytestmark = pytest.mark.timeout(60)


class Table(NamedTuple):
    """A raw boto3 client and a store on the same new table."""

    client: Any
    store: Store


@pytest.fixture(params=["moto", "dynamodb_local"])
def table(request: pytest.FixtureRequest) -> Iterator[Table]:
    if request.param == "moto":
        with mock_aws():
            client = boto3.client("dynamodb", region_name=REGION)
            store = create_store(new_kind("s"), backend="dynamo", client=client)
            store.ensure()
            yield Table(client, store)
        return
    endpoint = request.getfixturevalue("dynamodb_local").endpoint
    client = boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint)
    store = create_store(new_kind("s"), backend="dynamo", endpoint_url=endpoint, region=REGION)
    store.ensure()
    yield Table(client, store)


SETS = {
    "SS": ({"SS": ["pear", "apple", "Zebra"]}, ["Zebra", "apple", "pear"]),
    "NS": ({"NS": ["10", "2", "3.5"]}, [2, 3.5, 10]),
}
"""A set as another tool writes it, and the list the contract reads it back as."""

QUERIES: dict[str, Callable[[Store, Any], Any]] = {
    "find": lambda store, value: store.find({"tags": value}),
    "find_all": lambda store, value: store.find_all({"tags": value}),
    "count": lambda store, value: store.count({"tags": value}),
}


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("kind", SETS)
def test_a_filter_equal_to_a_foreign_set_as_read_finds_the_record(
    table: Table, kind: str, query: str
) -> None:
    written, read_back = SETS[kind]
    name = table.store.kind  # no DYNAMO_TABLE_PREFIX in the fault tests
    table.client.put_item(TableName=name, Item={"id": {"S": "s1"}, "tags": written})
    table.client.put_item(TableName=name, Item={"id": {"S": "s2"}, "tags": {"L": []}})
    record = table.store.find({"id": "s1"})
    assert record == {"id": "s1", "tags": read_back}  # what the contract reads
    try:
        result = QUERIES[query](table.store, record["tags"])
    except Exception as exc:
        raise AssertionError(f"{query}: {type(exc).__name__}: {exc}") from exc
    expected = {"find": record, "find_all": [record], "count": 1}[query]
    assert result == expected
