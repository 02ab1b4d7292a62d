"""The console's data-access area: grants with their state, the request form, approve /
deny for privacy officers (shown only to those the four-eyes rule lets decide), revoke,
the review of emergency access, disclosure delays, the access log and the policy.

Handlers parse the form, call one function of ``tenants.access.service`` and redirect;
whether a button is shown is asked of the same rules the service enforces.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time
from functools import partial
from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app import rfc3339
from app.web.console.member_forms import picked_in
from app.web.console.tables import ListView
from app.web.numbers import INT32, INT64, whole_number
from app.web.pages import PageContext, Web, field_label, page
from tenants.access import log, rules, service
from tenants.access import policy as access_policy
from tenants.access.models import AccessGrant, DataCategory
from tenants.access.rules import GrantState, Party
from tenants.errors import FieldProblem, InvalidInputError, NotFoundError, Problems
from tenants.members import service as members
from tenants.members.models import Member
from tenants.permissions import Permission
from tenants.products.models import Product
from tenants.units.models import Unit

BASE = "/console/data-access"
PAGE = 50

CATEGORY_LABELS = {
    DataCategory.INTERACTION: "Interaction data",
    DataCategory.DIAGNOSTIC: "Diagnostic data",
    DataCategory.COMMUNICATIONS: "Contents of communications",
    DataCategory.FILES: "Files",
}
REASON_LABELS = {r.value: r.value.replace("_", " ") for r in rules.DenyReason}


def _uuid(text: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(text) if text else None
    except ValueError:
        return None


def _grant_id(ctx: PageContext) -> uuid.UUID:
    grant_id = _uuid(ctx.request.path_params["id"])
    if grant_id is None:
        raise NotFoundError("there is no such access grant")
    return grant_id


def me(ctx: PageContext) -> Party:
    member = ctx.active.member
    return Party(f"member:{member.id}", member.id, ctx.permissions)


@dataclass(frozen=True, slots=True)
class Moment:
    """One line of a grant's timeline."""

    at: datetime
    what: str
    kind: str  # a badge class: requested, active, denied, revoked, expired, review


def timeline(grant: AccessGrant, names: Mapping[uuid.UUID, str], now: datetime) -> list[Moment]:
    """What happened to a grant, in order, and when it ends (or ended)."""

    def name(member_id: uuid.UUID | None, fallback: str) -> str:
        return names.get(member_id, fallback) if member_id else fallback

    moments = [
        Moment(
            grant.created_at,
            f"{'Emergency access started' if grant.emergency else 'Requested'} by "
            f"{grant.requested_by_display}",
            "emergency" if grant.emergency else "requested",
        )
    ]
    if grant.decided_at:
        verb = "Approved" if grant.starts_at else "Denied"
        reason = f": {grant.decision_reason}" if grant.decision_reason else ""
        moments.append(
            Moment(
                grant.decided_at,
                f"{verb} by {name(grant.decided_by_id, 'an API token')}{reason}",
                "active" if grant.starts_at else "denied",
            )
        )
    if grant.reviewed_at:
        moments.append(
            Moment(
                grant.reviewed_at,
                f"Reviewed by {name(grant.reviewed_by_id, 'an API token')}: {grant.review_note}",
                "review",
            )
        )
    if grant.revoked_at:
        reason = f": {grant.revoke_reason}" if grant.revoke_reason else ""
        moments.append(Moment(grant.revoked_at, f"Ended by {grant.revoked_by}{reason}", "revoked"))
    elif grant.ends_at:
        past = grant.ends_at <= now
        moments.append(
            Moment(grant.ends_at, "Expired" if past else "Ends", "expired" if past else "active")
        )
    return sorted(moments, key=lambda m: m.at)


