"""Look-ups of the console: the typeahead pickers (members, units) that htmx fills in as
the admin types, and the header search finding members, groups and units by name or
email. Each reads at most a page of index-ordered rows, whatever the organisation's size."""

from __future__ import annotations

import re
import uuid

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.web.pages import PageContext, Web, page
from tenants.groups import service as groups
from tenants.members import service as members
from tenants.permissions import Permission
from tenants.units import service as units

#: Matches shown by a picker or per kind in the header search.
SHOWN = 10
#: Only plain form-field names and element ids travel from the picker into its options.
FIELD_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,60}$")


def _field(value: str | None, default: str) -> str:
    return value if value and FIELD_NAME.match(value) else default


def _uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None


def routes(web: Web) -> list[BaseRoute]:
    @page(web, permission=Permission.MEMBERS_READ)
    async def pick_members(ctx: PageContext) -> Response:
        params = ctx.request.query_params
        name = _field(params.get("name"), "member_id")
        text = (params.get(f"{name}_q") or params.get("q") or "").strip()[:200]
        found = (
            await members.find_members(
                text,
                limit=SHOWN,
                excluding=_uuid(params.get("exclude")),
                active_only=params.get("active") == "1",
            )
            if text
            else []
        )
        return ctx.render(
            "console/pick_options.html",
            name=name,
            options=[(m.id, f"{m.name} ({m.email})") for m in found],
            text=text,
        )

    @page(web, permission=Permission.UNITS_READ)
    async def pick_units(ctx: PageContext) -> Response:
        params = ctx.request.query_params
        name = _field(params.get("name"), "unit_id")
        text = (params.get(f"{name}_q") or params.get("q") or "").strip()[:200]
        found = (
            await units.find_units(text, limit=SHOWN, outside_of=_uuid(params.get("exclude")))
            if text
            else []
        )
        return ctx.render(
            "console/pick_options.html",
            name=name,
            options=list((await units.trails(found)).items()),
            text=text,
        )

    @page(web, permission=Permission.GROUPS_READ)
    async def pick_groups(ctx: PageContext) -> Response:
        params = ctx.request.query_params
        name = _field(params.get("name"), "group_id")
        text = (params.get(f"{name}_q") or params.get("q") or "").strip()[:200]
        found = await groups.find_groups(text, limit=SHOWN) if text else []
        return ctx.render(
            "console/pick_options.html",
            name=name,
            options=[(g.id, g.name) for g in found],
            text=text,
        )

    @page(web, permission=Permission.CONSOLE_ACCESS)
    async def search(ctx: PageContext) -> Response:
        text = (ctx.request.query_params.get("q") or "").strip()[:200]
        found_members = (
            await members.find_members(text, limit=SHOWN)
            if text and ctx.can(Permission.MEMBERS_READ)
            else []
        )
        found_groups = (
            await groups.find_groups(text, limit=SHOWN)
            if text and ctx.can(Permission.GROUPS_READ)
            else []
        )
        found_units = (
            await units.find_units(text, limit=SHOWN)
            if text and ctx.can(Permission.UNITS_READ)
            else []
        )
        return ctx.render(
            "console/search.html",
            q=text,
            found_members=found_members,
            found_groups=found_groups,
            found_units=found_units,
            unit_trails=await units.trails(found_units),
        )

    return [
        Route("/console/pick/members", pick_members, methods=["GET"]),
        Route("/console/pick/units", pick_units, methods=["GET"]),
        Route("/console/pick/groups", pick_groups, methods=["GET"]),
        Route("/console/search", search, methods=["GET"]),
    ]
