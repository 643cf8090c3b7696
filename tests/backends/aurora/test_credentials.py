"""Lambda credentials: a login from a Secrets Manager secret (moto, then the local server) and RDS
IAM auth tokens (signed by botocore offline, checked for what they are made for and renewed
by an injected clock); botocore missing is a ConfigError naming the extra."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from moto import mock_aws

from kvstore import ConfigError, create_store
from kvstore.testing import unique_kind
from kvstore_aurora import credentials
from kvstore_aurora.budget import KvConnection
from kvstore_aurora.credentials import TOKEN_RENEW_AFTER, IamTokens
from kvstore_aurora.settings import PostgresSettings, postgres_settings

REGION = "us-east-1"


@pytest.fixture(autouse=True)
def _aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake AWS credentials (never a real account), no profile or endpoint of the shell's."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "AWS_MAX_ATTEMPTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAKVSTORETEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "kvstore-test-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name in ("DATABASE_URL", "DB_HOST", "DB_USER", "DB_NAME", "DB_PORT", "SLS_STAGE"):
        monkeypatch.delenv(name, raising=False)


# -- Secrets Manager --------------------------------------------------------------------------


@pytest.fixture
def secrets() -> Iterator[Any]:
    """A moto Secrets Manager client."""
    import botocore.session

    with mock_aws():
        yield botocore.session.get_session().create_client("secretsmanager", region_name=REGION)


def _secret(client: Any, settings: PostgresSettings, **fields: Any) -> str:
    value = {
        "engine": "postgres",
        "host": settings.host,
        "port": settings.port,
        "username": settings.user,
        "password": "from-the-secret-1234",
        "dbname": settings.dbname,
        **fields,
    }
    name = f"kvstore-{uuid.uuid4().hex[:8]}"
    arn: str = client.create_secret(Name=name, SecretString=json.dumps(value))["ARN"]
    return arn


def test_a_secret_alone_says_where_and_as_whom_to_connect(
    secrets: Any, pg_settings: PostgresSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    arn = _secret(secrets, pg_settings)
    monkeypatch.setenv("DB_SECRET_ARN", arn)
    used: list[dict[str, Any]] = []
    real = KvConnection.connect.__func__  # type: ignore[attr-defined]

    def connect(cls: type[KvConnection], /, conninfo: str, **options: Any) -> KvConnection:
        from psycopg.conninfo import conninfo_to_dict

        used.append(conninfo_to_dict(conninfo))
        connection: KvConnection = real(cls, conninfo, **options)
        return connection

    monkeypatch.setattr(KvConnection, "connect", classmethod(connect))
    store = create_store(unique_kind("secret"), backend="aurora")
    store.ensure()
    store.put({"id": "a"})
    assert store.find({"id": "a"}) == {"id": "a"}
    assert len(used) == 1
    login = used[0]
    assert (login["host"], login["port"], login["dbname"], login["user"]) == (
        pg_settings.host,
        str(pg_settings.port),
        pg_settings.dbname,
        pg_settings.user,
    )
    assert login["password"] == "from-the-secret-1234"
    assert "from-the-secret" not in repr(store) + repr(store.driver)  # type: ignore[attr-defined]


def test_the_settings_host_wins_over_the_secrets_for_a_proxy_endpoint(
    secrets: Any, pg_settings: PostgresSettings
) -> None:
    arn = _secret(secrets, pg_settings, host="cluster.invalid", port=1)
    settings = postgres_settings({"DB_SECRET_ARN": arn, "DB_HOST": "proxy.example"})
    login = credentials.login(settings)
    assert (login.host, login.port, login.user, login.dbname) == (
        "proxy.example",
        5432,
        pg_settings.user,
        pg_settings.dbname,
    )
    assert login.password.reveal() == "from-the-secret-1234"
    assert "from-the-secret" not in repr(login)


def test_a_refused_login_reads_the_secret_again_once(
    secrets: Any, pg_settings: PostgresSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The process read the secret before it was rotated: its user is gone from the server.
    arn = _secret(secrets, pg_settings, username="kvstore_rotated_away")
    settings = postgres_settings({"DB_SECRET_ARN": arn})
    assert credentials.login(settings).user == "kvstore_rotated_away"  # read and kept
    secrets.put_secret_value(
        SecretId=arn,
        SecretString=json.dumps(
            {
                "host": pg_settings.host,
                "port": pg_settings.port,
                "username": pg_settings.user,
                "password": "rotated-5678",
                "dbname": pg_settings.dbname,
            }
        ),
    )
    store = create_store(unique_kind("rotated"), backend="aurora", settings=settings)
    store.ensure()  # refused with the kept login, then connected with the secret read again
    assert store.count() == 0
    assert credentials.login(settings).password.reveal() == "rotated-5678"


def test_a_login_refused_with_the_secret_read_again_is_a_config_error(
    secrets: Any, pg_settings: PostgresSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    arn = _secret(secrets, pg_settings, username="kvstore_nobody_at_all")
    reads: list[str] = []
    real = credentials.SecretLogins.read

    def read(self: credentials.SecretLogins, *, renew: bool = False) -> dict[str, Any]:
        reads.append("renew" if renew else "kept")
        return real(self, renew=renew)

    monkeypatch.setattr(credentials.SecretLogins, "read", read)
    store = create_store(
        "teams", backend="aurora", settings=postgres_settings({"DB_SECRET_ARN": arn})
    )
    with pytest.raises(ConfigError, match="kvstore_nobody_at_all") as info:
        store.count()
    assert reads == ["kept", "renew"]  # read again once, not in a loop
    assert "from-the-secret" not in str(info.value)


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("not json", "JSON"),
        (json.dumps({"host": "h", "password": "p"}), "username"),
        (json.dumps(["a"]), "JSON"),
    ],
)
def test_a_secret_not_in_rds_format_is_a_config_error(secrets: Any, value: str, error: str) -> None:
    arn = secrets.create_secret(Name=f"bad-{uuid.uuid4().hex[:8]}", SecretString=value)["ARN"]
    with pytest.raises(ConfigError, match=error):
        credentials.login(postgres_settings({"DB_SECRET_ARN": arn}))


def test_a_missing_secret_is_a_config_error(secrets: Any) -> None:
    arn = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:kvstore-none-{uuid.uuid4().hex}"
    with pytest.raises(ConfigError, match="ResourceNotFound"):
        credentials.login(postgres_settings({"DB_SECRET_ARN": arn}))


# -- IAM auth tokens --------------------------------------------------------------------------


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class CountingRds:
    """botocore's RDS client (its signer works offline), counting the tokens it signs."""

    def __init__(self) -> None:
        import botocore.session

        self.client: Any = botocore.session.get_session().create_client("rds", region_name=REGION)
        self.signed: list[dict[str, Any]] = []

    def generate_db_auth_token(self, **arguments: Any) -> str:
        self.signed.append(arguments)
        token: str = self.client.generate_db_auth_token(**arguments)
        return token


