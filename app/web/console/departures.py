"""Departures in the console: the list, starting one from a member behind a preview of its
plan, the departure's page with live progress per step, its log and its failures (each
with a retry), reinstatement, and the organisation's departure policy.

Handlers parse the form, call one function of ``tenants.departures.service`` (or the jobs
and webhooks services for retries) and render; what the pages say and read is in
``departure_views``.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.web.console.departure_views import (
    ACTION_LABELS,
    KIND_LABELS,
    PERSONAL_LABELS,
    POLICY_ACTION_LABELS,
    STEP_TITLES,
    SUCCESSOR_WHY,
    PlanSummary,
    PolicyForm,
    StartForm,
    StepView,
    current_step,
    explained,
    names_of,
    number,
    parse_uuid,
    plan_context,
    product_names,
    size,
    stage_of,
)
from app.web.console.tables import ListView
from app.web.pages import PageContext, Web, page
from tenants import db
from tenants.audit import service as audit
from tenants.departures import service
from tenants.departures.models import Departure, DepartureStatus, DepartureStep, StepStatus
from tenants.departures.planner import Plan, PolicyView
from tenants.errors import (
    ConflictError,
    FieldProblem,
    IllegalTransitionError,
    InvalidInputError,
    NotFoundError,
)
from tenants.jobs import service as jobs
from tenants.jobs.models import Job, JobStatus
from tenants.members.lifecycle import LifecycleAction, allowed_actions
from tenants.members.models import Member
from tenants.members.service import get_member
from tenants.organisations import days
from tenants.organisations import service as organisations
from tenants.pagination import paginate
from tenants.permissions import Permission
from tenants.products.models import Product
from tenants.text import counted
from tenants.webhooks import service as webhooks
from tenants.webhooks.models import DeliveryStatus, WebhookDelivery


def _path_id(ctx: PageContext, what: str) -> uuid.UUID:
    found = parse_uuid(ctx.request.path_params["id"])
    if found is None:
        raise NotFoundError(f"there is no such {what}")
    return found


async def _start_page(
    ctx: PageContext,
    member: Member,
    form: StartForm,
    *,
    plan: Plan | None = None,
    status: int = 200,
    partial: bool = False,
) -> Response:
    manager = await Member.filter(id=member.manager_id).first() if member.manager_id else None
    policy = await service.get_policy()
    fallback = (
        await Member.filter(id=policy.fallback_successor_id).first()
        if policy.fallback_successor_id
        else None
    )
    # The successor is found with the typeahead picker; only the one chosen is read here.
    chosen_id = parse_uuid(form.successor)
    chosen = await Member.filter(id=chosen_id).first() if chosen_id else None
    can_start = LifecycleAction.BEGIN_DEPARTURE in allowed_actions(member.status)
    if not can_start and form.refusal is None:
        form.refusal = (
            f"{member.name} is {member.status.value}: only an active member can start a departure."
        )
    products = await product_names()
    context: dict[str, Any] = {
        "member": member,
        "form": form,
        "manager": manager,
        "fallback": fallback,
        "chosen": chosen,
        "can_start": can_start,
        "today": days.today(await organisations.time_zone()).isoformat(),
        "action_labels": ACTION_LABELS,
        "kind_labels": KIND_LABELS,
        "number": number,
        "size": size,
        "reason_max": service.REASON_MAX_LENGTH,
    }
    if plan is not None:
        context.update(plan_context(plan, products))
    template = "console/departures_start_form.html" if partial else "console/departures_start.html"
    return ctx.render(template, status, **context)


async def _steps(departure: Departure) -> list[StepView]:
    steps = await service.steps_of(departure.id)
    prefix = f"departure:{departure.id}:"
    job_of = {j.key.removeprefix(prefix): j for j in await Job.filter(key__startswith=prefix)}
    return [StepView(s, STEP_TITLES.get(s.name, s.name), job_of.get(s.name)) for s in steps]


# --- routes -------------------------------------------------------------------------------

LIST_FILTERS = ("running", "completed", "cancelled")
LIST_SORTABLE = ("created_at", "last_day", "status")


def routes(web: Web) -> list[BaseRoute]:
    @page(web, permission=Permission.DEPARTURES_READ)
    async def departures_list(ctx: PageContext) -> Response:
        params = ctx.request.query_params
        wanted = params.get("status") or ""
        status = DepartureStatus(wanted) if wanted in LIST_FILTERS else None
        query = Departure.all()
        if status is not None:
            query = query.filter(status=status)
        view = ListView.parse(
            "/console/departures",
            params,
            sortable=LIST_SORTABLE,
            default_sort="-created_at",
            filters={"status": status.value if status else ""},
        )
        listed = await paginate(query, view.sort, cursor=view.cursor, limit=view.size)
        total = await query.count()
        ids = [d.id for d in listed.items]
        steps: dict[uuid.UUID, list[DepartureStep]] = {i: [] for i in ids}
        for step in await DepartureStep.filter(departure_id__in=ids).order_by("position"):
            steps[step.departure_id].append(step)
        names = await names_of(
            [d.member_id for d in listed.items] + [d.successor_id for d in listed.items]
        )
        counts = dict.fromkeys(LIST_FILTERS, 0)
        for row in await db.fetch("SELECT status, count(*) AS n FROM departures GROUP BY status"):
            counts[row["status"]] = int(row["n"])
        return ctx.render(
            "console/departures.html",
            departures=[(d, current_step(steps[d.id]), steps[d.id]) for d in listed.items],
            names=names,
            status=status.value if status else "",
            filters=LIST_FILTERS,
            counts=counts,
            step_titles=STEP_TITLES,
            **view.context(next_cursor=listed.next_cursor, total=total, shown=len(listed.items)),
            number=number,
        )

    @page(web, permission=Permission.DEPARTURES_READ)
    async def start_form(ctx: PageContext) -> Response:
        """The start form (to preview and start it takes departures:write); a member
        already leaving has their departure page instead."""
        member = await get_member(_path_id(ctx, "member"))
        running = await service.current_departure(member.id)
        if running is not None:
            return ctx.redirect(f"/console/departures/{running.id}")
        policy = await service.get_policy()
        today = days.today(await organisations.time_zone())
        last_day = today + timedelta(days=policy.export_window_days)
        return await _start_page(ctx, member, StartForm(last_day=last_day.isoformat()))

    @page(web, permission=Permission.DEPARTURES_WRITE)
    async def start_preview(ctx: PageContext) -> Response:
        """The plan the form would start, computed by the same planner as the run: a
        fragment (form and preview) for htmx, else the whole page. Changes nothing."""
        member = await get_member(_path_id(ctx, "member"))
        form = StartForm.read(ctx.form)
        partial = ctx.is_htmx
        # htmx swaps only 2xx answers: the refusal must come as 200 to show in place.
        refused = 200 if partial else 422
        parsed = form.parsed()
        if parsed is None:
            return await _start_page(ctx, member, form, status=refused, partial=partial)
        last_day, successor_id = parsed
        try:
            service.check_last_day(last_day, await organisations.time_zone())
            service.check_reason(form.reason)
            plan = await service.preview_departure(
                member.id, last_day=last_day, successor_id=successor_id
            )
        except InvalidInputError as error:
            form.refused(error)
            return await _start_page(ctx, member, form, status=refused, partial=partial)
        return await _start_page(ctx, member, form, plan=plan, partial=partial)

    @page(web, permission=Permission.DEPARTURES_WRITE)
    async def start(ctx: PageContext) -> Response:
        """Start the previewed departure; a refusal comes back on the form, beside the
        field it concerns, with nothing written."""
        member = await get_member(_path_id(ctx, "member"))
        form = StartForm.read(ctx.form)
        parsed = form.parsed()
        if parsed is None:
            return await _start_page(ctx, member, form, status=422)
        last_day, successor_id = parsed
        try:
            departure = await service.start_departure(
                member.id,
                last_day=last_day,
                successor_id=successor_id,
                reason=form.reason,
                actor=ctx.actor,
            )
        except IllegalTransitionError as error:
            form.refusal = explained(error)
            return await _start_page(ctx, member, form, status=409)
        except InvalidInputError as error:
            form.refused(error)
            return await _start_page(ctx, member, form, status=422)
        return ctx.redirect(
            f"/console/departures/{departure.id}",
            f"Departure of {member.name} started: their last day is {last_day.isoformat()}.",
        )

    async def _detail_context(departure: Departure) -> dict[str, Any]:
        steps = await _steps(departure)
        return {
            "departure": departure,
            "steps": steps,
            "running": departure.status == DepartureStatus.RUNNING,
            "stage": stage_of(departure, steps),
            "number": number,
        }

    async def _page_context(departure: Departure) -> dict[str, Any]:
        """What the departure page shows, for the page and for the parts of it that its
        polling refreshes when a step has finished."""
        names = await names_of([departure.member_id, departure.successor_id])
        products = await product_names()
        events = list(
            reversed(
                await audit.list_events(
                    audit.AuditFilter(target_type="departure", target_id=str(departure.id)),
                    before_id=None,
                    limit=200,
                )
            )
        )
        prefix = f"departure:{departure.id}:"
        deliveries = await WebhookDelivery.filter(
            idempotency_key__startswith=prefix, status=DeliveryStatus.DEAD
        ).order_by("created_at")
        dead_jobs = await Job.filter(key__startswith=prefix, status=JobStatus.DEAD).order_by(
            "created_at"
        )
        totals = departure.plan_totals or {}
        return {
            **await _detail_context(departure),
            "member_name": names.get(departure.member_id, "a member who is gone"),
            "successor_name": (
                names.get(departure.successor_id) if departure.successor_id else None
            ),
            "successor_why": SUCCESSOR_WHY.get(totals.get("successor_source", ""), ""),
            "summary": PlanSummary.of(totals, products),
            "products": products,
            "events": events,
            "started_by": next(
                (e["actor_display"] for e in events if e["action"] == "departure.started"),
                departure.started_by,
            ),
            "deliveries": deliveries,
            "dead_jobs": dead_jobs,
            "size": size,
            "reason_max": service.REASON_MAX_LENGTH,
        }

    @page(web, permission=Permission.DEPARTURES_READ)
    async def departure_page(ctx: PageContext) -> Response:
        departure = await service.get_departure(_path_id(ctx, "departure"))
        return ctx.render("console/departures_detail.html", **await _page_context(departure))

    @page(web, permission=Permission.DEPARTURES_READ)
    async def departure_progress(ctx: PageContext) -> Response:
        """The steps' progress alone, polled by the departure page every 2 s while the
        departure runs (the fragment stops asking once it has finished).

        When a step has finished (or the departure has) since the stage the page shows
        (``seen``), the answer also carries, out of band, the parts of the page that change
        with it: the status badge, the status line (the page's live region, so only this
        change is announced), the failures and the log. Nothing else is redrawn: the page
        was reloaded, which lost the focus and any reason being typed."""
        departure = await service.get_departure(_path_id(ctx, "departure"))
        context = await _detail_context(departure)
        seen = ctx.request.query_params.get("seen")
        if ctx.is_htmx and seen is not None and seen != context["stage"]:
            return ctx.render("console/departures_update.html", **await _page_context(departure))
        return ctx.render("console/departures_progress.html", **context)

    @page(web, permission=Permission.DEPARTURES_WRITE)
    async def reinstate(ctx: PageContext) -> Response:
        departure = await service.get_departure(_path_id(ctx, "departure"))
        back = f"/console/departures/{departure.id}"
        reason = (ctx.form.get("reason") or "").strip()
        service.check_reason(reason)  # refused beside the field before anything is asked
        if not ctx.confirmed and departure.status == DepartureStatus.RUNNING:
            member = await get_member(departure.member_id)
            left = await DepartureStep.filter(
                departure_id=departure.id, status__in=[StepStatus.PENDING, StepStatus.RUNNING]
            ).count()
            items = (
                "Items transferred so far come back to them; the products are told of each."
                if PolicyView.from_json(departure.policy).reinstatement_returns_items
                else "Items transferred so far stay with the successor."
            )
            return ctx.confirm(
                title=f"Reinstate {member.name} and cancel the departure?",
                consequences=[
                    f"{member.name} becomes active again: they can sign in, and their product "
                    "accounts are assigned again.",
                    f"The {counted(left, 'step')} not yet done "
                    f"{'is' if left == 1 else 'are'} cancelled.",
                    items,
                    f"Reason recorded: {reason}" if reason else "No reason is recorded.",
                ],
                button="Reinstate and cancel the departure",
                back=back,
            )
        try:
            await service.reinstate_departure(departure.id, reason=reason, actor=ctx.actor)
        except ConflictError as error:
            # Refused before anything was written (the departure is not running). A refused
            # reason (InvalidInputError) goes back to the page beside the field, as typed.
            return ctx.redirect(back, f"Not done: {error.message}.")
        member = await get_member(departure.member_id)
        return ctx.redirect(back, f"{member.name} is reinstated; the departure is cancelled.")

    @page(web, permission=Permission.DEPARTURES_WRITE)
    async def retry(ctx: PageContext) -> Response:
        """Retry a dead job or a dead webhook delivery of this departure (found by the
        keys the departure gives them, so an id of anything else answers "no such")."""
        departure = await service.get_departure(_path_id(ctx, "departure"))
        back = f"/console/departures/{departure.id}"
        try:
            message = await _retry(departure, ctx)
        except (NotFoundError, ConflictError, InvalidInputError) as error:
            return ctx.redirect(back, f"Not done: {error.message}.")
        return ctx.redirect(back, message)

    async def _retry(departure: Departure, ctx: PageContext) -> str:
        prefix = f"departure:{departure.id}:"
        job_id, delivery_id = parse_uuid(ctx.form.get("job")), parse_uuid(ctx.form.get("delivery"))
        for field, parsed in (("job", job_id), ("delivery", delivery_id)):
            if ctx.form.get(field) and parsed is None:  # a job that is not an id is no job
                raise InvalidInputError(
                    f"the {field} to retry is not an id of one",
                    fields=[FieldProblem(field, "is not an id")],
                )
        if job_id is not None:
            job = await Job.filter(id=job_id, key__startswith=prefix).first()
            if job is None:
                raise NotFoundError("this departure has no such job")
            await jobs.retry_job(job.id, actor=ctx.actor)
            return f"Queued the {job.kind} job again."
        if delivery_id is not None:
            delivery = await WebhookDelivery.filter(
                id=delivery_id, idempotency_key__startswith=prefix
            ).first()
            if delivery is None:
                raise NotFoundError("this departure has no such webhook delivery")
            await webhooks.retry_delivery(delivery.id, actor=ctx.actor)
            product = await Product.get(id=delivery.product_id)
            return f"Sending {delivery.topic} to {product.name} again."
        raise InvalidInputError("choose a job or a delivery to retry")

    async def _policy_page(ctx: PageContext, form: PolicyForm, status: int = 200) -> Response:
        chosen = parse_uuid(form.fallback)
        return ctx.render(
            "console/departures_policy.html",
            status,
            form=form,
            # Found with the typeahead picker; only the one chosen is read here.
            fallback_member=await Member.filter(id=chosen).first() if chosen else None,
            products=await Product.all().order_by("name"),
            actions=POLICY_ACTION_LABELS,
            personal=PERSONAL_LABELS,
            max_retention=service.MAX_RETENTION_DAYS,
            max_export=service.MAX_EXPORT_WINDOW_DAYS,
        )

    @page(web, permission=Permission.DEPARTURES_READ)
    async def policy_page(ctx: PageContext) -> Response:
        return await _policy_page(ctx, PolicyForm.of(await service.get_policy()))

    @page(web, permission=Permission.DEPARTURES_WRITE)
    async def policy_save(ctx: PageContext) -> Response:
        form = PolicyForm.read(ctx.form)
        view = form.view()
        if view is None:
            return await _policy_page(ctx, form, 422)
        before = await service.get_policy()
        try:
            await service.set_policy(view, actor=ctx.actor)
        except InvalidInputError as error:
            form.refused(error.fields)
            if not error.fields:
                form.errors["form"] = explained(error)
            return await _policy_page(ctx, form, 422)
        message = "Saved the departure policy." if before != view else "Nothing changed."
        return ctx.redirect("/console/departures/policy", message)

    return [
        Route("/console/departures", departures_list, methods=["GET"]),
        Route("/console/departures/policy", policy_page, methods=["GET"]),
        Route("/console/departures/policy", policy_save, methods=["POST"]),
        Route("/console/departures/{id}", departure_page, methods=["GET"]),
        Route("/console/departures/{id}/progress", departure_progress, methods=["GET"]),
        Route("/console/departures/{id}/reinstate", reinstate, methods=["POST"]),
        Route("/console/departures/{id}/retry", retry, methods=["POST"]),
        Route("/console/members/{id}/departure", start_form, methods=["GET"]),
        Route("/console/members/{id}/departure", start, methods=["POST"]),
        Route("/console/members/{id}/departure/preview", start_preview, methods=["POST"]),
    ]
