"""The console overview, and honest pages for areas that are not built yet."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.web.pages import PageContext, Web, page
from tenants import db
from tenants.members.lifecycle import MemberStatus
from tenants.permissions import Permission
from tenants.privacy import shredding

UPCOMING: dict[str, tuple[str, Permission, str]] = {}


def routes(web: Web) -> list[BaseRoute]:
    @page(web, permission=None)
    async def overview(ctx: PageContext) -> Response:
        if not ctx.can(Permission.CONSOLE_ACCESS):
            # The console's front door (where "/" and old bookmarks lead): a member without
            # console access belongs on their account page, not on a refusal.
            return ctx.redirect("/account")
        counts = {s.value: 0 for s in MemberStatus}
        for row in await db.fetch("SELECT status, count(*) AS n FROM members GROUP BY status"):
            counts[row["status"]] = row["n"]
        totals = (
            await db.fetch(
                "SELECT (SELECT count(*) FROM units) AS units, (SELECT count(*) FROM groups) AS groups, "
                "(SELECT count(*) FROM products) AS products"
            )
        )[0]
        break_glass = await shredding.reveal_rows(await db.fetch(
            "SELECT occurred_at, actor_display, client_addr FROM audit_events "
            "WHERE action = 'session.signed_in' AND after->>'break_glass' = 'true' "
            "ORDER BY id DESC LIMIT 5"
        ))
        return ctx.render(
            "console/home.html", counts=counts, totals=totals, break_glass_events=break_glass
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
