"""What a backend's test class provides to run the contract suite: a factory of fresh stores.

A backend's test file is one class::

    class TestMyBackend(ContractTests, BackendFixtures):
        backend = "mine"

``BackendFixtures`` makes stores with ``create_store`` on ``backend`` (or, when it is ``None``, on the
backend ``--kvstore-backend`` or ``STORE_BACKEND`` names) with the options ``store_options`` returns.
A backend whose server cannot honour a rule names it in ``unsupported`` with the reason, and the
tests needing it are skipped saying why.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar

import pytest

from kvstore import Store, create_store

__all__ = [
    "CAPABILITIES",
    "BackendFixtures",
    "Capabilities",
    "StoreFactory",
    "StoreFixtures",
    "registered",
    "unique_kind",
]

StoreFactory = Callable[..., Store]
"""``make_store(*, kind=None, ensure=True, id_field=..., key_type=..., validate=...) -> Store``:
a store of a fresh kind (or of ``kind``), whose table exists unless ``ensure=False``."""


class Capabilities:
    """What a server may lack, declared once: the only names a test may ``require``.

    A backend's test class lists those its server lacks in ``unsupported`` (name -> why), and the
    tests that need one skip, saying why. Each attribute's value says what the capability is.
    """

    atomic_conditional_writes = (
        "create, find_or_create, expect, version checks, increments and transactions stay atomic "
        "when threads race"
    )
    exact_item_size = "the server sizes records exactly as DynamoDB does"

    @classmethod
    def all(cls) -> dict[str, str]:
        """Every capability by name, with what it means."""
        return {
            name: value
            for name, value in vars(cls).items()
            if isinstance(value, str) and not name.startswith("_")
        }


CAPABILITIES = Capabilities.all()
"""``Capabilities`` as a dict: name -> what it means."""


def unique_kind(prefix: str = "k") -> str:
    """A kind name no other test uses."""
    return f"{prefix}{uuid.uuid4().hex[:16]}"


@contextmanager
def registered(plugin: object, name: str | None = None) -> Iterator[None]:
    """``plugin`` (a module or object with ``@hookimpl`` functions) registered for the block, as
    an installed plugin would be; its backends are seen inside and forgotten after."""
    from kvstore import registry

    manager = registry.plugin_manager()
    manager.register(plugin, name=name)
    registry.reset()
    try:
        yield
    finally:
        manager.unregister(plugin)
        registry.reset()


class StoreFixtures:
    """The fixtures the contract suite needs; subclass it and provide ``make_store``."""

    unsupported: ClassVar[Mapping[str, str]] = {}
    """Capability -> why this backend cannot honour it (the skip reason)."""

    many_records: ClassVar[int] = 300
    """How many records the paging tests write (enough to cross a few pages and batches)."""

    differential_examples: ClassVar[int] = 30
    """Hypothesis examples of the differential test (keep it modest on network backends)."""

    @pytest.fixture
    def make_store(self) -> StoreFactory:
        """Make stores of fresh kinds on the backend under test."""
        raise NotImplementedError("a backend's test class must provide the make_store fixture")

    def require(self, capability: str) -> None:
        """Skip the calling test, saying why, when the backend lacks ``capability``."""
        assert capability in CAPABILITIES, f"unknown capability {capability!r}"
        if capability in self.unsupported:
            pytest.skip(f"{capability}: {self.unsupported[capability]}")


class BackendFixtures(StoreFixtures):
    """Stores from ``create_store`` on ``backend`` (``None``: the one the test run selects)."""

    backend: ClassVar[str | None] = None

    @pytest.fixture
    def store_options(self) -> dict[str, Any]:
        """Backend options passed to every ``create_store`` (override for injected clients)."""
        return {}

    @pytest.fixture
    def make_store(self, store_options: dict[str, Any], kvstore_backend: str) -> StoreFactory:
        """Make stores of fresh kinds on the backend under test."""
        name = self.backend or kvstore_backend

        def make(*, kind: str | None = None, ensure: bool = True, **kwargs: Any) -> Store:
            chosen = unique_kind() if kind is None else kind
            store = create_store(chosen, backend=name, **store_options, **kwargs)
            if ensure:
                store.ensure()
            return store

        return make
