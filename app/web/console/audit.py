"""The audit log, newest first (by event id), filterable; events not sealed into the chain
yet are shown as pending."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.web.pages import PageContext, Web, page
from tenants.audit import service as audit
from tenants.permissions import Permission

PAGE = 50


def routes(web: Web) -> list[BaseRoute]:
    @page(web, permission=Permission.AUDIT_READ)
    async def audit_log(ctx: PageContext) -> Response:
        params = ctx.request.query_params
        action = (params.get("action") or "").strip()[:100] or None
        target = (params.get("target_id") or "").strip()[:100] or None
        before = params.get("before")
        before_id = int(before) if before and before.isdigit() and len(before) < 19 else None
        rows = await audit.list_events(
            audit.AuditFilter(action=action, target_id=target),
            before_id=before_id,
            limit=PAGE + 1,
        )
        more = len(rows) > PAGE
        rows = rows[:PAGE]
        head = await audit.stored_head()
        return ctx.render(
            "console/audit.html",
            events=rows,
            action=action or "",
            target_id=target or "",
            next_before=rows[-1]["id"] if more and rows else None,
            head=head,
        )

    return [Route("/console/audit", audit_log, methods=["GET"])]
