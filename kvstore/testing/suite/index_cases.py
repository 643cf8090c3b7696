"""The records, reads and declarations the index tests use: one index of each shape, records in
each index and in none, and each way explain may answer."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from kvstore import Index  # type: ignore[attr-defined, unused-ignore]
from kvstore.testing.suite.matching import Cond


def user_indexes() -> list[Any]:
    """One index of each shape: no sort field, a number sort field, int fields, str fields."""
    return [
        Index("by_email", "email"),
        Index("by_team", ("team", "joined"), key_type=(str, float)),
        Index("by_level", ("level", "rank"), key_type=(int, int)),
        Index("by_city", ("country", "city"), key_type=(str, str)),
    ]


def _users() -> list[dict[str, Any]]:
    """Records of ``user_indexes``: some in each index, some in none; ties in every sort field."""
    emails = ["ada@example.com", "bob@example.com", "\u00e9mile@example.com"]
    teams = ["t1", "t2", "\u4e2d"]
    joined: list[Any] = [2024, 2024.5, 2023.25, 2024, -1.5, 2**53 + 1, 1e20, 0]
    cities = ["Zurich", "a", "\u00e9vian", "Paris", "\u4e2d\u5c71", "evian", "Z"]
    users: list[dict[str, Any]] = []
    for i in range(32):
        user: dict[str, Any] = {"id": f"u{i:02}", "n": i}
        if i % 5 != 4:
            user["email"] = emails[i % 3]
        if i % 4 != 3:
            user["team"] = teams[i % 3]
            user["joined"] = joined[i % 8]
        elif i % 8 == 7:
            user["joined"] = 2024  # the sort field alone: in no index
        if i % 3 == 0:
            user["level"] = i % 4 - 1
            user["rank"] = (i * 7) % 5 - 2
        if i % 2 == 0:
            user["country"] = "fr" if i % 4 == 0 else "de"
            user["city"] = cities[i % 7]
        users.append(user)
    return users


USERS = _users()

# Filters served by each index, with what explain says; the results must be exactly a scan's.
EQUALITY_READS: list[tuple[dict[str, Any], str]] = [
    ({"email": "ada@example.com"}, "index:by_email"),
    ({"email": "\u00e9mile@example.com"}, "index:by_email"),
    ({"email": "nobody@example.com"}, "index:by_email"),
    ({"team": "t1"}, "index:by_team"),
    ({"team": "\u4e2d"}, "index:by_team"),
    ({"team": "t3"}, "index:by_team"),
    ({"level": 0}, "index:by_level"),
    ({"level": -1}, "index:by_level"),
    ({"country": "fr"}, "index:by_city"),
]
SORT_FIELD_READS: list[tuple[dict[str, Any], str]] = [
    ({"team": "t1", "joined": 2024}, "index:by_team"),
    ({"team": "t1", "joined": 2024.0}, "index:by_team"),
    ({"team": "t2", "joined": 2**53 + 1}, "index:by_team"),
    ({"team": "t1", "joined": Cond("ge", 2024.0)}, "index:by_team"),
    ({"team": "t1", "joined": Cond("gt", 2024)}, "index:by_team"),
    ({"team": "t1", "joined": Cond("lt", 2024.5)}, "index:by_team"),
    ({"team": "t2", "joined": Cond("le", 2024)}, "index:by_team"),
    ({"team": "t2", "joined": Cond("gt", float(2**53))}, "index:by_team"),
    ({"team": "t1", "joined": Cond("between", 2023, 2024.5)}, "index:by_team"),
    ({"team": "t1", "joined": Cond("between", 2024, 2024)}, "index:by_team"),
    ({"level": -1, "rank": Cond("between", -2, 0)}, "index:by_level"),
    ({"level": 2, "rank": Cond("gt", 0)}, "index:by_level"),
    ({"country": "fr", "city": Cond("begins_with", "\u00e9")}, "index:by_city"),
    ({"country": "fr", "city": Cond("begins_with", "e")}, "index:by_city"),
    ({"country": "fr", "city": Cond("lt", "a")}, "index:by_city"),
    ({"country": "de", "city": Cond("gt", "Z")}, "index:by_city"),
    ({"country": "de", "city": "Paris"}, "index:by_city"),
]
# Filters on the sort field that do not narrow the read, and filters on other fields.
FILTERED_READS: list[tuple[dict[str, Any], str]] = [
    ({"team": "t1", "joined": Cond("ne", 2024)}, "index:by_team"),
    ({"team": "t1", "joined": Cond("one_of", [2024, 1e20])}, "index:by_team"),
    ({"team": "t1", "joined": Cond("exists")}, "index:by_team"),
    ({"team": "t1", "joined": None}, "index:by_team"),
    ({"email": "ada@example.com", "n": Cond("gt", 10)}, "index:by_email"),
    ({"email": "bob@example.com", "team": None}, "index:by_email"),
    ({"team": "\u4e2d", "level": 0}, "index:by_team"),
    ({"team": "t1", "email": "bob@example.com"}, "index:by_email"),  # first declared wins
    ({"country": "de", "team": "t1", "level": 2}, "index:by_team"),
]
# Filters no key or index serves.
SCAN_READS: list[tuple[dict[str, Any], str]] = [
    ({}, "scan"),
    ({"n": 3}, "scan"),
    ({"email": None}, "scan"),
    ({"email": Cond("exists")}, "scan"),
    ({"email": Cond("one_of", ["ada@example.com"])}, "scan"),
    ({"email": Cond("begins_with", "ada")}, "scan"),
    ({"email": Cond("ne", "ada@example.com")}, "scan"),
    ({"team": Cond("begins_with", "t")}, "scan"),
    ({"joined": 2024}, "scan"),
    ({"rank": Cond("gt", 0)}, "scan"),
]
KEY_READS: list[tuple[dict[str, Any], str]] = [
    ({"id": "u03"}, "key"),
    ({"id": "u03", "email": "ada@example.com"}, "key"),
    ({"id": "u03", "email": "bob@example.com"}, "key"),
    ({"id": "nobody"}, "key"),
    ({"id": Cond("begins_with", "u0"), "email": "ada@example.com"}, "index:by_email"),
    ({"id": Cond("gt", "u20")}, "scan"),
]

# Explain only, on stores whose tables need not exist: (id_field, key_type, filters, answer).
EXPLAINED: list[tuple[Any, Any, dict[str, Any], str]] = [
    ("id", str, {"id": "a"}, "key"),
    ("id", str, {"id": "a", "email": "x"}, "key"),
    ("id", str, {"id": "a", "n": Cond("gt", 1)}, "key"),
    ("id", str, {"id": Cond("ne", "a")}, "scan"),
    ("id", str, {"id": Cond("one_of", ["a"])}, "scan"),
    ("id", str, {"id": Cond("begins_with", "a"), "email": "x"}, "index:by_email"),
    ("id", str, {"email": "x"}, "index:by_email"),
    ("id", str, {"email": "x", "team": "t"}, "index:by_email"),
    ("id", str, {"team": "t", "email": "x"}, "index:by_email"),
    ("id", str, {"team": "t"}, "index:by_team"),
    ("id", str, {"team": "t", "joined": Cond("ge", 1)}, "index:by_team"),
    ("id", str, {"team": "t", "email": None}, "index:by_team"),
    ("id", str, {"team": "t", "email": Cond("exists")}, "index:by_team"),
    ("id", str, {"email": None}, "scan"),
    ("id", str, {"email": Cond("ne", "x")}, "scan"),
    ("id", str, {"email": Cond("one_of", ["x"])}, "scan"),
    ("id", str, {"email": Cond("begins_with", "x")}, "scan"),
    ("id", str, {"joined": 1.5}, "scan"),
    ("id", str, {}, "scan"),
    ("id", str, {"n": 1}, "scan"),
    ("id", int, {"id": 7}, "key"),
    ("id", int, {"id": Cond("between", 1, 9)}, "scan"),
    (("team_id", "seq"), (str, int), {"team_id": "t", "seq": 1}, "key"),
    (("team_id", "seq"), (str, int), {"seq": 1, "team_id": "t", "email": "x"}, "key"),
    (("team_id", "seq"), (str, int), {"team_id": "t"}, "partition"),
    (("team_id", "seq"), (str, int), {"team_id": "t", "seq": Cond("gt", 1)}, "partition"),
    (("team_id", "seq"), (str, int), {"team_id": "t", "seq": Cond("one_of", [1])}, "partition"),
    (("team_id", "seq"), (str, int), {"team_id": "t", "seq": Cond("ne", 1)}, "partition"),
    (("team_id", "seq"), (str, int), {"team_id": "t", "email": "x"}, "partition"),
    (("team_id", "seq"), (str, int), {"team_id": "t", "team": "x"}, "partition"),
    (("team_id", "seq"), (str, int), {"seq": 1}, "scan"),
    (("team_id", "seq"), (str, int), {"seq": 1, "email": "x"}, "index:by_email"),
    (("team_id", "seq"), (str, int), {"team_id": Cond("begins_with", "t"), "seq": 1}, "scan"),
    (("team_id", "seq"), (str, int), {"team_id": Cond("ge", "t"), "team": "x"}, "index:by_team"),
    (("team_id", "seq"), (str, int), {}, "scan"),
]


def _explain_id(case: tuple[Any, Any, dict[str, Any], str]) -> str:
    return f"{case[0]}:{case[2]!r}"


# Index declarations create_store refuses.
BAD_INDEXES: dict[str, Callable[[], list[Any]]] = {
    "name of 2 characters": lambda: [Index("ab", "x")],
    "name of 33 characters": lambda: [Index("a" * 33, "x")],
    "empty name": lambda: [Index("", "x")],
    "name with a capital": lambda: [Index("By_x", "x")],
    "name starting with a digit": lambda: [Index("1by_x", "x")],
    "name starting with _": lambda: [Index("_by_x", "x")],
    "name with a dash": lambda: [Index("by-x", "x")],
    "name with a space": lambda: [Index("by x", "x")],
    "name with a non-ASCII letter": lambda: [Index("by_\u00e9", "x")],
    "name not a string": lambda: [Index(5, "x")],  # type: ignore[arg-type]
    "two indexes of one name": lambda: [Index("by_x", "x"), Index("by_x", "y")],
    "no field": lambda: [Index("by_x", ())],
    "three fields": lambda: [Index("by_x", ("a", "b", "c"), key_type=(str, str, str))],
    "bad field name": lambda: [Index("by_x", "bad-name")],
    "bad sort field name": lambda: [Index("by_x", ("a", "b.c"))],
    "field name of 64 characters": lambda: [Index("by_x", "a" * 64)],
    "empty field name": lambda: [Index("by_x", "")],
    "key_type bool": lambda: [Index("by_x", "x", key_type=bool)],
    "key_type bytes": lambda: [Index("by_x", "x", key_type=bytes)],
    "key_type Decimal": lambda: [Index("by_x", "x", key_type=Decimal)],
    "key_type list": lambda: [Index("by_x", "x", key_type=list)],
    "key_type a string": lambda: [Index("by_x", "x", key_type="str")],  # type: ignore[arg-type]
    "two key_types for one field": lambda: [Index("by_x", "x", key_type=(str, int))],
    "one key_type of two for two fields": lambda: [Index("by_x", ("a", "b"), key_type=(str,))],
    "three key_types for two fields": lambda: [
        Index("by_x", ("a", "b"), key_type=(str, int, float))
    ],
    "21 indexes": lambda: [Index(f"by_x{i}", f"x{i}") for i in range(21)],
}

GOOD_INDEXES: dict[str, Callable[[], list[Any]]] = {
    "name of 3 characters": lambda: [Index("abc", "x")],
    "name of 32 characters": lambda: [Index("a" * 32, "x")],
    "name of letters, digits and _": lambda: [Index("a1_b2_", "x")],
    "field name of 63 characters": lambda: [Index("by_x", "A" * 63)],
    "int field": lambda: [Index("by_x", "x", key_type=int)],
    "number field": lambda: [Index("by_x", "x", key_type=float)],
    "two fields": lambda: [Index("by_x", ("a", "b"), key_type=(str, float))],
    "two int fields": lambda: [Index("by_x", ("a", "b"), key_type=(int, int))],
    "20 indexes": lambda: [Index(f"by_x{i}", f"x{i}") for i in range(20)],
    "no index": lambda: [],
}

# Records the index typing rule refuses: (fields, whether an update's changes alone show it).
BAD_INDEXED: dict[str, tuple[dict[str, Any], bool]] = {
    "empty email": ({"email": ""}, True),
    "email of 1025 bytes": ({"email": "x" * 1025}, True),
    "email of 1025 bytes, multi-byte": ({"email": "\u00e9" * 512 + "x"}, True),
    "email an int": ({"email": 5}, True),
    "email a bool": ({"email": True}, True),
    "email a float": ({"email": 1.5}, True),
    "email a list": ({"email": ["a"]}, True),
    "email a dict": ({"email": {"a": "b"}}, True),
    "team without joined": ({"team": "t1"}, False),
    "team with joined None": ({"team": "t1", "joined": None}, True),
    "joined a string": ({"team": "t1", "joined": "2024"}, True),
    "joined a bool": ({"team": "t1", "joined": True}, True),
    "joined a list": ({"team": "t1", "joined": [2024]}, True),
    "team an int": ({"team": 1, "joined": 2024}, True),
    "empty team": ({"team": "", "joined": 1}, True),
    "level a float": ({"level": 1.5, "rank": 1}, True),
    "level a bool": ({"level": True, "rank": 1}, True),
    "level a string": ({"level": "1", "rank": 1}, True),
    "rank a float": ({"level": 1, "rank": 0.5}, True),
    "level without rank": ({"level": 1}, False),
    "city an int": ({"country": "fr", "city": 1}, True),
    "empty city": ({"country": "fr", "city": ""}, True),
    "city of 1025 bytes": ({"country": "fr", "city": "\u4e2d" * 341 + "xx"}, True),
}

# Records the rule accepts, with the index read that must find each (None: in no index).
GOOD_INDEXED: dict[str, tuple[dict[str, Any], dict[str, Any] | None]] = {
    "email of 1024 bytes": ({"email": "x" * 1024}, {"email": "x" * 1024}),
    "email of 1024 bytes of \u00e9": ({"email": "\u00e9" * 512}, {"email": "\u00e9" * 512}),
    "email of 256 four-byte characters": (
        {"email": "\U0001d11e" * 256},
        {"email": "\U0001d11e" * 256},
    ),
    "joined an int": ({"team": "t", "joined": 2024}, {"team": "t", "joined": 2024}),
    "joined a float": ({"team": "t", "joined": 2024.5}, {"team": "t", "joined": 2024.5}),
    "joined 1e20": ({"team": "t", "joined": 1e20}, {"team": "t", "joined": Cond("gt", 2**62)}),
    "joined the least int": (
        {"team": "t", "joined": -(2**63)},
        {"team": "t", "joined": Cond("lt", -(2**62))},
    ),
    "int64 extremes": (
        {"level": 2**63 - 1, "rank": -(2**63)},
        {"level": 2**63 - 1, "rank": -(2**63)},
    ),
    "city of 1024 bytes": (
        {"country": "fr", "city": "\u4e2d" * 341 + "x"},
        {"country": "fr", "city": Cond("begins_with", "\u4e2d\u4e2d")},
    ),
    "no index field": ({"other": 1}, None),
    "the sort field without its partition field": ({"joined": 2024.5}, None),
    "rank without level": ({"rank": 3}, None),
    "team None": ({"team": None, "joined": 1.5}, None),
}
