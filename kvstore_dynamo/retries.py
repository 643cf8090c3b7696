"""A call's time budget on DynamoDB, and retries that never apply a write twice.

The clients kvstore makes (``kvstore_dynamo.client``) take botocore's ``connect_timeout`` and
``read_timeout`` from the budget (``Limits``), and ``install`` puts a ``RetryGuard`` in place of
the client's ``needs-retry`` handler. The guard asks botocore's own handler first (so the retry
mode and attempts stay botocore's: kvstore's ``KVSTORE_RETRIES``, or ``AWS_RETRY_MODE``/
``AWS_MAX_ATTEMPTS`` and the config file's ``retry_mode``/``max_attempts`` when any is set), then
declines a retry that botocore would make when:

- it could not end within the call's budget: each API call gets a deadline (a ``before-call``
  handler), and a retry happens only if its backoff and a whole attempt (``Limits.attempt``) fit
  before it, so all attempts and their backoff fit in the budget;
- the operation must not be applied twice (``once``: an UpdateItem with an increment, or whose
  condition reads a field it changes) and the failed attempt may have reached the server: a read
  timeout, a dropped connection or a 5xx answer. botocore retries those for every operation (its
  standard mode's ``TransientRetryableChecker``: ``ConnectionError``, ``HTTPClientError``, 500,
  502, 503, 504; legacy mode's socket errors), which would apply an increment twice.

It leaves a ``RetryNote`` on the call's last answer (``retry_note``): how many attempts were made,
why retrying stopped, and whether an earlier attempt may have been applied, so that a conditional
write refused on its retry is reported as ``Conflict(retried=True)`` (core decides) and errors say
which limit was hit. A client given with ``client=`` is used as it is: none of this is installed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, NamedTuple

from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ProxyConnectionError,
)

from kvstore_dynamo.settings import KVSTORE_RETRIES, Limits, user_retry_variables

__all__ = [
    "BUDGET",
    "NOTE",
    "UNSAFE",
    "RetryGuard",
    "RetryNote",
    "install",
    "kvstore_retries",
    "once",
    "retry_note",
]

BUDGET = "budget"
"""``RetryNote.stopped``: no time was left in the call's budget for another attempt."""
UNSAFE = "unsafe"
"""``RetryNote.stopped``: the write may have been applied and must not be applied twice."""
NOTE = "KvstoreRetry"
"""Where the note is: the key in a response's ``ResponseMetadata``, the attribute of an
exception."""

_CONFIG_KEYS = ("max_attempts", "retry_mode")
"""The retry settings' keys in the AWS config file's profile."""
_DEADLINE = "kvstore_deadline"
_APPLIED = "kvstore_maybe_applied"
_NOT_SENT = (EndpointConnectionError, ConnectTimeoutError, ProxyConnectionError)
"""Failures before a request was sent: no connection was made (retrying any write is safe)."""


class RetryNote(NamedTuple):
    """What the retries of a call came to (see the module docstring)."""

    attempts: int
    stopped: str | None
    """``BUDGET``, ``UNSAFE``, or ``None`` when botocore itself stopped (attempts, error kind)."""
    maybe_applied: bool
    """An attempt before the last one may have been applied by the server."""
    limits: Limits


_local = threading.local()


class once:  # a block: ``with once("UpdateItem"):``
    """Within the block, the calling thread's ``operation`` is not sent again after a failure
    that may have reached the server (it is not idempotent)."""

    __slots__ = ("_operation", "_previous")

    def __init__(self, operation: str) -> None:
        self._operation = operation
        self._previous: str | None = None

    def __enter__(self) -> None:
        self._previous = getattr(_local, "once", None)
        _local.once = self._operation

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        _local.once = self._previous


def _maybe_applied(response: Any, error: BaseException | None) -> bool:
    """Whether a failed attempt may have been applied: sent, and not answered with a refusal."""
    if error is not None:
        return not isinstance(error, _NOT_SENT)
    if response is None:
        return True
    status = response[0].status_code
    # A 4xx (throttling, validation) is a refusal; a 5xx is not; a 2xx that botocore retries
    # (legacy mode's checksum check) was applied.
    return not 400 <= status < 500


