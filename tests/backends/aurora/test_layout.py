"""Tables made by the migration helper: real columns for some fields, ``doc`` for the rest."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from kvstore import ConfigError, InvalidArgument, NotFound, Store, create_store
from kvstore.testing import unique_kind
from kvstore_aurora.migrate import create_kind_table, sqlalchemy_url
from kvstore_aurora.settings import PostgresSettings
from tests.backends.aurora.helpers import connect

COLUMNS = {
    "name": "text",
    "age": "bigint",
    "price": "numeric",
    "score": "double precision",
    "active": "boolean",
    "meta": "jsonb",
}


@pytest.fixture(scope="module")
def engine(pg_settings: PostgresSettings) -> Iterator[Any]:
    import sqlalchemy

    made = sqlalchemy.create_engine(sqlalchemy_url(pg_settings))
    yield made
    made.dispose()


@pytest.fixture
def make_table(engine: Any, pg_settings: PostgresSettings) -> Any:
    """Create a kind's table with ``create_kind_table`` (as a migration would); return a store."""
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    def make(
        columns: dict[str, Any], *, doc: bool = True, id_fields: Any = "id", key_types: Any = str
    ) -> Store:
        kind = unique_kind("lay")
        with engine.begin() as connection:
            op = Operations(MigrationContext.configure(connection))
            create_kind_table(op, kind, id_fields, key_types, columns=columns, doc=doc)
        return create_store(
            kind, backend="aurora", settings=pg_settings, id_field=id_fields, key_type=key_types
        )

    return make


def raw_row(settings: PostgresSettings, store: Store, key: str) -> dict[str, Any]:
    with connect(settings) as connection:
        cursor = connection.execute(f'SELECT * FROM "{store.kind}" WHERE id = %s', (key,))
        row = cursor.fetchone()
        assert row is not None
        assert cursor.description is not None
        return {column.name: value for column, value in zip(cursor.description, row, strict=True)}


def test_fields_with_columns_go_to_their_columns(
    make_table: Any, pg_settings: PostgresSettings
) -> None:
    store = make_table(COLUMNS)
    record = {
        "id": "a",
        "name": "Ada",
        "age": 36,
        "price": 0.1,
        "score": 2.5,
        "active": True,
        "meta": {"x": [1, 2.5]},
        "other": [1, "b"],
    }
    assert store.put(record) == record
    assert store.find({"id": "a"}) == record
    row = raw_row(pg_settings, store, "a")
    for field in COLUMNS:
        assert row[field] is not None, field
    assert row["doc"] == {"other": [1, "b"]}
    for field, value in record.items():
        assert store.find({field: value}) == record, field
        assert store.find_in(field, [value, "zz"]) == [record], field
    assert store.find_in("age", [36, 37]) == [record]
    assert store.find_in("price", [0.1]) == [record]
    second = record | {"id": "b", "meta": [None, "m"]}
    assert store.put_many([second]) == 1
    assert store.find({"id": "b"}) == second
    assert raw_row(pg_settings, store, "b") == raw_row(pg_settings, store, "a") | {
        "id": "b",
        "meta": [None, "m"],
    }


def test_absent_fields_are_null_columns_and_filters_see_them_absent(make_table: Any) -> None:
    store = make_table(COLUMNS)
    assert store.put_many([{"id": "x"}, {"id": "y", "age": 1}]) == 2
    assert store.find_all() == [{"id": "x"}, {"id": "y", "age": 1}]
    store.truncate(force=True)
    store.put({"id": "a", "name": "Ada"})
    assert store.find({"id": "a"}) == {"id": "a", "name": "Ada"}
    assert store.find({"age": None}) == {"id": "a", "name": "Ada"}
    assert store.update({"id": "a", "name": None, "age": 3}) == {"id": "a", "age": 3}
    assert store.find_in("name", [None]) == [{"id": "a", "age": 3}]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", 1),
        ("age", "3"),
        ("age", 2.5),
        ("age", True),
        ("price", True),
        ("price", "1"),
        ("score", 2**53 + 1),
        ("score", "x"),
        ("active", 1),
    ],
)
def test_a_value_that_does_not_fit_its_column_is_invalid(
    make_table: Any, field: str, value: Any
) -> None:
    store = make_table(COLUMNS)
    with pytest.raises(InvalidArgument, match=field):
        store.put({"id": "a", field: value})
    store.put({"id": "b"})
    with pytest.raises(InvalidArgument, match=field):
        store.update({"id": "b", field: value})
    with pytest.raises(InvalidArgument, match=field):
        store.put_many([{"id": "c"}, {"id": "d", field: value}])
    assert store.find_all() == [{"id": "b"}]  # nothing of the refused chunk was written
    # A filter value the column cannot hold matches nothing.
    assert store.find_all({field: value}) == []
    assert store.find_in(field, [value]) == []


