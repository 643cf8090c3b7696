"""``write_behind``: batches prepared in the caller's thread, written in order behind it (the
writer of network backends' put_many)."""

from __future__ import annotations

import threading
import time

import pytest

from kvstore.backend import write_behind


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


def run(recorder: Recorder, count: int) -> None:
    """What core's put_many does: prepare each chunk, hand it to the writer."""
    with write_behind(recorder.write) as write:
        for number in range(count):
            write(recorder.prepare([number]))


def test_every_batch_is_written_in_order_one_at_a_time() -> None:
    recorder = Recorder()
    run(recorder, 6)
    assert recorder.written == list(range(6))
    assert recorder.most_writing == 1
    assert set(recorder.prepared_in) == {threading.current_thread()}


def test_batches_are_written_outside_the_callers_thread() -> None:
    seen: list[threading.Thread] = []
    with write_behind(lambda batch: seen.append(threading.current_thread())) as write:
        write(0)
        write(1)
    assert len(seen) == 2
    assert threading.current_thread() not in seen


def test_a_bad_chunk_raises_after_the_write_in_flight_has_ended() -> None:
    recorder = Recorder(fail_prepare=2)
    with pytest.raises(ValueError, match="bad chunk 2"):
        run(recorder, 5)
    # As in a plain loop: chunks 0 and 1 are stored, nothing after the bad one, nothing pending.
    assert recorder.written == [0, 1]
    assert recorder.writing == 0


def test_a_failed_write_wins_over_a_later_bad_chunk() -> None:
    recorder = Recorder(fail_prepare=2, fail_write=1)
    with pytest.raises(ConnectionError, match="write 1 failed"):
        run(recorder, 5)
    assert recorder.written == [0]


def test_a_failed_write_stops_the_batches_after_it() -> None:
    recorder = Recorder(fail_write=0)
    with pytest.raises(ConnectionError, match="write 0 failed"):
        run(recorder, 5)
    assert recorder.written == []
    assert len(recorder.prepared_in) <= 2  # at most the one prepared while write 0 ran


def test_the_last_write_has_ended_when_the_block_exits() -> None:
    recorder = Recorder(fail_write=3)
    with pytest.raises(ConnectionError, match="write 3 failed"):
        run(recorder, 4)
    assert recorder.written == [0, 1, 2]
    assert recorder.writing == 0
