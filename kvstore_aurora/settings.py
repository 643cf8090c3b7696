"""The aurora backend's settings: where and how it connects, read from the environment as the
README's configuration table says (``DATABASE_URL``, ``DB_*``, ``LOCAL_DB_*``, ``KVSTORE_TIMEOUT``);
the password is a ``Secret``.

Every libpq parameter of a ``DATABASE_URL`` (or ``dsn=``) reaches libpq: the URL is parsed by
libpq itself, so ``?sslmode=verify-full&sslrootcert=...`` or ``?options=-c ...`` mean what they
mean to ``psql``. With no connection settings at all, ``ConfigError`` names what is missing (libpq's
own defaults would silently connect through a Unix socket as the OS user).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from kvstore.config import DEFAULT_TIMEOUT, Secret, call_timeout, environment
from kvstore.errors import ConfigError, InvalidArgument

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_TIMEOUT",
    "PostgresSettings",
    "describe",
    "postgres_settings",
    "resolve",
]

DEFAULT_CONNECT_TIMEOUT = 15.0
"""Long enough for an Aurora Serverless v2 cluster to resume from zero capacity (a call's time
budget, ``KVSTORE_TIMEOUT``, bounds it too)."""
DEFAULT_MAX_CONNECTIONS = 10
"""Server connections a process opens at most per configuration (``DB_MAX_CONNECTIONS``)."""

_TLS_REQUIRED = ("require", "verify-ca", "verify-full")
_MASKED_PARAMS = ("sslpassword",)
"""libpq parameters ``describe`` masks besides the password."""
_TRUE = ("1", "true", "on", "yes")
_FALSE = ("", "0", "false", "off", "no")


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
    params: tuple[tuple[str, str], ...] = ()
    """Every other libpq parameter of the URL (``options``, ``sslrootcert``, ...), as given."""
    timeout: float = DEFAULT_TIMEOUT
    """A call's time budget in seconds (``KVSTORE_TIMEOUT``, option ``timeout=``)."""
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    """Server connections per process at most (``DB_MAX_CONNECTIONS``, ``max_connections=``)."""
    iam_auth: bool = False
    """Log in with RDS IAM auth tokens (``DB_IAM_AUTH``) instead of a password."""
    secret_arn: str | None = None
    """A Secrets Manager secret in RDS's JSON format holding the login (``DB_SECRET_ARN``)."""
    region: str | None = None
    """The AWS region that signs IAM auth tokens (``AWS_REGION``/``AWS_DEFAULT_REGION``, else the
    one in an RDS host name)."""

    def conninfo(self) -> dict[str, str | int]:
        """Keyword arguments for ``psycopg.connect`` (the only place the password is revealed):
        the settings, then the URL's other libpq parameters."""
        params: dict[str, str | int] = {"port": self.port}
        for name, value in (("host", self.host), ("dbname", self.dbname), ("user", self.user)):
            if value:
                params[name] = value
        if self.password:
            params["password"] = self.password.reveal()
        if self.sslmode:
            params["sslmode"] = self.sslmode
        params["connect_timeout"] = max(2, math.ceil(self.connect_timeout))
        params.update(self.params)
        return params

    def describe(self) -> str:
        """A one-line, password-free description for messages and logs."""
        if self.secret_arn and not self.host:
            return f"the database of secret {self.secret_arn}"
        return f"{self.user or ''}@{self.host or 'localhost'}:{self.port}/{self.dbname or ''}"

    @property
    def database(self) -> PostgresSettings:
        """These settings less what does not change the database reached or how (the schema,
        where the settings came from): the key of the process's per-database caches
        (connections, engines, table layouts)."""
        return self._replace(schema=None, source="")


def _port(value: str | None, variable: str) -> int:
    if not value:
        return 5432
    try:
        port = int(value)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise ConfigError(f"{variable} must be a port number (1 to 65535), not {value!r}")
    return port


def _seconds(text: str, variable: str, default: float) -> float:
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{variable} must be a positive number of seconds, not {text!r}")
    return value


def _count(text: str, variable: str, default: int) -> int:
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"{variable} must be a whole number of at least 1, not {text!r}")
    return value


def _flag(text: str, variable: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"{variable} must be 1 or 0 (true/false, on/off), not {text!r}")


