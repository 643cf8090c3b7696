"""The aurora backend reads its connection from the environment exactly as CONTRACT.md's table
says; the password stays masked."""

from __future__ import annotations

import pytest

from kvstore import ConfigError
from kvstore_aurora.settings import postgres_settings

DB_VARS = {
    "DB_HOST": "db.example",
    "DB_PORT": "6543",
    "DB_NAME": "app",
    "DB_USER": "appuser",
    "DB_PASSWD": "s3cret-db",
}
LOCAL_VARS = {
    "LOCAL_DB_HOST": "localhost",
    "LOCAL_DB_PORT": "5433",
    "LOCAL_DB_NAME": "localdb",
    "LOCAL_DB_USER": "me",
    "LOCAL_DB_PASSWD": "s3cret-local",
}


def test_db_variables_give_the_connection() -> None:
    settings = postgres_settings(DB_VARS)
    assert (settings.host, settings.port, settings.dbname, settings.user) == (
        "db.example",
        6543,
        "app",
        "appuser",
    )
    assert settings.password.reveal() == "s3cret-db"
    assert settings.schema is None


def test_db_port_defaults_to_5432() -> None:
    env = {k: v for k, v in DB_VARS.items() if k != "DB_PORT"}
    assert postgres_settings(env).port == 5432
    assert postgres_settings(env | {"DB_PORT": ""}).port == 5432
    assert postgres_settings({"DB_HOST": "h"}).port == 5432


@pytest.mark.parametrize("port", ["eighty", "0", "-1", "65536", "99999"])
def test_a_bad_port_is_a_config_error(port: str) -> None:
    with pytest.raises(ConfigError, match="DB_PORT"):
        postgres_settings(DB_VARS | {"DB_PORT": port})
    with pytest.raises(ConfigError, match="port"):
        postgres_settings({"DATABASE_URL": f"postgresql://u@h:{port}/db"})


def test_sls_stage_local_uses_the_local_db_variables() -> None:
    settings = postgres_settings(DB_VARS | LOCAL_VARS | {"SLS_STAGE": "local"})
    assert (settings.host, settings.port, settings.dbname, settings.user) == (
        "localhost",
        5433,
        "localdb",
        "me",
    )
    assert settings.password.reveal() == "s3cret-local"
    local_no_port = {k: v for k, v in LOCAL_VARS.items() if k != "LOCAL_DB_PORT"}
    assert postgres_settings(DB_VARS | local_no_port | {"SLS_STAGE": "local"}).port == 5432


@pytest.mark.parametrize("stage", ["dev", "prod", "LOCAL", ""])
def test_other_stages_use_the_db_variables(stage: str) -> None:
    settings = postgres_settings(DB_VARS | LOCAL_VARS | {"SLS_STAGE": stage})
    assert settings.host == "db.example"
    assert settings.password.reveal() == "s3cret-db"


@pytest.mark.parametrize("stage", ["local", "dev"])
def test_database_url_wins_over_the_variables(stage: str) -> None:
    url = "postgresql://u%40x:p%2Fw@urlhost:7000/urldb"
    env = DB_VARS | LOCAL_VARS | {"SLS_STAGE": stage, "DATABASE_URL": url}
    settings = postgres_settings(env)
    assert (settings.host, settings.port, settings.dbname, settings.user) == (
        "urlhost",
        7000,
        "urldb",
        "u@x",
    )
    assert settings.password.reveal() == "p/w"
    assert postgres_settings({"DATABASE_URL": "postgresql://h/db"}).port == 5432


def test_database_url_must_be_postgresql() -> None:
    with pytest.raises(ConfigError):
        postgres_settings({"DATABASE_URL": "mysql://h/db"})


def test_a_malformed_url_is_a_config_error_without_the_password() -> None:
    with pytest.raises(ConfigError, match="not a valid URL") as info:
        postgres_settings({"DATABASE_URL": "postgresql://u:s3cret-db@[::1/db"})
    assert "s3cret" not in str(info.value)


def test_db_schema_names_the_schema() -> None:
    assert postgres_settings(DB_VARS | {"DB_SCHEMA": "tenant"}).schema == "tenant"
    assert postgres_settings({"DATABASE_URL": "postgresql://h/d", "DB_SCHEMA": "s"}).schema == "s"


