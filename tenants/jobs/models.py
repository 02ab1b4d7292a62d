"""Durable jobs: the work queue of ``tenantry worker``, in PostgreSQL alone."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from tortoise import fields

from tenants.models_base import TenantModel


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    #: Out of attempts: waits for a person (the console's retry button).
    DEAD = "dead"


class Job(TenantModel):
    kind = fields.CharField(max_length=64)
    payload: fields.Field[dict[str, Any]] = fields.JSONField(default=dict)
    #: Unique per organisation: enqueueing the same key twice is one job.
    key = fields.CharField(max_length=200)
    #: Jobs sharing a queue run one at a time, oldest first (changes to one member at an
    #: identity backend); None runs independently.
    queue = fields.CharField(max_length=200, null=True)
    status = fields.CharEnumField(JobStatus, max_length=16, default=JobStatus.QUEUED)
    run_at: datetime = fields.DatetimeField()
    #: Failed attempts so far; a worker killed mid-run is not a failure.
    attempts = fields.IntField(default=0)
    max_attempts = fields.IntField(default=8)
    #: How many times a worker took the job (a killed worker's lease expires and the job is
    #: taken again).
    claims = fields.IntField(default=0)
    locked_by = fields.CharField(max_length=200, null=True)
    lease_until: datetime | None = fields.DatetimeField(null=True)
    heartbeat_at: datetime | None = fields.DatetimeField(null=True)
    #: Where a resumable job stopped; written in the same transaction as the work it covers.
    checkpoint: fields.Field[dict[str, Any]] = fields.JSONField(default=dict)
    last_error: str | None = fields.TextField(null=True)
    finished_at: datetime | None = fields.DatetimeField(null=True)

    class Meta:
        table = "jobs"
        unique_together = (("tenant_id", "key"),)
        indexes = (("tenant_id", "status", "run_at"), ("tenant_id", "queue", "created_at"))
