"""The member's privacy requests, on the account page: sending one, the list, each
request's status page (timeline without internal entries, deadline, answer) and the
download of an export through its signed, expiring link.

A member only ever sees their own requests: every lookup goes through
``service.member_request``, which answers "not found" for anyone else's.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.downloads import attachment
from app.web.console.departure_views import number
from app.web.console.privacy import template_helpers
from app.web.pages import PageContext, Web, page
from tenants.content.holds import member_hold_explanation
from tenants.errors import FieldProblem, InvalidInputError, NotFoundError
from tenants.members.models import Member
from tenants.requests import fulfilment, links, rules, service
from tenants.requests.models import (
    ExportStatus,
    PrivacyExport,
    PrivacyRequest,
    RequestKind,
    RequestSource,
    RequestStatus,
)

#: What the member can ask for, in the order the form offers it, with a hint each.
KIND_HINTS: dict[RequestKind, str] = {
    RequestKind.INQUIRY: "Ask how your data is used, by whom, or why.",
    RequestKind.ACCESS: "Get a copy of the personal data held about you.",
    RequestKind.PORTABILITY: "Get your data in a machine-readable form to take elsewhere.",
    RequestKind.RECTIFICATION: "Have wrong or incomplete data corrected.",
    RequestKind.ERASURE: "Have your personal data deleted where the law allows.",
    RequestKind.RESTRICTION: "Have the use of your data limited for a while.",
    RequestKind.OBJECTION: "Object to a use of your data.",
    RequestKind.WITHDRAW_CONSENT: "Take back consent you gave earlier.",
}


async def your_requests(member: Member) -> list[PrivacyRequest]:
    """The member's requests for the account page's summary, newest first."""
    return await service.member_requests(member.id)


def _request_id(ctx: PageContext) -> uuid.UUID:
    try:
        return uuid.UUID(ctx.request.path_params["id"])
    except ValueError:
        raise NotFoundError("there is no such privacy request") from None


def download_link(
    ctx: PageContext, request: PrivacyRequest, export: PrivacyExport | None
) -> str | None:
    """The signed link to the member's export while it can be downloaded, else None."""
    if (
        export is None
        or export.status != ExportStatus.READY
        or export.expires_at is None
        or export.expires_at <= datetime.now(UTC)
    ):
        return None
    return links.download_path(
        ctx.web.settings.secret_key, request.id, export.id, ctx.active.member.id, export.expires_at
    )


def routes(web: Web) -> list[BaseRoute]:
    @page(web, permission=None)
    async def requests_page(ctx: PageContext) -> Response:
        mine = await service.member_requests(ctx.active.member.id)
        return ctx.render(
            "account/privacy_requests.html",
            requests=mine,
            kind_hints=KIND_HINTS,
            chosen=ctx.request.query_params.get("kind", ""),
            **template_helpers(),
        )

    @page(web, permission=None)
    async def send(ctx: PageContext) -> Response:
        kind_text = ctx.form.get("kind", "")
        if kind_text not in {k.value for k in RequestKind}:
            raise InvalidInputError(
                "choose what you are asking for",
                fields=[FieldProblem("kind", "choose one of the options")],
            )
        request, _ = await service.submit_request(
            ctx.active.member.id,
            RequestKind(kind_text),
            ctx.form.get("message", ""),
            actor=ctx.actor,
            source=RequestSource.ACCOUNT,
        )
        return ctx.redirect(
            service.account_path(request.id),
            f"Sent. {ctx.organisation.name} must answer by {request.due_on.isoformat()}.",
        )

    @page(web, permission=None)
    async def status_page(ctx: PageContext) -> Response:
        request = await service.member_request(ctx.active.member.id, _request_id(ctx))
        export = await fulfilment.export_of(request.id)
        return ctx.render(
            "account/privacy_request.html",
            r=request,
            events=await service.timeline(request.id, for_member=True),
            export=export,
            download=download_link(ctx, request, export),
            holds=await member_hold_explanation(request.member_id),
            number=number,
            **template_helpers(),
        )

    @page(web, permission=None)
    async def withdraw(ctx: PageContext) -> Response:
        if not ctx.confirmed:
            # Withdrawing is for good: a slip of the button ended a request the member
            # would have to send again, with a new deadline.
            asked = await service.member_request(ctx.active.member.id, _request_id(ctx))
            rules.check_transition(asked.status, RequestStatus.WITHDRAWN)
            return ctx.confirm(
                title="Withdraw your request?",
                consequences=[
                    f"{ctx.organisation.name} stops working on it and will not answer it.",
                    "A withdrawn request cannot be reopened: to ask again, send a new request,"
                    " which starts a new deadline.",
                ],
                button="Withdraw it",
                back=service.account_path(asked.id),
                template="account/confirm.html",
            )
        request = await service.withdraw_request(
            _request_id(ctx), member_id=ctx.active.member.id, actor=ctx.actor
        )
        return ctx.redirect(service.account_path(request.id), "Your request is withdrawn.")

    @page(web, permission=None)
    async def download(ctx: PageContext) -> Response:
        """The ZIP, for the member the link was made for, signed in as themselves."""
        member_id = ctx.active.member.id
        request = await service.member_request(member_id, _request_id(ctx))
        export = await fulfilment.export_of(request.id)
        params = ctx.request.query_params
        if export is None or not links.is_valid(
            web.settings.secret_key,
            export.id,
            member_id,
            params.get("expires"),
            params.get("sig"),
            datetime.now(UTC),
        ):
            return web.message(
                ctx.request,
                "Link not valid",
                "This download link is not valid or has expired. Open the request for a fresh one.",
                status=403,
                link=(service.account_path(request.id), "Open the request"),
            )
        ready = await fulfilment.downloadable(request, actor=ctx.actor)
        assert ready.bundle is not None
        stamp = (ready.ready_at or datetime.now(UTC)).strftime("%Y-%m-%d")
        return Response(
            bytes(ready.bundle),
            media_type="application/zip",
            headers={
                "Content-Disposition": attachment(f"my-data-{stamp}.zip"),
                "Cache-Control": "no-store",
            },
        )

    return [
        Route("/account/privacy-requests", requests_page, methods=["GET"]),
        Route("/account/privacy-requests", send, methods=["POST"]),
        Route("/account/privacy-requests/{id}", status_page, methods=["GET"]),
        Route("/account/privacy-requests/{id}/withdraw", withdraw, methods=["POST"]),
        Route("/account/privacy-requests/{id}/export", download, methods=["GET"]),
    ]


def summary_helpers() -> dict[str, Any]:
    """What the account home's "Your privacy requests" card uses, under one name (``pr``)
    so it cannot clash with the other cards' helpers."""
    return {"pr": template_helpers()}
