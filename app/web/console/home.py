"""The console overview: what needs attention (for the parts the admin may see), the
member counts, trends drawn as server-side SVG; and honest pages for areas not built yet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.web import charts as charts_
from app.web.pages import PageContext, Web, page
from tenants import overview as readings
from tenants.audit import service as audit
from tenants.organisations import service as organisations
from tenants.permissions import Permission
from tenants.privacy import shredding
from tenants.reviews import service as reviews

UPCOMING: dict[str, tuple[str, Permission, str]] = {}


def routes(web: Web) -> list[BaseRoute]:
    @page(web, permission=None)
    async def overview(ctx: PageContext) -> Response:
        if not ctx.can(Permission.CONSOLE_ACCESS):
            # The console's front door (where "/" and old bookmarks lead): a member without
            # console access belongs on their account page, not on a refusal.
            return ctx.redirect("/account")
        today = datetime.now(UTC).date()
        counts = await readings.member_counts(today)
        needs = await readings.attention(
            today,
            grants=ctx.can(Permission.ACCESS_APPROVE),
            requests=ctx.can(Permission.PRIVACY_REQUESTS_READ),
            operations=ctx.can(Permission.DEPARTURES_READ),
            # Set-up items go to those who can fix them.
            domains=ctx.can(Permission.ORGANISATION_WRITE),
            identity=ctx.can(Permission.SSO_WRITE),
            holds=ctx.can(Permission.CONTENT_HOLD),
        )
        # Access-review items waiting for this reviewer (their own queue, whatever their role).
        waiting_reviews = (
            await reviews.waiting_count(ctx.active.member.id)
            if ctx.can(Permission.REVIEWS_DECIDE)
            else 0
        )
        days = [today - timedelta(days=89 - i) for i in range(90)]
        fortnight = days[-14:]
        weeks = [today - timedelta(days=today.weekday(), weeks=11 - i) for i in range(12)]
        history = await readings.member_history(today)
        sign_ins = await readings.sign_ins_per_day(today)
        accesses = (
            await readings.data_accesses_per_week(today)
            if ctx.can(Permission.ACCESS_READ)
            else None
        )
        charts = {
            "members": charts_.line_chart(
                "Members by status, last 90 days",
                [d.strftime("%d %b") for d in days],
                {k: history[k] for k in ("active", "invited", "departing", "suspended")},
            ),
            "sign_ins": charts_.bar_chart(
                "Sign-ins and refused sign-ins per day, last 14 days",
                [d.strftime("%d %b") for d in fortnight],
                {"signed in": sign_ins["signed_in"], "refused": sign_ins["refused"]},
            ),
        }
        if accesses is not None:
            charts["accesses"] = charts_.bar_chart(
                "Data accesses per week, last 12 weeks",
                [f"w/c {w.strftime('%d %b')}" for w in weeks],
                {"allowed": accesses["allowed"], "refused": accesses["refused"]},
            )
        counted = await organisations.counters()
        totals = {name: counted.get(name, 0) for name in ("units", "groups", "products")}
        break_glass = await shredding.reveal_rows(await audit.break_glass_sign_ins(5))
        return ctx.render(
            "console/home.html",
            counts=counts,
            totals=totals,
            break_glass_events=break_glass,
            needs=needs,
            waiting_reviews=waiting_reviews,
            charts=charts,
            sign_ins=sign_ins,
            fortnight=fortnight,
        )

    def upcoming(path: str, title: str, permission: Permission, text: str) -> Route:
        @page(web, permission=permission)
        async def handler(ctx: PageContext) -> Response:
            return ctx.render("console/upcoming.html", title=title, text=text)

        handler.__name__ = "upcoming_" + path.rsplit("/", 1)[-1].replace("-", "_")
        return Route(path, handler, methods=["GET"])

    return [
        Route("/console", overview, methods=["GET"]),
        *[upcoming(path, *spec) for path, spec in UPCOMING.items()],
    ]
