"""kvstore.config reads the environment exactly as CONTRACT.md's table says; secrets stay masked."""

from __future__ import annotations

import pytest

from kvstore import ConfigError
from kvstore.config import (
    Secret,
    backend_name,
    dynamo_settings,
    postgres_settings,
    sqlite_path,
)

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
    assert postgres_settings({}).port == 5432


def test_a_bad_port_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="DB_PORT"):
        postgres_settings(DB_VARS | {"DB_PORT": "eighty"})


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


def test_db_schema_names_the_schema() -> None:
    assert postgres_settings(DB_VARS | {"DB_SCHEMA": "tenant"}).schema == "tenant"
    assert postgres_settings({"DATABASE_URL": "postgresql://h/d", "DB_SCHEMA": "s"}).schema == "s"


def test_passwords_never_show_in_repr_str_or_describe() -> None:
    for env in (DB_VARS, {"DATABASE_URL": "postgresql://u:s3cret-db@h/d"}):
        settings = postgres_settings(env)
        for text in (repr(settings), str(settings), settings.describe(), f"{settings.password}"):
            assert "s3cret" not in text
        assert settings.conninfo()["password"] == "s3cret-db"


def test_secret_masks_and_reveals() -> None:
    secret = Secret("hunter2")
    assert "hunter2" not in repr(secret)
    assert "hunter2" not in str(secret)
    assert "hunter2" not in f"{secret}"
    assert "hunter2" not in "%s" % secret  # noqa: UP031 (old-style formatting must mask too)
    assert "hunter2" not in repr([secret])
    assert secret.reveal() == "hunter2"
    assert str(Secret("")) == ""


def test_backend_name_reads_store_backend() -> None:
    assert backend_name({"STORE_BACKEND": "dynamo"}) == "dynamo"
    assert backend_name({"STORE_BACKEND": ""}) is None
    assert backend_name({}) is None


def test_dynamo_settings_read_region_endpoint_and_prefix() -> None:
    env = {
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_DYNAMODB": "http://localhost:8000",
        "DYNAMO_TABLE_PREFIX": "svc-dev-",
    }
    assert dynamo_settings(env) == ("eu-west-1", "http://localhost:8000", "svc-dev-")
    assert dynamo_settings({"AWS_DEFAULT_REGION": "us-east-1"}).region == "us-east-1"
    assert dynamo_settings({}) == (None, None, "")


def test_sqlite_path_defaults_to_the_working_directory() -> None:
    assert sqlite_path({}) == "./kvstore.sqlite3"
    assert sqlite_path({"KVSTORE_SQLITE_PATH": "/tmp/x.db"}) == "/tmp/x.db"


def test_readers_default_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORE_BACKEND", "memory")
    monkeypatch.setenv("DB_HOST", "from-environ")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("SLS_STAGE", raising=False)
    assert backend_name() == "memory"
    assert postgres_settings().host == "from-environ"


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
