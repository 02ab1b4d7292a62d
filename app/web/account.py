"""The member's account page: what the organisation controls and can see, and their products."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.web.pages import PageContext, Web, page
from tenants.notice import organisation_notice
from tenants.products.models import Product, ProductAccount


def routes(web: Web) -> list[BaseRoute]:
    @page(web, permission=None)
    async def account_home(ctx: PageContext) -> Response:
        member = ctx.active.member
        accounts = await ProductAccount.filter(member_id=member.id).order_by("created_at")
        products = {p.id: p for p in await Product.filter(id__in=[a.product_id for a in accounts])}
        return ctx.render(
            "account/home.html",
            notice=organisation_notice(ctx.organisation),
            accounts=accounts,
            products=products,
        )

    return [Route("/account", account_home, methods=["GET"])]
