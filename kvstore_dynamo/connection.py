"""The DynamoDB client the dynamo backend uses: from the options or the environment, made once.

Stores never make a client themselves: ``Connection.client()`` creates it on first use (so creating a
store does no I/O) and every store of the process with the same configuration shares it, as an
AWS Lambda container expects. Clients are thread-safe; sessions are not, hence the lock.

The client is botocore's (what ``boto3.client`` returns too): a cold start imports botocore only.
boto3 adds about 60 modules and 7,000 objects for its resource layer, which only ``native()``
uses, so it is imported there (or comes with a ``session=`` the caller made).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import Any

import botocore.session
from botocore.config import Config

from kvstore.config import dynamo_settings
from kvstore.errors import ConfigError

__all__ = ["CLIENT_CONFIG", "OPTIONS", "Connection", "connection_from_options"]

OPTIONS = frozenset({"client", "session", "table_prefix", "endpoint_url", "region"})
"""The options ``create_store(..., backend="dynamo", **options)`` accepts."""

CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    connect_timeout=5,
    read_timeout=30,
    max_pool_connections=20,
)
"""botocore retries throttling and transient errors itself (standard mode) before we see them."""

_DEFAULT_LOCAL_REGION = "us-east-1"
_PREFIX = re.compile(r"[A-Za-z0-9_.\-]{0,192}")  # + a kind of <= 63: DynamoDB allows 255

_lock = threading.Lock()
_clients: dict[tuple[Any, ...], Any] = {}


class Connection:
    """Where a store's table lives: the (lazily made, shared) client and the table-name prefix."""

    def __init__(
        self,
        *,
        client: Any = None,
        session: Any = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        table_prefix: str = "",
    ) -> None:
        self._client = client
        self._injected = client is not None
        self._session = session
        self.region = region
        self.endpoint_url = endpoint_url
        self.table_prefix = table_prefix
        self._resource: Any = None

    def resource(self) -> Any:
        """A boto3 DynamoDB service resource on the same endpoint, region and credentials.

        It has a client of its own: a resource registers its (de)serialising hooks on its client's
        events, which would turn the low-level client the stores use into a high-level one.
        """
        if self._resource is None:
            import boto3

            client = self.client()
            with _lock:
                session = self._session
                if session is None and self._injected:
                    session = _session_like(client)
                elif session is None:
                    session = boto3.session.Session()
                self._resource = session.resource(
                    "dynamodb",
                    region_name=client.meta.region_name,
                    endpoint_url=client.meta.endpoint_url,
                    config=client.meta.config,
                )
        return self._resource

    def client(self) -> Any:
        """The low-level DynamoDB client, created at first use and shared per configuration."""
        if self._client is None:
            key = (self._session, self.region, self.endpoint_url)
            with _lock:
                client = _clients.get(key)
                if client is None:
                    # A boto3 session's client(), else botocore's create_client() (same arguments).
                    make = (
                        self._session.client
                        if self._session is not None
                        else botocore.session.Session().create_client
                    )
                    try:
                        client = make(
                            "dynamodb",
                            region_name=self.region,
                            endpoint_url=self.endpoint_url,
                            config=CLIENT_CONFIG,
                        )
                    except ValueError as exc:  # botocore's "Invalid endpoint: ..."
                        raise ConfigError(f"cannot make a DynamoDB client: {exc}") from exc
                    _clients[key] = client
            self._client = client
        return self._client


def _session_like(client: Any) -> Any:
    """A session with an injected client's credentials, read from its signer (no public accessor).

    They are frozen: a resource made from it will not refresh expiring credentials (pass
    ``session=`` instead of ``client=`` for that).
    """
    import boto3

    credentials = getattr(getattr(client, "_request_signer", None), "_credentials", None)
    if credentials is None:
        return boto3.session.Session()
    frozen = credentials.get_frozen_credentials()
    return boto3.session.Session(
        aws_access_key_id=frozen.access_key,
        aws_secret_access_key=frozen.secret_key,
        aws_session_token=frozen.token,
    )


def _text(options: Mapping[str, Any], name: str) -> str | None:
    value = options.get(name)
    if value is not None and not isinstance(value, str):
        raise TypeError(f"dynamo option {name!r} must be a str, not {type(value).__name__}")
    return value


def connection_from_options(options: Mapping[str, Any]) -> Connection:
    """Check the store options (``TypeError`` for unknown ones) and merge them with the environment.

    Options: ``client`` (a boto3 DynamoDB low-level client, used as is), ``session`` (a
    ``boto3.session.Session`` to make the client from), ``region``, ``endpoint_url`` (override
    ``AWS_REGION``/``AWS_DEFAULT_REGION`` and ``AWS_ENDPOINT_URL_DYNAMODB``; with an endpoint and no
    region, ``us-east-1``, as DynamoDB Local does not care), ``table_prefix`` (overrides
    ``DYNAMO_TABLE_PREFIX``). ``client`` excludes ``session``, ``region`` and ``endpoint_url``.
    """
    unknown = set(options) - OPTIONS
    if unknown:
        raise TypeError(
            f"unknown dynamo option(s) {sorted(unknown)}; known: {', '.join(sorted(OPTIONS))}"
        )
    client = options.get("client")
    if client is not None and {"session", "region", "endpoint_url"} & set(options):
        raise TypeError("dynamo option 'client' excludes 'session', 'region' and 'endpoint_url'")
    if client is not None and not hasattr(client, "batch_write_item"):
        raise TypeError("dynamo option 'client' must be a boto3 DynamoDB client")
    settings = dynamo_settings()
    prefix = _text(options, "table_prefix")
    prefix = settings.table_prefix if prefix is None else prefix
    if not _PREFIX.fullmatch(prefix):
        raise ConfigError(
            f"DynamoDB table prefix {prefix!r}: at most 192 letters, digits, '_', '-' or '.'"
        )
    endpoint = _text(options, "endpoint_url") or settings.endpoint_url
    region = _text(options, "region") or settings.region
    if region is None and endpoint is not None:
        region = _DEFAULT_LOCAL_REGION
    return Connection(
        client=client,
        session=options.get("session"),
        region=region,
        endpoint_url=endpoint,
        table_prefix=prefix,
    )
