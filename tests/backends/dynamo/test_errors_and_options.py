"""The dynamo backend's options, client sharing, ensure(), native() and error mapping."""

from __future__ import annotations

import re
import socket
import sys
import threading
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber

from kvstore import (
    BackendUnavailable,
    ConfigError,
    InvalidArgument,
    NotFound,
    StoreError,
    create_store,
    increment,
    transaction,
)
from kvstore.backend import _shared, forget
from kvstore.testing import unique_kind
from kvstore.transactions import Transaction
from kvstore_dynamo import tables
from kvstore_dynamo.client import client_key
from kvstore_dynamo.settings import dynamo_settings
from tests.backends.dynamo.conftest import FAKE_CREDENTIALS, REGION, local_client
from tests.backends.dynamo.hooks import Calls


def test_unknown_and_conflicting_options_raise_type_error(client: Any) -> None:
    with pytest.raises(TypeError, match="nope"):
        create_store("things", backend="dynamo", nope=1)
    with pytest.raises(TypeError):
        create_store("things", backend="dynamo", client=client, region="eu-west-1")
    with pytest.raises(TypeError):
        create_store("things", backend="dynamo", table_prefix=3)


def test_a_missing_table_is_a_config_error_naming_it(client: Any) -> None:
    kind = unique_kind()
    store = create_store(kind, backend="dynamo", client=client, table_prefix="svc-dev-")
    for call in (
        lambda: store.find({"id": "a"}),
        lambda: store.find_all({"v": 1}),
        lambda: store.put({"id": "a"}),
        lambda: store.update({"id": "a", "v": 1}),
        lambda: store.put_many([{"id": "a"}]),
        lambda: store.find_in("id", ["a"]),
        lambda: store.count(),
        lambda: store.truncate(force=True),
    ):
        with pytest.raises(ConfigError, match=f"svc-dev-{kind}") as info:
            call()
        assert "ensure()" in str(info.value)
        assert info.value.__cause__ is not None


def test_ensure_is_idempotent_and_checks_the_key(client: Any) -> None:
    kind = unique_kind()
    store = create_store(
        kind, backend="dynamo", client=client, id_field=("a", "b"), key_type=(str, int)
    )
    store.ensure()
    store.ensure()
    description = client.describe_table(TableName=kind)["Table"]
    assert description["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert {k["AttributeName"]: k["KeyType"] for k in description["KeySchema"]} == {
        "a": "HASH",
        "b": "RANGE",
    }
    assert {
        d["AttributeName"]: d["AttributeType"] for d in description["AttributeDefinitions"]
    } == {"a": "S", "b": "N"}
    other = create_store(kind, backend="dynamo", client=client, id_field="a")
    with pytest.raises(ConfigError, match="key"):
        other.ensure()


def test_the_environment_configures_the_client_and_it_is_shared(
    dynamodb_local: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_local.endpoint)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FAKE_CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_CREDENTIALS["aws_secret_access_key"])
    monkeypatch.setenv("DYNAMO_TABLE_PREFIX", "envtest-")
    key = client_key(dynamo_settings())
    forget("dynamo.client", key)
    one = create_store(unique_kind(), backend="dynamo")
    two = create_store(unique_kind(), backend="dynamo")
    assert ("dynamo.client", key) not in _shared.objects  # no client before the first call
    one.ensure()
    assert ("dynamo.client", key) in _shared.objects
    one.put({"id": "a", "name": "x"})
    native = one.native()
    assert native.table_name == "envtest-" + one.kind
    assert native.client is two.native().client
    assert native.client.meta.endpoint_url == dynamodb_local.endpoint
    described = local_client(dynamodb_local.endpoint).describe_table(TableName=native.table_name)
    assert described["Table"]["TableStatus"] == "ACTIVE"
    # The Table resource works on the same table and leaves the stores' client low-level.
    assert native.table.get_item(Key={"id": "a"})["Item"] == {"id": "a", "name": "x"}
    assert native.table.name == native.table_name
    assert one.find({"id": "a"}) == {"id": "a", "name": "x"}