def test_numbers_in_real_columns_read_back_canonical(make_table: Any) -> None:
    store = make_table(COLUMNS)
    record = {"id": "a", "price": 1e20, "score": 3, "age": -(2**63)}
    assert store.put(record) == record
    found = store.find({"id": "a"})
    assert found == record
    assert type(found["price"]) is float
    assert type(found["score"]) is int


def test_put_many_stores_the_rows_put_stores_and_refuses_what_put_refuses(
    make_table: Any, pg_settings: PostgresSettings
) -> None:
    import sqlalchemy as sa

    store = make_table(COLUMNS | {"small": sa.SmallInteger(), "money": sa.Numeric(6, 2)})
    record = {
        "id": "a",
        "name": "Ada",
        "age": -(2**63),
        "price": 1e20,
        "score": 3,
        "active": False,
        "meta": {"m": [1.5, None, "é"]},
        "small": -32768,
        "money": 1234.5,
        "other": ["x", {"y": 0.1}],
    }
    store.put(record)
    assert store.put_many([record | {"id": "b"}]) == 1
    assert raw_row(pg_settings, store, "b") == raw_row(pg_settings, store, "a") | {"id": "b"}
    assert store.find({"id": "b"}) == record | {"id": "b"}
    for field, value in [("small", 32768), ("money", 12345.6), ("money", 1.234)]:
        with pytest.raises(InvalidArgument, match=field):
            store.put({"id": "c", field: value})
        with pytest.raises(InvalidArgument, match=field):
            store.put_many([{"id": "c"}, {"id": "d", field: value}])
        assert store.count() == 2


def test_an_integer_key_column_refuses_keys_past_its_range(pg_settings: PostgresSettings) -> None:
    kind = unique_kind("lay")
    with connect(pg_settings) as connection:
        connection.execute(
            f"CREATE TABLE {kind} (id integer PRIMARY KEY, doc jsonb NOT NULL DEFAULT '{{}}')"
        )
    store = create_store(kind, backend="aurora", settings=pg_settings, key_type=int)
    assert store.put_many([{"id": 2**31 - 1}, {"id": -(2**31), "n": 1}]) == 2
    with pytest.raises(InvalidArgument, match="'id'"):
        store.put_many([{"id": 1}, {"id": 2**31}])
    with pytest.raises(InvalidArgument, match="'id'"):
        store.put({"id": 2**31})
    assert [r["id"] for r in store.find_all()] == [-(2**31), 2**31 - 1]
    # A key the column cannot hold names no record (it is not an error to look for it).
    with pytest.raises(NotFound):
        store.find({"id": 2**31})
    assert store.find({"id": 2**31 - 1}) == {"id": 2**31 - 1}


def test_a_table_without_doc_rejects_other_fields(make_table: Any) -> None:
    store = make_table({"name": "text"}, doc=False)
    assert store.put({"id": "a", "name": "Ada"}) == {"id": "a", "name": "Ada"}
    with pytest.raises(InvalidArgument, match=rf"'other'.*{store.kind}"):
        store.put({"id": "b", "other": 1})
    with pytest.raises(InvalidArgument, match="other"):
        store.update({"id": "a", "other": 1})
    assert store.find_all({"other": 1}) == []
    assert store.find_all({"other": None}) == [{"id": "a", "name": "Ada"}]
    assert store.put_many([{"id": "c", "name": "C"}]) == 1
    with pytest.raises(InvalidArgument, match="other"):
        store.put_many([{"id": "d", "name": "D"}, {"id": "e", "other": 1}])
    assert store.count() == 2


