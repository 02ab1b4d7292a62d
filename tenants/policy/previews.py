"""Large impact previews run as a job and show their progress.

A preview of a rule whose scope holds more than ``LARGE_SCOPE`` members (about a second of
work at 100,000) would hold the admin's request open for as long; the console starts a
``policy.preview`` job instead and polls it. The job counts the scope in parts of about
``PART_MEMBERS`` members (consecutive units of the subtree, ``service.scope_parts``), one
transaction and one checkpoint each, so the checkpoint says how far it got; the last one
holds the impact. Any node can answer the poll: the job row is the state.

The parts are read in separate transactions, so a member moved while the preview runs may
be counted in neither or both of its units; the preview is an estimate made before saving,
and the save itself checks nothing against it.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from typing import Any

from policies.resolve import TargetKind
from tenants import db
from tenants.errors import NotFoundError
from tenants.jobs import service as jobs
from tenants.jobs.models import Job, JobStatus
from tenants.jobs.registry import RunningJob, handler
from tenants.policy import service as policy

KIND = "policy.preview"
#: From this many members in scope (by the kept counters) the console runs a preview as a job.
LARGE_SCOPE = 20_000
#: About this many members are counted per part (one transaction and checkpoint each).
PART_MEMBERS = 10_000


@dataclass(frozen=True, slots=True)
class PreviewState:
    """How far a preview job got: members counted (``done``) of about ``total``; the impact
    once finished; ``failed`` when it will not finish."""

    done: int
    total: int
    impact: policy.Impact | None = None
    failed: bool = False


async def scope_size(target_kind: TargetKind, target_id: uuid.UUID) -> int:
    """About how many members a rule on the target reaches (the kept counters; one row per
    unit in scope, never a count of members)."""
    parts = await policy.scope_parts(target_kind, target_id, part_members=PART_MEMBERS)
    return sum(p.members for p in parts)


async def start_preview(change: policy.RuleInput, *, removing: bool) -> uuid.UUID:
    """Queue the preview of ``change`` (of removing the rule for its target and setting when
    ``removing``), checked first as ``preview_rule_change``/``preview_rule_removal`` check
    it (InvalidInputError); returns the job's id for ``preview_state``. The job carries ids,
    the setting and the value, not the rule's reason (the preview does not need it)."""
    if removing:
        await policy.check_removal(change.target_kind, change.target_id, change.setting)
        value = None
    else:
        value = (await policy.preview_candidate(change)).value
    job_id = uuid.uuid4()
    await jobs.enqueue(
        KIND,
        {
            "target_kind": change.target_kind.value,
            "target_id": str(change.target_id),
            "setting": change.setting,
            "value": value,
            "enforced": change.enforced,
            "remove": removing,
        },
        key=f"{KIND}:{job_id}",
        max_attempts=2,
    )
    row = await db.fetch_one(
        "SELECT id FROM jobs WHERE tenant_id = $1 AND key = $2",
        db.current_org(),
        f"{KIND}:{job_id}",
    )
    assert row is not None
    return uuid.UUID(str(row["id"]))


def _state(checkpoint: dict[str, Any], status: JobStatus) -> PreviewState:
    done, total = int(checkpoint.get("done", 0)), int(checkpoint.get("total", 0))
    found = checkpoint.get("impact")
    impact = None
    if status is JobStatus.DONE and isinstance(found, dict):
        impact = policy.Impact(
            **{**found, "by_unit": [(str(n), int(c)) for n, c in found["by_unit"]]}
        )
    return PreviewState(done, max(total, done), impact, status is JobStatus.DEAD)


async def preview_state(job_id: uuid.UUID) -> PreviewState:
    """The state of the preview job ``job_id`` of this organisation; NotFoundError when
    there is no such preview (another kind of job is not one)."""
    job = await Job.filter(id=job_id, kind=KIND).first()
    if job is None:
        raise NotFoundError("there is no such preview")
    return _state(job.checkpoint or {}, JobStatus(job.status))


async def count_part(
    plan: policy.ImpactPlan, part: policy.ScopePart, tally: policy.ImpactTally
) -> None:
    """Add the classes of one part of the plan's scope to ``tally``."""
    tally.add(
        plan,
        await policy.member_classes(
            plan.target_kind, plan.target_id, plan.setting.key, plan.priority, units=part.units
        ),
    )


@handler(KIND)
async def run_preview(job: RunningJob) -> None:
    """Count the scope part by part, a checkpoint after each, the impact in the last.
    Starts over when retried: a part's counts are not kept between runs."""
    p = job.payload
    kind = TargetKind(p["target_kind"])
    target = uuid.UUID(p["target_id"])
    async with db.tenant_transaction(job.org_id):
        # Checked again as the request checked it: the value in its own type (a list comes
        # back from JSON as a list), the target still there (or the job fails).
        candidate = (
            None
            if p["remove"]
            else await policy.preview_candidate(
                policy.RuleInput(kind, target, p["setting"], p["value"], p["enforced"])
            )
        )
        plan = await policy.impact_plan(kind, target, p["setting"], candidate)
        parts = await policy.scope_parts(kind, target, part_members=PART_MEMBERS)
        total = sum(part.members for part in parts)
        await job.checkpoint({"done": 0, "total": total})
    tally = policy.ImpactTally()
    for part in parts:
        async with db.tenant_transaction(job.org_id):
            await count_part(plan, part, tally)
            await job.checkpoint({"done": tally.scoped, "total": max(total, tally.scoped)})
    async with db.tenant_transaction(job.org_id):
        impact = await policy.impact_of(plan, tally)
        await job.checkpoint(
            {"done": tally.scoped, "total": tally.scoped, "impact": asdict(impact)}
        )
