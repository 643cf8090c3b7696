"""Contract, "Errors": codes and classes; a missing table is a ConfigError on every call."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pytest

import kvstore
from kvstore import (
    AlreadyExists,
    BackendUnavailable,
    ConfigError,
    InvalidArgument,
    MultipleFound,
    NotFound,
    OperationRejected,
    Store,
    StoreError,
)
from kvstore.store import CHUNK_SIZE
from kvstore.testing.fixtures import StoreFactory, StoreFixtures

ERROR_TABLE: list[tuple[type[StoreError], str, tuple[type[BaseException], ...]]] = [
    (NotFound, "NOT_FOUND", (LookupError,)),
    (MultipleFound, "MULTIPLE_FOUND", (LookupError,)),
    (AlreadyExists, "ALREADY_EXISTS", ()),
    (InvalidArgument, "INVALID_ARGUMENT", (ValueError,)),
    (OperationRejected, "OPERATION_REJECTED", ()),
    (ConfigError, "CONFIG_ERROR", ()),
    (BackendUnavailable, "BACKEND_UNAVAILABLE", (ConnectionError,)),
]


def _every_call(store: Store) -> dict[str, Callable[[], Any]]:
    """One valid call of each operation on a kind whose records have key ``id``."""
    return {
        "find": lambda: store.find({"id": "a"}),
        "find_by_field": lambda: store.find({"x": 1}),
        "find_all": lambda: store.find_all(),
        "find_all_filtered": lambda: store.find_all({"x": 1}),
        "find_in": lambda: store.find_in("id", ["a"]),
        "find_in_field": lambda: store.find_in("x", [1]),
        "count": lambda: store.count(),
        "put": lambda: store.put({"id": "a"}),
        "create": lambda: store.create({"id": "a"}),
        "update": lambda: store.update({"id": "a", "x": 1}),
        "find_or_create": lambda: store.find_or_create({"id": "a"}, {"id": "a"}),
        "remove": lambda: store.remove({"id": "a"}),
        "remove_by_field": lambda: store.remove({"x": 1}),
        "truncate": lambda: store.truncate(force=True),
        "iter_all": lambda: list(store.iter_all()),
        "put_many": lambda: store.put_many([{"id": "a"}, {"id": "b"}]),
        "remove_in": lambda: store.remove_in("id", ["a"]),
        "remove_in_field": lambda: store.remove_in("x", [1]),
    }


def _every_bad_call(store: Store) -> dict[str, Callable[[], Any]]:
    """One call of each operation that fails on its arguments."""
    return {
        "find": lambda: store.find({"bad-name": 1}),
        "find_all": lambda: store.find_all({"id": 5}),
        "find_in": lambda: store.find_in("id", [None]),
        "count": lambda: store.count({"x": float("nan")}),
        "put": lambda: store.put({"x": 1}),
        "create": lambda: store.create({"id": "a", "x": b"bytes"}),
        "update": lambda: store.update({"x": 1}),
        "find_or_create": lambda: store.find_or_create({"id": "a"}, {"x": 1}),
        "remove": lambda: store.remove({}),
        "iter_all": lambda: store.iter_all({"id": ""}),
        "put_many": lambda: store.put_many([{"id": "a"}, {"id": 1}]),
        # More than one chunk: a backend that writes chunks while core checks the next still
        # reports the first chunk's bad record before any I/O.
        "put_many_of_many_chunks": lambda: store.put_many(
            [{"id": 1}, *({"id": f"k{n}"} for n in range(CHUNK_SIZE))]
        ),
        "remove_in": lambda: store.remove_in("bad-name", ["a"]),
        "put_too_big": lambda: store.put({"id": "a", "x": "x" * 409_600}),
        "update_too_big": lambda: store.update({"id": "a", "x": "x" * 409_600}),
        "put_many_too_big": lambda: store.put_many([{"id": "a", "x": "x" * 409_600}]),
    }


class AbstractErrorTests(StoreFixtures):
    """The error classes, and which error wins when the table is missing."""

    @pytest.mark.parametrize(("cls", "code", "bases"), ERROR_TABLE, ids=lambda v: str(v))
    def test_each_error_has_its_code_and_bases(
        self, cls: type[StoreError], code: str, bases: tuple[type[BaseException], ...]
    ) -> None:
        assert issubclass(cls, StoreError)
        assert cls.code == code
        error = cls("message")
        assert error.code == code
        assert str(error) == "message"
        for base in bases:
            assert isinstance(error, base)
        assert getattr(kvstore, cls.__name__) is cls
        assert StoreError.code == "STORE_ERROR"

    def test_errors_that_are_not_lookups_are_not_lookup_errors(self) -> None:
        for cls in (AlreadyExists, InvalidArgument, OperationRejected, ConfigError):
            assert not issubclass(cls, LookupError)
        assert not issubclass(InvalidArgument, LookupError)
        assert not issubclass(NotFound, ValueError)

    def test_raised_errors_carry_their_codes(self, make_store: StoreFactory) -> None:
        store = make_store()
        store.put_many([{"id": "a", "g": 1}, {"id": "b", "g": 1}])
        raised: list[tuple[Callable[[], Any], type[StoreError]]] = [
            (lambda: store.find({"id": "zz"}), NotFound),
            (lambda: store.find({"g": 1}), MultipleFound),
            (lambda: store.create({"id": "a"}), AlreadyExists),
            (lambda: store.put({"id": 1}), InvalidArgument),
            (lambda: store.truncate(), OperationRejected),
            (lambda: store.update({"id": "zz", "g": 2}), NotFound),
        ]
        for call, cls in raised:
            with pytest.raises(StoreError) as info:
                call()
            assert type(info.value) is cls
            assert info.value.code == cls.code

    def test_every_call_on_a_missing_table_raises_config_error(
        self, make_store: StoreFactory
    ) -> None:
        store = make_store(ensure=False)
        for name, call in _every_call(store).items():
            with pytest.raises(ConfigError) as info:
                call()
            assert "ensure" in str(info.value), f"{name}: the message should say how to create it"
            assert info.value.code == "CONFIG_ERROR"

    def test_argument_errors_win_over_a_missing_table(self, make_store: StoreFactory) -> None:
        store = make_store(ensure=False)
        for call in _every_bad_call(store).values():
            with pytest.raises(InvalidArgument):
                call()
        with pytest.raises(OperationRejected):
            store.truncate()

    def test_a_missing_table_stops_being_an_error_once_ensured(
        self, make_store: StoreFactory
    ) -> None:
        store = make_store(ensure=False)
        with pytest.raises(ConfigError):
            store.find_all()
        store.ensure()
        for call in _every_call(store).values():
            # NotFound and AlreadyExists are expected outcomes of a valid call; ConfigError is not.
            with contextlib.suppress(NotFound, AlreadyExists):
                call()
        assert store.find_all() == [{"id": "b"}]

    def test_argument_errors_on_an_existing_table_change_nothing(
        self, make_store: StoreFactory
    ) -> None:
        store = make_store()
        store.put_many([{"id": "a", "x": 1}, {"id": "b"}])
        for call in _every_bad_call(store).values():
            with pytest.raises(InvalidArgument):
                call()
        assert store.find_all() == [{"id": "a", "x": 1}, {"id": "b"}]
