"""``write_behind``: batches prepared in the caller's thread, written in order behind it."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from kvstore.store import write_behind


class Recorder:
    """A prepare/write pair that records threads, order and overlap."""

    def __init__(self, fail_prepare: int | None = None, fail_write: int | None = None) -> None:
        self.fail_prepare = fail_prepare
        self.fail_write = fail_write
        self.prepared_in: list[threading.Thread] = []
        self.written: list[int] = []
        self.writing = 0
        self.most_writing = 0
        self.lock = threading.Lock()

    def prepare(self, chunk: list[int]) -> int:
        self.prepared_in.append(threading.current_thread())
        if chunk[0] == self.fail_prepare:
            raise ValueError(f"bad chunk {chunk[0]}")
        return chunk[0]

    def write(self, batch: int) -> None:
        with self.lock:
            self.writing += 1
            self.most_writing = max(self.most_writing, self.writing)
        time.sleep(0.01)  # long enough for the next prepare to run meanwhile
        with self.lock:
            self.writing -= 1
        if batch == self.fail_write:
            raise ConnectionError(f"write {batch} failed")
        self.written.append(batch)


def chunks(count: int) -> Any:
    return iter([[n] for n in range(count)])


def test_every_batch_is_written_in_order_one_at_a_time() -> None:
    recorder = Recorder()
    write_behind(chunks(6), recorder.prepare, recorder.write)
    assert recorder.written == list(range(6))
    assert recorder.most_writing == 1
    assert set(recorder.prepared_in) == {threading.current_thread()}


def test_a_single_chunk_is_written_in_the_callers_thread() -> None:
    seen: list[threading.Thread] = []
    write_behind(
        chunks(1), lambda chunk: chunk, lambda batch: seen.append(threading.current_thread())
    )
    assert seen == [threading.current_thread()]


def test_a_bad_chunk_raises_after_the_write_in_flight_has_ended() -> None:
    recorder = Recorder(fail_prepare=2)
    with pytest.raises(ValueError, match="bad chunk 2"):
        write_behind(chunks(5), recorder.prepare, recorder.write)
    # As in a plain loop: chunks 0 and 1 are stored, nothing after the bad one, nothing pending.
    assert recorder.written == [0, 1]
    assert recorder.writing == 0


def test_a_failed_write_wins_over_a_later_bad_chunk() -> None:
    recorder = Recorder(fail_prepare=2, fail_write=1)
    with pytest.raises(ConnectionError, match="write 1 failed"):
        write_behind(chunks(5), recorder.prepare, recorder.write)
    assert recorder.written == [0]


def test_a_failed_write_stops_the_batches_after_it() -> None:
    recorder = Recorder(fail_write=0)
    with pytest.raises(ConnectionError, match="write 0 failed"):
        write_behind(chunks(5), recorder.prepare, recorder.write)
    assert recorder.written == []
    assert len(recorder.prepared_in) <= 2  # at most the one prepared while write 0 ran
