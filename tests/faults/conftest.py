"""Fixtures of the fault suite: a clean environment, fault proxies, and stores behind them.

Stores are made through the public API only (``create_store`` with ``dsn=`` or ``endpoint_url=``),
each on a kind of its own whose table is created first on a direct, unproxied store, so the faults a
test injects hit only the calls it makes through the proxy.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import quote, urlencode, urlsplit

import pytest

from kvstore import Store, create_store
from tests.faults.proxy import FaultProxy

if TYPE_CHECKING:
    from kvstore.testing._servers.dynamodb_local import DynamoDBLocal

REGION = "us-east-1"

_SETTINGS = (
    "STORE_BACKEND",
    "DATABASE_URL",
    "SLS_STAGE",
    "KVSTORE_SQLITE_PATH",
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_MAX_ATTEMPTS",
    "AWS_RETRY_MODE",
    "AWS_SESSION_TOKEN",
    "DYNAMO_TABLE_PREFIX",
)
"""Variables that would change what a fault test sees; every ``DB_*``, ``LOCAL_DB_*`` and
``KVSTORE_*`` variable is cleared too (the knobs README.md proposes among them)."""


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No setting of the developer's shell reaches a fault test; fake AWS credentials."""
    for name in list(os.environ):
        if name in _SETTINGS or name.startswith(("DB_", "LOCAL_DB_", "KVSTORE_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "kvstore")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "kvstore-test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


def new_kind(prefix: str = "f") -> str:
    """A kind name no other test uses."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def proxies() -> Iterator[Callable[[str, int], FaultProxy]]:
    """Make ``FaultProxy`` objects to ``(host, port)``; all are closed when the test ends."""
    made: list[FaultProxy] = []

    def make(host: str, port: int) -> FaultProxy:
        proxy = FaultProxy((host, port))
        made.append(proxy)
        return proxy

    yield make
    for proxy in made:
        proxy.close()


# -- PostgreSQL ----------------------------------------------------------------------------------


class PgServer(NamedTuple):
    """The test PostgreSQL server (TCP) and the fault suite's own database on it."""

    host: str
    port: int
    dbname: str

    def dsn(self, port: int | None = None, params: Mapping[str, str] | None = None) -> str:
        """A ``postgresql://`` URL to the database, on ``port`` (a proxy's) when given, with
        ``params`` (libpq parameters) as its query."""
        query = f"?{urlencode(params, quote_via=quote)}" if params else ""
        return f"postgresql://postgres@{self.host}:{port or self.port}/{self.dbname}{query}"


@pytest.fixture(scope="session")
def pg() -> Iterator[PgServer]:
    """A fresh database for this run on the test server (dropped at the end)."""
    from kvstore.testing._servers.postgres import tcp_database

    with tcp_database("kvstore_faults_", "the fault tests") as database:
        yield PgServer(database.host, database.port, database.name)


@pytest.fixture
def pg_proxy(pg: PgServer, proxies: Callable[[str, int], FaultProxy]) -> FaultProxy:
    """A fault proxy in front of the test PostgreSQL server."""
    return proxies(pg.host, pg.port)


AuroraFactory = Callable[..., Store]


@pytest.fixture
def aurora(pg: PgServer) -> AuroraFactory:
    """``aurora(proxy=None, kind=None, **options)``: an aurora store on a kind whose table exists,
    reached through ``proxy`` when given (else directly)."""

    def make(proxy: FaultProxy | None = None, kind: str | None = None, **options: Any) -> Store:
        kind = kind or new_kind("a")
        create_store(kind, backend="aurora", dsn=pg.dsn()).ensure()
        port = proxy.port if proxy is not None else None
        return create_store(kind, backend="aurora", dsn=pg.dsn(port), **options)

    return make


# -- DynamoDB Local --------------------------------------------------------------------------------


@pytest.fixture
def dynamo_proxy(
    dynamodb_local: DynamoDBLocal, proxies: Callable[[str, int], FaultProxy]
) -> FaultProxy:
    """A fault proxy in front of DynamoDB Local."""
    parts = urlsplit(dynamodb_local.endpoint)
    assert parts.hostname is not None
    return proxies(parts.hostname, parts.port or 80)


DynamoFactory = Callable[..., Store]


@pytest.fixture
def dynamo(dynamodb_local: DynamoDBLocal) -> DynamoFactory:
    """``dynamo(proxy=None, kind=None, **options)``: a dynamo store on DynamoDB Local whose table
    exists, reached through ``proxy`` when given (else directly)."""

    def make(proxy: FaultProxy | None = None, kind: str | None = None, **options: Any) -> Store:
        kind = kind or new_kind("d")
        create_store(
            kind, backend="dynamo", endpoint_url=dynamodb_local.endpoint, region=REGION
        ).ensure()
        endpoint = (
            f"http://127.0.0.1:{proxy.port}" if proxy is not None else dynamodb_local.endpoint
        )
        return create_store(kind, backend="dynamo", endpoint_url=endpoint, region=REGION, **options)

    return make


# -- either backend behind a proxy -------------------------------------------------------------------


class Faulty(NamedTuple):
    """A store reached through a fault proxy, the proxy, and a direct store of the same kind."""

    store: Store
    proxy: FaultProxy
    direct: Store


@pytest.fixture
def faulty(request: pytest.FixtureRequest) -> Callable[..., Faulty]:
    """``faulty(backend, **options)``: a ``Faulty`` on ``"aurora"`` or ``"dynamo"`` (the server a
    backend needs is only started when a test asks for that backend)."""

    def make(backend: str, **options: Any) -> Faulty:
        proxy: FaultProxy = request.getfixturevalue(
            f"{'pg' if backend == 'aurora' else backend}_proxy"
        )
        factory: Callable[..., Store] = request.getfixturevalue(backend)
        store = factory(proxy, **options)
        return Faulty(store, proxy, factory(kind=store.kind))

    return make
