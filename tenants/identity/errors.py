"""Errors of the identity backend port; adapters translate their library's errors here."""

from __future__ import annotations

from tenants.errors import ConflictError, TenantryError


class IdentityBackendError(TenantryError):
    """Talking to the organisation's identity backend failed."""

    code = "identity_backend_error"
    title = "Identity backend error"


class BackendUnavailableError(IdentityBackendError):
    """The identity backend cannot be reached now (down, timing out, answering 5xx, or
    refusing our client's credentials); the change waits and is retried."""

    code = "identity_backend_unavailable"
    title = "Identity backend unavailable"


class BackendRejectedError(IdentityBackendError):
    """The identity backend refused a request; sending it again unchanged cannot help."""

    code = "identity_backend_rejected"
    title = "Identity backend refused the change"


class BackendNotConfiguredError(ConflictError):
    """The organisation mirrors nothing (its identity backend is ``local``)."""

    code = "identity_backend_not_configured"
    title = "No identity backend configured"


class BackendSetupError(BackendRejectedError):
    """The identity backend is not set up for Tenantry: it refuses our credentials (401),
    our service account lacks a role (403), a realm feature is off, or it silently
    discarded what we wrote. Retrying cannot help until an admin fixes the realm
    (``tenantry identity setup`` names the fix), so the job is dead at once."""

    code = "identity_backend_setup"
    title = "Identity backend not set up"


class BackendAddressRefusedError(BackendSetupError):
    """The backend's server URL leads where the outbound network policy does not let the
    service go (``tenants.network``): nothing was sent, the client secret included. The
    address has to change (or the operator allow private networks)."""
