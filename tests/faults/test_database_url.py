"""Issue 12, defect 2: every libpq parameter of a ``DATABASE_URL`` (or ``dsn=``) is honoured.

Today the query string is dropped, so ``?sslmode=require`` connects without TLS where libpq with the
same URL refuses (a silent downgrade), and ``?options=...`` is ignored. The local server has no TLS,
so a URL that requires it must fail there, as psycopg itself does.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import sql

from kvstore import ConfigError, Store, create_store
from tests.faults.conftest import PgServer, new_kind
from tests.faults.helpers import outcome_of

pytestmark = pytest.mark.timeout(60)

HOW = ["DATABASE_URL", "dsn"]
"""How the URL reaches the store: the environment variable, or the ``dsn=`` option."""


def _store(kind: str, url: str, how: str, monkeypatch: pytest.MonkeyPatch) -> Store:
    if how == "DATABASE_URL":
        monkeypatch.setenv("DATABASE_URL", url)
        return create_store(kind, backend="aurora")
    return create_store(kind, backend="aurora", dsn=url)


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize(
    "params",
    [
        {"sslmode": "require"},
        {"sslmode": "verify-full", "sslrootcert": "/nonexistent/root.crt"},
    ],
    ids=["require", "verify-full"],
)
def test_a_url_requiring_tls_fails_against_a_server_without_it(
    pg: PgServer,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
    params: dict[str, str],
) -> None:
    url = pg.dsn(params=params)
    with pytest.raises(psycopg.OperationalError, match="SSL"):
        psycopg.connect(url).close()  # libpq itself refuses this URL here
    kind = new_kind("u")
    create_store(kind, backend="aurora", dsn=pg.dsn()).ensure()
    outcome = outcome_of(lambda: _store(kind, url, how, monkeypatch).count())
    assert isinstance(outcome.error, ConfigError), outcome.describe()
    assert "SSL" in str(outcome.error)


@pytest.fixture
def other_schema(pg: PgServer) -> str:
    """A schema ``faults_other`` on the test database (the search path does not name it)."""
    name = "faults_other"
    with psycopg.connect(pg.dsn(), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(name)))
    return name


@pytest.mark.parametrize("how", HOW)
def test_options_in_the_url_reach_the_server(
    pg: PgServer, other_schema: str, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    kind = new_kind("u")
    record: dict[str, Any] = {"id": "k1", "n": 1}
    there = create_store(kind, backend="aurora", dsn=pg.dsn(), schema=other_schema)
    there.ensure()
    there.put(record)
    url = pg.dsn(params={"options": f"-c search_path={other_schema}"})
    with psycopg.connect(url) as direct:  # libpq applies it
        assert direct.execute("SELECT current_schema()").fetchone() == (other_schema,)
    outcome = outcome_of(lambda: _store(kind, url, how, monkeypatch).find({"id": "k1"}))
    assert outcome.value == record, outcome.describe()


@pytest.mark.parametrize("how", HOW)
def test_a_url_with_parameters_the_server_accepts_works(
    pg: PgServer, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    kind = new_kind("u")
    create_store(kind, backend="aurora", dsn=pg.dsn()).ensure()
    url = pg.dsn(
        params={"sslmode": "disable", "connect_timeout": "5", "application_name": "faults"}
    )
    store = _store(kind, url, how, monkeypatch)
    assert store.put({"id": "k1"}) == {"id": "k1"}
    assert store.count() == 1
