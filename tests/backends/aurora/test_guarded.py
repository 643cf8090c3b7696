"""Guarded writes in SQL: increments computed exactly by the number rules, the size rule kept by a
bound with a checked fallback, increments on real columns, and transactions that need the
fallback."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from kvstore import (
    InvalidArgument,
    NotFound,
    Store,
    create_store,
    increment,
    one_of,
    transaction,
)
from kvstore.testing import unique_kind
from kvstore.testing.suite.helpers import typed
from kvstore.values import MAX_ITEM_SIZE, item_size
from kvstore.writes import add_numbers
from kvstore_aurora.settings import PostgresSettings
from tests.backends.aurora.helpers import StatementCounter, connect

STORED: list[Any] = [
    0,
    1,
    -1,
    3,
    2**63 - 1,
    -(2**63),
    2**53 + 1,
    2**63 - 1024,  # plus a fraction: a double past 2**53, whose shortest text is not exact
    0.1,
    0.2,
    1.5,
    1e20,
    -1e-5,
    1e125,
    9.99999999999999e125,
    1e-130,
    123456789012345678.5,
    "x",
    True,
    [1],
    {"n": 1},
]
AMOUNTS: list[Any] = [
    1,
    -1,
    2,
    0.5,
    0.1,
    -0.2,
    2**63 - 1,
    -(2**63),
    1e-130,
    1e125,
    1e20,
    2.5,
    1e-20,
]


@pytest.fixture
def pair(pg_settings: PostgresSettings) -> tuple[Store, Store]:
    kind = unique_kind("guard")
    aurora = create_store(kind, backend="aurora", settings=pg_settings)
    memory = create_store(kind, backend="memory")
    aurora.ensure()
    memory.ensure()
    return aurora, memory


def _outcome(store: Store, changes: dict[str, Any]) -> Any:
    try:
        return ("ok", typed(store.update(changes)))
    except (InvalidArgument, NotFound) as exc:
        return ("error", type(exc).__name__)


def test_increments_follow_the_number_rules_exactly(pair: tuple[Store, Store]) -> None:
    aurora, memory = pair
    records = [{"id": f"r{i:02}", "n": value} for i, value in enumerate(STORED)]
    records.append({"id": "absent"})
    for store in pair:
        store.put_many(records)
    for record, amount in itertools.product(records, AMOUNTS):
        changes = {"id": record["id"], "n": increment(amount)}
        expected = _outcome(memory, changes)
        assert _outcome(aurora, changes) == expected, (record, amount)
        # The stored number is the same too: an equality filter on it finds the same records.
        current = memory.find({"id": record["id"]})
        if "n" in current:
            value = current["n"]
            assert typed(aurora.find_all({"n": value})) == typed(memory.find_all({"n": value}))


def test_increments_in_transactions_follow_the_number_rules_exactly(
    pair: tuple[Store, Store],
) -> None:
    # A transaction's int increments of ints are summed in bigint, the others by the full form
    # of the rules; a run that fails with a data exception runs again in the full form. Two
    # increments a transaction, sharing one statement (no guard) or one each (a guard).
    aurora, memory = pair
    records = [{"id": f"r{i:02}", "n": value} for i, value in enumerate(STORED)]
    records.append({"id": "absent"})
    amounts = [1, -1, 2**63 - 1, 0.5]

    def outcome(store: Store, first: dict[str, Any], amount: Any, guarded: bool) -> Any:
        try:
            with transaction() as tx:
                for key, step in (("zero", 1), (first["id"], amount)):
                    expect = {"id": key} if guarded else None  # it holds, and binds a value
                    tx.update(store, {"id": key, "n": increment(step)}, expect=expect)
        except (InvalidArgument, NotFound) as exc:
            return ("error", type(exc).__name__, exc.index)
        return typed(store.find_all({"id": one_of([first["id"], "zero"])}))

    for store in pair:
        store.put_many([*records, {"id": "zero", "n": 0}])
    for record, amount, guarded in itertools.product(records, amounts, (False, True)):
        expected = outcome(memory, record, amount, guarded)
        assert outcome(aurora, record, amount, guarded) == expected, (record, amount, guarded)


EXPECTED: list[Any] = [
    "x",
    "X",
    "",
    "é",
    "😀",
    'q"uote\\',
    "1",
    "true",
    1,
    1.0,
    0.1,
    True,
    False,
    [1],
    [1, 2],
    {"n": 1},
    {},
]
"""Operands of ``expect`` equalities: strings (sent as text to a statement that finds its row by
key), and every other class (sent as JSON)."""


def test_expect_equalities_on_doc_fields_match_exactly_as_in_memory(
    pair: tuple[Store, Store],
) -> None:
    """A guarded write finds its row by key, so its equalities are the bare comparison (no
    containment, a string as text): still typed and exact, as the memory backend decides."""
    from kvstore import ConditionFailed

    def outcome(store: Store, operation: str, key: str, operand: Any) -> Any:
        try:
            if operation == "update":
                return ("ok", typed(store.update({"id": key, "seen": 1}, expect={"v": operand})))
            store.put({"id": key, "v": operand, "put": True}, expect={"v": operand})
            return ("ok", typed(store.find({"id": key})))
        except ConditionFailed:
            return ("refused", typed(store.find({"id": key})))

    records = [{"id": f"r{i:02}", "v": value} for i, value in enumerate([*STORED, *EXPECTED])]
    records.append({"id": "absent"})
    for record, operand, operation in itertools.product(records, EXPECTED, ("update", "put")):
        for store in pair:
            store.put_many(records)
        expected = outcome(pair[1], operation, record["id"], operand)
        assert outcome(pair[0], operation, record["id"], operand) == expected, (record, operand)


def test_a_foreign_integral_number_with_a_fraction_increments_as_an_int(
    pg_settings: PostgresSettings, pair: tuple[Store, Store]
) -> None:
    aurora, _memory = pair
    with connect(pg_settings) as connection:
        connection.execute(
            f"INSERT INTO \"{aurora.kind}\" (id, doc) VALUES ('f', '{{\"n\": 2.0}}')"
        )
    assert typed(aurora.update({"id": "f", "n": increment(3)})) == typed({"id": "f", "n": 5})
    assert aurora.find({"n": 5}) == {"id": "f", "n": 5}
    with connect(pg_settings) as connection:
        row = connection.execute(
            f"SELECT doc::text FROM \"{aurora.kind}\" WHERE id = 'f'"
        ).fetchone()
    assert row == ('{"n": 5}',)


FOREIGN = ["1e2", "5.0", "-0", "0.50", "12345678901234567890", "-9223372036854775808", "null"]
"""JSON numbers as other tools write them into ``doc`` (kvstore writes none of these texts)."""


@pytest.mark.parametrize("text", [*FOREIGN, '"5"', "true", "[1]"])
def test_the_sum_in_bigint_stores_what_the_full_form_of_the_rules_stores(
    counted: tuple[Store, StatementCounter], text: str
) -> None:
    # An int increment on a connection in no transaction is first summed in bigint; in the
    # caller's transaction the full form runs alone. Both must leave the same document.
    store, counter = counted
    connection = counter.connection

    def outcome(key: str, amount: int) -> Any:
        connection.execute(
            f'INSERT INTO "{store.kind}" (id, doc) VALUES (%s, %s::jsonb) '
            "ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc",
            (key, f'{{"n": {text}, "x": 1}}'),
        )
        try:
            updated = store.update({"id": key, "n": increment(amount)})
            found: Any = typed({field: updated[field] for field in updated if field != "id"})
        except InvalidArgument:
            found = "InvalidArgument"
        stored = connection.execute(
            f'SELECT doc::text FROM "{store.kind}" WHERE id = %s', (key,)
        ).fetchone()
        return found, stored

    for amount in (1, -1, 2**63 - 1, -(2**63)):
        idle = outcome("idle", amount)
        with connection.transaction():
            full = outcome("full", amount)
        assert idle == full, amount


@pytest.fixture
def counted(pg_settings: PostgresSettings) -> Iterator[tuple[Store, StatementCounter]]:
    connection = connect(pg_settings)
    store = create_store(
        unique_kind("guard"), backend="aurora", settings=pg_settings, connection=connection
    )
    store.ensure()
    yield store, StatementCounter(connection)
    connection.close()


def _record_of_size(size: int, key: str = "k") -> dict[str, Any]:
    base = {"id": key, "blob": ""}
    return {"id": key, "blob": "x" * (size - item_size(base))}


def test_an_update_near_the_size_limit_goes_through_the_checked_fallback(
    counted: tuple[Store, StatementCounter],
) -> None:
    store, counter = counted
    big = _record_of_size(300_000)
    store.put(big)
    room = MAX_ITEM_SIZE - 1 - item_size(big) - len("more")
    with counter.counting() as sent:
        updated = store.update({"id": "k", "more": "y" * room})
    assert item_size(updated) == MAX_ITEM_SIZE - 1
    assert store.find({"id": "k"}) == updated
    # The bounded statement wrote nothing and the record read says why (the size bound); then
    # BEGIN + UPDATE in one round trip, and COMMIT once core's check passed.
    assert sent == [5, 4]
    with pytest.raises(InvalidArgument, match="409600"):
        store.update({"id": "k", "more": "y" * (room + 1)})
    assert store.find({"id": "k"}) == updated
    with pytest.raises(InvalidArgument):
        store.update({"id": "k", "n": increment(1)})  # one byte more breaks the rule too
    assert store.find({"id": "k"}) == updated
    # A small record never needs the fallback: one statement.
    store.put({"id": "small"})
    with counter.counting() as sent:
        store.update({"id": "small", "pad": "z" * 150_000})
    assert sent == [1, 1]


def test_a_transaction_with_an_update_near_the_limit(
    counted: tuple[Store, StatementCounter],
) -> None:
    store, _counter = counted
    big = _record_of_size(300_000)
    store.put_many([big, {"id": "other", "n": 1}])
    room = MAX_ITEM_SIZE - 1 - item_size(big) - len("more")
    with transaction() as tx:
        tx.update(store, {"id": "other", "n": increment(1)})
        tx.update(store, {"id": "k", "more": "y" * room})
    assert store.find({"id": "k"})["more"] == "y" * room
    assert store.find({"id": "other"}) == {"id": "other", "n": 2}
    tx = transaction()
    with pytest.raises(InvalidArgument) as info, tx as block:  # noqa: PT012
        block.update(store, {"id": "other", "n": increment(1)})
        block.update(store, {"id": "k", "more": "y" * (room + 1)})
    assert info.value.index == 1
    assert store.find({"id": "other"}) == {"id": "other", "n": 2}
    assert store.find({"id": "k"})["more"] == "y" * room


def test_an_update_of_more_increments_than_a_function_takes_arguments(
    pair: tuple[Store, Store],
) -> None:
    # jsonb_build_object takes 100 arguments: 50 fields; 120 go in three of them. (DynamoDB's
    # expressions hold fewer: the contract suite stays within them.)
    for store in pair:
        store.put({"id": "a", **{f"n{i}": i for i in range(0, 120, 2)}})
    changes = {"id": "a", **{f"n{i}": increment(i) for i in range(120)}}
    aurora, memory = pair
    assert typed(aurora.update(changes)) == typed(memory.update(changes))
    assert typed(aurora.find({"id": "a"})) == typed(memory.find({"id": "a"}))


def test_increments_on_real_columns(pg_settings: PostgresSettings) -> None:
    from alembic.migration import MigrationContext
    from alembic.operations import Operations
    from sqlalchemy import Numeric, create_engine

    from kvstore_aurora.migrate import create_kind_table, sqlalchemy_url

    kind = unique_kind("guardcol")
    engine = create_engine(sqlalchemy_url(pg_settings))
    columns = {
        "age": "bigint",
        "price": "numeric",
        "score": "double precision",
        "money": Numeric(6, 2),
        "name": "text",
        "meta": "jsonb",
        "done": "boolean",
    }
    with engine.begin() as connection:
        create_kind_table(Operations(MigrationContext.configure(connection)), kind, columns=columns)
    engine.dispose()
    store = create_store(kind, backend="aurora", settings=pg_settings)
    store.put({"id": "a", "age": 3, "price": 0.1, "score": 0.1, "money": 1.25, "name": "x"})
    assert store.update({"id": "a", "age": increment(2), "price": increment(0.2)}) == {
        "id": "a",
        "age": 5,
        "price": 0.3,
        "score": 0.1,
        "money": 1.25,
        "name": "x",
    }
    # Exactly, in decimal, as kvstore.writes.add_numbers says: 0.3, not the double 0.1 + 0.2.
    assert store.update({"id": "a", "score": increment(0.2)})["score"] == add_numbers(0.1, 0.2, "")
    assert store.update({"id": "a", "money": increment(1)})["money"] == 2.25
    assert store.update({"id": "a", "meta": increment(1)})["meta"] == 1
    before = store.find({"id": "a"})
    for field, amount in [("age", 0.5), ("money", 0.001), ("score", 2**60), ("age", 2**63 - 1)]:
        with pytest.raises(InvalidArgument, match=field):
            store.update({"id": "a", field: increment(amount)})
        assert store.find({"id": "a"}) == before, field
    with pytest.raises(InvalidArgument, match="name"):
        store.update({"id": "a", "name": increment(1)})  # a string is no number
    store.put({"id": "b"})
    with pytest.raises(InvalidArgument, match="name"):
        store.update({"id": "b", "name": increment(1)})  # a number does not fit a text column
    with pytest.raises(InvalidArgument, match="done"):
        store.update({"id": "b", "done": increment(1)})  # ... nor a boolean one
    store.put({"id": "c", "done": True})
    with pytest.raises(InvalidArgument, match="done"):
        store.update({"id": "c", "done": increment(1)})  # a boolean is no number
    assert store.find_in("id", ["b", "c"]) == [{"id": "b"}, {"id": "c", "done": True}]
    assert store.update({"id": "b", "age": increment(-1), "other": increment(2)}) == {
        "id": "b",
        "age": -1,
        "other": 2,
    }


def test_the_size_bound_is_never_below_a_records_item_size(pg_settings: PostgresSettings) -> None:
    """What the update's bound assumes: a value's item size is at most twice its JSON text as
    PostgreSQL prints jsonb (worst cases: one-digit numbers and empty lists in lists)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from psycopg.types.json import Jsonb

    text = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
    scalars = st.one_of(
        st.integers(-(2**63), 2**63 - 1),
        st.sampled_from([0, 1, -1, 5, 10, 0.5, 1e-130, 1e125, -1e-5, 123.456]),
        st.floats(allow_nan=False, allow_infinity=False, min_value=-1e120, max_value=1e120).filter(
            lambda x: x == 0 or abs(x) >= 1e-130
        ),
        st.booleans(),
        st.text(text, max_size=5),
        st.none(),
    )
    values = st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=6)
            | st.dictionaries(st.text(text, min_size=1, max_size=3), inner, max_size=4)
        ),
        max_leaves=30,
    )
    names = st.from_regex(r"[a-z_][a-z0-9_]{0,5}", fullmatch=True)
    with connect(pg_settings) as connection:

        @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
        @given(st.dictionaries(names, values.filter(lambda v: v is not None), max_size=6))
        def check(record: dict[str, Any]) -> None:
            from kvstore.values import normalize_value

            canonical = {name: normalize_value(value, name) for name, value in record.items()}
            row = connection.execute("SELECT octet_length(%s::jsonb::text)", (Jsonb(canonical),))
            text_bytes = row.fetchone()
            assert text_bytes is not None
            assert item_size(canonical) <= 2 * text_bytes[0]

        check()
        for worst in ({"a": [1] * 50}, {"a": [[]] * 50}, {"a": [[[1]]] * 9}, {"b": {"k": [0, 0]}}):
            row = connection.execute("SELECT octet_length(%s::jsonb::text)", (Jsonb(worst),))
            found = row.fetchone()
            assert found is not None
            assert item_size(worst) <= 2 * found[0], worst


