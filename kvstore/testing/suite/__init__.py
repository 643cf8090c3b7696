"""Every ``Abstract*Tests`` mixin of the contract suite, combined as ``ContractTests``."""

from __future__ import annotations

from kvstore.testing.suite.basics import AbstractBasicTests

__all__ = ["AbstractBasicTests", "ContractTests"]


class ContractTests(AbstractBasicTests):
    """The whole contract suite; combine it with a fixtures class to run it on a backend."""
