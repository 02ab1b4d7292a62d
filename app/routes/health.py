"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

import asyncio
import logging

from starlette.requests import Request
from starlette.responses import JSONResponse
from tortoise import connections

from app.database import pending_migrations_from

log = logging.getLogger(__name__)


async def healthz(request: Request) -> JSONResponse:
    """The process is up. Says nothing about the database, on purpose: restarting a
    healthy process because PostgreSQL is briefly away only makes things worse."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """Ready when the database answers within 2 s and every migration is applied."""
    checks: dict[str, str] = {}
    ready = True
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
    except (OSError, TimeoutError, Exception) as exc:
        log.warning("readiness check failed: %s", exc)
        ready = False
        checks["database"] = f"unreachable: {type(exc).__name__}"
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )
