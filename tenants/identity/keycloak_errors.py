"""python-keycloak's errors translated into the identity port's, in one place: unreachable,
5xx, 408 and 429 mean "wait and retry" (``BackendUnavailableError``); an address the
network policy refuses (``tenants.network``), 401 (after
python-keycloak fetched a fresh token once), 403 and "Organizations not enabled" mean the
realm is not set up for Tenantry (``BackendSetupError``); any other refusal is
``BackendRejectedError``, with the HTTP status kept on the chained cause."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

from tenants import network
from tenants.identity import setup
from tenants.identity.errors import (
    BackendAddressRefusedError,
    BackendRejectedError,
    BackendSetupError,
    BackendUnavailableError,
)

RETRYABLE_STATUS = frozenset({408, 429})
ORGANIZATIONS_DISABLED = "Organizations not enabled"

T = TypeVar("T")


async def translate(what: str, call: Awaitable[T]) -> T:
    """Await ``call``; Keycloak's errors become the port's, with the cause chained."""
    # python-keycloak is imported where Keycloak is called (see tenants.identity.keycloak).
    from keycloak.exceptions import KeycloakConnectionError, KeycloakError

    try:
        return await call
    except KeycloakConnectionError as exc:
        refused = _refusal(exc)
        if refused is not None:
            # The address, not Keycloak, has to change: waiting cannot help.
            raise BackendAddressRefusedError(
                f"Keycloak was sent nothing ({what}): its server URL {refused}"
            ) from exc
        raise BackendUnavailableError(f"Keycloak cannot be reached ({what})") from exc
    except KeycloakError as exc:
        status = exc.response_code or 0
        if status >= 500 or status in RETRYABLE_STATUS:
            raise BackendUnavailableError(f"Keycloak answered HTTP {status} ({what})") from exc
        if status == 401:
            raise BackendSetupError(
                f"Keycloak refused Tenantry's client credentials (HTTP 401) to {what}: check "
                "the client id and secret, and that the client has a service account"
            ) from exc
        if status == 403:
            raise BackendSetupError(
                f"Keycloak refused to let Tenantry's service account {what} (HTTP 403): give "
                "it the realm-management roles " + ", ".join(setup.REQUIRED_ROLES)
            ) from exc
        if status == 404 and ORGANIZATIONS_DISABLED.encode() in (exc.response_body or b""):
            raise BackendSetupError(
                f"Keycloak cannot {what}: Organizations are not enabled for the realm "
                "(run tenantry identity setup, or switch Organizations on in the realm settings)"
            ) from exc
        raise BackendRejectedError(f"Keycloak refused to {what} (HTTP {status}: {exc})") from exc
    except TypeError as exc:  # python-keycloak's check of the answer's shape
        raise BackendRejectedError(f"Keycloak's answer to {what} is not understood") from exc


def _refusal(exc: BaseException) -> network.Refused | None:
    """The network policy's refusal behind python-keycloak's "Can't connect", if that is
    why (it chains the transport's exception)."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, network.Refused):
            return cause
        cause = cause.__cause__ or cause.__context__
    return None


def has_status(exc: BackendRejectedError, status: int) -> bool:
    from keycloak.exceptions import KeycloakError

    cause = exc.__cause__
    return isinstance(cause, KeycloakError) and cause.response_code == status


def is_not_found(exc: BackendRejectedError) -> bool:
    return has_status(exc, 404)
