"""A legal hold's member-facing side in the console: the text the member is told and the
date the hold is reviewed, for one held item (the overview's "holds without a review date"
links here). The hold's confidential reason is asked for the audit trail, never shown to
the member."""

from __future__ import annotations

import uuid
from datetime import date

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.web.pages import PageContext, Web, page
from tenants.content import service as content
from tenants.errors import FieldProblem, InvalidInputError, NotFoundError
from tenants.members.models import Member
from tenants.permissions import Permission
from tenants.products.models import Product


def _item_id(ctx: PageContext) -> uuid.UUID:
    try:
        return uuid.UUID(ctx.request.path_params["id"])
    except ValueError:
        raise NotFoundError("there is no such content item") from None


def routes(web: Web) -> list[BaseRoute]:
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
            member_name=member.name if member else "a former member",
            form_values=values
            or {
                "member_text": item.hold_member_text or "",
                "review_on": item.hold_review_on.isoformat() if item.hold_review_on else "",
            },
            form_errors=errors or {},
        )

    @page(web, permission=Permission.CONTENT_HOLD)
    async def hold_form(ctx: PageContext) -> Response:
        return await render(ctx, _item_id(ctx))

    @page(web, permission=Permission.CONTENT_HOLD)
    async def hold_submit(ctx: PageContext) -> Response:
        item_id = _item_id(ctx)
        values = {k: ctx.form.get(k, "")[:3000] for k in ("member_text", "review_on", "reason")}
        review_on: date | None = None
        try:
            if values["review_on"]:
                try:
                    review_on = date.fromisoformat(values["review_on"])
                except ValueError:
                    raise InvalidInputError(
                        "not a date", fields=[FieldProblem("review_on", "a date (YYYY-MM-DD)")]
                    ) from None
            if not values["reason"].strip():
                raise InvalidInputError(
                    "a reason is needed",
                    fields=[FieldProblem("reason", "why (for the audit trail only)")],
                )
            await content.set_legal_hold(
                item_id,
                True,
                values["reason"].strip(),
                actor=ctx.actor,
                member_text=values["member_text"],
                review_on=review_on,
            )
        except InvalidInputError as exc:
            errors = {p.field: p.reason for p in exc.fields} or {"member_text": exc.message}
            return await render(ctx, item_id, values=values, errors=errors, status=400)
        return ctx.redirect("/console", "The hold's member-facing text and review date are saved.")

    return [
        Route("/console/holds/{id}", hold_form, methods=["GET"]),
        Route("/console/holds/{id}", hold_submit, methods=["POST"]),
    ]
