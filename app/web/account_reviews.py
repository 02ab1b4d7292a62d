"""Access reviews on the account page: a reviewer without an admin role (a manager whose
reports hold admin roles or data access) sees the items waiting for them and keeps or
revokes each, as admins do from the console's queue. Only items naming the signed-in
member as a reviewer are shown, and the service decides only those (or refuses)."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.web.console.reviews import KIND_LABELS, decide_from_form
from app.web.pages import PageContext, Web, page
from tenants.reviews import service


def routes(web: Web) -> list[BaseRoute]:
    @page(web, permission=None)
    async def queue(ctx: PageContext) -> Response:
        return ctx.render(
            "account/access_reviews.html",
            rows=await service.queue_of(ctx.active.member.id),
            kind_labels=KIND_LABELS,
        )

    @page(web, permission=None)
    async def decide(ctx: PageContext) -> Response:
        return await decide_from_form(
            ctx,
            back_prefix=service.ACCOUNT_QUEUE_PATH,
            confirm_template="account/confirm.html",
        )

    return [
        Route(service.ACCOUNT_QUEUE_PATH, queue, methods=["GET"]),
        Route("/account/access-review-items/{id}/decision", decide, methods=["POST"]),
    ]
