"""Contract, "Creating a store": kind names, id fields, key types, options, backends, sharing."""

from __future__ import annotations

from typing import Any

import pytest

from kvstore import ConfigError, InvalidArgument, Store, create_store
from kvstore.testing.fixtures import StoreFactory, StoreFixtures

VALID_KINDS = ["abc", "a12", "a_b", "z__", "a" + "b" * 62, "kind_with_digits_0123456789"]
INVALID_KINDS: list[Any] = [
    "ab",  # too short
    "a" * 64,  # too long
    "1abc",  # must start with a letter
    "_abc",
    "Abc",  # lower case only
    "abC",
    "ab-c",
    "ab c",
    "ab.c",
    "abç",
    "abc\n",
    "",
    123,
    b"abc",
]


class AbstractCreatingTests(StoreFixtures):
    """``create_store``'s argument rules, options, backends, ``ensure`` and shared kinds."""

    @pytest.mark.parametrize("kind", VALID_KINDS)
    def test_valid_kind_names_are_accepted(self, make_store: StoreFactory, kind: str) -> None:
        store = make_store(kind=kind, ensure=False)
        assert store.kind == kind

    @pytest.mark.parametrize("kind", INVALID_KINDS, ids=repr)
    def test_invalid_kind_names_raise_invalid_argument(
        self, make_store: StoreFactory, kind: Any
    ) -> None:
        with pytest.raises(InvalidArgument) as info:
            make_store(kind=kind, ensure=False)
        assert info.value.code == "INVALID_ARGUMENT"

    @pytest.mark.parametrize(
        ("id_field", "expected"),
        [("id", ("id",)), ("pk", ("pk",)), (("a",), ("a",)), (["a", "b"], ("a", "b"))],
    )
    def test_id_field_is_one_name_or_a_sequence_of_one_or_two(
        self, make_store: StoreFactory, id_field: Any, expected: tuple[str, ...]
    ) -> None:
        store = make_store(id_field=id_field)
        assert store.id_fields == expected
        record = dict.fromkeys(expected, "v") | {"x": 1}
        assert store.put(record) == record

    @pytest.mark.parametrize(
        "id_field",
        [(), [], ("a", "b", "c"), ("a", "a"), "bad-name", "1x", "", 5, None, ("a", 5)],
        ids=repr,
    )
    def test_invalid_id_field_raises_invalid_argument(
        self, make_store: StoreFactory, id_field: Any
    ) -> None:
        with pytest.raises(InvalidArgument):
            make_store(id_field=id_field, ensure=False)

    @pytest.mark.parametrize(
        ("id_field", "key_type"),
        [("id", str), ("id", int), ("id", (int,)), (("a", "b"), (str, int)), (("a", "b"), int)],
    )
    def test_valid_key_types_are_accepted(
        self, make_store: StoreFactory, id_field: Any, key_type: Any
    ) -> None:
        make_store(id_field=id_field, key_type=key_type, ensure=False)

    @pytest.mark.parametrize(
        ("id_field", "key_type"),
        [
            ("id", bool),  # True/False are not ints here
            ("id", float),
            ("id", bytes),
            ("id", "str"),
            ("id", None),
            ("id", (str, int)),  # two types for one field
            (("a", "b"), (str,)),  # one type in a sequence for two fields
            (("a", "b"), (str, bool)),
            (("a", "b"), (str, int, int)),
        ],
        ids=repr,
    )
    def test_invalid_key_types_raise_invalid_argument(
        self, make_store: StoreFactory, id_field: Any, key_type: Any
    ) -> None:
        with pytest.raises(InvalidArgument):
            make_store(id_field=id_field, key_type=key_type, ensure=False)

    def test_a_single_key_type_applies_to_every_id_field(self, make_store: StoreFactory) -> None:
        store = make_store(id_field=("a", "b"), key_type=int)
        assert store.put({"a": 1, "b": 2}) == {"a": 1, "b": 2}
        for bad in ({"a": "1", "b": 2}, {"a": 1, "b": "2"}):
            with pytest.raises(InvalidArgument):
                store.put(bad)

    def test_an_unknown_option_raises_type_error(self, make_store: StoreFactory) -> None:
        with pytest.raises(TypeError):
            make_store(ensure=False, no_such_option_for_any_backend=1)

    def test_an_unknown_backend_raises_config_error_naming_the_installed_ones(self) -> None:
        from kvstore.registry import backends

        with pytest.raises(ConfigError) as info:
            create_store("abc", backend="no_such_backend")
        assert info.value.code == "CONFIG_ERROR"
        assert "no_such_backend" in str(info.value)
        for name in backends():
            assert name in str(info.value)

    @pytest.mark.parametrize("value", [None, ""])
    def test_an_unset_backend_raises_config_error_naming_the_installed_ones(
        self, monkeypatch: pytest.MonkeyPatch, value: str | None
    ) -> None:
        from kvstore.registry import backends

        if value is None:
            monkeypatch.delenv("STORE_BACKEND", raising=False)
        else:
            monkeypatch.setenv("STORE_BACKEND", value)
        with pytest.raises(ConfigError) as info:
            create_store("abc")
        assert backends()
        for name in backends():
            assert name in str(info.value)

    def test_store_backend_env_var_chooses_the_backend(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("STORE_BACKEND", "memory")
        store = create_store("abc")
        assert store.backend == "memory"  # type: ignore[attr-defined]
        monkeypatch.setenv("STORE_BACKEND", "no_such_backend")
        with pytest.raises(ConfigError):
            create_store("abc")

    def test_creating_a_store_does_no_io_and_creates_no_table(
        self, make_store: StoreFactory
    ) -> None:
        store = make_store(ensure=False)
        assert isinstance(store, Store)
        # Had creating the store touched the backend's tables, the kind would exist now.
        with pytest.raises(ConfigError):
            store.count()

    def test_ensure_creates_the_table_is_idempotent_and_returns_none(
        self, make_store: StoreFactory
    ) -> None:
        store = make_store(ensure=False)
        assert store.ensure() is None  # type: ignore[func-returns-value]
        store.put({"id": "a"})
        assert store.ensure() is None  # type: ignore[func-returns-value]
        again = make_store(kind=store.kind, ensure=False)
        assert again.ensure() is None  # type: ignore[func-returns-value]
        assert store.find_all() == [{"id": "a"}]

    def test_two_stores_of_a_kind_see_the_same_data(self, make_store: StoreFactory) -> None:
        first = make_store()
        second = make_store(kind=first.kind, ensure=False)
        first.put({"id": "a", "v": 1})
        assert second.find({"id": "a"}) == {"id": "a", "v": 1}
        second.update({"id": "a", "v": 2})
        assert first.find({"id": "a"}) == {"id": "a", "v": 2}
        second.remove({"id": "a"})
        assert first.count() == 0

    def test_a_store_reports_its_kind_and_id_fields(self, make_store: StoreFactory) -> None:
        store = make_store(id_field=("team", "seq"), key_type=(str, int))
        assert isinstance(store, Store)
        assert store.id_fields == ("team", "seq")
        assert isinstance(store.kind, str)
