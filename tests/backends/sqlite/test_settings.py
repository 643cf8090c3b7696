"""The sqlite backend's file comes from KVSTORE_SQLITE_PATH, default ./kvstore.sqlite3."""

from __future__ import annotations

from kvstore.backends.sqlite.settings import sqlite_path


def test_sqlite_path_defaults_to_the_working_directory() -> None:
    assert sqlite_path({}) == "./kvstore.sqlite3"
    assert sqlite_path({"KVSTORE_SQLITE_PATH": "/tmp/x.db"}) == "/tmp/x.db"