def test_passwords_never_show_in_repr_str_or_describe() -> None:
    for env in (DB_VARS, {"DATABASE_URL": "postgresql://u:s3cret-db@h/d"}):
        settings = postgres_settings(env)
        for text in (repr(settings), str(settings), settings.describe(), f"{settings.password}"):
            assert "s3cret" not in text
        assert settings.conninfo()["password"] == "s3cret-db"


def test_settings_reaching_one_database_share_their_database_key() -> None:
    url = "postgresql://app:pw@db.example:5433/orders"
    by_url = postgres_settings({"DATABASE_URL": url})
    by_vars = postgres_settings(
        {
            "DB_HOST": "db.example",
            "DB_PORT": "5433",
            "DB_NAME": "orders",
            "DB_USER": "app",
            "DB_PASSWD": "pw",
            "DB_SCHEMA": "sales",
        }
    )
    assert by_url.source != by_vars.source
    assert by_url.schema != by_vars.schema
    assert by_url.database == by_vars.database
    other = postgres_settings({"DATABASE_URL": "postgresql://app:pw@db.example:5433/billing"})
    assert other.database != by_url.database


def test_readers_default_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_HOST", "from-environ")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("SLS_STAGE", raising=False)
    assert postgres_settings().host == "from-environ"


# -- no settings at all -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({}, ["DATABASE_URL", "DB_HOST", "DB_SECRET_ARN", "dsn="]),
        (DB_VARS | {"SLS_STAGE": "local"}, ["LOCAL_DB_HOST", "LOCAL_DB_SECRET_ARN", "SLS_STAGE"]),
        ({k: v for k, v in DB_VARS.items() if k != "DB_HOST"}, ["DB_HOST"]),
    ],
    ids=["nothing", "local-stage-without-local-vars", "no-host"],
)
def test_no_connection_settings_is_a_config_error_naming_what_is_missing(
    env: dict[str, str], names: list[str]
) -> None:
    # libpq's defaults would connect through a Unix socket as the OS user: never silently.
    with pytest.raises(ConfigError) as info:
        postgres_settings(env)
    for name in names:
        assert name in str(info.value)
    assert "s3cret" not in str(info.value)


def test_a_store_with_no_settings_fails_at_create_store(monkeypatch: pytest.MonkeyPatch) -> None:
    from kvstore import create_store

    for name in ("DATABASE_URL", "DB_HOST", "DB_SECRET_ARN", "SLS_STAGE", "LOCAL_DB_HOST"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        create_store("teams", backend="aurora")
    monkeypatch.setenv("DB_SECRET_ARN", "arn:aws:secretsmanager:eu-west-1:1:secret:db")
    assert create_store("teams", backend="aurora").kind == "teams"  # no I/O yet


# -- DATABASE_URL's libpq parameters ---------------------------------------------------------------


def test_every_libpq_parameter_of_the_url_is_kept() -> None:
    url = (
        "postgresql://u:pw@h:6000/db?sslmode=verify-full&sslrootcert=/etc/rds.pem"
        "&options=-c%20search_path%3Dtenant&application_name=app&target_session_attrs=read-write"
        "&connect_timeout=4"
    )
    settings = postgres_settings({"DATABASE_URL": url, "DB_SSLMODE": "disable"})
    assert settings.sslmode == "verify-full"  # the URL's wins over DB_SSLMODE
    assert settings.connect_timeout == 4
    assert dict(settings.params) == {
        "sslrootcert": "/etc/rds.pem",
        "options": "-c search_path=tenant",
        "application_name": "app",
        "target_session_attrs": "read-write",
    }
    conninfo = settings.conninfo()
    assert conninfo["sslmode"] == "verify-full"
    assert conninfo["options"] == "-c search_path=tenant"
    assert conninfo["password"] == "pw"
    assert (
        postgres_settings({"DATABASE_URL": "postgresql://h/db", "DB_SSLMODE": "require"}).sslmode
        == "require"
    )


def test_a_bad_url_parameter_is_a_config_error_without_the_password() -> None:
    with pytest.raises(ConfigError, match="nonsense") as info:
        postgres_settings({"DATABASE_URL": "postgresql://u:s3cret-db@h/db?nonsense=1"})
    assert "s3cret" not in str(info.value)


# -- the time budget and the connection cap -----------------------------------------------------


def test_timeout_and_max_connections_have_defaults_and_read_the_environment() -> None:
    settings = postgres_settings(DB_VARS)
    assert (settings.timeout, settings.max_connections) == (10.0, 10)
    settings = postgres_settings(DB_VARS | {"KVSTORE_TIMEOUT": "2.5", "DB_MAX_CONNECTIONS": "3"})
    assert (settings.timeout, settings.max_connections) == (2.5, 3)
    local = postgres_settings(
        DB_VARS | LOCAL_VARS | {"SLS_STAGE": "local", "LOCAL_DB_MAX_CONNECTIONS": "2"}
    )
    assert local.max_connections == 2


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("KVSTORE_TIMEOUT", "0"),
        ("KVSTORE_TIMEOUT", "-1"),
        ("KVSTORE_TIMEOUT", "soon"),
        ("KVSTORE_TIMEOUT", "inf"),
        ("DB_MAX_CONNECTIONS", "0"),
        ("DB_MAX_CONNECTIONS", "2.5"),
        ("DB_CONNECT_TIMEOUT", "nan"),
        ("DB_IAM_AUTH", "maybe"),
    ],
)
def test_bad_values_are_config_errors_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        postgres_settings(DB_VARS | {name: value})