def test_composite_keys_with_real_columns(make_table: Any) -> None:
    store = make_table({"name": "text"}, id_fields=("team_id", "seq"), key_types=(str, int))
    store.put_many({"team_id": "t", "seq": n, "name": f"m{n}", "x": n} for n in range(3))
    assert [r["seq"] for r in store.find_all({"team_id": "t"})] == [0, 1, 2]
    assert store.find({"name": "m1"}) == {"team_id": "t", "seq": 1, "name": "m1", "x": 1}


def test_a_key_column_of_the_wrong_type_is_a_config_error(
    make_table: Any, pg_settings: PostgresSettings
) -> None:
    store = make_table({})
    wrong = create_store(store.kind, backend="aurora", settings=pg_settings, key_type=int)
    with pytest.raises(ConfigError, match="key_type"):
        wrong.find({"id": 1})


def test_a_missing_table_is_a_config_error_naming_the_migration(
    pg_settings: PostgresSettings,
) -> None:
    store = create_store(unique_kind("gone"), backend="aurora", settings=pg_settings)
    for call in (lambda: store.find({"id": "a"}), lambda: store.put({"id": "a"}), store.count):
        with pytest.raises(ConfigError, match="migration"):
            call()


def test_a_dropped_table_is_noticed(pg_settings: PostgresSettings) -> None:
    store = create_store(unique_kind("drop"), backend="aurora", settings=pg_settings)
    store.ensure()
    store.put({"id": "a"})
    with connect(pg_settings) as connection:
        connection.execute(f'DROP TABLE "{store.kind}"')
    with pytest.raises(ConfigError):
        store.find({"id": "a"})
    store.ensure()
    assert store.count() == 0


def test_db_schema_is_respected(pg_settings: PostgresSettings) -> None:
    schema = "Kv Schema"
    with connect(pg_settings) as connection:
        connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    kind = unique_kind("sch")
    store = create_store(kind, backend="aurora", settings=pg_settings._replace(schema=schema))
    store.ensure()
    store.put({"id": "a"})
    with connect(pg_settings) as connection:
        found = connection.execute(
            "SELECT table_schema FROM information_schema.tables WHERE table_name = %s", (kind,)
        ).fetchall()
    assert found == [(schema,)]
    other = create_store(kind, backend="aurora", settings=pg_settings)
    with pytest.raises(ConfigError):
        other.count()


def test_numbers_written_by_other_tools_read_back_canonical(
    pg_settings: PostgresSettings,
) -> None:
    store = create_store(unique_kind("foreign"), backend="aurora", settings=pg_settings)
    store.ensure()
    doc = (
        '{"a": 2.0, "b": 9007199254740993.0, "c": 1e20, "d": 100000000000000000000,'
        ' "e": 0.1, "f": [3.000, -0.0], "g": 9223372036854775808, "h": null}'
    )
    with connect(pg_settings) as connection:
        connection.execute(
            f'INSERT INTO "{store.kind}" (id, doc) VALUES (%s, %s::jsonb)', ("x", doc)
        )
    found = store.find({"id": "x"})
    expected = {
        "id": "x",
        "a": 2,
        "b": 2**53 + 1,
        "c": 1e20,
        "d": 1e20,
        "e": 0.1,
        "f": [3, 0],
        "g": float(2**63),
    }
    assert found == expected
    assert [type(found[k]) for k in "abcdeg"] == [int, int, float, float, float, float]
    assert [type(v) for v in found["f"]] == [int, int]


def test_a_doc_field_named_like_the_key_column_never_hides_the_key(
    pg_settings: PostgresSettings,
) -> None:
    store = create_store(unique_kind("foreign"), backend="aurora", settings=pg_settings)
    store.ensure()
    with connect(pg_settings) as connection:
        connection.execute(
            f'INSERT INTO "{store.kind}" (id, doc) VALUES (%s, %s::jsonb), (%s, %s::jsonb)',
            ("x", '{"id": "other", "a": 1}', "y", '{"a": null, "id": null}'),
        )
    x, y = {"id": "x", "a": 1}, {"id": "y"}
    assert store.find({"id": "x"}) == x
    found = store.find_in("id", ["x", "y"])  # a bounded read, decoded row by row
    assert found == [x, y]
    assert [next(iter(record)) for record in found] == ["id", "id"]
    streamed = sorted(store.iter_all(), key=lambda record: str(record["id"]))
    assert streamed == [x, y]
    assert [next(iter(record)) for record in streamed] == ["id", "id"]  # key fields first


