"""The member's side of a departure, on the account page: "what leaving would mean for
you" (from the same planner as the admin's preview and the run), their personal items
with an export link each, and the export itself.

While a departure runs, the member sees its real plan and dates; otherwise what the
organisation's policy would do if they left after the usual notice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.web.console.departure_views import (
    ACTION_LABELS,
    SUCCESSOR_WHY_MEMBER,
    PlanSummary,
    number,
    product_names,
    size,
)
from app.web.pages import PageContext, Web, page
from tenants.content.models import ContentItem, ContentKind, ContentStatus
from tenants.departures import service as departures
from tenants.departures.models import Departure
from tenants.departures.planner import Plan, PlanRow
from tenants.departures.steps import plan_for_run
from tenants.errors import NotFoundError
from tenants.members.models import Member
from tenants.organisations import days
from tenants.organisations import service as organisations
from tenants.pagination import Sort, paginate
from tenants.privacy import datamap
from tenants.products.models import Product, ProductAccount, ProductAccountStatus

#: Personal items listed on the account page itself; all of them are on the export page.
LISTED = 20
EXPORT_PAGE = 200


@dataclass(frozen=True, slots=True)
class Leaving:
    """What leaving means for one member, for the account page."""

    #: The departure under way; None when this is what the policy *would* do.
    departure: Departure | None
    plan: Plan
    summary: PlanSummary
    successor_why: str
    products: dict[str, str]
    #: The product accounts that end (suspended at the end of the last day).
    accounts: list[tuple[str, str]]
    personal_items: list[ContentItem]
    personal_count: int
    retention_days: int

    @property
    def work_rows(self) -> list[PlanRow]:
        return [r for r in self.plan.rows if r.kind is ContentKind.ORGANISATION]

    @property
    def personal_rows(self) -> list[PlanRow]:
        return [r for r in self.plan.rows if r.kind is ContentKind.PERSONAL]


async def what_leaving_means(member: Member) -> Leaving:
    """The member's running departure as planned, or what the organisation's departure
    policy would do if they left after its usual notice (today + the export window)."""
    departure = await departures.current_departure(member.id)
    if departure is not None:
        plan = await plan_for_run(departure)
        retention = (departure.purge_at - departure.suspend_at).days
    else:
        policy = await departures.get_policy()
        today = days.today(await organisations.time_zone())
        last_day = today + timedelta(days=policy.export_window_days)
        plan = await departures.preview_departure(member.id, last_day=last_day, policy=policy)
        retention = policy.retention_days
    products = await product_names()
    accounts = await ProductAccount.filter(
        member_id=member.id, status=ProductAccountStatus.ASSIGNED
    ).order_by("created_at")
    personal = ContentItem.filter(
        member_id=member.id, kind=ContentKind.PERSONAL, status=ContentStatus.ACTIVE
    )
    return Leaving(
        departure=departure,
        plan=plan,
        summary=PlanSummary.of(plan.to_json(), products),
        successor_why=SUCCESSOR_WHY_MEMBER[plan.successor_source],
        products=products,
        accounts=[(products.get(str(a.product_id), "a product"), a.status.value) for a in accounts],
        personal_items=await personal.order_by("title").limit(LISTED),
        personal_count=await personal.count(),
        retention_days=retention,
    )


def template_helpers() -> dict[str, Any]:
    """Functions the leaving section's template uses."""
    return {
        "number": number,
        "size": size,
        "action_labels": ACTION_LABELS,
        "kept_after_leaving": datamap.kept_kinds(),
        "kept_for": kept_for,
    }


def kept_for(days: int) -> str:
    """A review period as people say it: "3 years", "90 days"."""
    years, rest = divmod(days, 365)
    return f"{years} year{'s' if years != 1 else ''}" if years and not rest else f"{days} days"


def routes(web: Web) -> list[BaseRoute]:
    @page(web, permission=None)
    async def export_item(ctx: PageContext) -> Response:
        """Take one personal item out: recorded, then off to the product's export link
        (a POST with the session's token: the export is recorded, and a link any site could
        open recorded exports the member never made). Anything but the member's own
        personal item answers 404."""
        try:
            item_id = uuid.UUID(ctx.request.path_params["id"])
        except ValueError:
            raise NotFoundError("you have no such personal item") from None
        url = await departures.export_personal_item(
            item_id, member_id=ctx.active.member.id, actor=ctx.actor
        )
        item = await ContentItem.get(id=item_id)
        product = await Product.get(id=item.product_id)
        # A page of this site sends the browser on: every page's CSP lets forms post only
        # here (form-action 'self'), and browsers hold the redirect after a form to it.
        response = ctx.render(
            "account/export_redirect.html", url=url, title=item.title, product=product.name
        )
        response.headers["cache-control"] = "no-store"
        return response

    @page(web, permission=None)
    async def export_all(ctx: PageContext) -> Response:
        """Every personal item of the member, each with its export link (or whom to ask)."""
        member = ctx.active.member
        listed = await paginate(
            ContentItem.filter(
                member_id=member.id, kind=ContentKind.PERSONAL, status=ContentStatus.ACTIVE
            ),
            Sort("created_at", descending=True),
            cursor=ctx.request.query_params.get("cursor") or None,
            limit=EXPORT_PAGE,
            within=f"{member.id}/personal",
        )
        departure = await departures.current_departure(member.id)
        names = {p.id: p.name for p in await Product.all().only("id", "name")}
        return ctx.render(
            "account/departure_export.html",
            items=listed.items,
            next_cursor=listed.next_cursor,
            products=names,
            departure=departure,
            size=size,
        )

    return [
        Route("/account/export", export_all, methods=["GET"]),
        # A POST with the session's CSRF token: the export is recorded ("content.exported",
        # which the member and admins read), and a GET could be set off by any site.
        Route("/account/content/{id}/export", export_item, methods=["POST"]),
    ]