async def _names(ids: set[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    wanted = [i for i in ids if i]
    return {m.id: m.name for m in await Member.filter(id__in=wanted)} if wanted else {}


def _until(text: str | None) -> datetime:
    """The end of the chosen day (UTC): a delay "until 31 May" lasts through that day."""
    try:
        day = rfc3339.parse_date((text or "").strip())
    except ValueError:
        raise InvalidInputError(
            "choose the date disclosure waits until", fields=[FieldProblem("until", "not a date")]
        ) from None
    return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)


def _int(form: Mapping[str, str], name: str) -> int:
    value = whole_number(form.get(name), low=INT32[0])
    if value is None:
        raise InvalidInputError(
            f"{field_label(name)} takes a whole number",
            fields=[FieldProblem(name, "is not a whole number")],
        )
    return value


def routes(web: Web) -> list[BaseRoute]:
    @page(web, permission=Permission.ACCESS_READ)
    async def grants(ctx: PageContext) -> Response:
        params = ctx.request.query_params
        state = params.get("state") or ""
        mine = params.get("mine") == "1"
        flagged = params.get("review") == "1"
        filters = service.GrantFilter(
            state=GrantState(state) if state in {s.value for s in GrantState} else None,
            admin_id=ctx.active.member.id if mine else None,
            review_required=True if flagged else None,
        )
        view = ListView.parse(
            "/console/data-access",
            params,
            sortable=service.GRANT_SORTABLE,
            default_sort="-created_at",
            filters={
                "state": state if filters.state else "",
                "mine": "1" if mine else "",
                "review": "1" if flagged else "",
            },
            default_size=PAGE,
        )
        page_ = await service.list_grants(
            filters, cursor=view.cursor, limit=view.size, sort=view.sort
        )
        total = await service.count_grants(filters)
        ids = {g.admin_id for g in page_.items} | {g.member_id for g in page_.items}
        units = {u.id: u.name for u in await Unit.filter(id__in=[g.unit_id for g in page_.items])}
        now = datetime.now(UTC)
        return ctx.render(
            "console/access.html",
            grants=page_.items,
            names=await _names(ids),
            **view.context(next_cursor=page_.next_cursor, total=total, shown=len(page_.items)),
            units=units,
            state_of=lambda g: service.state_of(g, now),
            states=[s.value for s in GrantState],
            state=state,
            mine=mine,
            flagged=flagged,
            waiting=await AccessGrant.filter(review_required=True).count(),
        )

    @page(web, permission=Permission.ACCESS_READ)
    async def request_form(ctx: PageContext) -> Response:
        """Shown to every reader of the area; only those who may request can send it."""
        return ctx.render(
            "console/access_request.html",
            policy=await access_policy.get_policy(),
            products=await Product.all().order_by("name"),
            categories=CATEGORY_LABELS,
            min_length=rules.JUSTIFICATION_MIN_LENGTH,
            max_length=rules.JUSTIFICATION_MAX_LENGTH,
            case_reference_max=rules.CASE_REFERENCE_MAX_LENGTH,
            picked=await picked_in(ctx.form_values),  # a refused form's member, by name
        )

    @page(web, permission=Permission.ACCESS_REQUEST)
    async def request_submit(ctx: PageContext) -> Response:
        form = ctx.form
        raw = await ctx.request.form()
        member_id = unit_id = None
        # Every mistake of the form at once: whose data, the duration, and the request's
        # own rules (categories, products, justification, the policy's caps).
        problems: list[FieldProblem] = []
        if form.get("subject") == "unit":
            unit_id = _uuid(form.get("unit_id"))
            if unit_id is None:
                problems.append(FieldProblem("unit_id", "choose a unit"))
        elif form.get("member_id"):
            # Chosen with the people picker.
            picked = _uuid(form.get("member_id"))
            found = await Member.filter(id=picked).first() if picked else None
            if found is None:
                problems.append(FieldProblem("member_id", "is not a member"))
            else:
                member_id = found.id
        else:
            email = form.get("member_email", "").strip()
            found = await members.find_member(email=email) if email else None
            if found is None:
                problems.append(
                    FieldProblem("member_id", "choose one")
                    if not email
                    else FieldProblem("member_email", "is not a member's address")
                )
            else:
                member_id = found.id
        duration = whole_number(form.get("duration_hours"), low=INT32[0])
        if duration is None:
            problems.append(FieldProblem("duration_hours", "is not a whole number"))
        known = {c.value for c in DataCategory}
        categories = [DataCategory(c) for c in raw.getlist("categories") if c in known]
        chosen = [p for p in (_uuid(str(v)) for v in raw.getlist("product_ids")) if p]
        if problems:
            problems += rules.request_problems(
                rules.GrantRequest(
                    on_unit=form.get("subject") == "unit",
                    categories=frozenset(categories),
                    product_ids=None if form.get("all_products") else frozenset(chosen),
                    justification=form.get("justification", "").strip(),
                    duration_hours=duration if duration is not None else 1,
                    emergency=bool(form.get("emergency")),
                    case_reference=form.get("case_reference", "").strip() or None,
                ),
                await access_policy.get_policy(),
            )
            raise InvalidInputError("the request cannot be made as it is", fields=problems)
        assert duration is not None  # or it would be among the problems
        grant = await service.request_access(
            service.NewGrant(
                member_id=member_id,
                unit_id=unit_id,
                categories=categories,
                product_ids=None if form.get("all_products") else chosen,
                justification=form.get("justification", ""),
                case_reference=form.get("case_reference", "").strip() or None,
                duration_hours=duration,
                emergency=bool(form.get("emergency")),
            ),
            permissions=ctx.permissions,
            actor=ctx.actor,
        )
        message = (
            "Emergency access started; a privacy officer will review it."
            if grant.emergency
            # A requester who is a privacy officer cannot approve their own request.
            else "Request sent; another privacy officer decides."
            if ctx.can(Permission.ACCESS_APPROVE)
            else "Request sent; a privacy officer decides."
        )
        return ctx.redirect(f"{BASE}/grants/{grant.id}", message)

    @page(web, permission=Permission.ACCESS_READ)
    async def grant_detail(ctx: PageContext) -> Response:
        grant = await service.get_grant(_grant_id(ctx))
        now = datetime.now(UTC)
        state = service.state_of(grant, now)
        facts, party = service.facts(grant), me(ctx)
        names = await _names(
            {grant.admin_id, grant.member_id, grant.decided_by_id, grant.reviewed_by_id}
        )
        products = {str(p.id): p.name for p in await Product.filter(id__in=grant.product_ids or [])}
        unit = await Unit.filter(id=grant.unit_id).first() if grant.unit_id else None
        policy = await access_policy.get_policy()
        accesses = await log.list_log(log.LogFilter(grant_id=grant.id), before_id=None, limit=PAGE)
        return ctx.render(
            "console/access_grant.html",
            grant=grant,
            state=state.value,
            names=names,
            products=products,
            unit=unit,
            categories=CATEGORY_LABELS,
            timeline=timeline(grant, names, now),
            accesses=accesses,
            reasons=REASON_LABELS,
            decide=rules.can_approve_access(facts, party)
            if state is GrantState.REQUESTED
            else None,
            # A request is withdrawn by whoever asked or would get the access; anyone else
            # who may decide on it denies it (the form above), rather than "withdraws" it.
            can_revoke=(
                state is GrantState.ACTIVE
                or (
                    state is GrantState.REQUESTED
                    and party.person in (facts.requested_by, f"member:{facts.admin_id}")
                )
            )
            and rules.can_revoke_access(facts, party),
            review=rules.can_review_access(facts, party) if grant.review_required else None,
            delay=rules.can_delay_disclosure(facts, party)
            if policy.max_disclosure_delay_days > 0 or grant.disclosure_delayed_until
            else None,
            delayed=grant.disclosure_delayed_until is not None
            and not rules.is_disclosed(grant.disclosure_delayed_until, now),
            max_delay_days=policy.max_disclosure_delay_days,
            min_length=rules.JUSTIFICATION_MIN_LENGTH,
            today=now.date(),
        )

    @page(web, permission=Permission.ACCESS_APPROVE)
    async def approve(ctx: PageContext) -> Response:
        grant = await service.approve_access(
            _grant_id(ctx),
            ctx.form.get("reason") or None,
            permissions=ctx.permissions,
            actor=ctx.actor,
        )
        return ctx.redirect(f"{BASE}/grants/{grant.id}", "Approved: access starts now.")

    @page(web, permission=Permission.ACCESS_APPROVE)
    async def deny(ctx: PageContext) -> Response:
        grant = await service.deny_access(
            _grant_id(ctx), ctx.form.get("reason", ""), permissions=ctx.permissions, actor=ctx.actor
        )
        return ctx.redirect(f"{BASE}/grants/{grant.id}", "Denied.")

    @page(web, permission=Permission.ACCESS_REVOKE)
    async def revoke(ctx: PageContext) -> Response:
        grant = await service.revoke_access(
            _grant_id(ctx),
            ctx.form.get("reason") or None,
            permissions=ctx.permissions,
            actor=ctx.actor,
        )
        return ctx.redirect(f"{BASE}/grants/{grant.id}", "Access ended.")

    @page(web, permission=Permission.ACCESS_APPROVE)
    async def review(ctx: PageContext) -> Response:
        grant = await service.review_access(
            _grant_id(ctx), ctx.form.get("note", ""), permissions=ctx.permissions, actor=ctx.actor
        )
        return ctx.redirect(f"{BASE}/grants/{grant.id}", "Review recorded.")

    @page(web, permission=Permission.ACCESS_APPROVE)
    async def delay(ctx: PageContext) -> Response:
        grant = await service.delay_disclosure(
            _grant_id(ctx),
            _until(ctx.form.get("until")),
            ctx.form.get("reason", ""),
            permissions=ctx.permissions,
            actor=ctx.actor,
        )
        when = grant.disclosure_delayed_until
        return ctx.redirect(
            f"{BASE}/grants/{grant.id}",
            f"The member is shown this access from {when:%Y-%m-%d}." if when else "Saved.",
        )

    @page(web, permission=Permission.ACCESS_APPROVE)
    async def lift(ctx: PageContext) -> Response:
        grant = await service.lift_disclosure_delay(
            _grant_id(ctx), permissions=ctx.permissions, actor=ctx.actor
        )
        return ctx.redirect(f"{BASE}/grants/{grant.id}", "The member is shown this access now.")

    @page(web, permission=Permission.ACCESS_READ)
    async def access_log(ctx: PageContext) -> Response:
        params = ctx.request.query_params
        answer = params.get("allowed") or ""
        before = params.get("before") or ""
        rows = await log.list_log(
            log.LogFilter(allowed={"yes": True, "no": False}.get(answer)),
            before_id=whole_number(before, high=INT64[1]),
            limit=PAGE + 1,
        )
        return ctx.render(
            "console/access_log.html",
            rows=rows[:PAGE],
            next_before=rows[PAGE - 1]["id"] if len(rows) > PAGE else None,
            allowed=answer,
            reasons=REASON_LABELS,
            categories=CATEGORY_LABELS,
        )

    @page(web, permission=Permission.ACCESS_READ)
    async def policy_page(ctx: PageContext) -> Response:
        return ctx.render(
            "console/access_policy.html",
            policy=await access_policy.get_policy(),
            max_hours=rules.MAX_HOURS,
            max_delay_days=rules.MAX_DISCLOSURE_DELAY_DAYS,
        )

    @page(web, permission=Permission.ACCESS_APPROVE)
    async def policy_save(ctx: PageContext) -> Response:
        form = ctx.form
        problems = Problems()
        changes: dict[str, Any] = {
            name: problems.check(partial(_int, form, name), 0)
            for name in ("max_duration_hours", "emergency_max_hours", "max_disclosure_delay_days")
        }
        problems.raise_any()
        changes |= {
            "emergency_allowed": bool(form.get("emergency_allowed")),
            "notify_member_per_access": bool(form.get("notify_member_per_access")),
        }
        bounds = {
            "max_duration_hours": (1, rules.MAX_HOURS),
            "emergency_max_hours": (1, rules.MAX_HOURS),
            "max_disclosure_delay_days": (0, rules.MAX_DISCLOSURE_DELAY_DAYS),
        }
        out_of_bounds = [
            FieldProblem(name, f"must be from {low} to {high}")
            for name, (low, high) in bounds.items()
            if not low <= changes[name] <= high
        ]
        if out_of_bounds:
            raise InvalidInputError("the policy was not saved", fields=out_of_bounds)
        weaker = rules.weakenings(await access_policy.get_policy(), rules.PolicyRules(**changes))
        if weaker and not ctx.confirmed:
            return ctx.confirm(
                title="Save a policy that protects members less?",
                consequences=[*weaker, "The change is recorded in the audit log in your name."],
                button="Save the policy",
                back=f"{BASE}/policy",
            )
        await access_policy.update_policy(changes, actor=ctx.actor)
        return ctx.redirect(f"{BASE}/policy", "Data-access policy saved.")

    return [
        Route(BASE, grants, methods=["GET"]),
        Route(f"{BASE}/new", request_form, methods=["GET"]),
        Route(f"{BASE}/new", request_submit, methods=["POST"]),
        Route(f"{BASE}/log", access_log, methods=["GET"]),
        Route(f"{BASE}/policy", policy_page, methods=["GET"]),
        Route(f"{BASE}/policy", policy_save, methods=["POST"]),
        Route(f"{BASE}/grants/{{id}}", grant_detail, methods=["GET"]),
        Route(f"{BASE}/grants/{{id}}/approve", approve, methods=["POST"]),
        Route(f"{BASE}/grants/{{id}}/deny", deny, methods=["POST"]),
        Route(f"{BASE}/grants/{{id}}/revoke", revoke, methods=["POST"]),
        Route(f"{BASE}/grants/{{id}}/review", review, methods=["POST"]),
        Route(f"{BASE}/grants/{{id}}/delay", delay, methods=["POST"]),
        Route(f"{BASE}/grants/{{id}}/delay/lift", lift, methods=["POST"]),
    ]
