"""Access reviews in the console: the campaigns with their progress, a new campaign, one
campaign's items and its CSV export, and each reviewer's queue where they keep or revoke
(a revocation is confirmed first, and always needs a reason)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app import rfc3339
from app.downloads import attachment
from app.web.numbers import whole_number
from app.web.pages import PageContext, Web, page
from tenants import db
from tenants.csvcells import csv_line
from tenants.errors import FieldProblem, InvalidInputError, NotFoundError
from tenants.members.models import Member
from tenants.members.roles import STAFF, role_name
from tenants.permissions import Permission
from tenants.reviews import rules, service
from tenants.reviews.models import AccessReviewItem
from tenants.reviews.rules import (
    DueDefault,
    ItemKind,
    ItemState,
    Recurrence,
    RecurrenceUnit,
    ReviewerRule,
    ScopeKind,
)
from tenants.text import counted

SCOPE_LABELS = {
    ScopeKind.ADMIN_ROLES: "Admin roles (owner, admin, helpdesk, privacy officer, auditor)",
    ScopeKind.DATA_ACCESS: "Standing data-access grants",
    ScopeKind.PRODUCT_CLIENTS: "Product clients (API credentials)",
}
RULE_LABELS = {
    ReviewerRule.MANAGER: "The member's manager",
    ReviewerRule.UNIT_ADMINS: "The admins of the member's unit",
    ReviewerRule.NAMED: "The people named below",
}
KIND_LABELS = {
    ItemKind.ADMIN_ROLE: "Access by role (beyond member)",
    ItemKind.ACCESS_GRANT: "Access to member data (grant)",
    ItemKind.PRODUCT_CLIENT: "Access by API credentials (product client)",
}
STATE_LABELS = {
    ItemState.PENDING: "Waiting",
    ItemState.APPROVED: "Kept",
    ItemState.REVOKED: "Revoked",
    ItemState.KEPT_ON_DUE: "Kept (not reviewed by the due date)",
    ItemState.REVOKED_ON_DUE: "Revoked (not reviewed by the due date)",
}
ITEMS_PER_PAGE = 100


def _uuid(text: str | None, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(text or "")
    except ValueError:
        raise NotFoundError(f"there is no such {what}") from None


def _date(text: str, field: str) -> date:
    try:
        return rfc3339.parse_date(text.strip())
    except ValueError:
        raise InvalidInputError(
            "a date is not valid", fields=[FieldProblem(field, "must be a date (YYYY-MM-DD)")]
        ) from None


def _choice(enum: type[DueDefault] | type[ReviewerRule], text: str, field: str) -> object:
    try:
        return enum(text)
    except ValueError:
        raise InvalidInputError(
            "a choice is missing", fields=[FieldProblem(field, "choose one of the options")]
        ) from None


def draft_from_form(form: dict[str, str], named: list[str]) -> rules.CampaignDraft:
    """The new-campaign form as a draft; every unreadable field named at once."""
    problems: list[FieldProblem] = []
    values: dict[str, object] = {}
    parsers: dict[str, Callable[[], object]] = {
        "starts_on": lambda: _date(form.get("starts_on", ""), "starts_on"),
        "due_on": lambda: _date(form.get("due_on", ""), "due_on"),
        "reviewer_rule": lambda: _choice(
            ReviewerRule, form.get("reviewer_rule", ""), "reviewer_rule"
        ),
        "default_on_due": lambda: _choice(
            DueDefault, form.get("default_on_due", ""), "default_on_due"
        ),
    }
    for field, parse in parsers.items():
        try:
            values[field] = parse()
        except InvalidInputError as exc:
            problems.extend(exc.fields)
    recurrence = None
    every = form.get("recurrence_every", "").strip()
    if every:
        count = whole_number(every)
        try:
            if count is None:
                raise ValueError(every)
            recurrence = Recurrence(count, RecurrenceUnit(form.get("recurrence_unit", "months")))
        except ValueError:
            problems.append(FieldProblem("recurrence_every", "must be a whole number"))
    reviewers: list[uuid.UUID] = []
    for text in named:
        try:
            reviewers.append(uuid.UUID(text))
        except ValueError:
            problems.append(FieldProblem("named_reviewer_ids", "choose people from the list"))
    if problems:
        raise InvalidInputError("the campaign cannot be created as asked", fields=problems)
    return rules.CampaignDraft(
        name=form.get("name", ""),
        scopes=tuple(s for s in ScopeKind if form.get(f"scope_{s.value}")),
        reviewer_rule=values["reviewer_rule"],  # type: ignore[arg-type]
        named_reviewers=tuple(reviewers),
        starts_on=values["starts_on"],  # type: ignore[arg-type]
        due_on=values["due_on"],  # type: ignore[arg-type]
        recurrence=recurrence,
        default_on_due=values["default_on_due"],  # type: ignore[arg-type]
    )


async def reviewer_choices() -> list[Member]:
    """Active members with an admin role: the people a campaign may name. Chosen in SQL:
    taking the first 500 members by name and keeping their admins missed every admin
    whose name sorted after them."""
    rows = await db.fetch(
        "SELECT id FROM members WHERE tenant_id = $1 AND status = 'active' "  # noqa: S608 (STAFF is a constant)
        f"AND {STAFF} AND roles ?| $2::text[] ORDER BY name, id LIMIT 500",
        db.current_org(),
        [r.value for r in rules.ADMIN_ROLES],
    )
    ids = [r["id"] for r in rows]
    found = {m.id: m for m in await Member.filter(id__in=ids)}
    return [found[i] for i in ids if i in found]


async def decide_from_form(
    ctx: PageContext, *, back_prefix: str, confirm_template: str | None = None
) -> Response:
    """Keep or revoke the item named in the path from its form (``decision``, ``reason``,
    ``back``): the reason is checked first, a revocation is confirmed on a page naming its
    effect, then the decision is made and the browser sent back to ``back`` (a page under
    ``back_prefix``). Refusals raise, and the page wrapper shows them beside the field."""
    item_id = _uuid(ctx.request.path_params["id"], "access review item")
    decision = ctx.form.get("decision", "")
    if decision not in ("approve", "revoke"):
        raise InvalidInputError(
            "choose keep or revoke", fields=[FieldProblem("decision", "keep or revoke")]
        )
    reason = service.clean_reason(ctx.form.get("reason"))
    item: AccessReviewItem = await service.find_item(item_id)
    back = ctx.form.get("back", "")
    target = back if back.startswith(back_prefix) else back_prefix
    if decision == "revoke" and not ctx.confirmed:
        what = {
            ItemKind.ADMIN_ROLE: f"The role {role_name(item.role or '')} is taken away now.",
            ItemKind.ACCESS_GRANT: "The data access ends now; its holder is refused at once.",
            ItemKind.PRODUCT_CLIENT: "The client's credentials stop working now.",
        }[item.kind]
        title = f"Revoke: {item.subject_label}"
        consequences = [what, f"Your reason is recorded in the audit log: “{reason}”."]
        return ctx.confirm(
            title=title,
            consequences=consequences,
            button="Revoke now",
            back=target,
            template=confirm_template or "console/confirm.html",
        )
    await service.decide_item(
        item.review_id,
        item_id,
        approve=decision == "approve",
        reason=reason,
        permissions=ctx.permissions,
        actor=ctx.actor,
    )
    verb = "Kept" if decision == "approve" else "Revoked"
    return ctx.redirect(target, f"{verb}: {item.subject_label}.")


def routes(web: Web) -> list[BaseRoute]:
    @page(web, permission=Permission.REVIEWS_READ)
    async def campaigns(ctx: PageContext) -> Response:
        listed = await service.list_reviews(
            status=None, cursor=ctx.request.query_params.get("cursor"), limit=50
        )
        me = ctx.active.member.id
        return ctx.render(
            "console/reviews.html",
            reviews=listed.items,
            next_cursor=listed.next_cursor,
            waiting=await service.waiting_count(me) if ctx.can(Permission.REVIEWS_DECIDE) else 0,
        )

    @page(web, permission=Permission.REVIEWS_WRITE)
    async def new_campaign(ctx: PageContext) -> Response:
        return ctx.render(
            "console/review_new.html",
            scope_labels=SCOPE_LABELS,
            rule_labels=RULE_LABELS,
            reviewers=await reviewer_choices(),
            today=(await service.today()).isoformat(),
            name_max=rules.NAME_MAX_LENGTH,
        )

    @page(web, permission=Permission.REVIEWS_WRITE)
    async def create(ctx: PageContext) -> Response:
        form_data = await ctx.request.form()
        named = [v for v in form_data.getlist("named_reviewer_ids") if isinstance(v, str)]
        review = await service.create_review(draft_from_form(ctx.form, named), actor=ctx.actor)
        return ctx.redirect(
            service.console_path(review.id),
            f"Created “{review.name}”: {review.status.value}"
            + (
                f", {counted(review.items_total, 'item')} to review." if review.items_total else "."
            ),
        )

    @page(web, permission=Permission.REVIEWS_READ)
    async def detail(ctx: PageContext) -> Response:
        review = await service.get_review(_uuid(ctx.request.path_params["id"], "access review"))
        state_text = ctx.request.query_params.get("state") or None
        state = ItemState(state_text) if state_text in set(ItemState) else None
        items = await service.list_items(
            review.id,
            state=state,
            cursor=ctx.request.query_params.get("cursor"),
            limit=ITEMS_PER_PAGE,
        )
        ids = {uuid.UUID(r) for i in items.items for r in i.reviewer_ids}
        return ctx.render(
            "console/review.html",
            review=review,
            items=items.items,
            next_cursor=items.next_cursor,
            state=state.value if state else "",
            names={str(k): v for k, v in (await service.names_of(ids)).items()},
            kind_labels=KIND_LABELS,
            state_labels=STATE_LABELS,
            scope_labels=SCOPE_LABELS,
            rule_labels=RULE_LABELS,
            me=str(ctx.active.member.id),
            may_decide_any=ctx.can(Permission.REVIEWS_WRITE),
            may_decide=ctx.can(Permission.REVIEWS_DECIDE),
        )

    @page(web, permission=Permission.REVIEWS_READ)
    async def export(ctx: PageContext) -> Response:
        review_id = _uuid(ctx.request.path_params["id"], "access review")
        rows = await service.export_rows(review_id)
        body = csv_line(list(service.EXPORT_COLUMNS)) + "".join(csv_line(r) for r in rows)
        return Response(
            body,
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": attachment(f"access-review-{review_id}.csv"),
                "Cache-Control": "no-store",
            },
        )

    @page(web, permission=Permission.REVIEWS_DECIDE)
    async def queue(ctx: PageContext) -> Response:
        rows = await service.queue_of(ctx.active.member.id)
        return ctx.render(
            "console/review_queue.html",
            rows=rows,
            kind_labels=KIND_LABELS,
        )

    @page(web, permission=Permission.REVIEWS_DECIDE)
    async def decide(ctx: PageContext) -> Response:
        return await decide_from_form(ctx, back_prefix="/console/access-reviews")

    return [
        Route("/console/access-reviews", campaigns, methods=["GET"]),
        Route("/console/access-reviews", create, methods=["POST"]),
        Route("/console/access-reviews/new", new_campaign, methods=["GET"]),
        Route("/console/access-reviews/queue", queue, methods=["GET"]),
        Route("/console/access-reviews/{id}", detail, methods=["GET"]),
        Route("/console/access-reviews/{id}/export.csv", export, methods=["GET"]),
        Route("/console/access-review-items/{id}/decision", decide, methods=["POST"]),
    ]
