"""botocore's exceptions mapped to kvstore's errors, in one place: ``map_exceptions``.

=========================================================  =====================================
botocore                                                   kvstore
=========================================================  =====================================
``ResourceNotFoundException``                              ``ConfigError`` naming the table
``ValidationException`` "Item size has exceeded ..."       ``InvalidArgument`` (size rule)
throttling codes (after botocore's own retries), 5xx       ``BackendUnavailable``
endpoint connection errors, timeouts, dropped connections  ``BackendUnavailable``
credential, signature, region and access-denied errors     ``ConfigError``
anything else (other ``ValidationException``s included)    ``StoreError`` with ``__cause__``
=========================================================  =====================================

``ConditionalCheckFailedException`` is handled where it is expected (``create``, ``update``),
because only the caller knows whether it means ``AlreadyExists`` or ``NotFound``.
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

from kvstore.errors import (
    BackendUnavailable,
    ConfigError,
    InvalidArgument,
    StoreError,
)

__all__ = ["error_code", "map_exceptions", "missing_table"]

_UNAVAILABLE = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "LimitExceededException",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
    }
)
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


def error_code(exc: ClientError) -> str:
    """The AWS error code of a ``ClientError`` (``""`` when the response has none)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def _message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", "")) or str(exc)


def missing_table(table: str) -> ConfigError:
    """The error for an operation on a table that does not exist."""
    return ConfigError(
        f"DynamoDB table {table!r} does not exist: create it with store.ensure() "
        "(tests, local runs) or with your infrastructure code"
    )


def _from_client_error(exc: ClientError, table: str) -> StoreError:
    code = error_code(exc)
    message = _message(exc)
    if code == "ResourceNotFoundException":
        return missing_table(table)
    if (
        code in _UNAVAILABLE
        or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500
    ):
        return BackendUnavailable(f"DynamoDB is unavailable ({code}) for {table!r}: {message}")
    if code in _REFUSED:
        return ConfigError(f"DynamoDB refused the credentials or rights ({code}): {message}")
    if code == "ValidationException" and "size" in message and "exceeded" in message:
        return InvalidArgument(
            f"record too large for DynamoDB in {table!r} (it must be under 409600 bytes): {message}"
        )
    return StoreError(f"DynamoDB error on {table!r} ({code or 'unknown'}): {message}")


@contextmanager
def map_exceptions(table: str) -> Iterator[None]:
    """Turn botocore exceptions raised inside the block into kvstore errors (``from`` the original)."""
    try:
        yield
    except ClientError as exc:
        raise _from_client_error(exc, table) from exc
    except NoRegionError as exc:
        raise ConfigError(
            "no AWS region for DynamoDB: set AWS_REGION (or pass region=...)"
        ) from exc
    except _CONFIG as exc:
        raise ConfigError(f"AWS credentials problem for DynamoDB: {exc}") from exc
    except _NETWORK as exc:
        raise BackendUnavailable(f"DynamoDB cannot be reached for {table!r}: {exc}") from exc
    except BotoCoreError as exc:
        raise StoreError(f"DynamoDB client error on {table!r}: {exc}") from exc
