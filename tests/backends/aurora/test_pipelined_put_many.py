"""A put_many of many chunks goes through one pipeline, each chunk in its own transaction, and still
stores and raises exactly what a loop of chunks would."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from kvstore import BackendUnavailable, InvalidArgument, Store, create_store
from kvstore.store import CHUNK_SIZE
from kvstore.testing import unique_kind
from kvstore_aurora import connection as connections
from kvstore_aurora.settings import PostgresSettings
from tests.backends.aurora.helpers import connect, kill_store_sessions


@pytest.fixture(params=["pooled", "injected"])
def store(request: pytest.FixtureRequest, pg_settings: PostgresSettings) -> Iterator[Store]:
    """A kind whose ``short`` column holds at most 3 characters: the server refuses longer ones
    (kvstore does not check lengths), so a chunk can fail on the server side."""
    kind = unique_kind("pipe")
    with connect(pg_settings) as admin:
        admin.execute(
            f"CREATE TABLE {kind} (id text PRIMARY KEY, short varchar(3),"
            " doc jsonb NOT NULL DEFAULT '{}')"
        )
    injected = connect(pg_settings) if request.param == "injected" else None
    yield create_store(kind, backend="aurora", settings=pg_settings, connection=injected)
    if injected is not None:
        injected.close()


def records(count: int, **overrides: Any) -> list[dict[str, Any]]:
    """``count`` records keyed r00000...; ``overrides`` maps a record number to its extra fields."""
    made = [{"id": f"r{n:05}", "n": n} for n in range(count)]
    for number, fields in overrides.items():
        made[int(number)].update(fields)
    return made


def stored_count(settings: PostgresSettings, store: Store) -> int:
    with connect(settings) as connection:
        row = connection.execute(f'SELECT count(*) FROM "{store.kind}"').fetchone()
    assert row is not None
    return int(row[0])


def test_every_chunk_is_stored(store: Store, pg_settings: PostgresSettings) -> None:
    made = records(3 * CHUNK_SIZE + 7)
    assert store.put_many(iter(made)) == len(made)
    assert stored_count(pg_settings, store) == len(made)
    assert store.find_all() == made


def test_a_chunk_the_server_refuses_rolls_back_alone_and_the_chunks_after_are_not_written(
    store: Store, pg_settings: PostgresSettings
) -> None:
    made = records(3 * CHUNK_SIZE, **{str(CHUNK_SIZE + 5): {"short": "toolong"}})
    with pytest.raises(InvalidArgument, match="too long"):
        store.put_many(made)
    # As a loop of chunks: the first is stored, the second (refused) and third are not.
    assert stored_count(pg_settings, store) == CHUNK_SIZE
    assert store.count() == CHUNK_SIZE  # and the connection is usable again


def test_a_refused_chunk_is_raised_before_a_later_invalid_record(
    store: Store, pg_settings: PostgresSettings
) -> None:
    # The second chunk is sent, then the third is found invalid before the second's error is read.
    made = records(
        3 * CHUNK_SIZE, **{str(CHUNK_SIZE + 3): {"short": "toolong"}, str(2 * CHUNK_SIZE): {"": 1}}
    )
    with pytest.raises(InvalidArgument, match="too long"):
        store.put_many(made)
    assert stored_count(pg_settings, store) == CHUNK_SIZE


def test_an_invalid_record_keeps_the_chunks_sent_before_it(
    store: Store, pg_settings: PostgresSettings
) -> None:
    made = records(3 * CHUNK_SIZE, **{str(2 * CHUNK_SIZE + 1): {"bad name": 1}})
    with pytest.raises(InvalidArgument, match="bad name"):
        store.put_many(made)
    assert stored_count(pg_settings, store) == 2 * CHUNK_SIZE


def test_inside_an_iteration_on_the_injected_connection_chunks_are_savepoints(
    pg_settings: PostgresSettings,
) -> None:
    with connect(pg_settings) as connection:
        store = create_store(
            unique_kind("pipe"), backend="aurora", settings=pg_settings, connection=connection
        )
        store.ensure()
        store.put({"id": "first"})
        iteration = store.iter_all()
        assert next(iteration) == {"id": "first"}
        # Calls made while iterating run in the iteration's transaction.
        assert store.put_many(records(2 * CHUNK_SIZE)) == 2 * CHUNK_SIZE
        with pytest.raises(InvalidArgument):
            store.put_many(records(2 * CHUNK_SIZE, **{"900": {"bad name": 1}}))
        assert list(iteration) == []
        assert connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert store.count() == 2 * CHUNK_SIZE + 1


def test_a_connection_lost_unnoticed_is_replaced_and_the_chunks_sent_again(
    pg_settings: PostgresSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = create_store(unique_kind("pipe"), backend="aurora", settings=pg_settings)
    store.ensure()
    store.put({"id": "warm"})
    kill_store_sessions(pg_settings)
    monkeypatch.setattr(connections, "_alive", lambda connection: True)
    assert store.put_many(records(2 * CHUNK_SIZE)) == 2 * CHUNK_SIZE  # upserts: safe to resend
    assert store.count() == 2 * CHUNK_SIZE + 1


def test_a_connection_lost_again_where_it_was_replaced_is_backend_unavailable(
    pg_settings: PostgresSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kvstore_aurora import batch

    store = create_store(unique_kind("pipe"), backend="aurora", settings=pg_settings)
    store.ensure()
    store.put({"id": "warm"})
    real = batch.PipelinedWriter._send

    def send_and_lose(writer: Any, batches: Any) -> Any:  # every session dies as it starts
        kill_store_sessions(pg_settings)
        return real(writer, batches)

    monkeypatch.setattr(batch.PipelinedWriter, "_send", send_and_lose)
    with pytest.raises(BackendUnavailable) as info:
        store.put_many(records(3 * CHUNK_SIZE))
    assert info.value.written == 0
    monkeypatch.undo()
    assert store.put_many(records(2 * CHUNK_SIZE)) == 2 * CHUNK_SIZE
    assert store.count() == 2 * CHUNK_SIZE + 1


def test_a_chunk_split_by_size_is_still_written_whole(
    store: Store, pg_settings: PostgresSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kvstore_aurora import batch

    monkeypatch.setattr(batch, "MAX_BATCH_BYTES", 2_000)  # ~40 records a statement
    made = records(CHUNK_SIZE, **{str(CHUNK_SIZE - 3): {"short": "toolong"}})
    with pytest.raises(InvalidArgument, match="too long"):
        store.put_many(made)  # one chunk, a dozen statements; the last one refused
    assert stored_count(pg_settings, store) == 0
    assert store.put_many(records(CHUNK_SIZE)) == CHUNK_SIZE
    assert stored_count(pg_settings, store) == CHUNK_SIZE


def test_chunks_refused_again_and_again_leave_the_connection_sound(
    store: Store, pg_settings: PostgresSettings
) -> None:
    # The statements after a refused chunk are skipped by the server: none may be left
    # half-prepared by psycopg (it prepares a statement at its fifth run).
    for _ in range(8):
        made = records(3 * CHUNK_SIZE, **{"3": {"short": "toolong"}})
        with pytest.raises(InvalidArgument, match="too long"):
            store.put_many(made)
    assert stored_count(pg_settings, store) == 0
    for _ in range(3):
        assert store.put_many(records(3 * CHUNK_SIZE)) == 3 * CHUNK_SIZE
    assert stored_count(pg_settings, store) == 3 * CHUNK_SIZE