def test_a_numeric_column_with_a_scale_takes_only_what_it_stores_exactly(make_table: Any) -> None:
    import sqlalchemy as sa

    store = make_table({"price": sa.Numeric(5, 2)})
    assert store.put({"id": "a", "price": 123.45}) == {"id": "a", "price": 123.45}
    assert store.find({"price": 123.45}) == {"id": "a", "price": 123.45}
    for unfit in (1.234, 1234.5, 10**4):
        with pytest.raises(InvalidArgument, match="price"):
            store.put({"id": "b", "price": unfit})


def test_columns_of_other_types_are_left_alone(
    make_table: Any, pg_settings: PostgresSettings, engine: Any
) -> None:
    import sqlalchemy as sa

    store = make_table({"stamp": sa.DateTime()})
    with engine.begin() as connection:
        connection.exec_driver_sql(f'ALTER TABLE "{store.kind}" ALTER stamp SET DEFAULT now()')
    assert store.put({"id": "a", "x": 1}) == {"id": "a", "x": 1}
    assert store.find({"id": "a"}) == {"id": "a", "x": 1}
    assert raw_row(pg_settings, store, "a")["stamp"] is not None  # its default, untouched
    with pytest.raises(InvalidArgument, match="stamp"):
        store.put({"id": "b", "stamp": "2024-01-01"})


def test_a_not_null_column_needs_its_field(make_table: Any, engine: Any) -> None:
    store = make_table({"name": "text"})
    with engine.begin() as connection:
        connection.exec_driver_sql(f'ALTER TABLE "{store.kind}" ALTER name SET NOT NULL')
    with pytest.raises(InvalidArgument):
        store.put({"id": "a"})
    assert store.put({"id": "a", "name": "n"}) == {"id": "a", "name": "n"}


def test_an_int_key_from_the_helper_is_a_plain_bigint(
    make_table: Any, pg_settings: PostgresSettings
) -> None:
    store = make_table({}, key_types=int)
    with connect(pg_settings) as connection:
        row = connection.execute(
            "SELECT data_type, column_default FROM information_schema.columns"
            " WHERE table_name = %s AND column_name = 'id'",
            (store.kind,),
        ).fetchone()
    assert row == ("bigint", None)  # not a BIGSERIAL: keys are given, never generated
    assert store.put({"id": 7}) == {"id": 7}


def test_numeric_precision_and_scale_are_read_from_the_type_modifier(
    pg_settings: PostgresSettings,
) -> None:
    import re

    from kvstore_aurora.layout import _precision_scale

    kind = unique_kind("lay")
    types = ["numeric(6,2)", "numeric(38,10)", "numeric(1,0)", "numeric(1000,1000)", "numeric"]
    with connect(pg_settings) as connection:
        if connection.info.server_version >= 150000:
            types.append("numeric(5,-2)")  # a negative scale: PostgreSQL 15 and later
        columns = ", ".join(f"c{i} {t}" for i, t in enumerate(types))
        connection.execute(f"CREATE TABLE {kind} (id text PRIMARY KEY, {columns})")
        rows = connection.execute(
            "SELECT format_type(atttypid, NULL), atttypmod, format_type(atttypid, atttypmod)"
            " FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 1"
            " ORDER BY attnum",
            (kind,),
        ).fetchall()
    assert len(rows) == len(types)
    for data_type, typmod, shown in rows:
        found = re.fullmatch(r"numeric\((\d+),(-?\d+)\)", shown)
        expected = (int(found[1]), int(found[2])) if found else (None, None)
        assert _precision_scale(data_type, typmod) == expected, shown
    assert _precision_scale("bigint", -1) == (None, None)
