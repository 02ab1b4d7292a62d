"""Legal holds in the console: the organisation's held items, a member's items to place a
hold on, one item's hold (what the member is told and when the hold is reviewed), and
lifting it, asked first. The hold's confidential reason goes to the audit trail, never to
the member. Everything goes through ``tenants.content.service.set_legal_hold``, as the API
(``PUT /v1/content/{id}/legal-hold``) does."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app import rfc3339
from app.web.console.tables import ListView
from app.web.pages import PageContext, Web, page
from tenants.content import service as content
from tenants.content.holds import hold_problems
from tenants.content.models import ContentItem
from tenants.content.service import ContentFilter, HoldsDue
from tenants.errors import FieldProblem, InvalidInputError, NotFoundError
from tenants.members.models import Member
from tenants.members.service import get_member
from tenants.pagination import count_up_to, shown_total
from tenants.permissions import Permission
from tenants.products.models import Product

HOLDS = "/console/holds"


def _id(ctx: PageContext, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(ctx.request.path_params["id"])
    except ValueError:
        raise NotFoundError(f"there is no such {what}") from None


#: The longest confidential reason, as the API takes it (``LegalHoldIn.reason``).
REASON_MAX = 1000


def _reason_problem(reason: str) -> FieldProblem | None:
    """What is wrong with a hold's confidential reason (placing and lifting alike)."""
    if not reason:
        return FieldProblem("reason", "why (for the audit trail only)")
    if len(reason) > REASON_MAX:
        return FieldProblem("reason", f"at most {REASON_MAX} characters")
    return None


async def _names(items: list[ContentItem]) -> tuple[dict[uuid.UUID, str], dict[uuid.UUID, str]]:
    """(product names, member names) of the items, read once per page."""
    products = {p.id: p.name for p in await Product.filter(id__in={i.product_id for i in items})}
    members = {m.id: m.name for m in await Member.filter(id__in={i.member_id for i in items})}
    return products, members


