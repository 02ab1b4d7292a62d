"""Members: the searchable, sortable list (with bulk selection) and one member's page with
lifecycle actions; destructive ones are confirmed first, naming what happens."""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

from starlette.datastructures import QueryParams
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.web.console.member_forms import picked_in, role_matrix
from app.web.console.tables import ListView
from app.web.pages import PageContext, Web, page
from tenants.departures import service as departures
from tenants.errors import FieldProblem, InvalidInputError, NotFoundError
from tenants.groups.models import Group
from tenants.members import service
from tenants.members.lifecycle import LifecycleAction, MemberStatus, offered_actions
from tenants.members.models import Member
from tenants.members.roles import check_may_act_for
from tenants.permissions import Permission
from tenants.products.models import Product, ProductAccount
from tenants.sessions import service as sessions
from tenants.sessions.models import Session
from tenants.text import counted
from tenants.units.models import Unit

ACTION_LABELS = {
    LifecycleAction.ACTIVATE: "Activate",
    LifecycleAction.BEGIN_DEPARTURE: "Start departure",
    LifecycleAction.SUSPEND: "Suspend",
    LifecycleAction.DEPART: "Mark departed",
    LifecycleAction.PURGE: "Purge",
    LifecycleAction.REINSTATE: "Reinstate",
}
#: Lifecycle actions that take something away: asked for again with their consequences.
CONSEQUENCES = {
    LifecycleAction.SUSPEND: "{name} can no longer sign in{sessions_end}.",
    LifecycleAction.DEPART: "{name} is marked departed: sign-in stays off{sessions_end}.",
    LifecycleAction.PURGE: "{name}'s record is purged; this cannot be undone.",
}


def sessions_ending(live: int) -> str:
    """What a suspension does to the member's sessions, in words: "; their 2 live sessions
    end now", or "(they have no live session)" rather than "their 0 live sessions"."""
    if live == 0:
        return " (they have no live session)"
    return f"; their {counted(live, 'live session')} {'ends' if live == 1 else 'end'} now"


#: The unit filter offers the top of the tree (the root and two levels), at most this many.
FILTER_DEPTH = 2
FILTER_UNITS = 300


