"""The fault proxy itself does what it says, against a loopback echo server (the other fault
tests trust it to)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.faults.proxy import FaultProxy

pytestmark = pytest.mark.timeout(30)


class Echo:
    """A loopback server that sends back every chunk it receives, and counts the bytes."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.received = 0
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self) -> None:
        for _ in range(600):  # at most 30 s
            if self.stop.is_set():
                return
            try:
                sock, _ = self.listener.accept()
            except TimeoutError:
                continue
            thread = threading.Thread(target=self._echo, args=(sock,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _echo(self, sock: socket.socket) -> None:
        sock.settimeout(0.05)
        with sock:
            for _ in range(600):
                if self.stop.is_set():
                    return
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    return
                self.received += len(data)
                sock.sendall(data)

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(2.0)
        self.listener.close()


@pytest.fixture
def echo() -> Iterator[Echo]:
    server = Echo()
    yield server
    server.close()


@pytest.fixture
def proxy(echo: Echo) -> Iterator[FaultProxy]:
    made = FaultProxy(("127.0.0.1", echo.port), lifetime=30.0)
    yield made
    made.close()


def connect(proxy: FaultProxy) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=2.0)
    sock.settimeout(2.0)
    return sock


def read(sock: socket.socket, size: int, seconds: float = 2.0) -> bytes:
    """Up to ``size`` bytes, until the peer closes or ``seconds`` pass without data."""
    sock.settimeout(seconds)
    data = b""
    while len(data) < size:
        try:
            chunk = sock.recv(size - len(data))
        except TimeoutError:
            break
        if not chunk:
            break
        data += chunk
    return data


def test_pass_through_forwards_both_ways(proxy: FaultProxy) -> None:
    with connect(proxy) as sock:
        sock.sendall(b"hello")
        assert read(sock, 5) == b"hello"
    assert proxy.accepted == 1


def test_reset_answers_a_new_connection_with_a_reset(proxy: FaultProxy) -> None:
    def exchange() -> bytes:
        with connect(proxy) as sock:  # connect() itself may see the reset
            sock.sendall(b"hello")
            time.sleep(0.2)
            sock.sendall(b"again")
            return sock.recv(10)

    proxy.reset()
    with pytest.raises(ConnectionResetError):
        exchange()


def test_cut_forwards_part_of_the_next_response_then_closes(proxy: FaultProxy, echo: Echo) -> None:
    with connect(proxy) as sock:
        proxy.cut(after=3)
        sock.sendall(b"hello")
        assert read(sock, 5) == b"hel"
        assert sock.recv(10) == b""  # closed
    assert echo.received == 5  # the request reached the server
    with connect(proxy) as sock:  # once: then pass-through again
        sock.sendall(b"world")
        assert read(sock, 5) == b"world"
    assert proxy.cuts == 1


def test_stall_forwards_the_request_and_drops_the_response(proxy: FaultProxy, echo: Echo) -> None:
    proxy.stall()
    with connect(proxy) as sock:
        sock.sendall(b"hello")
        assert read(sock, 5, seconds=0.5) == b""
    assert echo.received == 5


def test_stall_without_requests_forwards_nothing(proxy: FaultProxy, echo: Echo) -> None:
    proxy.stall(requests=False)
    with connect(proxy) as sock:
        sock.sendall(b"hello")
        assert read(sock, 5, seconds=0.5) == b""
    assert echo.received == 0


def test_delay_holds_traffic(proxy: FaultProxy) -> None:
    proxy.delay(0.3)
    with connect(proxy) as sock:
        start = time.monotonic()
        sock.sendall(b"hello")
        assert read(sock, 5) == b"hello"
        assert time.monotonic() - start >= 0.55  # 0.3 s each way


def test_forget_resets_an_open_connection_at_its_next_request(
    proxy: FaultProxy, echo: Echo
) -> None:
    with connect(proxy) as old:
        old.sendall(b"hello")
        assert read(old, 5) == b"hello"
        proxy.forget()
        with connect(proxy) as new:  # a new connection passes
            new.sendall(b"new")
            assert read(new, 3) == b"new"
        with contextlib.suppress(OSError):  # the send may be what learns of the reset
            old.sendall(b"lost")
        with pytest.raises(ConnectionResetError):
            old.recv(10)
    assert echo.received == 5 + 3  # "lost" never reached the server


def test_reset_all_resets_open_connections_and_counts_them(proxy: FaultProxy) -> None:
    with connect(proxy) as first, connect(proxy) as second:
        for sock in (first, second):
            sock.sendall(b"x")
            assert read(sock, 1) == b"x"
        assert proxy.peak_open == 2
        assert proxy.reset_all() == 2
        with pytest.raises(ConnectionResetError):
            first.recv(10)
        assert proxy.open == 0


def test_close_refuses_new_connections_and_ends_its_threads(echo: Echo) -> None:
    proxy = FaultProxy(("127.0.0.1", echo.port), lifetime=30.0)
    with connect(proxy) as sock:
        sock.sendall(b"x")
        assert read(sock, 1) == b"x"
        proxy.close()
        with pytest.raises(ConnectionResetError):
            sock.recv(10)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=1.0)
    assert not any(t.name.startswith(f"fault-proxy-{proxy.port}") for t in threading.enumerate())
