"""``--format json|jsonl|csv|table`` of ``find``/``ls``, and ``ls --limit/--cursor`` paging."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from kvstore import create_store
from tests.cli.conftest import Run, lines

RECORDS: list[dict[str, Any]] = [
    {"id": "a1", "name": "Ada", "score": 7, "tags": ["x", 1], "meta": {"k": None}},
    {"id": "a2", "name": 'Bob, "Jr"', "active": True},
    {"id": "a3", "name": "line\nbreak", "score": 12.5, "extra": "é"},
]


@pytest.fixture
def stored(run: Run) -> list[dict[str, Any]]:
    """RECORDS in the kind ``things``; as ``ls --sort`` prints them (key order)."""
    assert run("ensure", "things").exit_code == 0
    stdin = "".join(json.dumps(record) + "\n" for record in RECORDS)
    assert run("put", "things", input=stdin).exit_code == 0
    return lines(run("ls", "things", "--sort").stdout)


def _fields(records: list[dict[str, Any]]) -> list[str]:
    seen: list[str] = []
    for record in records:
        seen += [field for field in record if field not in seen]
    return seen


def test_json_is_one_array_of_the_jsonl_records(run: Run, stored: list[dict[str, Any]]) -> None:
    assert [r["id"] for r in stored] == ["a1", "a2", "a3"]
    assert json.loads(run("ls", "things", "--sort", "--format", "json").stdout) == stored
    assert json.loads(run("ls", "things", "id=nobody", "--format", "json").stdout) == []
    assert json.loads(run("find", "things", "id=a2", "--format", "json").stdout) == [stored[1]]
    assert lines(run("find", "things", "id=a2", "--format", "jsonl").stdout) == [stored[1]]


def test_csv_has_a_header_of_every_field_in_first_seen_order(
    run: Run, stored: list[dict[str, Any]]
) -> None:
    text = run("ls", "things", "--sort", "--format", "csv").stdout
    rows = list(csv.reader(io.StringIO(text)))
    columns = _fields(stored)
    assert rows[0] == columns
    assert len(rows) == 1 + len(stored)
    for row, record in zip(rows[1:], stored, strict=True):
        for column, cell in zip(columns, row, strict=True):
            value = record.get(column)
            if value is None:
                assert cell == ""
            elif isinstance(value, str):
                assert cell == value  # commas, quotes and newlines survive CSV's quoting
            else:
                assert json.loads(cell) == value  # numbers, bools, lists, dicts: JSON text
    assert run("ls", "things", "id=nobody", "--format", "csv").stdout == ""


def test_table_aligns_every_column_under_its_header(run: Run, stored: list[dict[str, Any]]) -> None:
    table = run("ls", "things", "--sort", "--format", "table").stdout.splitlines()
    columns = _fields(stored)
    header, rule, *rows = table
    assert header.split() == columns
    assert len(rule.split()) == len(columns)
    assert set(rule.replace(" ", "")) == {"-"}
    assert len(rows) == len(stored)
    starts = [header.index(column) for column in columns]
    for row, record in zip(rows, stored, strict=True):
        assert row.split()[0] == record["id"]
        assert "\n" not in row
    # A string column is left-aligned: each value starts where its header does.
    name = columns.index("name")
    assert [row[starts[name] :].split("  ")[0] for row in rows] == [
        "Ada",
        'Bob, "Jr"',
        "line\\nbreak",  # a control character is shown as its JSON escape, one line a row
    ]
    # A column of numbers is right-aligned: each value ends where the column does.
    score = columns.index("score")
    end = starts[score + 1] - 2 if score + 1 < len(starts) else len(rule)
    assert [row[:end].rstrip()[-4:].strip() for row in (rows[0], rows[2])] == ["7", "12.5"]


def test_format_is_checked_by_click(run: Run, stored: list[dict[str, Any]]) -> None:
    result = run("ls", "things", "--format", "xml")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: INVALID_ARGUMENT: Invalid value for '--format'")
    assert result.stdout == ""


KEY = ("--id-field", "team_id", "--id-field", "seq", "--key-type", "str", "--key-type", "int")
INDEX = ("--index", "by_group:group,score:str,int")


@pytest.fixture
def members(run: Run) -> list[dict[str, Any]]:
    """23 members of team t (and a few of team u), stored; team t's, in key order."""
    assert run("ensure", "members", *KEY, *INDEX).exit_code == 0
    records = [
        {"team_id": "t", "seq": n, "group": "gh"[n % 2], "score": n * 37 % 23} for n in range(23)
    ]
    records += [{"team_id": "u", "seq": n, "group": "g", "score": n} for n in range(4)]
    stdin = "".join(json.dumps(record) + "\n" for record in records)
    assert run("put", "members", *KEY, *INDEX, input=stdin).exit_code == 0
    return create_store(
        "members", backend="sqlite", id_field=("team_id", "seq"), key_type=(str, int)
    ).find_all({"team_id": "t"})


