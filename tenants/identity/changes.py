"""Hooks the domain's services call after a change the identity backend must mirror.

Each hook enqueues one ``identity.*`` job in the caller's tenant transaction, so the job
exists if and only if the change commits. Jobs for one member share the queue
``identity:<member id>`` and therefore run one at a time in the order the changes were
made; a job that fails because the backend is down blocks its queue and is retried with
backoff until it succeeds, so later changes wait behind it and nothing overtakes.

Each job syncs the *current* state of its subject (re-read when it runs), which makes it
idempotent: running it twice writes nothing the second time. Only the reason (``what``)
travels in the payload, for side effects that are events rather than state (ending the
member's sessions at the backend when they are suspended).

When the organisation's backend is ``local`` nothing is enqueued.
"""

from __future__ import annotations

import uuid

from tenants import db
from tenants.jobs import service as jobs

MEMBER_JOB = "identity.sync_member"
GROUP_JOB = "identity.sync_group"
ORGANISATION_JOB = "identity.sync_organisation"
RECONCILE_JOB = "identity.reconcile"
#: A Keycloak outage may last hours: with the backoff capped at an hour, this many attempts
#: keep a change waiting for about two days before it needs a person (console retry).
MAX_ATTEMPTS = 60


async def is_mirrored() -> bool:
    """Whether the current organisation mirrors into an identity backend (not ``local``)."""
    row = await db.fetch_one(
        "SELECT kind FROM identity_backends WHERE tenant_id = $1", db.current_org()
    )
    return row is not None and row["kind"] != "local"


async def _enqueue(kind: str, subject: str, payload: dict[str, str], queue: str) -> bool:
    """Queue one job; its key is fresh, so it is always a new job (True)."""
    await jobs.enqueue(
        kind,
        payload,
        key=f"{kind}:{subject}:{uuid.uuid4().hex}",
        queue=queue,
        max_attempts=MAX_ATTEMPTS,
    )
    return True


async def member_changed(member_id: uuid.UUID, what: str) -> bool:
    """Mirror the member's current state (``what``: created, updated, moved, groups, a
    lifecycle action such as suspend, or log_out). False when nothing is mirrored."""
    if not await is_mirrored():
        return False
    return await _enqueue(
        MEMBER_JOB,
        str(member_id),
        {"member_id": str(member_id), "what": what},
        f"identity:{member_id}",
    )


async def group_changed(group_id: uuid.UUID, what: str) -> bool:
    """Mirror the group's current state (a deleted group is removed at the backend)."""
    if not await is_mirrored():
        return False
    return await _enqueue(
        GROUP_JOB,
        str(group_id),
        {"group_id": str(group_id), "what": what},
        f"identity:group:{group_id}",
    )


async def organisation_changed(what: str) -> bool:
    """Mirror the organisation itself: name, domains, its linked identity provider."""
    if not await is_mirrored():
        return False
    return await _enqueue(ORGANISATION_JOB, "organisation", {"what": what}, "identity:organisation")


async def reconcile_requested(what: str, *, revive: bool = False) -> bool:
    """Compare everything with the backend and fix the drift (after the backend is set up
    or re-pointed), in the organisation's queue. ``revive`` (the cause of earlier failures
    was fixed: new settings, a realm just set up) first gives the identity jobs that died
    of it a fresh start, so the queues they block run again, in order."""
    if not await is_mirrored():
        return False
    if revive:
        await jobs.retry_dead_jobs("identity.")
    return await _enqueue(RECONCILE_JOB, "organisation", {"what": what}, "identity:organisation")
