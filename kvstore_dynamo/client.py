"""The DynamoDB client the dynamo backend uses: from the options or the environment, made once.

Drivers never make a client themselves: ``Connection.client()`` creates it on first use (so opening
a store does no I/O) and every driver of the process with the same configuration shares it
(``kvstore.backend.shared``), as an AWS Lambda container expects. botocore clients are thread-safe.

The client is botocore's (what ``boto3.client`` returns too): a cold start imports botocore only.
boto3 adds about 60 modules and 7,000 objects for its resource layer, which only ``native()``
uses, so it is imported there (or comes with a ``session=`` the caller made).

Its timeouts come from a call's time budget (``kvstore_dynamo.settings.Limits``) and its retries
are bounded by it (``kvstore_dynamo.retries``); botocore's client-side parameter validation is off
(kvstore validates records and builds every request itself; DynamoDB still refuses a bad one). A
client given with ``client=`` is used as it is.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Hashable
from typing import Any

import botocore.session
from botocore.config import Config

from kvstore.backend import shared
from kvstore.errors import ConfigError
from kvstore_dynamo.retries import install, kvstore_retries
from kvstore_dynamo.settings import DynamoSettings, Limits

__all__ = ["MAX_POOL_CONNECTIONS", "Connection", "client_config", "client_key"]

MAX_POOL_CONNECTIONS = 20
"""HTTP connections a client keeps to DynamoDB (threads and write-behind batches share them)."""
CLIENT_VARIABLES = ("AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE", "AWS_PROFILE", "AWS_CONFIG_FILE")
"""Environment variables that change the client botocore makes (its retries, its profile)."""

_lock = threading.Lock()  # a boto3 session is not thread-safe: one client or resource at a time


class _Identity:
    """An object compared by identity, and kept alive as long as this is (so its ``id`` is
    never another's)."""

    __slots__ = ("_held",)

    def __init__(self, held: object) -> None:
        self._held = held

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Identity) and other._held is self._held

    def __hash__(self) -> int:
        return id(self._held)


class Connection:
    """Where a kind's table lives: the (lazily made, shared) client and the table-name prefix."""

    def __init__(
        self, settings: DynamoSettings, *, client: Any = None, session: Any = None
    ) -> None:
        self.settings = settings
        self._client = client
        self._injected = client is not None
        self._session = session
        self._resource: Any = None
        # An injected client or session is its own configuration: two of them may hold two
        # accounts' credentials, which one TransactWriteItems cannot span.
        injected = client if client is not None else session
        self._scope: Hashable = (
            ("dynamo", settings.endpoint_url, settings.region)
            if injected is None
            else ("dynamo", _Identity(injected))
        )

    @property
    def table_prefix(self) -> str:
        """The prefix of every table name."""
        return self.settings.table_prefix

    @property
    def scope(self) -> Hashable:
        """What drivers must share to write in one TransactWriteItems: the endpoint and region,
        or the injected client (or session) itself. Made once: a transaction asks for it at
        every operation."""
        return self._scope

    @property
    def limits(self) -> Limits:
        """A call's time budget and the timeouts derived from it."""
        return self.settings.limits

    def client(self) -> Any:
        """The low-level DynamoDB client, created at first use and shared per configuration."""
        client = self._client
        if client is None:
            key = client_key(self.settings, self._session)
            client = self._client = shared("dynamo.client", key, self._make)
        return client

    def _make(self) -> Any:
        # A boto3 session's client(), else botocore's create_client() (same arguments).
        with _lock:
            if self._session is not None:
                make = self._session.client
                core = getattr(self._session, "_session", None)  # boto3's botocore session
            else:
                core = botocore.session.Session()
                make = core.create_client
            limits = self.limits
            try:
                client = make(
                    "dynamodb",
                    region_name=self.settings.region,
                    endpoint_url=self.settings.endpoint_url,
                    config=client_config(limits, kvstore_retries(core)),
                )
            except ValueError as exc:  # botocore's "Invalid endpoint: ..."
                raise ConfigError(f"cannot make a DynamoDB client: {exc}") from exc
            install(client, limits, core)
            return client

    def resource(self) -> Any:
        """A boto3 DynamoDB service resource on the same endpoint, region and credentials.

        It has a client of its own: a resource registers its (de)serialising hooks on its client's
        events, which would turn the low-level client the drivers use into a high-level one.
        """
        if self._resource is None:
            try:
                import boto3
            except ImportError as exc:
                raise ConfigError(
                    "store.native() on DynamoDB returns a boto3 Table resource, and boto3 is "
                    "not installed: pip install 'kvstore[dynamo-native]'"
                ) from exc

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


def client_config(limits: Limits, retries: dict[str, Any] | None) -> Config:
    """The ``Config`` of a client kvstore makes: timeouts from ``limits``, and ``retries`` when
    given (``None``: botocore resolves them from its variables and config file)."""
    options: dict[str, Any] = {
        "connect_timeout": limits.connect_timeout,
        "read_timeout": limits.read_timeout,
        "max_pool_connections": MAX_POOL_CONNECTIONS,
        # kvstore checks its records and builds its own requests: botocore's walk of each
        # request against the service model checks nothing more (docs/PERFORMANCE.md).
        "parameter_validation": False,
    }
    if retries is not None:
        options["retries"] = retries
    return Config(**options)


def client_key(settings: DynamoSettings, session: Any = None) -> Hashable:
    """What a shared client is kept under: everything that changes the client made (the session,
    region, endpoint, time budget, and the variables botocore reads for retries and profile)."""
    variables = tuple(os.environ.get(name) for name in CLIENT_VARIABLES)
    return (session, settings.region, settings.endpoint_url, settings.timeout, variables)


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
