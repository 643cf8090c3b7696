"""The ``kvstore`` command: inspect, move and compare a kind's records on any backend.

JSON in, JSON lines out, so it composes with ``jq``; the conventions are in ``kvstore --help``
(``app.HELP``) and the README. Only the ``kvstore`` console script imports this package
(``import kvstore`` never does), and click is in the ``cli`` extra.

``app`` holds the group, its error reporting and the kind's options; ``filters`` the filter
syntax; ``output`` the formats; ``records``, ``admin`` and ``moving`` the commands.
"""

from __future__ import annotations

from kvstore.cli import admin, moving, records
from kvstore.cli.app import DEFAULT_BACKEND, cli

__all__ = ["DEFAULT_BACKEND", "cli", "main"]

_COMMANDS = (admin, moving, records)  # imported for the commands they add to ``cli``


def main() -> None:
    """The ``kvstore`` console script."""
    cli(prog_name="kvstore")