def test_native_without_boto3_is_a_config_error_naming_the_extra(
    moto_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = create_store(unique_kind(), backend="dynamo", client=moto_client)
    store.ensure()
    store.put({"id": "a"})
    monkeypatch.setitem(sys.modules, "boto3", None)  # import boto3 fails, as when not installed
    with pytest.raises(ConfigError, match=re.escape("pip install 'kvstore[dynamo-native]'")):
        store.native()
    assert store.find({"id": "a"}) == {"id": "a"}  # the store itself needs botocore only


def test_an_injected_session_is_used(dynamodb_local: Any) -> None:
    session = boto3.session.Session(
        region_name=REGION,
        aws_access_key_id=FAKE_CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=FAKE_CREDENTIALS["aws_secret_access_key"],
    )
    store = create_store(
        unique_kind(), backend="dynamo", session=session, endpoint_url=dynamodb_local.endpoint
    )
    store.ensure()
    store.put({"id": "a"})
    assert store.native().client.meta.endpoint_url == dynamodb_local.endpoint
    assert store.find({"id": "a"}) == {"id": "a"}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_an_unreachable_endpoint_is_backend_unavailable() -> None:
    client = local_client(
        f"http://127.0.0.1:{_closed_port()}", retries={"max_attempts": 1}, connect_timeout=1
    )
    store = create_store(unique_kind(), backend="dynamo", client=client)
    with pytest.raises(BackendUnavailable) as info:
        store.find({"id": "a"})
    assert isinstance(info.value, ConnectionError)


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("ProvisionedThroughputExceededException", 400, BackendUnavailable),
        ("ThrottlingException", 400, BackendUnavailable),
        ("InternalServerError", 500, BackendUnavailable),
        ("UnrecognizedClientException", 400, ConfigError),
        ("AccessDeniedException", 400, ConfigError),
        ("ResourceNotFoundException", 400, ConfigError),
        ("ValidationException", 400, StoreError),
        ("SomethingNewException", 400, StoreError),
    ],
)
def test_client_errors_are_mapped(client: Any, code: str, status: int, expected: type) -> None:
    store = create_store(unique_kind(), backend="dynamo", client=client)
    with Stubber(client) as stub:
        stub.add_client_error("get_item", service_error_code=code, http_status_code=status)
        with pytest.raises(expected) as info:
            store.find({"id": "a"})
    assert type(info.value) is expected  # the most precise class, not a broader one
    assert info.value.__cause__ is not None


def test_a_too_large_item_refused_by_dynamodb_is_invalid_argument(client: Any) -> None:
    store = create_store(unique_kind(), backend="dynamo", client=client)
    with Stubber(client) as stub:
        stub.add_client_error(
            "update_item",
            service_error_code="ValidationException",
            service_message="Item size to update has exceeded the maximum allowed size",
        )
        with pytest.raises(InvalidArgument):
            store.update({"id": "a", "v": 1})


def test_a_call_too_wide_for_one_expression_is_invalid_argument_saying_so(
    dynamodb_local: Any,
) -> None:
    # DynamoDB Local enforces the 4 KB of an expression: 120 increments' checks pass it.
    store = create_store(
        unique_kind(), backend="dynamo", client=local_client(dynamodb_local.endpoint)
    )
    store.ensure()
    store.put({"id": "a"})
    changes = {f"n{i}": increment(1) for i in range(120)}
    with pytest.raises(InvalidArgument, match="too wide for one DynamoDB expression"):
        store.update({"id": "a", **changes})
    assert store.find({"id": "a"}) == {"id": "a"}


@pytest.mark.parametrize(("fields", "version_field"), [(120, None), (300, "v")])
def test_a_copy_brings_a_wide_stale_record_in_line(
    dynamodb_local: Any, fields: int, version_field: str | None
) -> None:
    # The copy's guard (the target still as read) must fit one expression (4 KB, 300
    # operators): a field is one operator; with a version_field the version alone is the guard.
    from kvstore.copying import copy_records

    kind = unique_kind()
    source = create_store(kind, backend="memory", version_field=version_field)
    target = create_store(
        kind,
        backend="dynamo",
        client=local_client(dynamodb_local.endpoint),
        version_field=version_field,
    )
    source.ensure()
    target.ensure()
    target.driver.put_many([{"id": "a", **{f"f{i}": i for i in range(fields)}, "v": 1}])
    source.driver.put_many([{"id": "a", **{f"f{i}": -i for i in range(fields)}, "v": 2, "x": 1}])
    copy_records(source, target)
    assert target.find({"id": "a"}) == source.find({"id": "a"})


