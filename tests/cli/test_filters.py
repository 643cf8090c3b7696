"""The filter syntax of ``find``/``ls``/``count``/``rm`` (``age>=30``, ``name^=Ad``, ...), read into
the conditions of ``kvstore``, applied on a real store, and ``--explain``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kvstore import begins_with, between, exists, ge, gt, le, lt, ne, one_of
from kvstore.cli.app import Declaration, parse_index
from kvstore.cli.filters import parse_filter
from kvstore.errors import InvalidArgument
from tests.cli.conftest import Run, lines

PLAIN = Declaration()
"""A kind keyed by a str ``id``, without indexes."""


@pytest.mark.parametrize(
    ("text", "field", "value"),
    [
        ("age=30", "age", 30),
        ("age>=30", "age", ge(30)),
        ("age>30", "age", gt(30)),
        ("age<30", "age", lt(30)),
        ("age<=30", "age", le(30)),
        ("x!=3", "x", ne(3)),
        ('x!="3"', "x", ne("3")),
        ("name^=Ad", "name", begins_with("Ad")),
        ("name^=12", "name", begins_with("12")),  # a prefix is text, never a number
        ("name^=a=b", "name", begins_with("a=b")),
        ("age:between=18,30", "age", between(18, 30)),
        ("day:between=2024-01-01,2024-12-31", "day", between("2024-01-01", "2024-12-31")),
        ('s:between=["a,b","c"]', "s", between("a,b", "c")),
        ("x:one_of=[1,2,3]", "x", one_of([1, 2, 3])),
        ("x:one_of=a,b", "x", one_of(["a", "b"])),
        ('x:one_of=1,"1",true', "x", one_of([1, "1", True])),
        ("x:one_of=solo", "x", one_of(["solo"])),
        ("x:exists", "x", exists()),
        ("x:eq=5", "x", 5),
        ("x:ne=5", "x", ne(5)),
        ("x:lt=5", "x", lt(5)),
        ("x:le=a", "x", le("a")),
        ("x:gt=5.5", "x", gt(5.5)),
        ("x:ge=-1", "x", ge(-1)),
        ("x:begins_with=ab", "x", begins_with("ab")),
        ("x=null", "x", None),
        ("x=", "x", ""),
        ("x=NaN", "x", "NaN"),  # not a record value: the text
        ("x=Infinity", "x", "Infinity"),
        ("x=[1, 2]", "x", [1, 2]),
        ('x={"a": [null]}', "x", {"a": [None]}),
        ("x=a b", "x", "a b"),
        ("x=>=", "x", ">="),  # the first operator decides
        ("id=007", "id", "007"),  # a str key is text
        ("id>=007", "id", ge("007")),
        ("id:one_of=1,2", "id", one_of(["1", "2"])),
        ("_private=1", "_private", 1),
    ],
)
def test_each_form_reads_into_its_condition(text: str, field: str, value: Any) -> None:
    parsed = parse_filter(text, PLAIN.field_type)
    assert parsed == (field, value)
    assert type(parsed[1]) is type(value)


def test_a_declared_type_decides_how_a_value_reads() -> None:
    declared = Declaration(
        ("team", "seq"), (str, int), (parse_index("by_zip:zip"), parse_index("by_n:n:int"))
    )
    assert parse_filter("seq=5", declared.field_type) == ("seq", 5)
    assert parse_filter("team=5", declared.field_type) == ("team", "5")
    assert parse_filter("zip=02134", declared.field_type) == ("zip", "02134")
    assert parse_filter("zip=12345", declared.field_type) == ("zip", "12345")
    assert parse_filter("n=12345", declared.field_type) == ("n", 12345)
    assert parse_filter("other=12345", declared.field_type) == ("other", 12345)


@pytest.mark.parametrize(
    "text",
    ["x", "=3", "x~3", "x:exists=1", "x:nope=1", "x:ge", "x:between=1", "x:between=1,2,3",
     "a.b=1", "é=1", "", ":exists"],
)  # fmt: skip
def test_what_is_not_a_filter_is_an_invalid_argument(text: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_filter(text, PLAIN.field_type)


PEOPLE: list[dict[str, Any]] = [
    {"id": "p1", "name": "Ada", "age": 36, "team": "a", "tags": ["x"]},
    {"id": "p2", "name": "Adele", "age": 29, "team": "b"},
    {"id": "p3", "name": "Bob", "age": 30, "team": "a", "nick": "bobby"},
    {"id": "p4", "name": "Cy", "age": "30", "team": "c"},  # a string never meets a number range
    {"id": "p5", "name": "Dee", "age": 41.5, "team": "b", "nick": None},
    {"id": "p6", "name": "ada", "age": True, "team": "a"},  # a bool is not a number
]

Predicate = Callable[[dict[str, Any]], bool]


def _number(value: Any) -> bool:
    return type(value) in (int, float)


CASES: list[tuple[tuple[str, ...], Predicate]] = [
    (("age>=30",), lambda r: _number(r["age"]) and r["age"] >= 30),
    (("age>30",), lambda r: _number(r["age"]) and r["age"] > 30),
    (("age<30",), lambda r: _number(r["age"]) and r["age"] < 30),
    (("age<=30",), lambda r: _number(r["age"]) and r["age"] <= 30),
    (("age:between=29,36",), lambda r: _number(r["age"]) and 29 <= r["age"] <= 36),
    (("age=30",), lambda r: _number(r["age"]) and r["age"] == 30),
    (('age="30"',), lambda r: r["age"] == "30"),
    (("name^=Ad",), lambda r: r["name"].startswith("Ad")),
    (("team!=a",), lambda r: r["team"] != "a"),
    (("team:one_of=a,c",), lambda r: r["team"] in ("a", "c")),
    (("nick:exists",), lambda r: r.get("nick") is not None),
    (("nick=null",), lambda r: r.get("nick") is None),
    (("team=a", "age>=30"), lambda r: r["team"] == "a" and _number(r["age"]) and r["age"] >= 30),
    (("name:between=B,Czz",), lambda r: "B" <= r["name"] <= "Czz"),
    (('tags=["x"]',), lambda r: r.get("tags") == ["x"]),
]


@pytest.fixture
def people(run: Run) -> None:
    assert run("ensure", "people").exit_code == 0
    stdin = "".join(json.dumps(person) + "\n" for person in PEOPLE)
    assert lines(run("put", "people", input=stdin).stdout) == [{"written": len(PEOPLE)}]


@pytest.mark.parametrize(("filters", "predicate"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_ls_count_find_and_rm_select_what_the_filters_say(
    run: Run, people: None, filters: tuple[str, ...], predicate: Predicate
) -> None:
    stored = [{k: v for k, v in p.items() if v is not None} for p in PEOPLE]
    expected = sorted(r["id"] for r in stored if predicate(r))
    assert expected, "each case selects something"
    listed = lines(run("ls", "people", *filters, "--sort").stdout)
    assert [r["id"] for r in listed] == expected
    assert lines(run("count", "people", *filters).stdout) == [{"count": len(expected)}]
    found = run("find", "people", *filters)
    if len(expected) == 1:
        assert [r["id"] for r in lines(found.stdout)] == expected
    else:
        assert found.stderr.startswith("error: MULTIPLE_FOUND: ")
    assert lines(run("rm", "people", *filters).stdout) == [{"removed": len(expected)}]
    left = [r["id"] for r in lines(run("ls", "people", "--sort").stdout)]
    assert left == sorted(r["id"] for r in stored if not predicate(r))


def test_explain_says_how_the_read_is_served_and_does_no_io(run: Run, db: Path) -> None:
    members = (
        "--id-field",
        "team_id",
        "--id-field",
        "seq",
        "--key-type",
        "str",
        "--key-type",
        "int",
    )
    indexes = ("--index", "by_email:email", "--index", "by_age:team,age:str,float")
    cases = [
        (("find", "people", "id=p1"), "key"),
        (("ls", "people"), "scan"),
        (("ls", "people", "age>=3"), "scan"),
        (("count", "people", "email=a@b", *indexes), "index:by_email"),
        (("rm", "people", "team=a", "age:between=1,5", *indexes), "index:by_age"),
        (("ls", "members", "team_id=t", *members), "partition"),
        (("ls", "members", "team_id=t", "seq>=3", *members), "partition"),
        (("find", "members", "team_id=t", "seq=3", *members), "key"),
        (("ls", "people", "email:exists", *indexes), "scan"),
    ]
    for args, served in cases:
        result = run(*args, "--explain")
        assert result.exit_code == 0, (args, result.output)
        assert lines(result.stdout) == [{"explain": served}], args
    assert not db.exists()  # no table, no file: nothing was read or made


def test_a_str_index_field_reads_its_values_as_text(run: Run) -> None:
    index = ("--index", "by_zip:zip")
    assert run("ensure", "places", *index).exit_code == 0
    run("put", "places", '{"id": "a", "zip": "12345"}', *index)
    run("put", "places", '{"id": "b", "zip": 12345}')  # another tool wrote a number
    assert [r["id"] for r in lines(run("ls", "places", "zip=12345", *index).stdout)] == ["a"]
    assert [r["id"] for r in lines(run("ls", "places", "zip=12345").stdout)] == ["b"]
