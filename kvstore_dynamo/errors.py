"""botocore's exceptions mapped to kvstore's errors, in one place: ``map_exceptions``.

=========================================================  =====================================
botocore                                                   kvstore
=========================================================  =====================================
``ResourceNotFoundException``                              ``ConfigError`` (``missing_table``)
``ValidationException`` "does not have the specified index" ``ConfigError`` naming the index
``ValidationException`` item size exceeded                 ``InvalidArgument`` (size rule)
``ValidationException`` expression too large               ``InvalidArgument`` (too wide a call)
``ValidationException`` number overflow or precision       ``InvalidArgument`` (number rules)
throttling codes (after botocore's own retries), 5xx       ``BackendUnavailable`` ("throttled")
endpoint connection errors, timeouts, dropped connections  ``BackendUnavailable`` (which timeout)
credential, signature, region and access-denied errors     ``ConfigError``
anything else (other ``ValidationException``s included)    ``StoreError`` with ``__cause__``
=========================================================  =====================================

``ConditionalCheckFailedException`` and ``TransactionCanceledException`` are handled where they
are expected (``kvstore_dynamo.writes``): they are a guard's answer, reported as ``Conflict``.

A ``BackendUnavailable`` says which limit was hit: the attempts made, the connect or read timeout
and the call's time budget they come from, or that a write was not sent again because it may have
been applied (``kvstore_dynamo.retries.RetryNote``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)

from kvstore.backend import missing_table
from kvstore.errors import (
    BackendUnavailable,
    ConfigError,
    InvalidArgument,
    StoreError,
)
from kvstore_dynamo.retries import BUDGET, UNSAFE, RetryNote, retry_note

__all__ = [
    "BUDGET_SETTING",
    "THROTTLED",
    "error_code",
    "error_message",
    "map_exceptions",
    "retried",
    "retry_detail",
    "validation_error",
]

_UNAVAILABLE = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "LimitExceededException",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "TransactionInProgressException",
    }
)
THROTTLED = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}
)
"""The codes of a request DynamoDB refused for its rate (nothing was applied)."""
_REFUSED = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "IncompleteSignatureException",
        "MissingAuthenticationTokenException",
        "AccessDeniedException",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
    }
)
_CONFIG = (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError, ProfileNotFound)
_NETWORK = (
    EndpointConnectionError,
    ConnectionClosedError,
    ConnectTimeoutError,
    ReadTimeoutError,
    HTTPClientError,
)
_NUMBER_REFUSALS = ("Number overflow", "Number underflow", "significant digits", "precision up to")
"""What DynamoDB (and DynamoDB Local) say of a number outside its rules (an increment's result)."""


def error_code(exc: ClientError) -> str:
    """The AWS error code of a ``ClientError`` (``""`` when the response has none)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def error_message(exc: ClientError) -> str:
    """The AWS error message of a ``ClientError`` (its ``str`` when the response has none)."""
    return str(exc.response.get("Error", {}).get("Message", "")) or str(exc)


def retried(exc: ClientError) -> bool:
    """Whether an earlier attempt of the request may have been applied: one failed after it was
    sent (a client kvstore made says so exactly), or any retry at all (a given client)."""
    note = retry_note(exc)
    if note is not None:
        return note.maybe_applied
    attempts = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
    return isinstance(attempts, int) and attempts > 0


BUDGET_SETTING = "KVSTORE_TIMEOUT or timeout="
"""Where a call's time budget comes from, for messages."""


def _seconds(value: float) -> str:
    return f"{value:.3g} s"


def retry_detail(note: RetryNote | None) -> str:
    """What the retries came to, for a message (``""`` without a note): how many attempts, and
    what stopped them when botocore did not."""
    if note is None:
        return ""
    detail = f"; gave up after {note.attempts} attempt{'s' if note.attempts != 1 else ''}"
    if note.stopped == BUDGET:
        budget = _seconds(note.limits.budget)
        return (
            f"{detail}, with no time left for another in the call's time budget of {budget} "
            f"({BUDGET_SETTING})"
        )
    if note.stopped == UNSAFE:
        return (
            f"{detail}: the write was not sent again, since it may have been applied and "
            "applying it twice would not be the same"
        )
    return detail


def _network(exc: Exception, table: str) -> BackendUnavailable:
    note = retry_note(exc)
    if note is None:
        return BackendUnavailable(f"DynamoDB cannot be reached for {table!r}: {exc}")
    limits = note.limits
    if isinstance(exc, ConnectTimeoutError):
        what = f"no connection within the connect timeout of {_seconds(limits.connect_timeout)}"
    elif isinstance(exc, ReadTimeoutError):
        what = f"no answer within the read timeout of {_seconds(limits.read_timeout)}"
    else:
        what = str(exc)
    if note.stopped != BUDGET and isinstance(exc, (ConnectTimeoutError, ReadTimeoutError)):
        what += f" (from the call's time budget of {_seconds(limits.budget)}, {BUDGET_SETTING})"
    return BackendUnavailable(
        f"DynamoDB cannot be reached for {table!r}: {what}{retry_detail(note)}"
    )


_EXPRESSION_LIMITS = ("Expression size has exceeded", "too many operators", "operator count")


def validation_error(message: str, table: str) -> StoreError | None:
    """The ``InvalidArgument`` of a refusal DynamoDB explains by the contract's value rules (an
    item too large, a number out of range, a call too wide for one expression), ``None`` for any
    other message."""
    if any(words in message for words in _EXPRESSION_LIMITS):
        return InvalidArgument(
            f"the call is too wide for one DynamoDB expression in {table!r} (4 KB and 300 "
            f"operators at most: fewer filters, expect conditions or increments a call): {message}"
        )
    if "size" in message and "exceeded" in message:
        return InvalidArgument(
            f"record too large for DynamoDB in {table!r} (it must be under 409600 bytes): {message}"
        )
    if any(words in message for words in _NUMBER_REFUSALS):
        return InvalidArgument(f"a number outside DynamoDB's rules in {table!r}: {message}")
    return None


def _from_client_error(exc: ClientError, kind: str, table: str) -> StoreError:
    code = error_code(exc)
    message = error_message(exc)
    if code == "ResourceNotFoundException":
        return missing_table(
            kind, f"DynamoDB (table {table!r})", "create it with your infrastructure code"
        )
    if (
        code in _UNAVAILABLE
        or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500
    ):
        what = "throttled requests to" if code in THROTTLED else "is unavailable for"
        detail = retry_detail(retry_note(exc))
        return BackendUnavailable(f"DynamoDB {what} {table!r} ({code}){detail}: {message}")
    if code in _REFUSED:
        return ConfigError(f"DynamoDB refused the credentials or rights ({code}): {message}")
    if code == "ValidationException":
        if "does not have the specified index" in message:
            return ConfigError(
                f"kind {kind!r}: DynamoDB table {table!r} lacks a declared index ({message}): "
                "call store.ensure() to add it, or add it with your infrastructure code"
            )
        refused = validation_error(message, table)
        if refused is not None:
            return refused
    return StoreError(f"DynamoDB error on {table!r} ({code or 'unknown'}): {message}")


@contextmanager
def map_exceptions(kind: str, table: str) -> Iterator[None]:
    """Turn botocore exceptions raised inside the block into kvstore errors (``from`` the
    original); ``kind`` and ``table`` name what the block works on."""
    try:
        yield
    except ClientError as exc:
        raise _from_client_error(exc, kind, table) from exc
    except NoRegionError as exc:
        raise ConfigError(
            "no AWS region for DynamoDB: set AWS_REGION (or pass region=...)"
        ) from exc
    except _CONFIG as exc:
        raise ConfigError(f"AWS credentials problem for DynamoDB: {exc}") from exc
    except _NETWORK as exc:
        raise _network(exc, table) from exc
    except BotoCoreError as exc:
        raise StoreError(f"DynamoDB client error on {table!r}: {exc}") from exc