def test_stores_on_two_injected_clients_share_no_transaction(moto_client: Any) -> None:
    # Two clients may hold two accounts' credentials: one TransactWriteItems cannot span them.
    other_client = boto3.client("dynamodb", region_name=REGION)
    first, same, other = (
        create_store(unique_kind(), backend="dynamo", client=c)
        for c in (moto_client, moto_client, other_client)
    )
    for store in (first, same, other):
        store.ensure()
    with transaction() as tx:
        tx.put(first, {"id": "a"})
        tx.put(same, {"id": "b"})
    tx = Transaction()
    tx.put(first, {"id": "c"})
    with pytest.raises(InvalidArgument, match="one backend and configuration"):
        tx.put(other, {"id": "d"})
    assert (first.find_all(), same.find_all(), other.find_all()) == (
        [{"id": "a"}],
        [{"id": "b"}],
        [],
    )


def test_update_of_a_missing_key_is_not_found(client: Any) -> None:
    store = create_store(unique_kind(), backend="dynamo", client=client)
    store.ensure()
    with pytest.raises(NotFound):
        store.update({"id": "nobody", "v": 1})
    with pytest.raises(NotFound):
        store.update({"id": "nobody"})
    assert store.count() == 0  # UpdateItem's condition kept it from creating the record


def test_no_credentials_is_a_config_error(
    dynamodb_local: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    session = boto3.session.Session()
    store = create_store(
        unique_kind(), backend="dynamo", session=session, endpoint_url=dynamodb_local.endpoint
    )
    with pytest.raises(ConfigError, match="credentials"):
        store.find({"id": "a"})


def test_bad_endpoint_or_prefix_is_a_config_error() -> None:
    store = create_store(unique_kind(), backend="dynamo", endpoint_url="not a url", region=REGION)
    with pytest.raises(ConfigError, match="endpoint"):
        store.find({"id": "a"})
    with pytest.raises(ConfigError, match="prefix"):
        create_store(unique_kind(), backend="dynamo", table_prefix="bad prefix/")


def test_racing_ensures_all_succeed(client: Any) -> None:
    kind = unique_kind()
    errors: list[BaseException] = []

    def ensure() -> None:
        try:
            create_store(kind, backend="dynamo", client=client).ensure()
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=ensure) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    # (list_tables pages by 100: the session's DynamoDB Local holds many more tables)
    assert client.describe_table(TableName=kind)["Table"]["TableStatus"] == "ACTIVE"


def test_ensure_waits_until_the_table_is_active(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tables, "sleep", lambda seconds: None)
    creating = [2]

    def still_creating(parsed: dict[str, Any], **_: Any) -> None:
        if creating[0] > 0 and "Table" in parsed:
            creating[0] -= 1
            parsed["Table"]["TableStatus"] = "CREATING"

    client.meta.events.register("after-call.dynamodb.DescribeTable", still_creating)
    calls = Calls(client)
    create_store(unique_kind(), backend="dynamo", client=client).ensure()
    assert creating[0] == 0
    assert calls["CreateTable"] == 1
    assert calls["DescribeTable"] == 4  # missing, CREATING, CREATING, ACTIVE


def _chain(error: BaseException | None) -> str:
    text = ""
    while error is not None:
        text += f"{error!r} {error}\n"
        error = error.__cause__ or error.__context__
    return text


def test_no_error_or_repr_shows_the_secret_key() -> None:
    secret = "wJalrXUtnFEMI-K7MDENG-SECRETKEY"
    session = boto3.session.Session(
        region_name=REGION, aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key=secret
    )
    client = session.client(
        "dynamodb",
        endpoint_url=f"http://127.0.0.1:{_closed_port()}",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )
    store = create_store(unique_kind(), backend="dynamo", client=client)
    with pytest.raises(BackendUnavailable) as info:
        store.put({"id": "a"})
    assert secret not in _chain(info.value)
    with Stubber(client) as stub:
        stub.add_client_error("get_item", service_error_code="InvalidSignatureException")
        with pytest.raises(ConfigError) as refused:
            store.find({"id": "a"})
    assert secret not in _chain(refused.value)
    assert secret not in repr(store) + repr(store.native())
