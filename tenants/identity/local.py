"""The ``local`` identity backend: nothing to mirror.

Tenantry itself is the OpenID Connect client of each organisation's identity provider
(``tenants/sso``), so members, sessions and suspensions live here alone. The sync hooks
enqueue nothing for a local organisation; this adapter exists so code holding an
``IdentityDirectory`` (reconcile) needs no special case.
"""

from __future__ import annotations

from tenants.identity.port import (
    DirectoryGroup,
    DirectoryMember,
    DirectoryOrganisation,
    DirectoryState,
)
from tenants.identity.setup import SetupCheck, UnmanagedPolicy


class LocalDirectory:
    """Accepts every change and holds nothing; reconcile against it reports no drift."""

    async def ensure_organisation(self, org: DirectoryOrganisation) -> list[str]:
        return []

    async def upsert_member(self, org: DirectoryOrganisation, member: DirectoryMember) -> list[str]:
        return []

    async def set_enabled(
        self, org: DirectoryOrganisation, member_id: str, enabled: bool
    ) -> list[str]:
        return []

    async def log_out(self, org: DirectoryOrganisation, member_id: str) -> list[str]:
        return []

    async def remove_member(self, org: DirectoryOrganisation, member_id: str) -> list[str]:
        return []

    async def upsert_group(self, org: DirectoryOrganisation, group: DirectoryGroup) -> list[str]:
        return []

    async def remove_group(self, org: DirectoryOrganisation, group_id: str) -> list[str]:
        return []

    async def snapshot(self, org: DirectoryOrganisation) -> DirectoryState:
        return DirectoryState(organisation=None)

    async def check_setup(
        self, org: DirectoryOrganisation, *, prepare: bool, policy: UnmanagedPolicy
    ) -> list[SetupCheck]:
        return []

    async def aclose(self) -> None:
        return None