def test_the_options_override_the_environment_and_are_checked() -> None:
    from kvstore import InvalidArgument
    from kvstore_aurora.settings import resolve

    settings = postgres_settings(DB_VARS)
    found = resolve(settings=settings, timeout=1.5, max_connections=4)
    assert (found.timeout, found.max_connections) == (1.5, 4)
    # The command line's --backend aurora:timeout=2 hands the option over as text.
    assert resolve(settings=settings, timeout="2").timeout == 2.0
    for bad in ({"timeout": 0}, {"timeout": "soon"}, {"timeout": True}, {"max_connections": 0}):
        with pytest.raises(InvalidArgument):
            resolve(settings=settings, **bad)


# -- IAM auth and Secrets Manager ----------------------------------------------------------------


def test_iam_auth_requires_tls_and_what_signs_a_token() -> None:
    settings = postgres_settings(DB_VARS | {"DB_IAM_AUTH": "1", "AWS_REGION": "eu-west-1"})
    assert settings.iam_auth
    assert settings.sslmode == "require"  # unset: TLS required
    assert settings.region == "eu-west-1"
    stricter = postgres_settings(DB_VARS | {"DB_IAM_AUTH": "1", "DB_SSLMODE": "verify-full"})
    assert stricter.sslmode == "verify-full"
    prefer = postgres_settings(DB_VARS | {"DB_IAM_AUTH": "true", "DB_SSLMODE": "prefer"})
    assert prefer.sslmode == "require"
    with pytest.raises(ConfigError, match="TLS"):
        postgres_settings(DB_VARS | {"DB_IAM_AUTH": "1", "DB_SSLMODE": "disable"})
    with pytest.raises(ConfigError, match="DB_USER"):
        postgres_settings({"DB_HOST": "h", "DB_IAM_AUTH": "1"})
    assert not postgres_settings(DB_VARS | {"DB_IAM_AUTH": "0"}).iam_auth


def test_iam_auth_takes_the_region_of_an_rds_host_name() -> None:
    host = "app.cluster-c0ffee.eu-central-1.rds.amazonaws.com"
    settings = postgres_settings(DB_VARS | {"DB_HOST": host, "DB_IAM_AUTH": "1"})
    assert settings.region == "eu-central-1"


def test_a_secret_arn_is_enough_settings() -> None:
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf"
    settings = postgres_settings({"DB_SECRET_ARN": arn})
    assert settings.secret_arn == arn
    assert settings.host is None
    assert arn in settings.describe()


def test_describe_shows_the_new_settings_with_secrets_masked() -> None:
    from kvstore_aurora.settings import describe

    url = "postgresql://u:s3cret-db@h/db?sslpassword=s3cret-key&application_name=x"
    shown = describe(dsn=url, timeout=3, max_connections=2)
    assert shown["timeout"] == 3.0
    assert shown["max_connections"] == 2
    assert shown["params"] == {"sslpassword": "***", "application_name": "x"}
    assert shown["password"] == "***"
    assert "s3cret" not in repr(shown)