def test_transactions_failing_again_and_again_leave_the_connection_sound(
    counted: tuple[Store, StatementCounter],
) -> None:
    """A step that fails makes the server skip the steps after it in the pipeline; none of them
    may be left half-prepared (psycopg prepares a statement at its fifth run), or a later run of
    the same statement would fail."""
    from kvstore import ConditionFailed

    store, _counter = counted
    store.put_many([{"id": "held", "x": 1}, {"id": "a", "n": 0}, {"id": "b", "n": 0}])

    def block(fail: bool) -> None:
        with transaction() as tx:
            tx.check(store, {"id": "held"}, expect={"x": 2 if fail else 1})
            tx.update(store, {"id": "a", "n": increment(1)})
            tx.update(store, {"id": "b", "n": increment(1)})

    # Successes and failures interleaved so that the steps after the failing one reach their
    # fifth run in a failure, and run again, in a success, before anything clears psycopg's cache.
    for fail in [False, False, True, True, True, False, True, True, False, True, False]:
        if fail:
            with pytest.raises(ConditionFailed):
                block(fail=True)
        else:
            block(fail=False)
    assert store.find_all() == [
        {"id": "a", "n": 5},
        {"id": "b", "n": 5},
        {"id": "held", "x": 1},
    ]


def test_a_value_its_column_refuses_in_a_transaction_names_its_operation(
    pg_settings: PostgresSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A table a migration made: what the client checks (bigint) and what only the server knows
    # (a length, a CHECK constraint), refused in a put alone, in a shared upsert, in an update.
    kind = unique_kind("txcol")
    with connect(pg_settings) as admin:
        admin.execute(
            f'CREATE TABLE "{kind}" (id text COLLATE "C" PRIMARY KEY, n bigint, '
            "code varchar(3), qty bigint CHECK (qty >= 0), doc jsonb NOT NULL DEFAULT '{}')"
        )
    store = create_store(kind, backend="aurora", settings=pg_settings)
    other = create_store(unique_kind("txother"), backend="aurora", settings=pg_settings)
    other.ensure()
    store.put({"id": "a", "qty": 1})
    refused: list[tuple[Any, int]] = [
        (lambda tx: tx.put(store, {"id": "b", "n": 1.5}), 1),
        (lambda tx: tx.put(store, {"id": "b", "code": "abcd"}), 1),
        (lambda tx: (tx.put(store, {"id": "b"}), tx.put(store, {"id": "c", "code": "abcd"})), 2),
        (lambda tx: (tx.put(store, {"id": "c", "qty": -1}), tx.put(store, {"id": "b"})), 1),
        (lambda tx: tx.update(store, {"id": "a", "qty": increment(-2)}), 1),
        (lambda tx: tx.update(store, {"id": "a", "code": "abcd"}), 1),
        # Found by the client while the steps go out, after a shared upsert was sent.
        (lambda tx: (tx.put(store, {"id": "b"}), tx.put(store, {"id": "c"}), bad_update(tx)), 3),
        # Two refused: the first in the block is named, though its step comes after the other.
        (lambda tx: (tx.put(store, {"id": "b"}), bad_update(tx), bad_put(tx)), 2),
    ]

    def bad_update(tx: Any) -> None:
        tx.update(store, {"id": "a", "n": 1.5})

    def bad_put(tx: Any) -> None:
        tx.put(store, {"id": "c", "n": 2.5})

    def block(add: Any) -> None:
        with transaction() as tx:
            tx.put(other, {"id": "first"})
            add(tx)

    for add, index in refused:
        with pytest.raises(InvalidArgument) as info:
            block(add)
        assert info.value.index == index
        assert kind in str(info.value)
    assert other.find_all() == []
    assert store.find_all() == [{"id": "a", "qty": 1}]

    # A refused value is found in one run; with an increment summed in bigint in the block, the
    # data exception could be the sum's, so the full form runs once more to tell.
    from kvstore_aurora import transact

    runs: list[int] = []
    run = transact._run

    def counting(*args: Any) -> None:
        runs.append(1)
        run(*args)

    monkeypatch.setattr(transact, "_run", counting)
    other.put({"id": "counted", "n": 1})
    for with_increment, expected in ((False, 1), (True, 2)):
        runs.clear()
        with pytest.raises(InvalidArgument) as info, transaction() as tx:  # noqa: PT012
            if with_increment:
                tx.update(other, {"id": "counted", "n": increment(1)})
            tx.put(store, {"id": "b", "code": "abcd"})
        assert len(runs) == expected, with_increment


def test_a_refused_value_found_as_the_steps_go_out_keeps_the_callers_transaction(
    pg_settings: PostgresSettings,
) -> None:
    # Inside the caller's own transaction, a kvstore transaction is a savepoint: a value its
    # column cannot hold, found after a shared upsert was sent, rolls back to the savepoint and
    # leaves the caller's earlier work to commit.
    kind = unique_kind("txsave")
    with connect(pg_settings) as admin:
        admin.execute(f'CREATE TABLE "{kind}" (id text PRIMARY KEY, n bigint, doc jsonb)')
    connection = connect(pg_settings)
    try:
        store = create_store(kind, backend="aurora", settings=pg_settings, connection=connection)
        with connection.transaction():
            store.put({"id": "mine", "n": 1})

            def block() -> None:
                with transaction() as tx:
                    tx.put(store, {"id": "a"})
                    tx.put(store, {"id": "b"})
                    tx.update(store, {"id": "mine", "n": 0.5})

            with pytest.raises(InvalidArgument) as info:
                block()
            assert info.value.index == 2
            store.update({"id": "mine", "n": increment(1)})
        assert store.find_all() == [{"id": "mine", "n": 2}]
    finally:
        connection.close()


def test_an_increment_that_breaks_the_rules_in_the_caller_s_transaction_aborts_nothing(
    counted: tuple[Store, StatementCounter],
) -> None:
    # On a connection in no transaction, the statement fails on such an increment: first the
    # sum in bigint, then the full form of the rules, then the driver reads the record to say
    # why. In the caller's own transaction it must write nothing and fail nothing, or it would
    # abort the caller's other work: only the full form runs, and the read.
    store, counter = counted
    store.put_many([{"id": "s", "n": "text"}, {"id": "m", "n": 2**63 - 1}])
    for key in ("s", "m"):
        with counter.counting() as sent, pytest.raises(InvalidArgument):
            store.update({"id": key, "n": increment(1)})  # idle: the failing statements
        assert sent == [3, 3]
    with counter.connection.transaction():
        store.put({"id": "mine", "n": 1})
        for key in ("s", "m"):
            with counter.counting() as sent, pytest.raises(InvalidArgument):
                store.update({"id": key, "n": increment(1)})
            assert sent == [2, 2]
        store.update({"id": "mine", "n": increment(1)})
    assert store.find_all() == [
        {"id": "m", "n": 2**63 - 1},
        {"id": "mine", "n": 2},
        {"id": "s", "n": "text"},
    ]


@pytest.fixture
def counters(counted: tuple[Store, StatementCounter]) -> tuple[Store, Any]:
    """A store with a fraction (``a``), an int (``b``) and a string (``c``) to increment, and
    its connection."""
    store, counter = counted
    store.put_many([{"id": "a", "n": 0.5}, {"id": "b", "n": 1}, {"id": "c", "n": "x"}])
    return store, counter.connection


def test_increments_in_the_caller_s_pipeline_abort_none_of_its_statements(
    counters: tuple[Store, Any],
) -> None:
    # The caller's pipeline is one transaction up to its next Sync: an update there is never
    # the statement that fails (neither the sum in bigint nor the failing full form), as in
    # the caller's transaction.
    store, connection = counters
    with connection.pipeline():
        connection.execute("SELECT 1")
        assert store.update({"id": "a", "n": increment(1)}) == {"id": "a", "n": 1.5}
        assert store.update({"id": "b", "n": increment(1)}) == {"id": "b", "n": 2}
        with pytest.raises(InvalidArgument):
            store.update({"id": "c", "n": increment(1)})
        assert store.update({"id": "b", "n": increment(1)}) == {"id": "b", "n": 3}
        assert connection.execute("SELECT 1").fetchone() == (1,)
    assert store.find_all() == [
        {"id": "a", "n": 1.5},
        {"id": "b", "n": 3},
        {"id": "c", "n": "x"},
    ]


def test_a_transaction_in_the_caller_s_pipeline_runs_again_as_it_would_outside_it(
    counters: tuple[Store, Any],
) -> None:
    # Runs that fail and go again (an int added to a stored fraction; a shared step refused)
    # leave a ROLLBACK in the caller's pipeline: the next run waits for it before it chooses
    # between BEGIN and a savepoint. Statements the caller queued before count the same way.
    store, connection = counters

    def block(*keys: str) -> None:
        with transaction() as tx:
            for key in keys:
                tx.update(store, {"id": key, "n": increment(1)})

    with connection.pipeline():
        connection.execute("SELECT 1")
        block("a", "b")
        with pytest.raises(InvalidArgument) as info:
            block("b", "c")
        assert info.value.index == 1
    with connection.pipeline(), connection.transaction():
        block("a", "b")
        store.put({"id": "d"})
    assert store.find_all() == [
        {"id": "a", "n": 2.5},
        {"id": "b", "n": 3},
        {"id": "c", "n": "x"},
        {"id": "d"},
    ]


def test_shared_updates_on_real_columns_and_composite_keys_match_memory(
    pg_settings: PostgresSettings,
) -> None:
    # A transaction's updates of one shape share one statement (kvstore_aurora.transact): its
    # VALUES rows carry typed keys, real columns' values and increments' amounts.
    from alembic.migration import MigrationContext
    from alembic.operations import Operations
    from sqlalchemy import create_engine

    from kvstore_aurora.migrate import create_kind_table, sqlalchemy_url

    kind, members = unique_kind("sharedcol"), unique_kind("sharedkey")
    engine = create_engine(sqlalchemy_url(pg_settings))
    with engine.begin() as connection:
        operations = Operations(MigrationContext.configure(connection))
        create_kind_table(operations, kind, columns={"age": "bigint", "name": "text"})
    engine.dispose()
    composite = {"id_field": ("team", "seq"), "key_type": (str, int)}
    sides = []
    for backend in ("aurora", "memory"):
        options: dict[str, Any] = {"backend": backend}
        if backend == "aurora":
            options["settings"] = pg_settings
        people, teams = create_store(kind, **options), create_store(members, **composite, **options)
        for store in (people, teams):
            store.ensure()
        people.put_many([{"id": f"p{n}", "age": n, "name": "x", "note": "n"} for n in range(3)])
        teams.put_many([{"team": "t", "seq": n, "size": n * 1.5} for n in range(3)])
        sides.append((people, teams))

    def run(people: Store, teams: Store, amount: int) -> Any:
        try:
            with transaction() as tx:
                for n in range(3):
                    changes = {"id": f"p{n}", "age": increment(amount), "name": f"y{n}"}
                    tx.update(people, {**changes, "note": None})
                    tx.update(teams, {"team": "t", "seq": n, "size": increment(amount)})
        except InvalidArgument as exc:
            return ("error", exc.index)
        return typed(people.find_all()), typed(teams.find_all())

    # The last amount takes p2's age (1 by then) past the int range, and only p2's: the error
    # names its operation, the fifth, and nothing applies.
    for amount in (1, -2, 2**63 - 1):
        found = [run(people, teams, amount) for people, teams in sides]
        assert found[0] == found[1], amount
    assert found[0] == ("error", 4)
    assert typed(sides[0][0].find({"id": "p0"})) == typed({"id": "p0", "age": -1, "name": "y0"})
