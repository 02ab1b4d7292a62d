"""Background jobs: the organisation's dead letters (jobs out of attempts) with a retry
button, and how many jobs wait or run."""

from __future__ import annotations

import uuid

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.web.pages import PageContext, Web, page
from tenants import db
from tenants.errors import ConflictError, NotFoundError
from tenants.jobs import service as jobs
from tenants.jobs.models import Job, JobStatus
from tenants.permissions import Permission

#: Dead jobs shown at once; the oldest beyond that wait for the first to be dealt with.
SHOWN = 200


def routes(web: Web) -> list[BaseRoute]:
    @page(web, permission=Permission.JOBS_READ)
    async def jobs_page(ctx: PageContext) -> Response:
        counts = dict.fromkeys((s.value for s in JobStatus), 0)
        for row in await db.fetch("SELECT status, count(*) AS n FROM jobs GROUP BY status"):
            counts[row["status"]] = int(row["n"])
        dead = await Job.filter(status=JobStatus.DEAD).order_by("-updated_at").limit(SHOWN)
        return ctx.render("console/jobs.html", counts=counts, dead=dead, shown=SHOWN)

    @page(web, permission=Permission.JOBS_WRITE)
    async def retry(ctx: PageContext) -> Response:
        try:
            job_id = uuid.UUID(ctx.request.path_params["id"])
        except ValueError:
            raise NotFoundError("there is no such job") from None
        try:
            job = await jobs.retry_job(job_id, actor=ctx.actor)
        except ConflictError as error:  # not dead (any more): nothing was written
            return ctx.redirect("/console/jobs", f"Not done: {error.message}.")
        return ctx.redirect("/console/jobs", f"Queued the {job.kind} job again.")

    return [
        Route("/console/jobs", jobs_page, methods=["GET"]),
        Route("/console/jobs/{id}/retry", retry, methods=["POST"]),
    ]
