"""A loopback TCP proxy that injects network faults between kvstore and a real server.

``FaultProxy(target)`` listens on 127.0.0.1 (a free port) and forwards every connection to
``target``. What it does to the traffic is set at run time, for every connection at once:

- ``pass_through()``: forward both ways (the default);
- ``reset()``: answer every new connection, and any traffic on an open one, with a TCP reset
  (``SO_LINGER`` 0), as a server that went away or a firewall would;
- ``cut(after=N)``: forward the first ``N`` bytes of the next response, then close the connection
  (a response lost midway, after the server applied the request); once, then pass-through again;
- ``stall(requests=True)``: forward requests to the server (or, with ``requests=False``, read and
  drop them) and drop every response: a server or network that stops answering;
- ``delay(seconds)``: hold each chunk of traffic that long before forwarding it;
- ``forget()``: the connections open now are forgotten, as a NAT does while a Lambda is frozen:
  the next request on one of them is answered by a reset and never reaches the server (new
  connections pass);
- ``reset_all()``: reset every open connection now.

Each connection is served by one daemon thread that alone touches its two sockets; every loop is
bounded in time (``lifetime``) and in iterations, sockets have timeouts, and ``close()`` resets
whatever is still open and joins the threads (bounded waits). Counters (``accepted``, ``open``,
``peak_open``) let tests see what the client did.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

__all__ = ["FaultProxy"]

POLL = 0.05
"""Seconds a thread waits for traffic before it looks at its commands again."""
CHUNK = 65536
"""Bytes read at most per ``recv``."""
SEND_TIMEOUT = 10.0
"""Seconds a ``sendall`` to a peer that does not read may take before the connection is dropped."""
MAX_CONNECTIONS = 256
"""Connections a proxy accepts in its life; later ones are reset (a runaway client)."""

_used_ports: set[int] = set()
"""Ports earlier proxies of this process listened on. A port is never used twice: kvstore keeps
a connection pool or client per endpoint for the life of the process, and a later test must not
inherit an earlier one's (with its hooks, settings or dead connections)."""
_ports_lock = threading.Lock()


def _rst_close(sock: socket.socket) -> None:
    """Close ``sock`` with a TCP reset instead of an orderly FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()


def _listen_on_a_new_port() -> socket.socket:
    """A listening socket on 127.0.0.1, on a port no earlier proxy of the process used."""
    held: list[socket.socket] = []  # kept bound while trying, so the next port differs
    try:
        with _ports_lock:
            for _ in range(50):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
                if port not in _used_ports:
                    _used_ports.add(port)
                    sock.listen(64)
                    return sock
                held.append(sock)
        raise RuntimeError("no unused loopback port in 50 tries")
    finally:
        for sock in held:
            _close(sock)


@dataclass
class _Mode:
    name: str = "pass"
    cut_after: int = 0
    stall_requests: bool = True
    delay: float = 0.0


@dataclass(eq=False)
class _Link:
    """One proxied connection: the client's socket, the server's, and commands for its thread."""

    number: int
    client: socket.socket
    upstream: socket.socket | None = None
    forgotten: bool = False
    kill: bool = False
    done: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None


class FaultProxy:
    """A TCP proxy on 127.0.0.1 to ``target`` whose faults tests switch at run time."""

    def __init__(self, target: tuple[str, int], *, lifetime: float = 180.0) -> None:
        self.target = target
        self.lifetime = lifetime
        self._deadline = time.monotonic() + lifetime
        self._lock = threading.Lock()
        self._mode = _Mode()
        self._links: list[_Link] = []
        self._stopping = threading.Event()
        self.accepted = 0
        """Connections accepted so far."""
        self.peak_open = 0
        """The most connections open at once."""
        self.cuts = 0
        """Responses cut so far (``cut``)."""
        self._listener = _listen_on_a_new_port()
        self._listener.settimeout(POLL)
        self.port: int = self._listener.getsockname()[1]
        self._acceptor = threading.Thread(
            target=self._accept_loop, name=f"fault-proxy-{self.port}", daemon=True
        )
        self._acceptor.start()

    def __repr__(self) -> str:
        return f"<FaultProxy 127.0.0.1:{self.port} -> {self.target} mode={self._mode.name}>"

    @property
    def open(self) -> int:
        """Connections open now."""
        with self._lock:
            return self._open_count()

    def _open_count(self) -> int:
        return sum(1 for link in self._links if not link.done.is_set())

    # -- switching faults ------------------------------------------------------------------------

    def _set(self, mode: _Mode) -> None:
        with self._lock:
            self._mode = mode

    def pass_through(self) -> None:
        """Forward everything both ways."""
        self._set(_Mode())

    def reset(self) -> None:
        """Reset new connections at once, and open ones at their next byte either way."""
        self._set(_Mode("reset"))

    def cut(self, after: int = 0) -> None:
        """Forward ``after`` bytes of the next response, then close that connection (once)."""
        self._set(_Mode("cut", cut_after=after))

    def stall(self, *, requests: bool = True) -> None:
        """Drop every response; forward requests (``requests=True``) or drop them too."""
        self._set(_Mode("stall", stall_requests=requests))

    def delay(self, seconds: float) -> None:
        """Forward each chunk of traffic ``seconds`` late."""
        self._set(_Mode("delay", delay=seconds))

    def forget(self) -> None:
        """Forget the connections open now: the next request on one is answered by a reset."""
        with self._lock:
            for link in self._links:
                link.forgotten = True

    def reset_all(self, wait: float = 2.0) -> int:
        """Reset every open connection now; return how many (waits for their threads to do it)."""
        with self._lock:
            links = [link for link in self._links if not link.done.is_set()]
            for link in links:
                link.kill = True
        for link in links:
            link.done.wait(wait)
        return len(links)

    def close(self) -> None:
        """Stop accepting, reset every open connection and join the threads (bounded waits)."""
        self._stopping.set()
        self.reset()  # a client that retries meanwhile is refused, not served
        self._acceptor.join(2.0)
        _close(self._listener)
        self.reset_all()
        with self._lock:
            threads = [link.thread for link in self._links if link.thread is not None]
        for thread in threads:
            thread.join(2.0)

    # -- the threads -----------------------------------------------------------------------------

    def _running(self) -> bool:
        return not self._stopping.is_set() and time.monotonic() < self._deadline

    def _accept_loop(self) -> None:
        # Bounded: by the stop flag, the lifetime and (through the timeout) a poll per iteration.
        for _ in range(int(self.lifetime / POLL) + 1):
            if not self._running():
                return
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                number = self.accepted
                mode = self._mode
            if mode.name == "reset" or number > MAX_CONNECTIONS:
                _rst_close(client)
                continue
            link = _Link(number, client)
            with self._lock:
                self._links.append(link)
                self.peak_open = max(self.peak_open, self._open_count())
            link.thread = threading.Thread(
                target=self._serve,
                args=(link,),
                name=f"fault-proxy-{self.port}-{number}",
                daemon=True,
            )
            link.thread.start()

    def _serve(self, link: _Link) -> None:
        try:
            self._pump(link)
        finally:
            if link.upstream is not None:
                _close(link.upstream)
            _close(link.client)
            link.done.set()

    def _pump(self, link: _Link) -> None:
        client = link.client
        client.settimeout(SEND_TIMEOUT)
        try:
            upstream = socket.create_connection(self.target, timeout=5.0)
        except OSError:
            _rst_close(client)
            return
        upstream.settimeout(SEND_TIMEOUT)
        link.upstream = upstream
        for _ in range(int(self.lifetime / POLL) * 4 + 1000):
            if link.kill or not self._running():
                _rst_close(client)
                return
            try:
                readable, _, _ = select.select([client, upstream], [], [], POLL)
            except (OSError, ValueError):
                return
            for sock in readable:
                try:
                    data = sock.recv(CHUNK)
                except OSError:
                    data = b""
                if not data:  # one side closed: close the other (orderly) and stop
                    return
                try:
                    if sock is client:
                        if not self._request(link, data):
                            return
                    elif not self._response(link, data):
                        return
                except OSError:
                    _rst_close(client)
                    return

    def _request(self, link: _Link, data: bytes) -> bool:
        """Handle bytes from the client; ``False`` ends the connection."""
        mode = self._mode
        if link.forgotten or mode.name == "reset":
            _rst_close(link.client)
            return False
        if mode.name == "stall" and not mode.stall_requests:
            return True
        if mode.name == "delay":
            time.sleep(mode.delay)
        assert link.upstream is not None
        link.upstream.sendall(data)
        return True

    def _response(self, link: _Link, data: bytes) -> bool:
        """Handle bytes from the server; ``False`` ends the connection."""
        with self._lock:
            mode = self._mode
            if mode.name == "cut":
                self._mode = _Mode()  # once
                self.cuts += 1
        if mode.name == "reset":
            _rst_close(link.client)
            return False
        if mode.name == "stall":
            return True
        if mode.name == "cut":
            if mode.cut_after:
                link.client.sendall(data[: mode.cut_after])
            return False
        if mode.name == "delay":
            time.sleep(mode.delay)
        link.client.sendall(data)
        return True
