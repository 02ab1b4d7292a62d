"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

import asyncio
import logging

from starlette.requests import Request
from starlette.responses import JSONResponse
from tortoise import connections

from app import outage
from app.database import pending_migrations_from
from tenants.jobs.worker import Worker
from tenants.outages import is_database_outage

log = logging.getLogger(__name__)


async def healthz(request: Request) -> JSONResponse:
    """The process is up. Says nothing about the database, on purpose: restarting a
    healthy process because PostgreSQL is briefly away only makes things worse."""
    return JSONResponse({"status": "ok"})


#: A worker loop with no progress for this long is stuck (it makes a round every half
#: second and writes its heartbeat every five).
WORKER_STUCK_AFTER = 30.0


def worker_check(worker: Worker | None, *, within: float = WORKER_STUCK_AFTER) -> str | None:
    """Why the embedded worker makes this process not ready, or None (also when none runs)."""
    if worker is None:
        return None
    stalled = worker.stalled_for()
    if stalled == float("inf"):
        return "not running"
    if stalled > within:
        return f"stuck: no progress for {stalled:.0f} s"
    return None


async def readyz(request: Request) -> JSONResponse:
    """Ready when the database answers within 2 s, every migration is applied, and the
    embedded job worker (if this process runs one) is making progress."""
    checks: dict[str, str] = {}
    ready = True
    worker: Worker | None = getattr(request.app.state, "worker", None)
    problem = worker_check(worker)
    if worker is not None:
        checks["worker"] = problem or "ok"
        ready = problem is None
    try:
        conn = connections.get("default")
        _, rows = await asyncio.wait_for(
            conn.execute_query("SELECT app, name FROM tortoise_migrations"), 2
        )
        checks["database"] = "ok"
        pending = pending_migrations_from({f"{r['app']}.{r['name']}" for r in rows})
        if pending:
            ready = False
            checks["migrations"] = "pending: " + ", ".join(pending)
        else:
            checks["migrations"] = "ok"
    except TimeoutError:
        # No answer in 2 s: the pool may be taken by slow requests (or a held lock) as
        # well as the server down; the probe says what it saw, not which.
        ready = False
        checks["database"] = "no answer within 2 s (busy, or unreachable)"
    except Exception as exc:
        if is_database_outage(exc):
            outage.note(exc, "GET /readyz")  # one line per five seconds, as for requests
        else:
            log.warning("readiness check failed: %s", exc)
        ready = False
        checks["database"] = f"unreachable: {type(exc).__name__}"
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )
