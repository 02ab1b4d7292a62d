"""The identity directory port: what Tenantry needs from an identity backend, as a small
Protocol with plain data, so the sync jobs and the reconcile command do not know which
backend they talk to (``local.py`` mirrors nothing, ``keycloak.py`` mirrors into a
Keycloak 26 realm).

Every operation converges the backend to the state it is given and reports what it had to
change; calling it again with the same state changes nothing. That makes the sync jobs
idempotent: a job retried after a crash halfway repeats only the writes that did not land.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from tenants.identity.setup import SetupCheck, UnmanagedPolicy


@dataclass(frozen=True, slots=True)
class LinkedIdp:
    """The organisation's own OpenID provider, linked to its mirrored organisation so that
    members sign in there (Keycloak: an identity provider of type ``oidc``)."""

    alias: str
    issuer: str
    client_id: str
    #: None keeps the secret the backend already holds (it never shows it back).
    client_secret: str | None
    authorization_url: str
    token_url: str
    jwks_url: str
    userinfo_url: str | None = None
    logout_url: str | None = None


@dataclass(frozen=True, slots=True)
class DirectoryOrganisation:
    """An organisation as the backend should hold it."""

    org_id: str
    #: The organisation's slug: unique and stable, so it names the mirrored organisation.
    alias: str
    name: str
    domains: tuple[str, ...]
    enabled: bool = True
    #: The identity providers to link; empty links none and unlinks none.
    idps: tuple[LinkedIdp, ...] = ()


@dataclass(frozen=True, slots=True)
class DirectoryMember:
    """A member as the backend should hold them: present unless purged; enabled while their
    lifecycle status allows sign-in; in exactly these groups (Tenantry group ids)."""

    member_id: str
    email: str
    first_name: str
    last_name: str
    enabled: bool
    #: The groups the member is in; each is created at the backend if it is missing.
    groups: frozenset[DirectoryGroup] = frozenset()


@dataclass(frozen=True, slots=True)
class DirectoryGroup:
    group_id: str
    name: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class DirectoryState:
    """What the backend holds for one organisation, for reconcile (keyed by Tenantry ids)."""

    organisation: DirectoryOrganisation | None
    members: dict[str, DirectoryMember] = field(default_factory=dict)
    groups: dict[str, DirectoryGroup] = field(default_factory=dict)
    #: Mirrored members who are not members of the mirrored organisation.
    outside_organisation: frozenset[str] = frozenset()


class IdentityDirectory(Protocol):
    """An identity backend mirroring Tenantry's organisations, members and groups.

    Each method returns the changes it made, as short sentences (empty: nothing to do).
    Raises ``BackendUnavailableError`` when the backend cannot be reached (the caller
    retries later) and ``BackendRejectedError`` when it refuses a request (retrying the
    same request cannot help).
    """

    async def ensure_organisation(self, org: DirectoryOrganisation) -> list[str]:
        """Create or update the mirrored organisation: name, domains, linked IdPs."""
        ...

    async def upsert_member(self, org: DirectoryOrganisation, member: DirectoryMember) -> list[str]:
        """Create or update the member, their organisation membership and their groups."""
        ...

    async def set_enabled(
        self, org: DirectoryOrganisation, member_id: str, enabled: bool
    ) -> list[str]:
        """Allow or stop sign-in at the backend; nothing when the member is not mirrored."""
        ...

    async def log_out(self, org: DirectoryOrganisation, member_id: str) -> list[str]:
        """End every session the member has at the backend."""
        ...

    async def remove_member(self, org: DirectoryOrganisation, member_id: str) -> list[str]:
        """Remove the member from the backend entirely (purge); nothing when absent."""
        ...

    async def upsert_group(
        self, org: DirectoryOrganisation, group: DirectoryGroup
    ) -> list[str]: ...

    async def remove_group(self, org: DirectoryOrganisation, group_id: str) -> list[str]: ...

    async def snapshot(self, org: DirectoryOrganisation) -> DirectoryState:
        """Everything the backend holds for the organisation (reconcile compares it)."""
        ...

    async def check_setup(
        self, org: DirectoryOrganisation, *, prepare: bool, policy: UnmanagedPolicy
    ) -> list[SetupCheck]:
        """Whether the backend is ready to mirror ``org``, check by check with the fix;
        with ``prepare``, change what the backend lets Tenantry change itself."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
