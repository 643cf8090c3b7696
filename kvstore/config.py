"""Settings read from the environment, as CONTRACT.md lists them; secrets never show in a repr.

Each reader takes the environment as a mapping (``os.environ`` by default) so tests and the CLI can
pass their own, and returns plain values; nothing here opens a connection.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

from kvstore.errors import ConfigError

__all__ = [
    "DynamoSettings",
    "PostgresSettings",
    "Secret",
    "backend_name",
    "dynamo_settings",
    "postgres_settings",
    "sqlite_path",
]


class Secret(str):
    """A string (a password) whose ``repr`` and ``str`` are masked; ``reveal()`` gives the value."""

    __slots__ = ()

    def reveal(self) -> str:
        """The secret itself, for handing to a driver."""
        return str.__str__(self)

    def __repr__(self) -> str:
        return "'***'" if self.reveal() else "''"

    def __str__(self) -> str:
        return "***" if self.reveal() else ""

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def backend_name(env: Mapping[str, str] | None = None) -> str | None:
    """The backend ``STORE_BACKEND`` names, or ``None`` when it is unset or empty."""
    return _env(env).get("STORE_BACKEND") or None


class PostgresSettings(NamedTuple):
    """Where and how the aurora backend connects; ``password`` is a ``Secret``."""

    host: str | None
    port: int
    dbname: str | None
    user: str | None
    password: Secret
    schema: str | None
    sslmode: str | None
    connect_timeout: float
    prepare: bool
    source: str
    """Which settings were used: ``DATABASE_URL``, ``DB_*`` or ``LOCAL_DB_*``."""

    def conninfo(self) -> dict[str, str | int]:
        """Keyword arguments for ``psycopg.connect`` (the only place the password is revealed)."""
        params: dict[str, str | int] = {"port": self.port}
        for name, value in (("host", self.host), ("dbname", self.dbname), ("user", self.user)):
            if value:
                params[name] = value
        if self.password:
            params["password"] = self.password.reveal()
        if self.sslmode:
            params["sslmode"] = self.sslmode
        params["connect_timeout"] = max(1, round(self.connect_timeout))
        return params

    def describe(self) -> str:
        """A one-line, password-free description for messages and logs."""
        return f"{self.user or ''}@{self.host or 'localhost'}:{self.port}/{self.dbname or ''}"

    @property
    def database(self) -> PostgresSettings:
        """These settings less what does not change the database reached (the schema, where the
        settings came from): the key of the process's per-database caches (connections, engines,
        table layouts)."""
        return self._replace(schema=None, source="")


DEFAULT_CONNECT_TIMEOUT = 15.0
"""Long enough for an Aurora Serverless v2 cluster to resume from zero capacity."""


def _port(value: str | None, variable: str) -> int:
    if not value:
        return 5432
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{variable} must be a port number, not {value!r}") from None


def postgres_settings(env: Mapping[str, str] | None = None) -> PostgresSettings:
    """Connection settings: ``DATABASE_URL``, else ``DB_*``, else with ``SLS_STAGE=local`` ``LOCAL_DB_*``."""
    env = _env(env)
    schema = env.get("DB_SCHEMA") or None
    sslmode = env.get("DB_SSLMODE") or None
    prepare = (env.get("DB_PREPARE") or "on").lower() not in ("off", "0", "false", "no")
    timeout_text = env.get("DB_CONNECT_TIMEOUT") or ""
    try:
        timeout = float(timeout_text) if timeout_text else DEFAULT_CONNECT_TIMEOUT
    except ValueError:
        raise ConfigError(f"DB_CONNECT_TIMEOUT must be seconds, not {timeout_text!r}") from None
    url = env.get("DATABASE_URL")
    if url:
        parts = urlsplit(url)
        if parts.scheme not in ("postgresql", "postgres"):
            raise ConfigError("DATABASE_URL must be a postgresql:// URL")
        try:
            port = parts.port or 5432
        except ValueError:
            raise ConfigError("DATABASE_URL has an invalid port") from None
        return PostgresSettings(
            host=unquote(parts.hostname) if parts.hostname else None,
            port=port,
            dbname=unquote(parts.path.lstrip("/")) or None,
            user=unquote(parts.username) if parts.username else None,
            password=Secret(unquote(parts.password or "")),
            schema=schema,
            sslmode=sslmode,
            connect_timeout=timeout,
            prepare=prepare,
            source="DATABASE_URL",
        )
    prefix = "LOCAL_DB_" if env.get("SLS_STAGE") == "local" else "DB_"
    return PostgresSettings(
        host=env.get(prefix + "HOST") or None,
        port=_port(env.get(prefix + "PORT"), prefix + "PORT"),
        dbname=env.get(prefix + "NAME") or None,
        user=env.get(prefix + "USER") or None,
        password=Secret(env.get(prefix + "PASSWD") or ""),
        schema=schema,
        sslmode=sslmode,
        connect_timeout=timeout,
        prepare=prepare,
        source=prefix + "*",
    )


class DynamoSettings(NamedTuple):
    """Where the dynamo backend's tables are: region, endpoint (None: AWS's), table-name prefix."""

    region: str | None
    endpoint_url: str | None
    table_prefix: str


def dynamo_settings(env: Mapping[str, str] | None = None) -> DynamoSettings:
    """DynamoDB settings from ``AWS_REGION``/``AWS_DEFAULT_REGION``, the endpoint and the prefix."""
    env = _env(env)
    return DynamoSettings(
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
        endpoint_url=env.get("AWS_ENDPOINT_URL_DYNAMODB") or None,
        table_prefix=env.get("DYNAMO_TABLE_PREFIX") or "",
    )


def sqlite_path(env: Mapping[str, str] | None = None) -> str:
    """The sqlite backend's file: ``KVSTORE_SQLITE_PATH``, default ``./kvstore.sqlite3``."""
    return _env(env).get("KVSTORE_SQLITE_PATH") or "./kvstore.sqlite3"
