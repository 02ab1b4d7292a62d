"""A job kind for shutdown tests, registered when a test's worker process imports this
module: ``test.slow`` hangs on its first claim (it is in flight when the worker is told to
stop) and, on a later claim, records that it ran (an audit event) and finishes."""

from __future__ import annotations

import asyncio

from tenants import db
from tenants.actors import system_actor
from tenants.audit import service as audit
from tenants.jobs.registry import RunningJob, handler

KIND = "test.slow"
RAN = "test.slow_job_ran"


@handler(KIND)
async def slow(job: RunningJob) -> None:
    if job.claims <= 1:
        await asyncio.sleep(3600)
    async with db.tenant_transaction(job.org_id):
        await audit.record(RAN, "job", job.id, actor=system_actor(job.worker))
        await job.checkpoint({"ran_by": job.worker})


#: Runs the ``tenantry`` CLI with this job kind registered: ``python -c RUN_CLI worker …``.
RUN_CLI = "import tests.support.slow_jobs; from app.cli import cli; cli()"
