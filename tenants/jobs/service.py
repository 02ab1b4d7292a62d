"""Enqueueing jobs and looking after them (retry of dead jobs), in the caller's tenant
transaction: a job is queued if and only if the change that asks for it commits."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from tenants import db
from tenants.actors import Actor
from tenants.audit import service as audit
from tenants.errors import IllegalTransitionError
from tenants.jobs.models import Job, JobStatus
from tenants.models_base import get_by_id

#: WITH … SELECT so the driver returns the row (a bare INSERT answers a status line only).
#: ``clock_timestamp()``: jobs of one queue enqueued in one transaction run in the order
#: they were enqueued (``now()`` is the same for the whole transaction).
ENQUEUE_SQL = """
WITH queued AS (
  INSERT INTO jobs (id, tenant_id, kind, payload, key, queue, status, run_at, attempts,
                    max_attempts, claims, checkpoint, created_at, updated_at)
  VALUES ($1, $2, $3, $4::jsonb, $5, $6, 'queued', $7, 0, $8, 0, '{}'::jsonb, clock_timestamp(), now())
  ON CONFLICT (tenant_id, key) DO NOTHING
  RETURNING id
)
SELECT id FROM queued
"""


async def enqueue(
    kind: str,
    payload: dict[str, Any],
    *,
    key: str,
    run_at: datetime | None = None,
    queue: str | None = None,
    max_attempts: int = 8,
) -> bool:
    """Queue a job of ``kind`` (a handler registered in ``tenants.jobs.registry``).

    ``key`` is unique per organisation: enqueueing it again is a no-op and returns False,
    so a step that crashed after enqueueing its successor can enqueue it again safely.
    Jobs sharing ``queue`` run one at a time in the order they were enqueued.
    Raises NoTenantTransactionError outside a tenant transaction.
    """
    inserted = await db.fetch(
        ENQUEUE_SQL,
        uuid.uuid4(),
        db.current_org(),
        kind,
        json.dumps(payload),
        key,
        queue,
        run_at or datetime.now(UTC),
        max_attempts,
    )
    return bool(inserted)


async def get_job(job_id: uuid.UUID) -> Job:
    return await get_by_id(Job, job_id, "job")


async def retry_job(job_id: uuid.UUID, *, actor: Actor) -> Job:
    """Give a dead job a fresh set of attempts, due now; IllegalTransitionError unless dead."""
    job = await get_by_id(Job, job_id, "job", for_update=True)
    if job.status != JobStatus.DEAD:
        raise IllegalTransitionError(
            f"only a dead job can be retried; this one is {job.status.value}",
            extra={"job_status": job.status.value},
        )
    job.status = JobStatus.QUEUED
    job.attempts = 0
    job.run_at = datetime.now(UTC)
    job.last_error = None
    await job.save(update_fields=["status", "attempts", "run_at", "last_error", "updated_at"])
    await audit.record(
        "job.retried", "job", job.id, actor=actor,
        before={"status": JobStatus.DEAD}, after={"status": job.status, "kind": job.kind},
    )
    return job


async def retry_dead_jobs(kind_prefix: str) -> int:
    """Give every dead job whose kind starts with ``kind_prefix`` a fresh set of attempts,
    due now, and return how many: for a cause fixed once for all of them (an identity
    backend set up again). The caller records the audit event of the fix."""
    rows = await db.fetch(
        "WITH revived AS (UPDATE jobs SET status = 'queued', attempts = 0, run_at = now(), "
        "last_error = NULL, finished_at = NULL, updated_at = now() "
        "WHERE tenant_id = $1 AND status = 'dead' AND starts_with(kind, $2) RETURNING id) "
        "SELECT count(*) AS n FROM revived",
        db.current_org(),
        kind_prefix,
    )
    return int(rows[0]["n"]) if rows else 0