class RetryGuard:
    """A client's ``needs-retry`` handler: botocore's own (``decide``), bounded by the call's
    budget and declining to repeat a write that is not idempotent (see the module docstring)."""

    def __init__(self, decide: Callable[..., Any], limits: Limits) -> None:
        self._decide = decide
        self.limits = limits

    def stamp(self, context: dict[str, Any], **_: Any) -> None:
        """``before-call``: the call's deadline, once per API call (not per attempt)."""
        context[_DEADLINE] = time.monotonic() + self.limits.budget

    def __call__(self, **kwargs: Any) -> Any:
        delay = self._decide(**kwargs)
        context: dict[str, Any] = kwargs["request_dict"]["context"]
        response = kwargs.get("response")
        error = kwargs.get("caught_exception")
        if delay is None or delay is False:
            if (
                error is not None
                or kwargs["attempts"] > 1
                or (response is not None and response[0].status_code >= 300)
            ):
                self._note(kwargs, context, None)
            return delay
        if _maybe_applied(response, error):
            context[_APPLIED] = True
            if getattr(_local, "once", None) == kwargs["operation"].name:
                self._note(kwargs, context, UNSAFE)
                return False
        deadline = context.setdefault(_DEADLINE, time.monotonic() + self.limits.budget)
        if time.monotonic() + delay + self.limits.attempt > deadline:
            self._note(kwargs, context, BUDGET)
            return False
        return delay

    def _note(self, kwargs: Mapping[str, Any], context: Mapping[str, Any], why: str | None) -> None:
        note = RetryNote(kwargs["attempts"], why, bool(context.get(_APPLIED)), self.limits)
        error = kwargs.get("caught_exception")
        response = kwargs.get("response")
        if error is not None:
            setattr(error, NOTE, note)
        elif response is not None:
            response[1].setdefault("ResponseMetadata", {})[NOTE] = note


def retry_note(exc: BaseException) -> RetryNote | None:
    """The note a ``RetryGuard`` left on a call's error (``None``: none, e.g. a given client)."""
    if isinstance(exc, ClientError):
        note = exc.response.get("ResponseMetadata", {}).get(NOTE)
    else:
        note = getattr(exc, NOTE, None)
    return note if isinstance(note, RetryNote) else None


def kvstore_retries(session: Any) -> dict[str, Any] | None:
    """The ``retries`` of a client's ``Config``: kvstore's, or ``None`` (botocore resolves them)
    when ``AWS_MAX_ATTEMPTS``/``AWS_RETRY_MODE`` or the profile's ``max_attempts``/
    ``retry_mode`` (``session``: a botocore session, to read the config file) are set."""
    if user_retry_variables():
        return None
    if session is not None:
        profile = session.get_scoped_config()
        if any(key in profile for key in _CONFIG_KEYS):
            return None
    return dict(KVSTORE_RETRIES)


def _botocore_decider(client: Any, session: Any) -> Callable[..., Any]:
    """botocore's own ``needs-retry`` handler for ``client``'s retry mode and attempts, made as
    ``botocore.client.ClientCreator._register_retries`` makes it, but left unregistered."""
    retries = client.meta.config.retries or {}
    total = retries.get("total_max_attempts")
    if retries.get("mode", "legacy") in ("standard", "adaptive"):
        from botocore.retries import standard

        # It registers the handler (and its retry quota's release) under botocore's unique id:
        # ``install`` takes that registration over.
        return standard.register_retry_handler(client, max_attempts=total).needs_retry
    from botocore import retryhandler, translate

    if session is None:
        import botocore.session

        session = botocore.session.get_session()
    original = session.get_component("data_loader").load_data("_retry") or {}
    legacy = {} if total is None else {"max_attempts": total - 1}  # legacy counts retries
    prefix = client.meta.service_model.endpoint_prefix
    config = translate.build_retry_config(
        prefix, original.get("retry", {}), original.get("definitions", {}), legacy
    )
    return retryhandler.create_retry_handler(config, prefix)


def install(client: Any, limits: Limits, session: Any = None) -> RetryGuard:
    """Put a ``RetryGuard`` with ``limits`` in place of ``client``'s retry handler, and stamp each
    of its calls with a deadline; ``session`` is the botocore session that made it."""
    events = client.meta.events
    service = client.meta.service_model.service_id.hyphenize()
    event = f"needs-retry.{service}"
    unique = f"retry-config-{service}"  # botocore's id of its retry handler (client.py)
    events.unregister(event, unique_id=unique)
    guard = RetryGuard(_botocore_decider(client, session), limits)
    events.unregister(event, unique_id=unique)  # the handler standard mode just registered
    events.register(event, guard, unique_id=unique)
    events.register(f"before-call.{service}", guard.stamp, unique_id=f"kvstore-deadline-{service}")
    return guard