def _uuid(text: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(text) if text else None
    except ValueError:
        return None


def member_filter(params: QueryParams | dict[str, str]) -> service.MemberFilter:
    """The list's filters from the query string (or a bulk form carrying them)."""
    status = params.get("status") or None
    return service.MemberFilter(
        status=MemberStatus(status) if status in {s.value for s in MemberStatus} else None,
        unit_id=_uuid(params.get("unit")),
        include_subunits=params.get("only") != "1",
        group_id=_uuid(params.get("group")),
        manager_id=_uuid(params.get("manager")),
        q=(params.get("q") or "").strip()[:200] or None,
    )


def filter_query(filters: service.MemberFilter) -> dict[str, str]:
    """The filters as query-string fields (to keep them in links)."""
    return {
        k: v
        for k, v in {
            "q": filters.q or "",
            "status": filters.status.value if filters.status else "",
            "unit": str(filters.unit_id or ""),
            "only": "1" if filters.unit_id and not filters.include_subunits else "",
            "group": str(filters.group_id or ""),
            "manager": str(filters.manager_id or ""),
        }.items()
        if v
    }


def _member_id(ctx: PageContext) -> uuid.UUID:
    member_id = _uuid(ctx.request.path_params["id"])
    if member_id is None:
        raise NotFoundError("there is no such member")
    return member_id


def routes(web: Web) -> list[BaseRoute]:
    @page(web, permission=Permission.MEMBERS_READ)
    async def members_list(ctx: PageContext) -> Response:
        params = ctx.request.query_params
        filters = member_filter(params)
        view = ListView.parse(
            "/console/members",
            params,
            sortable=service.SORTABLE,
            default_sort="name",
            filters=filter_query(filters),
        )
        page_ = await service.list_members(filters, view.sort, cursor=view.cursor, limit=view.size)
        total = await service.count_members(filters)

        unit_ids = {m.unit_id for m in page_.items}
        if filters.unit_id:
            unit_ids.add(filters.unit_id)
        units = {u.id: u for u in await Unit.filter(id__in=list(unit_ids))}
        group = await Group.get_or_none(id=filters.group_id) if filters.group_id else None
        manager = await Member.get_or_none(id=filters.manager_id) if filters.manager_id else None
        # Members ticked before: a bulk action's Cancel brings them back ticked, and so
        # does its refusal (the refused form's input names them member_<id>).
        picked = {str(i) for i in map(_uuid, params.get("picked", "").split(",")[:200]) if i}
        picked |= {
            str(i)
            for key, value in ctx.form_values.items()
            if key.startswith("member_") and value == "1" and (i := _uuid(key[len("member_") :]))
        }
        return ctx.render(
            "console/members.html",
            picked=picked,
            members=page_.items,
            units=units,
            filters=filters,
            q=filters.q or "",
            status=filters.status.value if filters.status else "",
            unit_id=filters.unit_id,
            group=group,
            manager=manager,
            statuses=[s.value for s in MemberStatus],
            **view.context(next_cursor=page_.next_cursor, total=total, shown=len(page_.items)),
            export_url="/console/members/export.csv?" + urlencode(filter_query(filters)),
            products=await Product.all().order_by("name").limit(200),
        )

    @page(web, permission=Permission.MEMBERS_READ)
    async def member_detail(ctx: PageContext) -> Response:
        member = await service.get_member(_member_id(ctx))
        unit = await Unit.get(id=member.unit_id)
        manager = await service.get_member(member.manager_id) if member.manager_id else None
        groups = await Group.filter(memberships__member_id=member.id).order_by("name")
        accounts = await ProductAccount.filter(member_id=member.id)
        products = {p.id: p for p in await Product.all().order_by("name")}
        having = {a.product_id for a in accounts}
        live_sessions = await Session.filter(member_id=member.id, revoked_at=None).count()
        return ctx.render(
            "console/member.html",
            member=member,
            unit=unit,
            manager=manager,
            groups=groups,
            any_group=bool(groups) or await Group.exists(),
            accounts=accounts,
            products=products,
            unassigned=[p for p in products.values() if p.id not in having],
            live_sessions=live_sessions,
            roles=role_matrix(ctx.permissions),
            # The details form coming back (an address outside the verified domains asked
            # about) shows the manager chosen in it, not the one saved.
            picked=await picked_in(ctx.form_values),
            # A departure starts from its own form (plan, dates, successor).
            actions=[
                (a.value, ACTION_LABELS[a])
                for a in offered_actions(member.status)
                if a is not LifecycleAction.BEGIN_DEPARTURE
            ],
        )

    @page(web, permission=Permission.MEMBERS_LIFECYCLE)
    async def member_transition(ctx: PageContext) -> Response:
        member_id = _member_id(ctx)
        try:
            action = LifecycleAction(ctx.form.get("action", ""))
        except ValueError:
            raise InvalidInputError(
                "choose one of the lifecycle buttons",
                fields=[FieldProblem("action", "is not a lifecycle action")],
            ) from None
        member = await service.get_member(member_id)
        # Refused before the confirmation page, not after it (apply_member_action checks too).
        check_may_act_for(
            ctx.permissions, member.roles, doing=action.value.replace("_", " "), field="action"
        )
        if action in CONSEQUENCES and not ctx.confirmed:
            live = await Session.filter(member_id=member.id, revoked_at=None).count()
            return ctx.confirm(
                title=f"{ACTION_LABELS[action]} {member.name}?",
                consequences=[
                    CONSEQUENCES[action].format(
                        name=member.name, sessions_end=sessions_ending(live)
                    ),
                    "The change is recorded in the audit log"
                    + (
                        f" with the reason “{ctx.form['reason']}”."
                        if ctx.form.get("reason")
                        else "."
                    ),
                ],
                button=f"{ACTION_LABELS[action]} {member.name}",
                back=f"/console/members/{member.id}",
            )
        member = await departures.apply_member_action(
            member_id,
            action,
            reason=ctx.form.get("reason") or None,
            actor=ctx.actor,
            by=ctx.permissions,
        )
        return ctx.redirect(
            f"/console/members/{member.id}", f"{member.name} is now {member.status.value}."
        )

    @page(web, permission=Permission.MEMBERS_SESSIONS)
    async def member_sign_out_everywhere(ctx: PageContext) -> Response:
        member = await service.get_member(_member_id(ctx))
        check_may_act_for(ctx.permissions, member.roles, doing="sign out", field="sessions")
        if not ctx.confirmed:
            live = await Session.filter(member_id=member.id, revoked_at=None).count()
            if not live:  # a button "End 0 sessions" asked to confirm nothing
                return ctx.redirect(
                    f"/console/members/{member.id}",
                    f"{member.name} has no live session: nothing to end.",
                )
            return ctx.confirm(
                title=f"Sign {member.name} out everywhere?",
                consequences=[
                    f"{counted(live, 'live session')} of {member.name} "
                    f"{'ends' if live == 1 else 'end'} now, on every device.",
                    "They can sign in again straight away.",
                ],
                button=f"End {counted(live, 'session')}",
                back=f"/console/members/{member.id}",
            )
        count = await sessions.end_member_sessions(
            member.id, reason="signed out by an administrator", actor=ctx.actor
        )
        return ctx.redirect(
            f"/console/members/{member.id}", f"Ended {counted(count, 'session')} of {member.name}."
        )

    return [
        Route("/console/members", members_list, methods=["GET"]),
        Route("/console/members/{id}", member_detail, methods=["GET"]),
        Route("/console/members/{id}/transition", member_transition, methods=["POST"]),
        Route("/console/members/{id}/sign-out", member_sign_out_everywhere, methods=["POST"]),
    ]
