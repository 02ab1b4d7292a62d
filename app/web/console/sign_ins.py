"""The sign-in log for admins and auditors: filters, pages, and a CSV export of what the
filters select."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime
from urllib.parse import urlencode

from starlette.datastructures import QueryParams
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.downloads import StreamedDownload, attachment
from app.web.console.tables import ListView
from app.web.pages import PageContext, Web, page
from tenants.errors import InvalidInputError
from tenants.pagination import shown_total
from tenants.permissions import Permission
from tenants.signins import service
from tenants.signins.models import SignIn
from tenants.signins.rules import MESSAGES, Reason, SignInMethod, SignInOutcome

PAGE = 50
EXPORT_BATCH = 500
#: The CSV export stops here; narrow the filters for more.
EXPORT_MAX = 100_000
COLUMNS = (
    "at",
    "method",
    "outcome",
    "reason",
    "email",
    "idp_subject",
    "member_id",
    "idp",
    "client_addr",
    "user_agent",
    "detail",
)


def _choice(
    params: QueryParams, name: str, enum: type[SignInMethod | SignInOutcome | Reason]
) -> str:
    value = params.get(name) or ""
    return value if value in {e.value for e in enum} else ""


def filters_of(params: QueryParams) -> tuple[service.SignInFilter, dict[str, str]]:
    """The filters a query string selects (unknown values are ignored) and the values to
    show back in the form."""
    shown = {
        "outcome": _choice(params, "outcome", SignInOutcome),
        "method": _choice(params, "method", SignInMethod),
        "reason": _choice(params, "reason", Reason),
        "email": (params.get("email") or "").strip()[:320],
        "member_id": "",
    }
    member_id = None
    try:
        member_id = uuid.UUID(params.get("member_id") or "")
        shown["member_id"] = str(member_id)
    except ValueError:
        pass
    return (
        service.SignInFilter(
            outcome=SignInOutcome(shown["outcome"]) if shown["outcome"] else None,
            method=SignInMethod(shown["method"]) if shown["method"] else None,
            reason=Reason(shown["reason"]) if shown["reason"] else None,
            email=shown["email"] or None,
            member_id=member_id,
        ),
        shown,
    )


def _row(entry: SignIn) -> list[str]:
    values = [getattr(entry, c) for c in COLUMNS]
    return [
        v.isoformat() if isinstance(v, datetime) else ("" if v is None else str(v)) for v in values
    ]


def _csv_safe(value: str) -> str:
    """Keep a spreadsheet from running a cell as a formula (CSV injection)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def routes(web: Web) -> list[BaseRoute]:
    @page(web, permission=Permission.AUDIT_READ)
    async def sign_ins(ctx: PageContext) -> Response:
        filters, shown = filters_of(ctx.request.query_params)
        view = ListView.parse(
            "/console/sign-ins",
            ctx.request.query_params,
            sortable=("at",),
            default_sort="-at",
            filters=shown,
            default_size=PAGE,
        )
        try:
            result = await service.list_sign_ins(
                filters, cursor=view.cursor, limit=view.size, sort=view.sort
            )
        except InvalidInputError:
            view = replace(view, cursor=None, trail=())
            result = await service.list_sign_ins(
                filters, cursor=None, limit=view.size, sort=view.sort
            )
        total = shown_total(await service.count_sign_ins(filters))
        query = urlencode({k: v for k, v in shown.items() if v})
        return ctx.render(
            "console/sign_ins.html",
            entries=result.items,
            **view.context(next_cursor=result.next_cursor, total=total, shown=len(result.items)),
            shown=shown,
            query=query,
            messages=MESSAGES,
            reasons=list(Reason),
            methods=list(SignInMethod),
            outcomes=list(SignInOutcome),
        )

    @page(web, permission=Permission.AUDIT_READ)
    async def export(ctx: PageContext) -> Response:
        """The filtered log as CSV, newest first, read in pages inside the request's
        transaction (a consistent snapshot of what the filters select)."""
        filters, _ = filters_of(ctx.request.query_params)
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(COLUMNS)
        cursor: str | None = None
        written = 0
        while written < EXPORT_MAX:
            result = await service.list_sign_ins(filters, cursor=cursor, limit=EXPORT_BATCH)
            for entry in result.items:
                writer.writerow([_csv_safe(v) for v in _row(entry)])
            written += len(result.items)
            cursor = result.next_cursor
            if cursor is None:
                break
        body = buffer.getvalue()

        async def chunks() -> AsyncIterator[str]:
            yield body

        return StreamedDownload(
            chunks(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": attachment("sign-ins.csv")},
        )

    return [
        Route("/console/sign-ins", sign_ins, methods=["GET"]),
        Route("/console/sign-ins.csv", export, methods=["GET"]),
    ]
