"""A teams/members API as an AWS Lambda handler behind API Gateway (REST API, proxy integration).

Routes (API Gateway resources)::

    GET    /teams/{id}            the team (with its "version" and "members" count)
    PUT    /teams/{id}            create the team, or replace it: the body carries the "version" it
                                  read (optimistic locking: 409 CONDITION_FAILED when it is stale)
    DELETE /teams/{id}            remove the team and its members
    GET    /teams/{id}/members    a page of the team's members, by seq: ?limit=N&cursor=C, answering
                                  {"members": [...], "cursor": next page's cursor or null}
    POST   /teams/{id}/members    add a member (JSON body); it gets the next seq, and the team's
                                  "members" count goes up in the same transaction

Two kinds: ``teams`` keyed by ``id`` (versioned), ``members`` keyed by ``(team_id, seq)`` (str,
int). The code names no backend: ``STORE_BACKEND`` (with its settings) picks DynamoDB, Aurora,
sqlite or memory.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from kvstore import (
    AlreadyExists,
    ConditionFailed,
    InvalidArgument,
    NotFound,
    Store,
    StoreError,
    create_store,
    increment,
    one_of,
    transaction,
)

__all__ = ["handler", "members_store", "setup", "teams_store"]

MAX_SEQ_RETRIES = 5
"""How often ``POST .../members`` retries when a concurrent request took the seq it chose."""
PAGE_SIZE = 50
"""Members a page holds unless the request's ``limit`` says otherwise (at most 1,000)."""


def check_team(record: dict[str, Any]) -> dict[str, Any]:
    """The teams kind's ``validate`` hook: a team's ``name`` is a non-empty string.

    It also sees an update's changes, which may leave the name out; a whole team needs one
    (``_put_team`` says so).
    """
    if "name" in record:
        name = record["name"]
        if not isinstance(name, str) or not name.strip():
            raise InvalidArgument("a team's 'name' is a non-empty string")
    return record


def teams_store() -> Store:
    """The teams kind (stores are cheap: no I/O, the connection is shared by the process)."""
    return create_store("teams", validate=check_team, version_field="version")


def members_store() -> Store:
    """The members kind, keyed by team and sequence number."""
    return create_store("members", id_field=("team_id", "seq"), key_type=(str, int))


def setup() -> None:
    """Create both kinds' tables when missing (local runs and tests; production uses migrations)."""
    teams_store().ensure()
    members_store().ensure()


def _response(status: int, body: Any = None) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": "" if body is None else json.dumps(body),
        "isBase64Encoded": False,
    }


def _body(event: dict[str, Any]) -> dict[str, Any]:
    raw = event.get("body") or "{}"
    if event.get("isBase64Encoded"):
        raw = base64.b64decode(raw).decode("utf-8")
    try:
        body = json.loads(raw)
    except ValueError:
        raise InvalidArgument("the request body is not JSON") from None
    if not isinstance(body, dict):
        raise InvalidArgument("the request body must be a JSON object")
    return body


def _get_team(team_id: str) -> dict[str, Any]:
    return _response(200, teams_store().find({"id": team_id}))


def _put_team(team_id: str, event: dict[str, Any]) -> dict[str, Any]:
    team = {**_body(event), "id": team_id}
    if "name" not in team:
        raise InvalidArgument("a team needs a non-empty string 'name'")
    return _response(200, teams_store().put(team))


def _delete_team(team_id: str) -> dict[str, Any]:
    if not teams_store().remove({"id": team_id}):
        raise NotFound(f"no team {team_id!r}")
    members_store().remove({"team_id": team_id})
    return _response(204)


def _limit(event: dict[str, Any]) -> int:
    text = (event.get("queryStringParameters") or {}).get("limit")
    if text is None:
        return PAGE_SIZE
    try:
        return int(text)
    except ValueError:
        raise InvalidArgument(f"limit is a number of members, not {text!r}") from None


def _list_members(team_id: str, event: dict[str, Any]) -> dict[str, Any]:
    teams_store().find({"id": team_id})  # 404 for an unknown team
    cursor = (event.get("queryStringParameters") or {}).get("cursor")
    page = members_store().find_page({"team_id": team_id}, limit=_limit(event), cursor=cursor)
    return _response(200, {"members": page.records, "cursor": page.cursor})


def _add_member(team_id: str, event: dict[str, Any]) -> dict[str, Any]:
    teams, members = teams_store(), members_store()
    body = _body(event)
    for _ in range(MAX_SEQ_RETRIES):
        count = teams.find({"id": team_id}).get("members", 0)  # 404 for an unknown team
        member = {**body, "team_id": team_id, "seq": count + 1}
        try:
            # The member and the team's count together: a racing addition that took this seq
            # changed the count, so the expect fails and nothing of this one is written.
            with transaction() as tx:
                tx.create(members, member)
                tx.update(
                    teams,
                    {"id": team_id, "members": increment(1)},
                    expect={"members": one_of([count, None]) if count == 0 else count},
                )
        except (ConditionFailed, AlreadyExists):
            continue
        return _response(201, members.find({"team_id": team_id, "seq": member["seq"]}))
    return _response(409, {"error": "CONFLICT", "message": "too many concurrent additions"})


_ROUTES: dict[tuple[str, str], Any] = {
    ("GET", "/teams/{id}"): lambda team_id, event: _get_team(team_id),
    ("PUT", "/teams/{id}"): _put_team,
    ("DELETE", "/teams/{id}"): lambda team_id, event: _delete_team(team_id),
    ("GET", "/teams/{id}/members"): _list_members,
    ("POST", "/teams/{id}/members"): _add_member,
}

_STATUS = {
    "NOT_FOUND": 404,
    "INVALID_ARGUMENT": 400,
    "ALREADY_EXISTS": 409,
    "CONDITION_FAILED": 409,  # a stale version: read the team again, then retry
}


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """The Lambda entry point: an API Gateway proxy event in, a proxy response out."""
    route = _ROUTES.get((event.get("httpMethod", ""), event.get("resource", "")))
    if route is None:
        return _response(404, {"error": "NO_ROUTE", "message": "no such route"})
    team_id = (event.get("pathParameters") or {}).get("id", "")
    try:
        response: dict[str, Any] = route(team_id, event)
    except StoreError as exc:
        # The error's code is the API's: clients see NOT_FOUND, INVALID_ARGUMENT, ...
        status = _STATUS.get(exc.code, 500)
        return _response(status, {"error": exc.code, "message": exc.message})
    return response
