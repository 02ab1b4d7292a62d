"""The job that moves an access review along at its moments (open, reminder, close).

Each moment is a job queued for that moment; when it runs it advances the campaign to where
it should be at the later of now and the moment it was queued for (a job the test worker
runs ahead of time acts as at its moment). Late jobs (a worker that was down) catch up: the
campaign jumps straight to where it should be, and a job finding it there does nothing.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from tenants.db import tenant_transaction
from tenants.jobs.registry import RunningJob, handler
from tenants.reviews import service
from tenants.reviews.models import AccessReview


@handler(service.JOB_KIND)
async def advance(job: RunningJob) -> None:
    at = datetime.fromisoformat(job.payload["at"])
    async with tenant_transaction(job.org_id):
        review_id = uuid.UUID(job.payload["review_id"])
        if not await AccessReview.filter(id=review_id).exists():
            return
        await service.advance_review(review_id, now=max(datetime.now(UTC), at))
        await job.checkpoint({"advanced": True})
