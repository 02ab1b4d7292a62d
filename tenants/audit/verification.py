"""Verifying an organisation's audit chain from the console: a job, in parts, with its
progress shown and its outcome kept in the audit log itself.

``tenantry audit verify`` walks the chain in one transaction, which suits an operator at a
terminal; an auditor presses a button and should not hold a request open over a million
events. So the console queues an ``audit.verify`` job: it takes the chain's head as it is
when the job starts, then checks the entries up to it ``PART`` at a time, one transaction
and one checkpoint each (the checkpoint holds where the walk is and the hash it reached,
so a restarted job goes on rather than starting over). The outcome is an ``audit.verified``
event: intact, or the first entry that does not hold and why. Entries sealed after the
start are the next verification's.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tenants import db
from tenants.actors import SYSTEM_NAMES, Actor, system_actor
from tenants.audit import service as audit
from tenants.audit.chain import ChainHead, ChainVerifier, Verification
from tenants.jobs import service as jobs
from tenants.jobs.models import Job, JobStatus
from tenants.jobs.registry import RunningJob, handler
from tenants.members.models import Member

KIND = "audit.verify"
#: Entries checked per transaction (about a second's work on a small machine).
PART = 20_000
ACTOR = "audit-verification"


async def asker(ref: str) -> str:
    """Who asked for a verification, as people read it: a member's name and address (an
    erased member's placeholder), or the service's own actor in words."""
    kind, _, key = ref.partition(":")
    if kind == "member":
        try:
            member = await Member.filter(id=uuid.UUID(key)).first()
        except ValueError:
            member = None
        return f"{member.name} <{member.email}>" if member else "a member no longer here"
    return SYSTEM_NAMES.get(key, ref)


@dataclass(frozen=True, slots=True)
class Progress:
    """A verification under way: ``checked`` of ``total`` entries."""

    checked: int
    total: int
    requested_by: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """The last verification's finding, from its ``audit.verified`` event."""

    at: datetime
    intact: bool
    checked: int
    head_seq: int
    requested_by: str
    broken_at: int | None = None
    reason: str | None = None


async def start(*, actor: Actor) -> uuid.UUID:
    """Queue a verification of the open organisation's chain, or return the one already
    queued or running (one at a time: a second would only repeat it)."""
    running = await _current()
    if running is not None:
        return running.id
    key = f"{KIND}:{uuid.uuid4()}"
    # The asker by reference, never by name: the event outlives an erasure of them. A
    # queue of their own: verifications run one after the other, and the latest is found
    # through the (tenant_id, queue, created_at) index whatever else waits.
    await jobs.enqueue(
        KIND, {"requested_by": actor.ref}, key=key, queue=KIND, max_attempts=3
    )
    row = await db.fetch_one(
        "SELECT id FROM jobs WHERE tenant_id = $1 AND key = $2", db.current_org(), key
    )
    assert row is not None
    return uuid.UUID(str(row["id"]))


async def _current() -> Job | None:
    """The latest verification, while it is queued or running."""
    latest = await Job.filter(queue=KIND).order_by("-created_at").first()
    if latest is None or latest.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
        return None
    return latest


async def progress() -> Progress | None:
    """The verification under way in the open organisation, if any."""
    job = await _current()
    if job is None:
        return None
    state = job.checkpoint or {}
    return Progress(
        int(state.get("checked", 0)),
        int(state.get("upto", 0)),
        await asker(str((job.payload or {}).get("requested_by", ""))),
    )


async def last_outcome() -> Outcome | None:
    """The latest ``audit.verified`` event of the open organisation, if any (the action's
    index: one row whatever the size of the log)."""
    found = await audit.list_events(
        audit.AuditFilter(action="audit.verified"), before_id=None, limit=1
    )
    if not found:
        return None
    after: dict[str, Any] = found[0]["after"] or {}
    return Outcome(
        at=found[0]["occurred_at"],
        intact=bool(after.get("intact")),
        checked=int(after.get("checked", 0)),
        head_seq=int(after.get("head_seq", 0)),
        requested_by=await asker(str(after.get("requested_by", ""))),
        broken_at=after.get("broken_at"),
        reason=after.get("reason"),
    )


@handler(KIND)
async def run(job: RunningJob) -> None:
    """Check the chain up to the head it had at the start, ``PART`` entries per
    transaction (a checkpoint after each), then record the outcome."""
    state = dict(job.state)
    if "upto" not in state:
        async with db.tenant_transaction(job.org_id):
            head = await audit.stored_head()
            start = ChainVerifier().head  # the empty chain's: seq 0, the genesis hash
            state = {
                "upto": head.seq,
                "head_hash": head.hash,
                "seq": start.seq,
                "hash": start.hash,
                "checked": 0,
            }
            await job.checkpoint(state)
    upto = int(state["upto"])
    while True:
        async with db.tenant_transaction(job.org_id):
            verifier = ChainVerifier.resumed(
                ChainHead(int(state["seq"]), str(state["hash"])), int(state["checked"])
            )
            wanted = min(PART, upto - verifier.head.seq)
            entries = await audit.chain_entries(verifier.head.seq, wanted) if wanted > 0 else []
            for seq, stored in entries:
                held = verifier.feed(stored) if stored is not None else verifier.feed_missing(seq)
                if not held:
                    break
            state = {
                **state,
                "seq": verifier.head.seq,
                "hash": verifier.head.hash,
                "checked": verifier.checked,
            }
            if verifier.broken is None and verifier.head.seq < upto and len(entries) == wanted:
                await job.checkpoint(state)
                continue
            # Done, or broken, or the chain ended early: the head taken at the start says
            # which (the chain must reach it, and end in its hash).
            verifier.stored_head = ChainHead(upto, str(state["head_hash"]))
            await _record(job, verifier.finish())
            await job.checkpoint({**state, "finished": True})
            return


async def _record(job: RunningJob, result: Verification) -> None:
    broken = result.broken
    found: dict[str, Any] = (
        {} if broken is None else {"broken_at": broken.seq, "reason": broken.reason}
    )
    await audit.record(
        "audit.verified",
        "audit_chain",
        None,
        actor=system_actor(ACTOR),
        after={
            "intact": broken is None,
            "checked": result.checked,
            "head_seq": int(job.state["upto"]),  # the head taken at the start
            "requested_by": str(job.payload.get("requested_by", "")),
            **found,
        },
    )
