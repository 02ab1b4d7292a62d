"""The jobs of privacy requests: the deadline reminder, building an export, and deleting
it when its link expires. Each is one unit of work in one tenant transaction, and does
nothing when the request or export has moved on (so stale or repeated jobs are safe)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from tenants.actors import system_actor
from tenants.db import tenant_transaction
from tenants.jobs.registry import RunningJob, handler
from tenants.mail import service as mail
from tenants.members.lifecycle import MemberStatus
from tenants.members.models import Member
from tenants.requests import fulfilment, rules
from tenants.requests.models import PrivacyRequest
from tenants.requests.service import REMINDER_JOB, add_event, console_path, officer_emails


@handler(REMINDER_JOB)
async def remind(job: RunningJob) -> None:
    """Email the assignee (or, with nobody assigned, the privacy officers) that the
    request is due soon, unless it was answered or its deadline moved since."""
    actor = system_actor("privacy-request-reminder")
    async with tenant_transaction(job.org_id):
        request = await PrivacyRequest.filter(id=uuid.UUID(job.payload["request_id"])).first()
        if (request is None or not rules.is_open(request.status)
                or request.due_on != date.fromisoformat(job.payload["due_on"])):
            return
        member = await Member.get(id=request.member_id)
        assignee = (await Member.filter(id=request.assignee_id).first()
                    if request.assignee_id else None)
        if assignee is not None and assignee.status == MemberStatus.ACTIVE:
            to = [assignee.email]
        else:
            to = await officer_emails()
        left = rules.days_left(request.due_on, datetime.now(UTC).date())
        await mail.send_later(
            "deadline_approaching", to=to,
            context={"member_name": member.name,
                     "kind_label": rules.STAFF_KIND_LABELS[request.kind],
                     "due_on": request.due_on.isoformat(), "days_left": left,
                     "link_path": console_path(request.id)},
            key=f"privacy_request:{request.id}:reminder-mail:{request.due_on.isoformat()}",
        )
        await add_event(request, "reminder", actor=actor, internal=True,
                        body=f"Reminder sent to {', '.join(to) or 'nobody (no privacy officer)'}",
                        data={"to": to, "days_left": left})
        await job.checkpoint({"sent": True})


@handler(fulfilment.BUILD_JOB)
async def build(job: RunningJob) -> None:
    async with tenant_transaction(job.org_id):
        await fulfilment.build_export(
            uuid.UUID(job.payload["export_id"]), actor=system_actor("privacy-export")
        )
        await job.checkpoint({"built": True})


@handler(fulfilment.EXPIRE_JOB)
async def expire(job: RunningJob) -> None:
    async with tenant_transaction(job.org_id):
        await fulfilment.expire_export(
            uuid.UUID(job.payload["export_id"]),
            datetime.fromisoformat(job.payload["expires_at"]),
            actor=system_actor("privacy-export"),
        )
        await job.checkpoint({"expired": True})