def _token_parts(token: str) -> tuple[str, dict[str, list[str]]]:
    parts = urlsplit("https://" + token)
    return parts.netloc, parse_qs(parts.query)


def test_an_iam_token_is_signed_for_the_host_port_user_and_region() -> None:
    rds = CountingRds()
    tokens = IamTokens("eu-west-3", clock=Clock(), client=rds)
    token = tokens.token("db.example", 6543, "app_user")
    where, query = _token_parts(token.reveal())
    assert where == "db.example:6543"
    assert query["Action"] == ["connect"]
    assert query["DBUser"] == ["app_user"]
    assert query["X-Amz-Credential"][0].split("/")[2:4] == ["eu-west-3", "rds-db"]
    assert rds.signed == [
        {"DBHostname": "db.example", "Port": 6543, "DBUsername": "app_user", "Region": "eu-west-3"}
    ]
    assert token.reveal() not in repr(token) + str(token) + repr(tokens)


def test_an_iam_token_is_kept_then_renewed_well_before_it_runs_out() -> None:
    clock, rds = Clock(), CountingRds()
    tokens = IamTokens(REGION, clock=clock, client=rds)
    first = tokens.token("h", 5432, "u")
    clock.now += TOKEN_RENEW_AFTER - 1
    assert tokens.token("h", 5432, "u") is first
    assert len(rds.signed) == 1
    clock.now += 2  # past TOKEN_RENEW_AFTER, long before RDS's 15 minutes
    assert TOKEN_RENEW_AFTER <= 15 * 60 - 4 * 60
    tokens.token("h", 5432, "u")
    assert len(rds.signed) == 2
    tokens.token("h", 5432, "u", renew=True)  # after a refused login
    assert len(rds.signed) == 3
    tokens.token("h", 5432, "other")  # another user: a token of its own
    assert len(rds.signed) == 4


