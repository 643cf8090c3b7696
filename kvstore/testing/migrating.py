"""The contract suite on a migrating store: ``MigratingFixtures`` makes stores moving a kind from
``old_backend`` to ``new_backend`` at ``stage``, so that every rule is checked at every stage::

    class TestShadow(ContractTests, MigratingFixtures):
        old_backend, new_backend, stage = "memory", "sqlite", "shadow"

Both sides' tables are made (``ensure=True``) whatever the stage. At ``off`` and ``complete`` the
side the stage does not use fails the test if the store calls it. After each test, for the kinds it
made (``check_sides``): no read was found to differ, no second write failed, and in a mirrored stage
both sides hold the same records (unless writes raced from several threads on a kind without a
``version_field``: the contract lets the second side fall behind then).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from kvstore import ConfigError, Store, create_store
from kvstore.testing.fixtures import StoreFactory, StoreFixtures, unique_kind

__all__ = ["MigratingFixtures"]


class MigratingFixtures(StoreFixtures):
    """Stores of ``create_store(kind, backend=old_backend, migration=f"{new_backend}:{stage}")``."""

    old_backend: ClassVar[str] = "memory"
    new_backend: ClassVar[str] = "sqlite"
    stage: ClassVar[str] = "off"
    check_sides: ClassVar[bool] = True
    """Check the two sides after each test (see the module docstring)."""

    @pytest.fixture
    def store_options(self) -> dict[str, Any]:
        """The old side's backend options (override for a file, a DSN, an injected client)."""
        return {}

    @pytest.fixture
    def migration_options(self) -> dict[str, Any]:
        """The new side's backend options (``create_store(..., migration_options=...)``)."""
        return {}

    @pytest.fixture
    def make_store(
        self, store_options: dict[str, Any], migration_options: dict[str, Any]
    ) -> Iterator[StoreFactory]:
        """Make migrating stores of fresh kinds; check their sides when the test ends."""
        from kvstore.migration import STAGES

        made: list[Any] = []
        writers: dict[str, set[int]] = {}  # kind -> the threads that wrote through its stores
        stage = STAGES[self.stage]

        def make(*, kind: str | None = None, ensure: bool = True, **kwargs: Any) -> Store:
            chosen = unique_kind() if kind is None else kind
            store = create_store(
                chosen,
                backend=self.old_backend,
                migration=f"{self.new_backend}:{self.stage}",
                migration_options=migration_options,
                **store_options,
                **kwargs,
            )
            if ensure:
                store.old.ensure()  # type: ignore[attr-defined]
                store.new.ensure()  # type: ignore[attr-defined]
            if not stage.mirrored:
                inert = store.old if stage.new_first else store.new  # type: ignore[attr-defined]
                _forbid(inert.driver, f"the {'old' if stage.new_first else 'new'} side")
            else:
                _note_threads(store.authoritative.driver, writers.setdefault(chosen, set()))  # type: ignore[attr-defined]
            made.append(store)
            return store

        yield make
        if self.check_sides:
            self._check_sides(made, writers)

    def _check_sides(self, stores: list[Any], writers: dict[str, set[int]]) -> None:
        from kvstore.copying import diff_records
        from kvstore.migration import STAGES, migration_stats
        from kvstore.store import RecordStore

        stage = STAGES[self.stage]
        stats = migration_stats()
        seen: set[str] = set()
        for store in stores:
            if store.kind in seen:
                continue
            seen.add(store.kind)
            counts = stats.get(store.kind, {}).get(self.stage, {})
            assert counts.get("second_write_failures", 0) == 0, f"second writes failed: {counts}"
            if store.schema.version_field is None and len(writers.get(store.kind, ())) > 1:
                continue  # racing writers without a version may leave the second side behind
            assert counts.get("mismatches", 0) == 0, f"reads differed: {counts}"
            if not stage.mirrored:
                continue  # its inert side refuses every call (_forbid)
            # Each side as a plain store: every record, whatever scan= the test chose.
            old, new = (RecordStore(side.driver, side.backend) for side in (store.old, store.new))
            try:
                assert list(diff_records(old, new)) == []
            except ConfigError:
                continue  # the test never made the kind's tables


def _note_threads(driver: Any, threads: set[int]) -> None:
    """Add to ``threads`` each thread that writes through ``driver`` (this store's own)."""
    write = driver.write

    def noted(op: Any) -> Any:
        threads.add(threading.get_ident())
        return write(op)

    driver.write = noted


def _forbid(driver: Any, side: str) -> None:
    """Make every call of ``driver`` (this store's own driver object: others of the kind are
    untouched) fail the test: a stage that does not use a side must never call it."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"{side} was used at a stage that does not use it")

    for name in ("read", "count", "delete", "write", "put_many", "batch_writer", "transact"):
        setattr(driver, name, refuse)
