"""Alembic environment of the examples' kinds: connects with the same settings as the aurora store,
in DB_SCHEMA (what ``kvstore init-migrations`` writes for a project, with the same two lines)."""

from __future__ import annotations

from alembic import context

from kvstore_aurora.alembic_env import run_migrations

run_migrations(context)
