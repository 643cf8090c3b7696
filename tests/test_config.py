"""kvstore.config: the backend STORE_BACKEND names, and secrets that stay masked."""

from __future__ import annotations

from kvstore.config import Secret, backend_name


def test_secret_masks_and_reveals() -> None:
    secret = Secret("hunter2")
    assert "hunter2" not in repr(secret)
    assert "hunter2" not in str(secret)
    assert "hunter2" not in f"{secret}"
    assert "hunter2" not in "%s" % secret  # noqa: UP031 (old-style formatting must mask too)
    assert "hunter2" not in repr([secret])
    assert secret.reveal() == "hunter2"
    assert str(Secret("")) == ""


def test_backend_name_reads_store_backend() -> None:
    assert backend_name({"STORE_BACKEND": "dynamo"}) == "dynamo"
    assert backend_name({"STORE_BACKEND": ""}) is None
    assert backend_name({}) is None


def test_the_call_timeout_comes_from_the_option_then_the_environment() -> None:
    import pytest

    from kvstore import ConfigError, InvalidArgument
    from kvstore.config import DEFAULT_TIMEOUT, call_timeout

    assert call_timeout({}) == DEFAULT_TIMEOUT
    assert call_timeout({"KVSTORE_TIMEOUT": "2.5"}) == 2.5
    assert call_timeout({"KVSTORE_TIMEOUT": "2.5"}, 4) == 4.0
    for text in ("0", "-1", "soon", "inf", "nan"):
        with pytest.raises(ConfigError):
            call_timeout({"KVSTORE_TIMEOUT": text})
    assert call_timeout({}, "3") == 3.0  # the command line gives options as text
    for value in (0, -1, True, "soon", float("inf")):
        with pytest.raises(InvalidArgument):
            call_timeout({}, value)
