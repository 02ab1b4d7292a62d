"""Background jobs: what is queued, what failed for good (dead letters), and retrying it."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from app.api import ApiRouter, Call
from app.v1.common import Input, ListQuery, Output, Page, sort_param
from tenants.jobs import service
from tenants.jobs.models import Job, JobStatus
from tenants.pagination import Sort, paginate
from tenants.permissions import Permission

router = ApiRouter("/v1/jobs", "jobs")


class JobOut(Output):
    id: uuid.UUID
    kind: str
    key: str
    status: JobStatus
    run_at: datetime
    attempts: int
    max_attempts: int
    claims: int = Field(description="Times a worker took the job (more than one after a crash).")
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None


class JobPage(Page[JobOut]):
    pass


#: What jobs can be listed by.
JOB_SORTS = ("created_at", "run_at")


class JobQuery(ListQuery):
    status: JobStatus | None = None
    kind: str | None = Field(None, max_length=64)
    sort: str = sort_param("-created_at", JOB_SORTS)


@router.get(
    "",
    summary="List background jobs",
    permission=Permission.JOBS_READ,
    query=JobQuery,
    response=JobPage,
    errors=(422,),
)
async def list_jobs(call: Call[Input, JobQuery]) -> JobPage:
    """``?status=dead`` lists the dead letters: jobs out of attempts, waiting for a person."""
    q = call.query
    query = Job.all()
    if q.status is not None:
        query = query.filter(status=q.status)
    if q.kind is not None:
        query = query.filter(kind=q.kind)
    page = await paginate(query, Sort.parse(q.sort, JOB_SORTS), cursor=q.cursor, limit=q.limit)
    return JobPage(
        items=[JobOut.model_validate(j) for j in page.items], next_cursor=page.next_cursor
    )


@router.post(
    "/{id}/retry",
    summary="Retry a dead job",
    permission=Permission.JOBS_WRITE,
    response=JobOut,
    errors=(404, 409),
)
async def retry_job(call: Call[Input, Input]) -> JobOut:
    """A fresh set of attempts, due now; 409 unless the job is dead."""
    return JobOut.model_validate(await service.retry_job(call.id(), actor=call.actor))
