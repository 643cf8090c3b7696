"""The examples' kinds: teams (keyed by id) and members (keyed by team_id, seq; a real name column).

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

from kvstore_aurora.migrate import create_kind_table, drop_kind_table

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_kind_table(op, "teams", "id", str)
    create_kind_table(op, "members", ("team_id", "seq"), (str, int), columns={"name": "text"})


def downgrade() -> None:
    drop_kind_table(op, "members")
    drop_kind_table(op, "teams")
