"""A walkthrough of the teams app: calls the handler as API Gateway would and prints each exchange.

Run it with a backend selected the usual way, e.g.
``STORE_BACKEND=sqlite KVSTORE_SQLITE_PATH=/tmp/app.sqlite3 python -m examples.teams_app.walkthrough``.
"""

from __future__ import annotations

import json
import os
from typing import Any

from examples.teams_app.events import api_event
from examples.teams_app.handler import handler, setup

STEPS: list[tuple[str, str, Any]] = [
    ("PUT", "/teams/rockets", {"name": "Rockets", "city": "Oslo"}),
    ("PUT", "/teams/comets", {"name": "Comets"}),
    ("GET", "/teams/rockets", None),
    ("POST", "/teams/rockets/members", {"name": "Ada", "role": "captain"}),
    ("POST", "/teams/rockets/members", {"name": "Grace"}),
    ("POST", "/teams/comets/members", {"name": "Linus"}),
    ("GET", "/teams/rockets/members", None),
    ("PUT", "/teams/rockets", {"name": "Rockets", "city": "Bergen", "version": 1}),
    ("PUT", "/teams/nameless", {"city": "Bergen"}),
    ("GET", "/teams/ghosts", None),
    ("DELETE", "/teams/comets", None),
    ("GET", "/teams/comets/members", None),
]


def main() -> None:
    """Create the tables when missing, then run every step, printing request and response."""
    print(f"backend: STORE_BACKEND={os.environ.get('STORE_BACKEND')}", end="")
    if os.environ.get("STORE_BACKEND") == "sqlite":
        print(f" (file {os.environ.get('KVSTORE_SQLITE_PATH', './kvstore.sqlite3')})", end="")
    print()
    setup()
    for method, path, body in STEPS:
        response = handler(api_event(method, path, body), None)
        sent = "" if body is None else " " + json.dumps(body)
        print(f"  {method} {path}{sent}")
        print(f"    -> {response['statusCode']} {response['body']}")


if __name__ == "__main__":
    main()