def test_an_iam_store_logs_in_with_a_token_as_its_password_over_tls(
    pg_settings: PostgresSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DB_IAM_AUTH", "1")
    monkeypatch.setenv("DB_HOST", pg_settings.host or "127.0.0.1")
    monkeypatch.setenv("DB_PORT", str(pg_settings.port))
    monkeypatch.setenv("DB_NAME", pg_settings.dbname or "")
    monkeypatch.setenv("DB_USER", pg_settings.user or "")
    monkeypatch.setenv("DB_PASSWD", "never-used-1234")
    rds = CountingRds()
    monkeypatch.setattr(credentials, "_iam_tokens", lambda region: IamTokens(region, client=rds))
    used: list[dict[str, Any]] = []
    real = KvConnection.connect.__func__  # type: ignore[attr-defined]

    def connect(cls: type[KvConnection], /, conninfo: str, **options: Any) -> KvConnection:
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        used.append(conninfo_to_dict(conninfo))
        # The local server has no TLS: connect without it, to see the token accepted (trust).
        connection: KvConnection = real(cls, make_conninfo(conninfo, sslmode="disable"), **options)
        return connection

    monkeypatch.setattr(KvConnection, "connect", classmethod(connect))
    store = create_store(unique_kind("iam"), backend="aurora")
    store.ensure()
    assert store.count() == 0
    login = used[0]
    assert login["sslmode"] == "require"
    assert login["user"] == pg_settings.user
    where, query = _token_parts(login["password"])
    assert where == f"{pg_settings.host}:{pg_settings.port}"
    assert query["DBUser"] == [pg_settings.user]
    assert rds.signed[0]["Region"] == REGION


def test_an_iam_store_refuses_a_server_without_tls(
    pg_settings: PostgresSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = pg_settings._replace(iam_auth=True, sslmode=None, region=REGION)
    store = create_store(unique_kind("iam"), backend="aurora", settings=settings)
    with pytest.raises(ConfigError, match="SSL") as info:
        store.count()
    assert "X-Amz-Signature" not in str(info.value)


# -- a missing extra ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "env",
    [
        {"DB_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:1:secret:kvstore-missing-botocore"},
        {"DB_IAM_AUTH": "1", "DB_HOST": "h.example", "DB_USER": "u", "AWS_REGION": "eu-west-1"},
    ],
    ids=["secret", "iam"],
)
def test_without_botocore_credentials_are_a_config_error_naming_the_extra(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [m for m in sys.modules if m == "botocore" or m.startswith("botocore.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setattr(credentials, "_iam_tokens", lambda region: IamTokens(region))
    settings = postgres_settings(env)
    with pytest.raises(ConfigError, match=r"pip install 'kvstore\[aurora-iam\]'"):
        credentials.login(settings)
    store = create_store("teams", backend="aurora", settings=settings)  # no I/O, no botocore
    with pytest.raises(ConfigError, match=r"kvstore\[aurora-iam\]"):
        store.count()