def _region(env: Mapping[str, str], host: str | None) -> str | None:
    """The region of IAM auth tokens: the environment's, else the one an RDS host name carries
    (``name.cluster-xyz.eu-west-1.rds.amazonaws.com``)."""
    found = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if found:
        return found
    parts = (host or "").lower().split(".")
    for at in range(1, len(parts) - 1):
        if parts[at] == "rds" and parts[at + 1] == "amazonaws":
            return parts[at - 1]
    return None


def _parse_url(url: str) -> dict[str, str]:
    """Every libpq parameter of ``url``, parsed by libpq (``ConfigError`` for a bad one; the
    message never holds the URL's password)."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # "Invalid IPv6 URL" and the like
        raise ConfigError(f"DATABASE_URL is not a valid URL: {exc}") from None
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigError("DATABASE_URL must be a postgresql:// URL")
    try:
        from psycopg import conninfo
    except ModuleNotFoundError:  # pragma: no cover: the driver imports psycopg first
        raise ConfigError(
            "the aurora backend needs psycopg: pip install 'kvstore[aurora]'"
        ) from None
    import psycopg

    try:
        parsed = conninfo.conninfo_to_dict(url)
    except psycopg.Error as exc:
        text = " ".join(str(exc).split())
        password = parts.password
        if password:
            text = text.replace(password, "***")
        raise ConfigError(f"DATABASE_URL is not a valid libpq URL: {text}") from None
    return {name: str(value) for name, value in parsed.items() if value is not None}


def _url_settings(url: str) -> dict[str, Any]:
    params = _parse_url(url)
    port_text = params.pop("port", "")
    if "," in port_text:  # several hosts: libpq takes the list as is
        params["port"] = port_text
        port = 5432
    else:
        port = _port(port_text, "DATABASE_URL's port")
    found: dict[str, Any] = {
        "host": params.pop("host", None) or None,
        "port": port,
        "dbname": params.pop("dbname", None) or None,
        "user": params.pop("user", None) or None,
        "password": Secret(params.pop("password", "")),
        "source": "DATABASE_URL",
    }
    if "sslmode" in params:  # the URL's wins over DB_SSLMODE
        found["sslmode"] = params.pop("sslmode") or None
    if "connect_timeout" in params:
        found["connect_timeout"] = _seconds(
            params.pop("connect_timeout"), "DATABASE_URL's connect_timeout", DEFAULT_CONNECT_TIMEOUT
        )
    found["params"] = tuple(sorted(params.items()))
    return found


def postgres_settings(env: Mapping[str, str] | None = None) -> PostgresSettings:
    """Connection settings: ``DATABASE_URL``, else ``DB_*``, else with ``SLS_STAGE=local``
    ``LOCAL_DB_*``; ``ConfigError`` when none of them says where to connect."""
    env = environment(env)
    prefix = "LOCAL_DB_" if env.get("SLS_STAGE") == "local" else "DB_"
    found: dict[str, Any] = {
        "schema": env.get("DB_SCHEMA") or None,
        "sslmode": env.get("DB_SSLMODE") or None,
        "prepare": _flag(env.get("DB_PREPARE") or "on", "DB_PREPARE"),
        "connect_timeout": _seconds(
            env.get("DB_CONNECT_TIMEOUT") or "", "DB_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT
        ),
        "timeout": call_timeout(env),
        "max_connections": _count(
            env.get(prefix + "MAX_CONNECTIONS") or "",
            prefix + "MAX_CONNECTIONS",
            DEFAULT_MAX_CONNECTIONS,
        ),
        "iam_auth": _flag(env.get(prefix + "IAM_AUTH") or "", prefix + "IAM_AUTH"),
        "secret_arn": env.get(prefix + "SECRET_ARN") or None,
    }
    url = env.get("DATABASE_URL")
    if url:
        found.update(_url_settings(url))
    else:
        found.update(
            host=env.get(prefix + "HOST") or None,
            port=_port(env.get(prefix + "PORT"), prefix + "PORT"),
            dbname=env.get(prefix + "NAME") or None,
            user=env.get(prefix + "USER") or None,
            password=Secret(env.get(prefix + "PASSWD") or ""),
            source=prefix + "*",
        )
        if found["host"] is None and found["secret_arn"] is None:
            raise ConfigError(_nothing_set(prefix))
    if found["iam_auth"]:
        found["region"] = _region(env, found["host"])
    return checked(PostgresSettings(**found))


def _nothing_set(prefix: str) -> str:
    local = " (SLS_STAGE=local reads LOCAL_DB_*, not DB_*)" if prefix == "LOCAL_DB_" else ""
    return (
        "the aurora backend has no PostgreSQL connection settings: set DATABASE_URL "
        f"(postgresql://user:password@host:5432/dbname), or {prefix}HOST with {prefix}NAME, "
        f"{prefix}USER and {prefix}PASSWD, or {prefix}SECRET_ARN{local}; or give create_store "
        "dsn=, settings= or connection="
    )


def checked(settings: PostgresSettings) -> PostgresSettings:
    """``settings`` as a connection uses them: with IAM auth, TLS required (``sslmode`` at least
    ``require``) and what signs a token present; ``ConfigError`` otherwise. No I/O."""
    if not settings.iam_auth:
        return settings
    sslmode = settings.sslmode
    if sslmode == "disable":
        raise ConfigError(
            "DB_IAM_AUTH needs TLS (RDS refuses an IAM login without it): sslmode=disable "
            "cannot be used with it"
        )
    if sslmode not in _TLS_REQUIRED:  # unset, prefer or allow: TLS is not optional
        settings = settings._replace(sslmode="require")
    if settings.secret_arn is None:
        missing = [
            name
            for name, value in (
                ("a host (DB_HOST)", settings.host),
                ("a user (DB_USER)", settings.user),
            )
            if not value
        ]
        if missing:
            raise ConfigError(f"DB_IAM_AUTH signs a token for {' and '.join(missing)}: set it")
    return settings


def _option_count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgument(
            f"the aurora option max_connections is a whole number of at least 1, not {value!r:.40}"
        )
    return value


def resolve(
    *,
    dsn: object = None,
    settings: object = None,
    timeout: object = None,
    max_connections: object = None,
    required: bool = True,
) -> PostgresSettings:
    """The settings a store opened with these options uses: ``settings`` as given, else the
    environment's with ``dsn`` (a ``postgresql://`` URL) in place of ``DATABASE_URL``; then the
    ``timeout`` and ``max_connections`` options, when given.

    ``TypeError`` for a ``settings`` that is not a ``PostgresSettings`` or a ``dsn`` not a str;
    ``InvalidArgument`` for a bad ``timeout`` or ``max_connections``. ``required=False`` (an
    injected connection) gives empty settings instead of ``ConfigError`` when none are set.
    """
    if settings is not None:
        if not isinstance(settings, PostgresSettings):
            raise TypeError(
                "the aurora option settings must be a kvstore_aurora.settings.PostgresSettings"
            )
        found = checked(settings)
    elif dsn is None:
        try:
            found = postgres_settings()
        except ConfigError:
            if required:
                raise
            found = PostgresSettings(
                None, 5432, None, None, Secret(""), None, None, DEFAULT_CONNECT_TIMEOUT, True, ""
            )
    elif not isinstance(dsn, str):
        raise TypeError(f"the aurora option dsn must be a str, not {type(dsn).__name__}")
    else:
        found = postgres_settings({**os.environ, "DATABASE_URL": dsn})
    if timeout is not None:
        found = found._replace(timeout=call_timeout(value=timeout))
    if max_connections is not None:
        found = found._replace(max_connections=_option_count(max_connections))
    return found


def describe(
    *,
    dsn: object = None,
    settings: object = None,
    schema: object = None,
    connection: object = None,
    timeout: object = None,
    max_connections: object = None,
) -> dict[str, Any]:
    """What ``kvstore backends`` shows for a store with these options: where and how it connects,
    the password masked (``***``, or empty when there is none); no I/O."""
    found = resolve(
        dsn=dsn,
        settings=settings,
        timeout=timeout,
        max_connections=max_connections,
        required=connection is None,
    )
    shown: dict[str, Any] = found._asdict()
    shown["password"] = str(found.password)  # Secret's str is masked
    shown["params"] = {
        name: "***" if name in _MASKED_PARAMS else value for name, value in found.params
    }
    if schema is not None:
        shown["schema"] = schema
    if connection is not None:
        shown["connection"] = "injected"
    return shown
