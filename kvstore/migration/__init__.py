"""Moving a kind between backends with no downtime: ``MigratingStore`` and its six stages, the
reports (``MigrationEvent``, ``migration_stats``) and ``STORE_MIGRATION`` (see CONTRACT.md, "Moving a
kind between backends", and docs/MIGRATING.md).

``create_store`` imports this package only when a kind is migrating, so a store that is not pays
nothing for it.
"""

from __future__ import annotations

from kvstore.migration.reports import MigrationEvent, migration_stats, reset_migration_stats
from kvstore.migration.spec import STAGES, Migration, Stage, migration_for, parse_migration
from kvstore.migration.store import MigratingStore

__all__ = [
    "STAGES",
    "MigratingStore",
    "Migration",
    "MigrationEvent",
    "Stage",
    "migration_for",
    "migration_stats",
    "parse_migration",
    "reset_migration_stats",
]
