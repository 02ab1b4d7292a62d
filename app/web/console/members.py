"""Members: the searchable list and one member's page with lifecycle actions."""

from __future__ import annotations

import uuid

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.web.pages import PageContext, Web, page
from tenants.departures import service as departures
from tenants.errors import NotFoundError
from tenants.groups.models import Group
from tenants.members import service
from tenants.members.lifecycle import LifecycleAction, MemberStatus, offered_actions
from tenants.pagination import Sort
from tenants.permissions import Permission
from tenants.products.models import Product, ProductAccount
from tenants.sessions import service as sessions
from tenants.sessions.models import Session
from tenants.units.models import Unit

ACTION_LABELS = {
    LifecycleAction.ACTIVATE: "Activate",
    LifecycleAction.BEGIN_DEPARTURE: "Start departure",
    LifecycleAction.SUSPEND: "Suspend",
    LifecycleAction.DEPART: "Mark departed",
    LifecycleAction.PURGE: "Purge",
    LifecycleAction.REINSTATE: "Reinstate",
}


def _uuid(text: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(text) if text else None
    except ValueError:
        return None


def routes(web: Web) -> list[BaseRoute]:
    @page(web, permission=Permission.MEMBERS_READ)
    async def members_list(ctx: PageContext) -> Response:
        params = ctx.request.query_params
        status = params.get("status") or None
        unit_id = _uuid(params.get("unit"))
        filters = service.MemberFilter(
            status=MemberStatus(status) if status in {s.value for s in MemberStatus} else None,
            unit_id=unit_id,
            group_id=_uuid(params.get("group")),
            q=(params.get("q") or "").strip()[:200] or None,
        )
        sort = Sort.parse(params.get("sort") or "name", service.SORTABLE)
        page_ = await service.list_members(
            filters, sort, cursor=params.get("cursor") or None, limit=50
        )
        units = {u.id: u for u in await Unit.all().order_by("path")}
        return ctx.render(
            "console/members.html",
            members=page_.items,
            next_cursor=page_.next_cursor,
            units=units,
            q=filters.q or "",
            status=status or "",
            unit_id=unit_id,
            statuses=[s.value for s in MemberStatus],
            sort=str(sort),
        )

    @page(web, permission=Permission.MEMBERS_READ)
    async def member_detail(ctx: PageContext) -> Response:
        member_id = _uuid(ctx.request.path_params["id"])
        if member_id is None:
            raise NotFoundError("there is no such member")
        member = await service.get_member(member_id)
        unit = await Unit.get(id=member.unit_id)
        manager = await service.get_member(member.manager_id) if member.manager_id else None
        groups = await Group.filter(memberships__member_id=member.id).order_by("name")
        accounts = await ProductAccount.filter(member_id=member.id)
        products = {p.id: p for p in await Product.all()}
        live_sessions = await Session.filter(member_id=member.id, revoked_at=None).count()
        return ctx.render(
            "console/member.html",
            member=member,
            unit=unit,
            manager=manager,
            groups=groups,
            accounts=accounts,
            products=products,
            live_sessions=live_sessions,
            # A departure starts from its own form (plan, dates, successor).
            actions=[
                (a.value, ACTION_LABELS[a])
                for a in offered_actions(member.status)
                if a is not LifecycleAction.BEGIN_DEPARTURE
            ],
        )

    @page(web, permission=Permission.MEMBERS_LIFECYCLE)
    async def member_transition(ctx: PageContext) -> Response:
        member_id = _uuid(ctx.request.path_params["id"])
        if member_id is None:
            raise NotFoundError("there is no such member")
        action = LifecycleAction(ctx.form.get("action", ""))
        member = await departures.apply_member_action(
            member_id, action, reason=ctx.form.get("reason") or None, actor=ctx.actor
        )
        return ctx.redirect(
            f"/console/members/{member.id}", f"{member.name} is now {member.status.value}."
        )

    @page(web, permission=Permission.MEMBERS_SESSIONS)
    async def member_sign_out_everywhere(ctx: PageContext) -> Response:
        member_id = _uuid(ctx.request.path_params["id"])
        if member_id is None:
            raise NotFoundError("there is no such member")
        member = await service.get_member(member_id)
        count = await sessions.end_member_sessions(
            member.id, reason="signed out by an administrator", actor=ctx.actor
        )
        return ctx.redirect(
            f"/console/members/{member.id}", f"Ended {count} session(s) of {member.name}."
        )

    return [
        Route("/console/members", members_list, methods=["GET"]),
        Route("/console/members/{id}", member_detail, methods=["GET"]),
        Route("/console/members/{id}/transition", member_transition, methods=["POST"]),
        Route("/console/members/{id}/sign-out", member_sign_out_everywhere, methods=["POST"]),
    ]