def _pages(run: Run, *args: str) -> list[list[dict[str, Any]]]:
    """Every page of ``ls members ARGS --limit 5``, following the cursors."""
    pages: list[list[dict[str, Any]]] = []
    cursor: list[str] = []
    for _ in range(20):
        result = run("ls", "members", *KEY, *args, "--limit", "5", *cursor)
        assert result.exit_code == 0, result.output
        *records, last = lines(result.stdout)
        assert set(last) == {"cursor"}  # the page's last line is its cursor
        pages.append(records)
        if last["cursor"] is None:
            assert "next cursor" not in result.stderr
            return pages
        assert result.stderr.splitlines() == [f"next cursor: {last['cursor']}"]
        cursor = ["--cursor", last["cursor"]]
    raise AssertionError("the cursor never ended")


def test_ls_pages_through_every_record_once(run: Run, members: list[dict[str, Any]]) -> None:
    pages = _pages(run, "team_id=t")
    assert [len(page) for page in pages] == [5, 5, 5, 5, 3]
    assert [record for page in pages for record in page] == members
    backwards = _pages(run, "team_id=t", "--descending")
    assert [record for page in backwards for record in page] == members[::-1]


def test_ls_pages_through_an_index_in_its_sort_order(
    run: Run, members: list[dict[str, Any]]
) -> None:
    explained = run("ls", "members", *KEY, *INDEX, "group=g", "score>=5", "--explain")
    assert lines(explained.stdout) == [{"explain": "index:by_group"}]
    assert lines(
        run("ls", "members", *KEY, *INDEX, "team_id=t", "group=g", "--explain").stdout
    ) == [
        {"explain": "partition"}  # the key comes first
    ]
    pages = _pages(run, *INDEX, "group=g", "score>=5")
    got = [record for page in pages for record in page]
    everyone = create_store(
        "members", backend="sqlite", id_field=("team_id", "seq"), key_type=(str, int)
    ).find_all({"group": "g"})
    wanted = [r for r in everyone if r["score"] >= 5]
    # The index's order: its sort field, then the key.
    assert got == sorted(wanted, key=lambda r: (r["score"], r["team_id"], r["seq"]))
    assert not _pages(run, "--index", "by_group:group,score:str,int", "group=nobody")[0]


def test_a_json_page_is_records_and_cursor(run: Run, members: list[dict[str, Any]]) -> None:
    first = json.loads(
        run("ls", "members", *KEY, "team_id=t", "--limit", "20", "--format", "json").stdout
    )
    assert set(first) == {"records", "cursor"}
    assert first["records"] == members[:20]
    rest = run("ls", "members", *KEY, "team_id=t", "--limit", "20", "--cursor", first["cursor"],
               "--format", "json")  # fmt: skip
    assert json.loads(rest.stdout) == {"records": members[20:], "cursor": None}
    table = run("ls", "members", *KEY, "team_id=t", "--limit", "2", "--format", "table")
    assert len(table.stdout.splitlines()) == 4  # header, rule, two rows: the cursor is not data
    assert table.stderr.startswith("next cursor: ")


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (("--limit", "5"), "OPERATION_REJECTED", "ls --limit pages through what a key"),
        (("seq>=3", "--limit", "5"), "OPERATION_REJECTED", "--explain"),
        (("team_id=t", "--limit", "0"), "INVALID_ARGUMENT", "--limit"),
        (("team_id=t", "--limit", "1001"), "INVALID_ARGUMENT", "--limit"),
        (("team_id=t", "--cursor", "abc"), "INVALID_ARGUMENT", "--cursor and --descending"),
        (("team_id=t", "--limit", "5", "--sort"), "INVALID_ARGUMENT", "--sort"),
        (("team_id=t", "--limit", "5", "--cursor", "AAAA"), "INVALID_ARGUMENT", "cursor"),
    ],
)
def test_paging_errors(
    run: Run, members: list[dict[str, Any]], args: tuple[str, ...], code: str, says: str
) -> None:
    result = run("ls", "members", *KEY, *args)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {code}: ")
    assert says in result.stderr
    assert result.stdout == ""


def test_a_cursor_continues_only_its_own_query(run: Run, members: list[dict[str, Any]]) -> None:
    first = lines(run("ls", "members", *KEY, "team_id=t", "--limit", "5").stdout)[-1]["cursor"]
    other = run("ls", "members", *KEY, "team_id=u", "--limit", "5", "--cursor", first)
    assert other.exit_code == 2
    assert other.stderr.startswith("error: INVALID_ARGUMENT: ")
