"""The periodic re-check of proven domains, one job per domain and check.

``tenantry worker`` (or the worker inside ``tenantry serve``) calls ``configure`` with
the resolvers from the settings before running jobs.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from tenants.actors import system_actor
from tenants.db import tenant_transaction
from tenants.domains import service
from tenants.domains.dns import DnsTxtLookup, DnsUnavailableError, TxtLookup
from tenants.jobs.registry import RetryLaterError, RunningJob, handler

_lookup: TxtLookup = DnsTxtLookup()


def configure(lookup: TxtLookup) -> None:
    global _lookup
    _lookup = lookup


@handler(service.RECHECK_JOB)
async def recheck(job: RunningJob) -> None:
    due_text = job.payload.get("due")
    due = datetime.fromisoformat(due_text) if isinstance(due_text, str) else None
    try:
        async with tenant_transaction(job.org_id):
            await service.recheck_domain(
                uuid.UUID(job.payload["domain_id"]),
                due=due,
                lookup=_lookup,
                actor=system_actor("domain-recheck"),
            )
            await job.checkpoint({"checked": True})
    except DnsUnavailableError as exc:
        raise RetryLaterError(exc.message, delay=300) from exc