def routes(web: Web) -> list[BaseRoute]:
    @page(web, permission=Permission.CONTENT_READ)
    async def holds_page(ctx: PageContext) -> Response:
        raw = ctx.request.query_params.get("due") or ""
        due = HoldsDue(raw) if raw in {d.value for d in HoldsDue} else None
        view = ListView.parse(
            HOLDS,
            ctx.request.query_params,
            sortable=content.HOLD_SORTS,
            default_sort=str(content.HOLDS_NEWEST_FIRST),
            filters={"due": due.value if due else ""},
        )
        found = await content.list_holds(view.sort, cursor=view.cursor, limit=view.size, due=due)
        products, members = await _names(found.items)
        counts = {d: await content.count_holds(d) for d in (None, *HoldsDue)}
        return ctx.render(
            "console/holds.html",
            items=found.items,
            products=products,
            members=members,
            today=datetime.now(UTC).date(),
            due=due,
            due_values=HoldsDue,
            counts=counts,
            **view.context(
                next_cursor=found.next_cursor, total=counts[due], shown=len(found.items)
            ),
        )

    @page(web, permission=Permission.CONTENT_READ)
    async def member_content(ctx: PageContext) -> Response:
        member = await get_member(_id(ctx, "member"))
        path = f"/console/members/{member.id}/content"
        view = ListView.parse(
            path, ctx.request.query_params, sortable=("created_at",), default_sort="-created_at"
        )
        found = await content.list_member_content(
            member.id, ContentFilter(), cursor=view.cursor, limit=view.size
        )
        products, _ = await _names(found.items)
        # A member may hold a great many items: counted up to COUNT_CAP, then "or more".
        total = shown_total(await count_up_to(ContentItem.filter(member_id=member.id)))
        return ctx.render(
            "console/member_content.html",
            member=member,
            items=found.items,
            products=products,
            **view.context(next_cursor=found.next_cursor, total=total, shown=len(found.items)),
        )

    async def render(
        ctx: PageContext,
        item_id: uuid.UUID,
        *,
        values: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        item = await content.get_item(item_id)
        product = await Product.filter(id=item.product_id).first()
        member = await Member.filter(id=item.member_id).first()
        return ctx.render(
            "console/hold_form.html",
            status,
            item=item,
            product_name=product.name if product else "a product",
            member=member,
            member_name=member.name if member else "a former member",
            # What was sent when a form of this page was refused; else the hold as it is.
            form_values=values
            or ctx.form_values
            or {
                "form": "hold",
                "member_text": item.hold_member_text or "",
                "review_on": item.hold_review_on.isoformat() if item.hold_review_on else "",
            },
            form_errors=errors or ctx.form_errors,
            back=ctx.request.query_params.get("back") or ctx.form.get("back"),
        )

    @page(web, permission=Permission.CONTENT_HOLD)
    async def hold_form(ctx: PageContext) -> Response:
        return await render(ctx, _id(ctx, "content item"))

    @page(web, permission=Permission.CONTENT_HOLD)
    async def hold_submit(ctx: PageContext) -> Response:
        item_id = _id(ctx, "content item")
        values = {k: ctx.form.get(k, "") for k in ("member_text", "review_on", "reason")}
        values["form"] = "hold"
        # Every field's problem at once, not one per try.
        problems: list[FieldProblem] = []
        review_on: date | None = None
        if values["review_on"]:
            try:
                review_on = rfc3339.parse_date(values["review_on"].strip())
            except ValueError:
                problems.append(FieldProblem("review_on", "a date (YYYY-MM-DD)"))
        problems += [
            p
            for p in hold_problems(values["member_text"], review_on, datetime.now(UTC).date())
            if not (p.field == "review_on" and problems)  # a date that does not parse, said
        ]
        reason = values["reason"].strip()
        if (problem := _reason_problem(reason)) is not None:
            problems.append(problem)
        try:
            if problems:
                raise InvalidInputError("the hold is not saved", fields=problems)
            was_held = (await content.get_item(item_id)).legal_hold
            item = await content.set_legal_hold(
                item_id,
                True,
                reason,
                actor=ctx.actor,
                member_text=values["member_text"],
                review_on=review_on,
            )
        except InvalidInputError as exc:
            errors: dict[str, str] = {}
            for problem in exc.fields:
                errors.setdefault(problem.field, problem.reason)
            return await render(
                ctx,
                item_id,
                values=values,
                errors=errors or {"member_text": exc.message},
                status=400,
            )
        done = "saved" if was_held else "placed"
        # Back to the overview's reminder when the hold was opened from it.
        back = "/console" if ctx.form.get("back") == "overview" else HOLDS
        return ctx.redirect(back, f"The legal hold on “{item.title}” is {done}.")

    @page(web, permission=Permission.CONTENT_HOLD)
    async def lift(ctx: PageContext) -> Response:
        item = await content.get_item(_id(ctx, "content item"))
        if not item.legal_hold:
            return ctx.redirect(HOLDS, f"“{item.title}” is not under legal hold.")
        reason = (ctx.form.get("reason") or "").strip()
        if (problem := _reason_problem(reason)) is not None:
            raise InvalidInputError("say why you lift the hold", fields=[problem])
        if not ctx.confirmed:
            member = await Member.filter(id=item.member_id).first()
            return ctx.confirm(
                title=f"Lift the legal hold on “{item.title}”?",
                consequences=[
                    "The item is no longer kept for a legal obligation: a departure may hand"
                    " it over or delete it as the organisation's policy says.",
                    f"{member.name if member else 'The member'} no longer sees it among the"
                    " data kept for a legal obligation.",
                    f"The reason “{reason}” is recorded in the audit log.",
                ],
                button="Lift the hold",
                back=f"{HOLDS}/{item.id}",
            )
        await content.set_legal_hold(item.id, False, reason, actor=ctx.actor)
        return ctx.redirect(HOLDS, f"The legal hold on “{item.title}” is lifted.")

    return [
        Route(HOLDS, holds_page, methods=["GET"]),
        Route("/console/members/{id}/content", member_content, methods=["GET"]),
        Route("/console/holds/{id}", hold_form, methods=["GET"]),
        Route("/console/holds/{id}", hold_submit, methods=["POST"]),
        Route("/console/holds/{id}/lift", lift, methods=["POST"]),
    ]
