"""Groups in the console: create, rename, delete (confirmed, naming the member count),
and add or remove members with the people picker; through the groups service as the API."""

from __future__ import annotations

import re
import uuid

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.web.console.member_forms import (
    chosen_op,
    group_change_confirmation,
    parse_uuid,
    required_text,
)
from app.web.console.tables import ListView
from app.web.numbers import INT32, whole_number
from app.web.pages import PageContext, Web, page
from tenants import db
from tenants.errors import FieldProblem, InvalidInputError, NotFoundError
from tenants.groups import service as groups
from tenants.groups.models import Group, GroupMembership
from tenants.members.models import Member
from tenants.models_base import get_referenced
from tenants.pagination import paginate
from tenants.permissions import Permission
from tenants.text import counted


def _priority(form: dict[str, str]) -> int:
    text = (form.get("priority") or "0").strip()
    value = whole_number(text, low=INT32[0])
    if value is None:
        # Digits too many for a number the column holds are still a number: out of range.
        plain = re.fullmatch(r"-?[0-9]+", text)
        problem = "is not in -1000..1000" if plain else "is not a number (digits 0-9)"
        raise InvalidInputError(
            f"the priority {problem}", fields=[FieldProblem("priority", problem)]
        )
    if not -1000 <= value <= 1000:
        raise InvalidInputError(
            "the priority is out of range",
            fields=[FieldProblem("priority", "is not in -1000..1000")],
        )
    return value


def _group_id(ctx: PageContext) -> uuid.UUID:
    try:
        return uuid.UUID(ctx.request.path_params["id"])
    except ValueError:
        raise NotFoundError("there is no such group") from None


def routes(web: Web) -> list[BaseRoute]:
    @page(web, permission=Permission.GROUPS_READ)
    async def group_list(ctx: PageContext) -> Response:
        params = ctx.request.query_params
        q = (params.get("q") or "").strip()[:200]
        view = ListView.parse(
            "/console/groups",
            params,
            sortable=groups.SORTABLE,
            default_sort="name",
            filters={"q": q},
        )
        query = Group.all()
        if q:
            query = query.filter(name__istartswith=q)
        page_ = await paginate(query, view.sort, cursor=view.cursor, limit=view.size)
        total = await query.count()
        ids = [g.id for g in page_.items]
        sizes = {
            r["group_id"]: r["n"]
            for r in await db.fetch(
                "SELECT group_id, count(*) AS n FROM group_memberships "
                "WHERE group_id = ANY($1::uuid[]) GROUP BY 1",
                ids,
            )
        }
        return ctx.render(
            "console/groups.html",
            groups=page_.items,
            sizes=sizes,
            q=q,
            description_max=groups.DESCRIPTION_MAX_LENGTH,
            **view.context(next_cursor=page_.next_cursor, total=total, shown=len(page_.items)),
        )

    @page(web, permission=Permission.GROUPS_WRITE)
    async def group_create(ctx: PageContext) -> Response:
        group = await groups.create_group(
            required_text(ctx.form, "name", "group's name"),
            (ctx.form.get("description") or "").strip(),
            _priority(ctx.form),
            actor=ctx.actor,
        )
        return ctx.redirect(f"/console/groups/{group.id}", f"Created the group {group.name}.")

    @page(web, permission=Permission.GROUPS_READ)
    async def group_detail(ctx: PageContext) -> Response:
        group = await groups.get_group(_group_id(ctx))
        total = await GroupMembership.filter(group_id=group.id).count()
        view = ListView.parse(
            f"/console/groups/{group.id}",
            ctx.request.query_params,
            sortable=("name", "email"),
            default_sort="name",
        )
        members = await paginate(
            Member.filter(group_memberships__group_id=group.id),
            view.sort,
            cursor=view.cursor,
            limit=view.size,
            within=group.id,
        )
        return ctx.render(
            "console/group.html",
            group=group,
            members=members.items,
            description_max=groups.DESCRIPTION_MAX_LENGTH,
            **view.context(next_cursor=members.next_cursor, total=total, shown=len(members.items)),
        )

    @page(web, permission=Permission.GROUPS_WRITE)
    async def group_update(ctx: PageContext) -> Response:
        group = await groups.update_group(
            _group_id(ctx),
            {
                "name": required_text(ctx.form, "name", "group's name"),
                "description": (ctx.form.get("description") or "").strip(),
                "priority": _priority(ctx.form),
            },
            actor=ctx.actor,
        )
        return ctx.redirect(f"/console/groups/{group.id}", f"Saved the group {group.name}.")

    @page(web, permission=Permission.GROUPS_WRITE)
    async def group_delete(ctx: PageContext) -> Response:
        group = await groups.get_group(_group_id(ctx))
        if not ctx.confirmed:
            total = await GroupMembership.filter(group_id=group.id).count()
            return ctx.confirm(
                title=f"Delete the group {group.name}?",
                consequences=[
                    f"{counted(total, 'member')} {'leaves' if total == 1 else 'leave'} the group; "
                    "the members themselves stay.",
                    "Policy rules that target this group are removed with it, so its members' settings may change.",
                ],
                button=f"Delete {group.name}",
                back=f"/console/groups/{group.id}",
            )
        await groups.delete_group(group.id, actor=ctx.actor)
        return ctx.redirect("/console/groups", f"Deleted the group {group.name}.")

    @page(web, permission=Permission.GROUPS_WRITE)
    async def group_members(ctx: PageContext) -> Response:
        group_id = _group_id(ctx)
        member_id = parse_uuid(ctx.form.get("member_id"), "member_id", "member")
        joining = chosen_op(ctx, ("add", "remove"), "add") == "add"
        asked = await group_change_confirmation(
            ctx,
            await get_referenced(Member, member_id, "member", field="member_id"),
            group_id,
            joining=joining,
            back=f"/console/groups/{group_id}",
        )
        if asked is not None:
            return asked
        if not joining:
            done = await groups.remove_member(
                group_id, member_id, actor=ctx.actor, by=ctx.permissions
            )
            message = "Removed from the group." if done else "They were not in the group."
        else:
            done = await groups.add_member(group_id, member_id, actor=ctx.actor, by=ctx.permissions)
            message = "Added to the group." if done else "They were already in the group."
        return ctx.redirect(f"/console/groups/{group_id}", message)

    return [
        Route("/console/groups", group_list, methods=["GET"]),
        Route("/console/groups", group_create, methods=["POST"]),
        Route("/console/groups/{id}", group_detail, methods=["GET"]),
        Route("/console/groups/{id}", group_update, methods=["POST"]),
        Route("/console/groups/{id}/delete", group_delete, methods=["POST"]),
        Route("/console/groups/{id}/members", group_members, methods=["POST"]),
    ]
