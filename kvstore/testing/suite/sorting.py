"""Contract, "sorted by key": strings by code point, ints numerically, key fields in order."""

from __future__ import annotations

from kvstore.testing.fixtures import StoreFactory, StoreFixtures
from kvstore.testing.suite.helpers import keys

# Orders that collations, case folding, UTF-16 or byte-wise comparisons get wrong.
STRING_KEYS = [
    "b",
    "a",
    "B",
    "A",
    "aa",
    "a b",
    "a-b",
    "ab",
    "_",
    "0",
    "10",
    "9",
    "~",
    " ",
    "é",
    "e",
    "f",
    "z",
    "Z",
    "\uff41",  # fullwidth a
    "\uffee",  # sorts before U+10000 by code point, after it in UTF-16
    "\U0001f600",
    "\u00df",  # sharp s
    "ss",
    "\u0130",  # capital I with dot
]
INT_KEYS = [10, 9, -1, 100, 2, -(2**63), 2**63 - 1, 0, -10, 11, 2**53 + 1, 2**53]


class AbstractSortingTests(StoreFixtures):
    """``find_all`` and ``find_in`` sort by key fields; Python's order decides."""

    def test_string_keys_sort_by_code_point(self, make_store: StoreFactory) -> None:
        store = make_store()
        store.put_many({"id": key} for key in STRING_KEYS)
        assert keys(store.find_all()) == sorted(STRING_KEYS)
        assert keys(store.find_in("id", STRING_KEYS)) == sorted(STRING_KEYS)

    def test_int_keys_sort_numerically(self, make_store: StoreFactory) -> None:
        store = make_store(key_type=int)
        store.put_many({"id": key, "g": 1} for key in INT_KEYS)
        assert keys(store.find_all()) == sorted(INT_KEYS)
        assert keys(store.find_all({"g": 1})) == sorted(INT_KEYS)
        assert keys(store.find_in("g", [1])) == sorted(INT_KEYS)

    def test_two_field_keys_sort_by_the_first_then_the_second(
        self, make_store: StoreFactory
    ) -> None:
        store = make_store(id_field=("p", "s"), key_type=(str, int))
        pairs = [(p, s) for p in ("b", "a", "B", "é") for s in (10, -1, 9, 100)]
        store.put_many({"p": p, "s": s} for p, s in pairs)
        assert [(r["p"], r["s"]) for r in store.find_all()] == sorted(pairs)
        assert [r["s"] for r in store.find_all({"p": "a"})] == [-1, 9, 10, 100]
        assert [(r["p"], r["s"]) for r in store.find_in("s", [9, 10])] == sorted(
            (p, s) for p, s in pairs if s in (9, 10)
        )

    def test_int_then_string_keys_sort_by_both(self, make_store: StoreFactory) -> None:
        store = make_store(id_field=("p", "s"), key_type=(int, str))
        pairs = [(p, s) for p in (3, -3, 20) for s in ("b", "B", "a", "aa", "\U0001f600", "\uffee")]
        store.put_many({"p": p, "s": s} for p, s in pairs)
        assert [(r["p"], r["s"]) for r in store.find_all()] == sorted(pairs)
        assert [r["s"] for r in store.find_all({"p": 20})] == sorted({s for _, s in pairs})
