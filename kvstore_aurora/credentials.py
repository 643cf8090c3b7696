"""The login of a connection when the settings hold no password: an RDS IAM auth token
(``DB_IAM_AUTH``) or a Secrets Manager secret in RDS's JSON format (``DB_SECRET_ARN``).

botocore is imported here only, and only on these paths (``pip install 'kvstore[aurora-iam]'``).
Both are kept for the process: a token is signed locally by botocore's RDS signer and renewed
once it is ``TOKEN_RENEW_AFTER`` old (RDS accepts it for 15 minutes); a secret is read once, and
read again when a login with it is refused (the secret was rotated). No message or ``repr`` here
holds a password or a token.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from kvstore.backend import shared
from kvstore.config import Secret
from kvstore.errors import BackendUnavailable, ConfigError
from kvstore_aurora.settings import PostgresSettings

__all__ = [
    "TOKEN_RENEW_AFTER",
    "IamTokens",
    "Login",
    "SecretLogins",
    "login",
    "region_of",
]

TOKEN_LIFETIME = 15 * 60
"""Seconds RDS accepts an IAM auth token after it was signed."""
TOKEN_RENEW_AFTER = 10 * 60
"""A token older than this is not used for a new connection: a new one is signed, well before
the old one runs out (and a connection opened with it stays open past its end: RDS checks the
token at login only)."""
EXTRA = "pip install 'kvstore[aurora-iam]'"


class Login(NamedTuple):
    """Where a connection logs in, and with what (``password`` masked in every ``repr``)."""

    host: str | None
    port: int
    dbname: str | None
    user: str | None
    password: Secret


def _botocore() -> Any:
    try:
        import botocore.session
    except ModuleNotFoundError:
        raise ConfigError(
            f"DB_IAM_AUTH and DB_SECRET_ARN need the botocore package, which is not installed: "
            f"{EXTRA}"
        ) from None
    return botocore


def region_of(host: str | None) -> str | None:
    """The region an RDS host name carries (``x.cluster-y.eu-west-1.rds.amazonaws.com``)."""
    parts = (host or "").lower().split(".")
    for at in range(1, len(parts) - 1):
        if parts[at] == "rds" and parts[at + 1] == "amazonaws":
            return parts[at - 1]
    return None


def _client_config(botocore: Any, timeout: float) -> Any:
    """A client configuration whose calls fit in a call's time budget (botocore's own retry
    settings, ``AWS_MAX_ATTEMPTS``/``AWS_RETRY_MODE``, win when they are set)."""
    from botocore.config import Config

    half = max(1.0, timeout / 2)
    if os.environ.get("AWS_MAX_ATTEMPTS") or os.environ.get("AWS_RETRY_MODE"):
        return Config(connect_timeout=half, read_timeout=half)
    return Config(
        connect_timeout=half,
        read_timeout=half,
        retries={"mode": "standard", "total_max_attempts": 2},
    )


class IamTokens:
    """RDS IAM auth tokens of one region, by (host, port, user): signed by botocore's RDS signer
    (no request to AWS), kept, and signed anew once ``TOKEN_RENEW_AFTER`` old.

    ``clock`` gives the time (seconds; ``time.time`` by default), ``client`` an RDS client (by
    default one made from botocore's session, with the process's AWS credentials).
    """

    def __init__(
        self,
        region: str,
        *,
        clock: Callable[[], float] = time.time,
        client: Any = None,
    ) -> None:
        self.region = region
        self.clock = clock
        self._client = client
        self._tokens: dict[tuple[str, int, str], tuple[Secret, float]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<IamTokens region={self.region!r} kept={len(self._tokens)}>"

    def _rds(self) -> Any:
        if self._client is None:
            botocore = _botocore()
            self._client = botocore.session.get_session().create_client(
                "rds", region_name=self.region
            )
        return self._client

    def token(self, host: str, port: int, user: str, *, renew: bool = False) -> Secret:
        """A token for ``user`` at ``host:port``: the kept one while it is young enough, else
        (or with ``renew``) a new one."""
        key = (host, port, user)
        now = self.clock()
        with self._lock:
            found = self._tokens.get(key)
            if found is not None and not renew and now - found[1] < TOKEN_RENEW_AFTER:
                return found[0]
            try:
                made = self._rds().generate_db_auth_token(
                    DBHostname=host, Port=port, DBUsername=user, Region=self.region
                )
            except ConfigError:
                raise
            except Exception as exc:  # botocore's: no credentials, a bad region
                raise ConfigError(
                    f"could not sign an RDS IAM auth token for {user}@{host}:{port} in "
                    f"{self.region}: {type(exc).__name__}: {exc}"
                ) from None
            token = Secret(made)
            self._tokens[key] = (token, now)
            return token


class SecretLogins:
    """The login of one Secrets Manager secret in RDS's JSON format (``host``, ``port``,
    ``username``, ``password``, ``dbname``), read once and kept; ``read(renew=True)`` reads it
    again (after a refused login: the secret was rotated)."""

    def __init__(self, arn: str, *, region: str | None, timeout: float, client: Any = None) -> None:
        self.arn = arn
        self.region = _arn_region(arn) or region
        self.timeout = timeout
        self._client = client
        self._found: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<SecretLogins {self.arn}>"

    def _secrets(self) -> Any:
        if self._client is None:
            botocore = _botocore()
            if not self.region:
                raise ConfigError(
                    f"DB_SECRET_ARN {self.arn!r} names no region: give its full ARN, or set "
                    "AWS_REGION"
                )
            self._client = botocore.session.get_session().create_client(
                "secretsmanager",
                region_name=self.region,
                config=_client_config(botocore, self.timeout),
            )
        return self._client

    def read(self, *, renew: bool = False) -> dict[str, Any]:
        """The secret's fields (``username`` and ``password`` at least)."""
        with self._lock:
            if self._found is not None and not renew:
                return self._found
            client = self._secrets()
            try:
                answer = client.get_secret_value(SecretId=self.arn)
            except Exception as exc:  # botocore's: refused, missing, unreachable
                raise _secret_error(self.arn, exc) from None
            self._found = _parse_secret(self.arn, answer.get("SecretString"))
            return self._found


def _arn_region(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[3] or None if len(parts) > 3 and parts[0] == "arn" else None


_TRANSIENT = ("InternalServiceError", "ThrottlingException", "RequestTimeout", "ServiceUnavailable")


def _secret_error(arn: str, exc: Exception) -> Exception:
    """``BackendUnavailable`` for an unreachable or overloaded Secrets Manager, ``ConfigError``
    for the rest (no such secret, access denied, no credentials)."""
    from botocore import exceptions

    response = getattr(exc, "response", None)
    code = response.get("Error", {}).get("Code", "") if isinstance(response, dict) else ""
    text = f"{code or type(exc).__name__}: {exc}"
    if code in _TRANSIENT or isinstance(
        exc, (exceptions.HTTPClientError, exceptions.ConnectionError)
    ):
        return BackendUnavailable(f"Secrets Manager did not give secret {arn}: {text}")
    return ConfigError(f"could not read secret {arn}: {text}")


def _parse_secret(arn: str, text: object) -> dict[str, Any]:
    try:
        found = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        found = None
    if not isinstance(found, dict):
        raise ConfigError(f"secret {arn} is not a JSON object in RDS's format")
    missing = [name for name in ("username", "password") if not found.get(name)]
    if missing:
        raise ConfigError(f"secret {arn} has no {' or '.join(missing)} (RDS's format)")
    return found


def _iam_tokens(region: str) -> IamTokens:
    return shared("kvstore_aurora.iam", region, lambda: IamTokens(region))


def _secret_logins(settings: PostgresSettings) -> SecretLogins:
    arn = settings.secret_arn
    assert arn is not None
    return shared(
        "kvstore_aurora.secret",
        arn,
        lambda: SecretLogins(arn, region=settings.region, timeout=settings.timeout),
    )


def login(settings: PostgresSettings, *, renew: bool = False) -> Login:
    """Where and as whom a new connection of ``settings`` logs in: the settings' own login,
    with the secret's (``DB_SECRET_ARN``: its username and password, and its host, port and
    dbname where the settings name none) and an IAM auth token as the password
    (``DB_IAM_AUTH``). ``renew``: after a refused login, read the secret and sign the token anew.
    """
    host, port, dbname, user = settings.host, settings.port, settings.dbname, settings.user
    password = settings.password
    if settings.secret_arn is not None:
        secret = _secret_logins(settings).read(renew=renew)
        user = str(secret["username"])
        password = Secret(str(secret["password"]))
        if not host:
            host = str(secret["host"]) if secret.get("host") else None
            port = _secret_port(settings.secret_arn, secret.get("port"))
        if not dbname and secret.get("dbname"):
            dbname = str(secret["dbname"])
    if settings.iam_auth:
        if not host or not user:
            raise ConfigError(
                "DB_IAM_AUTH signs a token for a host and a user: neither may be empty"
            )
        region = settings.region or region_of(host)
        if not region:
            raise ConfigError(
                f"DB_IAM_AUTH signs its token for a region: set AWS_REGION (the host {host!r} "
                "names none)"
            )
        password = _iam_tokens(region).token(host, port, user, renew=renew)
    return Login(host, port, dbname, user, password)


def _secret_port(arn: str, value: object) -> int:
    if value in (None, ""):
        return 5432
    try:
        return int(str(value))
    except ValueError:
        raise ConfigError(f"secret {arn} has a port that is not a number") from None
