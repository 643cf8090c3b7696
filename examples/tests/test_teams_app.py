"""The teams app's handler, invoked with API Gateway (REST, v1) proxy events, on every backend."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from examples.teams_app.events import api_event
from examples.teams_app.handler import handler, members_store, setup, teams_store


def call(method: str, path: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
    """The handler's status and decoded body for one API Gateway request."""
    response = handler(api_event(method, path, body, **kwargs), None)
    assert response["headers"]["Content-Type"] == "application/json"
    return response["statusCode"], json.loads(response["body"]) if response["body"] else None


@pytest.fixture
def app(backend_env: str) -> str:
    """The app's tables, present and empty, on the selected backend."""
    setup()
    teams_store().truncate(force=True)
    members_store().truncate(force=True)
    return backend_env


def members_of(team: str, **query: str) -> list[dict[str, Any]]:
    status, page = call("GET", f"/teams/{team}/members", query=query or None)
    assert status == 200, page
    members: list[dict[str, Any]] = page["members"]
    return members


def test_walkthrough(app: str) -> None:
    assert call("PUT", "/teams/t1", {"name": "Rockets", "city": "Oslo"}) == (
        200,
        {"id": "t1", "name": "Rockets", "city": "Oslo", "version": 1},
    )
    assert call("GET", "/teams/t1") == (
        200,
        {"id": "t1", "name": "Rockets", "city": "Oslo", "version": 1},
    )
    for name in ("Ada", "Grace", "Linus"):
        status, member = call("POST", "/teams/t1/members", {"name": name})
        assert status == 201
        assert member["name"] == name
    members = members_of("t1")
    assert [(m["seq"], m["name"]) for m in members] == [(1, "Ada"), (2, "Grace"), (3, "Linus")]
    assert all(m["team_id"] == "t1" for m in members)
    team = call("GET", "/teams/t1")[1]
    assert (team["members"], team["version"]) == (3, 4)  # each addition stepped the version
    # PUT replaces the whole team, given the version it read: "city" is gone.
    assert call("PUT", "/teams/t1", {"name": "Rockets II", "version": 4})[1] == {
        "id": "t1",
        "name": "Rockets II",
        "version": 5,
    }
    assert call("DELETE", "/teams/t1") == (204, None)
    assert call("GET", "/teams/t1")[0] == 404
    assert call("GET", "/teams/t1/members")[0] == 404
    assert members_store().count({"team_id": "t1"}) == 0


def test_members_of_one_team_only(app: str) -> None:
    call("PUT", "/teams/a", {"name": "A"})
    call("PUT", "/teams/b", {"name": "B"})
    call("POST", "/teams/a/members", {"name": "x"})
    call("POST", "/teams/b/members", {"name": "y"})
    call("POST", "/teams/b/members", {"name": "z"})
    assert [m["name"] for m in members_of("b")] == ["y", "z"]
    assert call("DELETE", "/teams/b")[0] == 204
    assert [m["name"] for m in members_of("a")] == ["x"]


def test_a_stale_version_is_409_and_changes_nothing(app: str) -> None:
    call("PUT", "/teams/t1", {"name": "Rockets"})
    read = call("GET", "/teams/t1")[1]
    assert call("PUT", "/teams/t1", {"name": "Comets", "version": read["version"]})[0] == 200
    # A second client still holding the first read loses: 409, and the team is the first's.
    status, error = call("PUT", "/teams/t1", {"name": "Meteors", "version": read["version"]})
    assert (status, error["error"]) == (409, "CONDITION_FAILED")
    # A PUT without the version it read cannot replace a team either.
    assert call("PUT", "/teams/t1", {"name": "Meteors"})[0] == 409
    assert call("GET", "/teams/t1")[1]["name"] == "Comets"


def test_members_are_listed_page_by_page_with_the_cursor_in_the_query_string(app: str) -> None:
    call("PUT", "/teams/t1", {"name": "Rockets"})
    for n in range(7):
        assert call("POST", "/teams/t1/members", {"name": f"m{n}"})[0] == 201
    seen: list[int] = []
    query = {"limit": "3"}
    pages = 0
    while True:
        status, page = call("GET", "/teams/t1/members", query=query)
        assert status == 200
        assert len(page["members"]) == (3 if page["cursor"] else 1)
        seen += [member["seq"] for member in page["members"]]
        pages += 1
        if page["cursor"] is None:
            break
        query = {"limit": "3", "cursor": page["cursor"]}
    assert (seen, pages) == (list(range(1, 8)), 3)
    status, error = call("GET", "/teams/t1/members", query={"cursor": "tampered"})
    assert (status, error["error"]) == (400, "INVALID_ARGUMENT")


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("GET", "/teams/nobody", None, 404, "NOT_FOUND"),
        ("DELETE", "/teams/nobody", None, 404, "NOT_FOUND"),
        ("POST", "/teams/nobody/members", {"name": "x"}, 404, "NOT_FOUND"),
        ("PUT", "/teams/t9", {"city": "no name"}, 400, "INVALID_ARGUMENT"),
        ("PUT", "/teams/t9", "{not json", 400, "INVALID_ARGUMENT"),
        ("PUT", "/teams/t9", [1, 2], 400, "INVALID_ARGUMENT"),
        ("PUT", "/teams/t9", '{"name": "x", "n": NaN}', 400, "INVALID_ARGUMENT"),
    ],
)
def test_errors_carry_the_store_error_code(
    app: str, method: str, path: str, body: Any, status: int, code: str
) -> None:
    got_status, error = call(method, path, body)
    assert (got_status, error["error"]) == (status, code)


def test_a_base64_body_is_decoded(app: str) -> None:
    assert call("PUT", "/teams/é", {"name": "Café"}, b64=True) == (
        200,
        {"id": "é", "name": "Café", "version": 1},
    )


def test_an_unknown_route_is_404(app: str) -> None:
    event = api_event("PATCH", "/teams/t1")
    assert handler(event, None)["statusCode"] == 404


def test_concurrent_additions_get_distinct_seqs(app: str) -> None:
    if app == "dynamo-moto":
        pytest.skip("moto's conditional writes are not atomic across threads")
    call("PUT", "/teams/t1", {"name": "Rockets"})
    statuses: list[int] = []

    def add(n: int) -> None:
        statuses.append(call("POST", "/teams/t1/members", {"name": f"m{n}"})[0])

    threads = [threading.Thread(target=add, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    members = members_of("t1")
    created = statuses.count(201)
    assert created + statuses.count(409) == 4
    assert sorted(m["seq"] for m in members) == list(range(1, created + 1))
    assert sorted(m["name"] for m in members) == sorted({m["name"] for m in members})
    assert call("GET", "/teams/t1")[1].get("members", 0) == created  # counted in the same step
