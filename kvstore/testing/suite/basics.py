"""Round trips and the core read/write calls."""

from __future__ import annotations

import pytest

from kvstore import AlreadyExists, NotFound
from kvstore.testing.fixtures import StoreFactory, StoreFixtures


class AbstractBasicTests(StoreFixtures):
    """put / find / create basics."""

    def test_put_then_find_round_trips(self, make_store: StoreFactory) -> None:
        store = make_store()
        record = {"id": "a", "name": "Ada", "tags": ["x", 1, 2.5, True, None], "m": {"k": {"j": 1}}}
        assert store.put(record) == record
        assert store.find({"id": "a"}) == record

    def test_create_refuses_a_taken_key(self, make_store: StoreFactory) -> None:
        store = make_store()
        store.create({"id": "a", "v": 1})
        with pytest.raises(AlreadyExists) as info:
            store.create({"id": "a", "v": 2})
        assert info.value.code == "ALREADY_EXISTS"
        assert store.find({"id": "a"}) == {"id": "a", "v": 1}

    def test_find_missing_raises_not_found(self, make_store: StoreFactory) -> None:
        with pytest.raises(NotFound):
            make_store().find({"id": "nobody"})
