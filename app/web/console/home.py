"""The console overview, and honest pages for areas that are not built yet."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.web.pages import PageContext, Web, page
from tenants.audit import service as audit
from tenants.members.lifecycle import MemberStatus
from tenants.organisations import service as organisations
from tenants.permissions import Permission

UPCOMING: dict[str, tuple[str, Permission, str]] = {}


def routes(web: Web) -> list[BaseRoute]:
    @page(web, permission=None)
    async def overview(ctx: PageContext) -> Response:
        if not ctx.can(Permission.CONSOLE_ACCESS):
            # The console's front door (where "/" and old bookmarks lead): a member without
            # console access belongs on their account page, not on a refusal.
            return ctx.redirect("/account")
        counted = await organisations.counters()
        counts = {s.value: counted.get(f"members.{s.value}", 0) for s in MemberStatus}
        totals = {name: counted.get(name, 0) for name in ("units", "groups", "products")}
        break_glass = await audit.break_glass_sign_ins(5)
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
