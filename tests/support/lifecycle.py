"""Reaching a lifecycle status for test setup the way the service's own workflows do.

``depart`` and ``purge`` are not offered by ``POST /v1/members/{id}/transitions`` (a member
leaves through a departure and is erased through the erasure path); tests that only need a
member in such a status apply the transition as the departure worker does, in a tenant
transaction of their own.
"""

from __future__ import annotations

import uuid

from tenants import db
from tenants.actors import system_actor
from tenants.ids import OrgId
from tenants.members.lifecycle import LifecycleAction
from tenants.members.service import transition_member


async def apply_as_workflow(org_id: OrgId, member_id: str, *actions: str) -> None:
    """Apply ``actions`` in order as the departure workflow would (audited, sessions ended)."""
    for action in actions:
        async with db.tenant_transaction(org_id):
            await transition_member(uuid.UUID(member_id), LifecycleAction(action),
                                    reason="test setup", actor=system_actor("test-setup"))
