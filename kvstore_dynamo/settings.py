"""The dynamo backend's settings: region, endpoint, table-name prefix and a call's time budget, from
the options or the environment (``AWS_REGION``/``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL_DYNAMODB``,
``DYNAMO_TABLE_PREFIX``, ``KVSTORE_TIMEOUT``), checked once; and ``describe`` for ``kvstore
backends``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from kvstore.config import call_timeout, environment
from kvstore.errors import ConfigError

__all__ = [
    "KVSTORE_RETRIES",
    "LOCAL_REGION",
    "RETRY_VARIABLES",
    "DynamoSettings",
    "Limits",
    "describe",
    "dynamo_settings",
    "resolve",
    "user_retry_variables",
]

LOCAL_REGION = "us-east-1"
"""The region used with an endpoint and no region (DynamoDB Local and moto ignore it)."""

KVSTORE_RETRIES: Mapping[str, Any] = {"mode": "standard", "total_max_attempts": 6}
"""kvstore's retries when botocore's own settings are unset: standard mode, at most 6 attempts
(the budget usually stops them first)."""
RETRY_VARIABLES = ("AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE")
"""botocore's variables that, when set, leave the retry mode and attempts to botocore."""

CONNECT_SHARE = 4
CONNECT_CAP = 1.0
READ_SHARE = 3
"""An attempt may connect for a quarter of the budget (at most ``CONNECT_CAP`` seconds: a TCP
and TLS handshake to DynamoDB takes milliseconds) and wait a third of it for each read, so that
two whole attempts and a backoff fit in the budget: one retry survives a silent connection."""


class Limits(NamedTuple):
    """A call's time budget and the client timeouts derived from it, in seconds."""

    budget: float
    connect_timeout: float
    read_timeout: float

    @classmethod
    def of(cls, budget: float) -> Limits:
        """The limits of a budget (see ``CONNECT_SHARE``)."""
        return cls(budget, min(CONNECT_CAP, budget / CONNECT_SHARE), budget / READ_SHARE)

    @property
    def attempt(self) -> float:
        """The longest one attempt may wait: connecting, then its answer."""
        return self.connect_timeout + self.read_timeout


_PREFIX_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_MAX_PREFIX = 192
"""A prefix plus a kind (at most 63) stays within DynamoDB's 255 characters of a table name."""


class DynamoSettings(NamedTuple):
    """Where the dynamo backend's tables are: region, endpoint (None: AWS's), table-name prefix;
    and ``timeout``, a call's time budget in seconds (``kvstore.config.call_timeout``)."""

    region: str | None
    endpoint_url: str | None
    table_prefix: str
    timeout: float

    @property
    def limits(self) -> Limits:
        """The client's timeouts and retry budget, derived from ``timeout``."""
        return Limits.of(self.timeout)


def dynamo_settings(env: Mapping[str, str] | None = None) -> DynamoSettings:
    """DynamoDB settings from ``AWS_REGION``/``AWS_DEFAULT_REGION``, the endpoint, the prefix and
    ``KVSTORE_TIMEOUT``."""
    return _settings(environment(env), None)


def _settings(env: Mapping[str, str], timeout: object) -> DynamoSettings:
    return DynamoSettings(
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
        endpoint_url=env.get("AWS_ENDPOINT_URL_DYNAMODB") or None,
        table_prefix=env.get("DYNAMO_TABLE_PREFIX") or "",
        timeout=call_timeout(env, timeout),  # the option, else KVSTORE_TIMEOUT
    )


def user_retry_variables(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """botocore's retry variables set in ``env`` (the process's by default)."""
    env = environment(env)
    return {name: env[name] for name in RETRY_VARIABLES if env.get(name)}


def _text(name: str, value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"the dynamo option {name} must be a str, not {type(value).__name__}")
    return value


def resolve(
    *,
    client: Any = None,
    session: Any = None,
    table_prefix: object = None,
    endpoint_url: object = None,
    region: object = None,
    timeout: object = None,
    env: Mapping[str, str] | None = None,
) -> DynamoSettings:
    """The options merged with the environment, checked: ``TypeError`` for an option of the wrong
    type or a ``client`` given with ``session``, ``region`` or ``endpoint_url``; ``ConfigError``
    for a table prefix DynamoDB cannot use or a bad ``KVSTORE_TIMEOUT``, ``InvalidArgument`` for
    a bad ``timeout``. With an endpoint and no region, ``us-east-1``."""
    if client is not None:
        if session is not None or region is not None or endpoint_url is not None:
            raise TypeError(
                "the dynamo option client excludes session, region and endpoint_url "
                "(the client already has them)"
            )
        if not hasattr(client, "batch_write_item") or not hasattr(client, "meta"):
            raise TypeError("the dynamo option client must be a boto3/botocore DynamoDB client")
    settings = _settings(environment(env), timeout)
    prefix = _text("table_prefix", table_prefix)
    prefix = settings.table_prefix if prefix is None else prefix
    if len(prefix) > _MAX_PREFIX or not _PREFIX_CHARACTERS.issuperset(prefix):
        raise ConfigError(
            f"DynamoDB table prefix {prefix!r}: at most {_MAX_PREFIX} letters, digits, '_', '-' "
            "or '.' (DYNAMO_TABLE_PREFIX or table_prefix=)"
        )
    endpoint = _text("endpoint_url", endpoint_url) or settings.endpoint_url
    chosen = _text("region", region) or settings.region
    if client is not None:
        endpoint, chosen = client.meta.endpoint_url, client.meta.region_name
    elif chosen is None and endpoint is not None:
        chosen = LOCAL_REGION
    return DynamoSettings(chosen, endpoint, prefix, settings.timeout)


def describe(
    *,
    client: Any = None,
    session: Any = None,
    table_prefix: str | None = None,
    endpoint_url: str | None = None,
    region: str | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """What ``kvstore backends`` shows: region, endpoint, table prefix, a call's time budget with
    the timeouts and retries it gives, and whether a client or session was given (never a
    credential); no I/O."""
    settings = resolve(
        client=client,
        session=session,
        table_prefix=table_prefix,
        endpoint_url=endpoint_url,
        region=region,
        timeout=timeout,
    )
    limits = settings.limits
    shown: dict[str, Any] = {
        "region": settings.region or "(from the AWS configuration)",
        "endpoint_url": settings.endpoint_url or "(AWS)",
        "table_prefix": settings.table_prefix,
        "timeout": settings.timeout,
    }
    if client is not None:
        shown["client"] = "given"
        shown["retries"] = "the given client's own (its timeouts and retries are used as they are)"
    else:
        shown["connect_timeout"] = round(limits.connect_timeout, 3)
        shown["read_timeout"] = round(limits.read_timeout, 3)
        shown["retries"] = _retries_shown()
    if session is not None:
        shown["session"] = "given"
    return shown


def _retries_shown() -> str:
    chosen = user_retry_variables()
    if chosen:
        given = ", ".join(f"{name}={value}" for name, value in chosen.items())
        return f"botocore's ({given}), within the time budget"
    return (
        f"{KVSTORE_RETRIES['mode']}, at most {KVSTORE_RETRIES['total_max_attempts']} attempts, "
        "within the time budget (unless the AWS config file's profile sets retry_mode or "
        "max_attempts: then botocore's)"
    )
