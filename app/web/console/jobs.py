"""Background jobs: the workers alive and their last heartbeat, the organisation's queue
(how many jobs are due, the oldest waiting, when the next of those queued for later is
due), its dead letters (jobs out of attempts) with
a retry button, and how many jobs wait or run."""

from __future__ import annotations

import uuid

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.web.console.tables import ListView
from app.web.pages import PageContext, Web, page
from tenants import db
from tenants.errors import ConflictError, NotFoundError
from tenants.jobs import service as jobs
from tenants.jobs.models import Job, JobStatus
from tenants.pagination import paginate
from tenants.permissions import Permission

#: A worker whose heartbeat is older than this (seconds) is shown as not answering; one
#: silent for ten minutes is not shown (it stopped, or crashed long ago).
STALE_AFTER = 30

#: The service's workers (not organisation data: shared by every organisation).
WORKERS_SQL = """
SELECT name, host, running, concurrency, heartbeat_at,
       extract(epoch FROM now() - heartbeat_at)::int AS age
  FROM workers WHERE heartbeat_at > now() - interval '10 minutes' ORDER BY name
"""

#: The organisation's jobs due now and how long the oldest has waited (an index range on
#: (tenant_id, status, run_at)).
QUEUE_SQL = """
SELECT count(*) AS due, extract(epoch FROM now() - min(run_at))::int AS waited
  FROM jobs WHERE status = 'queued' AND run_at <= now()
"""
OLDEST_SQL = """
SELECT kind, key, run_at FROM jobs WHERE status = 'queued' AND run_at <= now()
 ORDER BY run_at LIMIT 1
"""
#: When the next job queued for later is due (a retry waiting out its pause, a step
#: scheduled for a later day): counted among "queued" but not in the queue's depth, so the
#: page says when the next one is due. How many there are is "queued" less those due.
NEXT_LATER_SQL = """
SELECT run_at AS next_at FROM jobs WHERE status = 'queued' AND run_at > now()
 ORDER BY run_at LIMIT 1
"""


def routes(web: Web) -> list[BaseRoute]:
    @page(web, permission=Permission.JOBS_READ)
    async def jobs_page(ctx: PageContext) -> Response:
        counts = dict.fromkeys((s.value for s in JobStatus), 0)
        for row in await db.fetch("SELECT status, count(*) AS n FROM jobs GROUP BY status"):
            counts[row["status"]] = int(row["n"])
        view = ListView.parse(
            "/console/jobs",
            ctx.request.query_params,
            sortable=("updated_at", "kind"),
            default_sort="-updated_at",
        )
        dead = await paginate(
            Job.filter(status=JobStatus.DEAD), view.sort, cursor=view.cursor, limit=view.size
        )
        queue = await db.fetch_one(QUEUE_SQL)
        due = int(queue["due"]) if queue else 0
        return ctx.render(
            "console/jobs.html",
            counts=counts,
            dead=dead.items,
            **view.context(
                next_cursor=dead.next_cursor, total=counts["dead"], shown=len(dead.items)
            ),
            workers=await db.fetch(WORKERS_SQL),
            queue=queue,
            oldest=await db.fetch_one(OLDEST_SQL),
            later=max(counts[JobStatus.QUEUED.value] - due, 0),
            next_later=await db.fetch_one(NEXT_LATER_SQL),
            stale_after=STALE_AFTER,
        )

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
