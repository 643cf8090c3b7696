"""Core's configuration: which backend ``STORE_BACKEND`` names, and ``Secret`` for the passwords
and keys that backends read from their own settings (see each backend's ``settings.py``).

Readers take the environment as a mapping (``os.environ`` by default) so tests and the CLI can pass
their own; nothing here opens a connection.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["DEFAULT_TIMEOUT", "Secret", "backend_name", "call_timeout", "environment"]

DEFAULT_TIMEOUT = 10.0
"""A call's time budget in seconds when ``KVSTORE_TIMEOUT`` is unset: well under a Lambda's usual
timeouts and API Gateway's 29 s, so a call on a silent server fails fast with
``BackendUnavailable`` instead of burning the function's time."""


class Secret(str):
    """A string (a password) whose ``repr`` and ``str`` are masked; ``reveal()`` gives the value."""

    __slots__ = ()

    def reveal(self) -> str:
        """The secret itself, for handing to a driver."""
        return str.__str__(self)

    def __repr__(self) -> str:
        return "'***'" if self.reveal() else "''"

    def __str__(self) -> str:
        return "***" if self.reveal() else ""

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


def environment(env: Mapping[str, str] | None = None) -> Mapping[str, str]:
    """``env``, or the process's environment when it is ``None``."""
    return os.environ if env is None else env


def backend_name(env: Mapping[str, str] | None = None) -> str | None:
    """The backend ``STORE_BACKEND`` names, or ``None`` when it is unset or empty."""
    return environment(env).get("STORE_BACKEND") or None


def call_timeout(env: Mapping[str, str] | None = None, value: object = None) -> float:
    """A call's time budget in seconds: ``value`` (a store's ``timeout=`` option) when given,
    else ``KVSTORE_TIMEOUT``, else ``DEFAULT_TIMEOUT``. Every network backend bounds a call by it
    (connecting, waiting on locks, the request and its retries)."""
    from kvstore.errors import ConfigError, InvalidArgument

    if isinstance(value, str):  # the command line's --backend NAME:timeout=2
        try:
            value = float(value)
        except ValueError:
            raise InvalidArgument(
                f"timeout is a positive number of seconds, not {value!r:.40}"
            ) from None
    if value is not None:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise InvalidArgument(f"timeout is a positive number of seconds, not {value!r:.40}")
        if not 0 < value < float("inf"):
            raise InvalidArgument(f"timeout is a positive number of seconds, not {value!r:.40}")
        return float(value)
    text = environment(env).get("KVSTORE_TIMEOUT") or ""
    if not text:
        return DEFAULT_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):
        raise ConfigError(f"KVSTORE_TIMEOUT is a positive number of seconds, not {text!r}")
    return seconds
