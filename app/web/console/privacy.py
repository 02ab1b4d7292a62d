"""Privacy requests in the console: the queue with deadline badges and filters, and a
request's page with its timeline and the work on it (assign, notes, extend, answer or
reject, build the export, run the erasure), plus the organisation's request policy.

Handlers parse the form, call one function of ``tenants.requests`` and redirect back with
what happened. The words for kinds, statuses and timeline entries (``TIMELINE_TITLES``)
are shared with the member's pages, so both sides describe a request the same way.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.web.console.tables import ListView
from app.web.numbers import whole_number
from app.web.pages import PageContext, Web, page
from tenants import db
from tenants.content.models import ContentKind
from tenants.errors import FieldProblem, InvalidInputError, NotFoundError
from tenants.members import lifecycle
from tenants.members.lifecycle import MemberStatus
from tenants.members.models import Member
from tenants.members.roles import STAFF
from tenants.pagination import paginate
from tenants.permissions import Permission, Role, permissions_of
from tenants.products.models import Product, ProductAccount
from tenants.requests import fulfilment, rules, service
from tenants.requests.models import (
    ExportStatus,
    PrivacyExportPart,
    PrivacyRequest,
    RequestKind,
    RequestStatus,
)
from tenants.text import counted

#: How timeline entries read, for the organisation and the member alike.
TIMELINE_TITLES: dict[str, str] = {
    "received": "Request received",
    "status": "Work started",
    "assigned": "Assigned",
    "note": "Internal note",
    "extended": "Deadline extended",
    "export_requested": "Collecting the data",
    "export_part": "A product sent its data",
    "export_ready": "Data ready to download",
    "erased": "Data erased",
    "answered": "Answered",
    "rejected": "Rejected",
    "withdrawn": "Withdrawn",
    "reminder": "Reminder sent",
}
#: The dot of each entry (classes of ``ol.timeline``).
TIMELINE_TONES: dict[str, str] = {
    "answered": "step-done",
    "export_ready": "step-done",
    "erased": "step-done",
    "rejected": "step-failed",
    "withdrawn": "step-skipped",
    "status": "step-running",
    "export_requested": "step-running",
    "extended": "step-running",
}


def badge_of(request: PrivacyRequest) -> rules.DeadlineBadge:
    """How long is left; once closed, whether it was closed in time."""
    if request.closed_at is not None and not rules.is_open(request.status):
        return rules.closed_badge(
            request.due_on, request.closed_at.astimezone(UTC).date(), request.status
        )
    return rules.deadline_badge(request.due_on, datetime.now(UTC).date(), request.status)


def template_helpers() -> dict[str, Any]:
    """What the queue, request and account templates use to show requests."""
    return {
        "kind_labels": rules.KIND_LABELS,
        "staff_kind_labels": rules.STAFF_KIND_LABELS,
        "status_labels": rules.STATUS_LABELS,
        "timeline_titles": TIMELINE_TITLES,
        "timeline_tones": TIMELINE_TONES,
        "deadline_badge": badge_of,
        "can_export": rules.can_export,
        "can_erase": rules.can_erase,
        "is_open": rules.is_open,
    }


def _uuid(text: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(text) if text else None
    except ValueError:
        return None


def _request_id(ctx: PageContext) -> uuid.UUID:
    found = _uuid(ctx.request.path_params["id"])
    if found is None:
        raise NotFoundError("there is no such privacy request")
    return found


def _months(text: str | None) -> int:
    if text not in {"1", "2"}:
        raise InvalidInputError(
            "choose one or two months", fields=[FieldProblem("months", "1 or 2")]
        )
    return int(text)


async def names_of(ids: set[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    wanted = [i for i in ids if i is not None]
    return {m.id: m.name for m in await Member.filter(id__in=wanted).only("id", "name")}


async def handlers_choice() -> list[Member]:
    """Members a request may be assigned to (active, with a privacy-handling role): the
    roles are matched in SQL, so the page never loads every active member."""
    roles = [
        r.value for r in Role if Permission.PRIVACY_REQUESTS_WRITE in permissions_of([r.value])
    ]
    rows = await db.fetch(
        "SELECT id FROM members WHERE tenant_id = $1 AND status = 'active' "  # noqa: S608 (STAFF is a constant)
        f"AND {STAFF} AND roles ?| $2::text[]",
        db.current_org(),
        roles,
    )
    members = await Member.filter(id__in=[r["id"] for r in rows]).order_by("name") if rows else []
    return [m for m in members if service.can_handle(m)]


FILTERS = ("open", "overdue", "mine", "unassigned", "closed")
QUEUE_SORTABLE = ("due_on", "received_at", "status")


async def _export_ready(request_id: uuid.UUID) -> bool:
    export = await fulfilment.export_of(request_id)
    return export is not None and export.status is ExportStatus.READY


def closing_consequences(
    request: PrivacyRequest,
    status: RequestStatus,
    *,
    exported: bool = False,
    member_erased: bool = False,
) -> list[str]:
    """What closing ``request`` as ``status`` does, for its confirmation page (``exported``:
    an export of the member's data is ready; ``member_erased``: the member is erased, so
    nothing reaches them)."""
    said = [
        "The request is closed for good: it cannot be reopened, extended or answered again.",
        "The member is erased: your text is kept on the request's record and reaches no one"
        " (no address is left). When the erasure ran they were emailed what was erased and"
        " what is kept, and why."
        if member_erased
        else "The member is emailed at once and reads your text on their account page"
        + (" as the reason for the rejection." if status is RequestStatus.REJECTED else "."),
    ]
    if (
        status is RequestStatus.ANSWERED
        and rules.can_erase(request.kind)
        and request.erasure_evidence is None
    ):
        said.insert(
            0,
            "No erasure was run for this erasure request: nothing of the member's has been"
            " erased. Run the erasure first if that is what you are telling them.",
        )
    if status is RequestStatus.ANSWERED and request.kind in rules.EXPORT_KINDS and not exported:
        said.insert(
            0,
            "No export of the member's data is ready for this request: they get no copy of"
            " their data with this answer. Build the export first if they should.",
        )
    return said


async def _erased(member_id: uuid.UUID) -> bool:
    member = await Member.filter(id=member_id).only("id", "status").first()
    return member is None or member.status is MemberStatus.PURGED


async def erasure_consequences(
    member: Member, kinds: list[ContentKind], *, request_id: uuid.UUID | None = None
) -> list[str]:
    """What running an erasure does, in counts, for its confirmation page; the member's
    other open requests, which nothing can be delivered for afterwards, are named."""
    rows = await db.fetch(
        "SELECT kind, count(*) AS n FROM content_items WHERE tenant_id = $1 AND member_id = $2 "
        "GROUP BY kind",
        db.current_org(),
        member.id,
    )
    held = {str(r["kind"]): int(r["n"]) for r in rows}
    accounts = await ProductAccount.filter(member_id=member.id).count()
    personal = counted(held.get(ContentKind.PERSONAL.value, 0), "personal item")
    work = held.get(ContentKind.ORGANISATION.value, 0)
    deleted = (
        f"{personal} and {counted(work, 'item')} of work content are deleted in the products"
        if ContentKind.ORGANISATION in kinds
        else f"{personal} are deleted in the products; {counted(work, 'item')} of work "
        "content stay with the organisation"
    )
    others = await PrivacyRequest.filter(member_id=member.id, status__in=list(rules.OPEN)).exclude(
        id=request_id
    )
    unfinished = (
        [
            f"Their other open requests ({', '.join(rules.KIND_LABELS[o.kind] for o in others)})"
            " can no longer be delivered: no export reaches them and they cannot sign in."
            " Answer them first if they should have what they asked for."
        ]
        if others
        else []
    )
    return [
        *unfinished,
        f"{member.name}'s account is erased with the content: their name and address are "
        f"replaced, they can no longer sign in, their sessions end and their "
        f"{counted(accounts, 'product account')} are removed.",
        f"{deleted}. Items under legal hold are kept.",
        "Records the law makes the organisation keep stay. The member is emailed, one last"
        " time, what was erased and what is kept, why and until when.",
        "This cannot be undone.",
    ]


def routes(web: Web) -> list[BaseRoute]:
    @page(web, permission=Permission.PRIVACY_REQUESTS_READ)
    async def queue(ctx: PageContext) -> Response:
        params = ctx.request.query_params
        show = params.get("show") if params.get("show") in FILTERS else "open"
        kind_text = params.get("kind") or ""
        kind = RequestKind(kind_text) if kind_text in {k.value for k in RequestKind} else None
        filters = service.RequestFilter(
            kind=kind,
            open=show in ("open", "mine", "unassigned"),
            overdue=show == "overdue",
            assignee_id=ctx.active.member.id if show == "mine" else None,
        )
        query = service.filtered(filters)
        if show == "unassigned":
            query = query.filter(assignee_id=None)
        if show == "closed":
            query = query.filter(status__not_in=list(rules.OPEN))
        view = ListView.parse(
            "/console/privacy-requests",
            params,
            sortable=QUEUE_SORTABLE,
            default_sort="-received_at" if show == "closed" else "due_on",
            filters={"show": show or "", "kind": kind_text if kind else ""},
        )
        page_ = await paginate(query, view.sort, cursor=view.cursor, limit=view.size)
        total = await query.count()
        counts = {
            "open": await service.filtered(service.RequestFilter(open=True)).count(),
            "overdue": await service.filtered(service.RequestFilter(overdue=True)).count(),
            "mine": await service.filtered(
                service.RequestFilter(open=True, assignee_id=ctx.active.member.id)
            ).count(),
            "unassigned": await service.filtered(service.RequestFilter(open=True))
            .filter(assignee_id=None)
            .count(),
            "closed": await PrivacyRequest.filter(status__not_in=list(rules.OPEN)).count(),
        }
        wanted: set[uuid.UUID | None] = {r.member_id for r in page_.items}
        wanted |= {r.assignee_id for r in page_.items}
        people = await names_of(wanted)
        return ctx.render(
            "console/privacy_requests.html",
            requests=page_.items,
            show=show,
            **view.context(next_cursor=page_.next_cursor, total=total, shown=len(page_.items)),
            kind=kind_text if kind else "",
            kinds=list(RequestKind),
            counts=counts,
            names=people,
            policy=await service.get_policy(),
            **template_helpers(),
        )

    @page(web, permission=Permission.PRIVACY_REQUESTS_READ)
    async def detail(ctx: PageContext) -> Response:
        request = await service.get_request(_request_id(ctx))
        events = await service.timeline(request.id, for_member=False)
        export = await fulfilment.export_of(request.id)
        parts: list[PrivacyExportPart] = []
        products: dict[uuid.UUID, Product] = {}
        if export is not None:
            parts = await PrivacyExportPart.filter(export_id=export.id)
            asked = {uuid.UUID(p) for p in export.expected_product_ids} | {
                p.product_id for p in parts
            }
            products = {p.id: p for p in await Product.filter(id__in=list(asked))}
        member = await Member.filter(id=request.member_id).first()
        people = await names_of({request.member_id, request.assignee_id})
        return ctx.render(
            "console/privacy_request.html",
            r=request,
            member=member,
            events=events,
            export=export,
            uploaded={p.product_id for p in parts},
            products=products,
            handlers=await handlers_choice(),
            names=people,
            source=(
                await Product.filter(id=request.product_id).first() if request.product_id else None
            ),
            content_kinds=list(ContentKind),
            max_extension=rules.MAX_EXTENSION_MONTHS,
            # The last day an extension may be told (GDPR art. 12(3)); past it, no form.
            extend_by=rules.extension_deadline(request.received_at.astimezone(UTC).date()),
            today=datetime.now(UTC).date(),
            product_names={str(p.id): p.name for p in await Product.all().only("id", "name")},
            **template_helpers(),
        )

    def back(request_id: uuid.UUID) -> str:
        return f"/console/privacy-requests/{request_id}"

    @page(web, permission=Permission.PRIVACY_REQUESTS_WRITE)
    async def assign(ctx: PageContext) -> Response:
        request_id = _request_id(ctx)
        raw = ctx.form.get("assignee_id") or ""
        assignee = _uuid(raw)
        if raw and assignee is None:
            raise InvalidInputError(
                "choose someone from the list", fields=[FieldProblem("assignee_id", "not a member")]
            )
        request = await service.assign_request(request_id, assignee, actor=ctx.actor)
        who = (
            (await names_of({request.assignee_id})).get(request.assignee_id)
            if (request.assignee_id)
            else None
        )
        return ctx.redirect(
            back(request_id),
            f"Assigned to {who}." if who else "Back in the queue, assigned to nobody.",
        )

    @page(web, permission=Permission.PRIVACY_REQUESTS_WRITE)
    async def note(ctx: PageContext) -> Response:
        request_id = _request_id(ctx)
        await service.add_note(request_id, ctx.form.get("text", ""), actor=ctx.actor)
        return ctx.redirect(back(request_id), "Note added (the member does not see it).")

    @page(web, permission=Permission.PRIVACY_REQUESTS_WRITE)
    async def extend(ctx: PageContext) -> Response:
        request_id = _request_id(ctx)
        request = await service.extend_deadline(
            request_id,
            _months(ctx.form.get("months")),
            ctx.form.get("reason", ""),
            actor=ctx.actor,
        )
        return ctx.redirect(
            back(request_id),
            f"Deadline extended to {request.due_on.isoformat()}; the member was told why.",
        )

    @page(web, permission=Permission.PRIVACY_REQUESTS_WRITE)
    async def close(ctx: PageContext) -> Response:
        request_id = _request_id(ctx)
        outcome = ctx.form.get("outcome")
        status = RequestStatus.REJECTED if outcome == "reject" else RequestStatus.ANSWERED
        if not ctx.confirmed:
            # Closing is for good and the member is emailed at once: asked first, and an
            # erasure request answered with no erasure run says so (an officer answered
            # "your chat history was deleted" while nothing had been).
            service.check_closing(status, ctx.form.get("answer", ""))
            request = await service.get_request(request_id)
            rules.check_transition(request.status, status)
            return ctx.confirm(
                title="Reject this request?"
                if status is RequestStatus.REJECTED
                else "Send this answer and close the request?",
                consequences=closing_consequences(
                    request,
                    status,
                    exported=await _export_ready(request.id),
                    member_erased=await _erased(request.member_id),
                ),
                button="Reject it" if status is RequestStatus.REJECTED else "Send the answer",
                back=back(request_id),
            )
        request = await service.close_request(
            request_id, status, ctx.form.get("answer", ""), actor=ctx.actor
        )
        told = (
            "the member is erased, so no email was sent; the answer is on record"
            if await _erased(request.member_id)
            else "the member was emailed"
        )
        return ctx.redirect(back(request_id), f"{rules.STATUS_LABELS[status]}; {told}.")

    @page(web, permission=Permission.PRIVACY_REQUESTS_WRITE)
    async def export(ctx: PageContext) -> Response:
        request_id = _request_id(ctx)
        started = await fulfilment.start_export(request_id, actor=ctx.actor)
        asked = len(started.expected_product_ids)
        return ctx.redirect(
            back(request_id),
            f"Export started: {counted(asked, 'product')} asked for their part."
            if asked
            else "Export started; it is built in a moment. None of the member's products"
            " takes part (only products with webhooks are asked for their part).",
        )

    @page(web, permission=Permission.PRIVACY_REQUESTS_WRITE)
    async def erase(ctx: PageContext) -> Response:
        request_id = _request_id(ctx)
        kinds = [k for k in ContentKind if ctx.form.get(f"kind_{k.value}") == "on"]
        if not kinds:
            raise InvalidInputError(
                "choose what to erase", fields=[FieldProblem("kinds", "at least one kind")]
            )
        if not ctx.confirmed:
            # An erasure request erases the member, not only their content: a privacy
            # officer who ticked "Personal items" once purged an active colleague
            # without a word about the account.
            request = await service.get_request(request_id)
            member = await Member.get(id=request.member_id)
            lifecycle.check_changeable(member.status)  # erased already: nothing to ask
            return ctx.confirm(
                title=f"Erase {member.name} ({member.email})?",
                consequences=await erasure_consequences(member, kinds, request_id=request_id),
                button="Erase the member",
                back=back(request_id),
            )
        run = await fulfilment.erase_for_request(request_id, kinds, actor=ctx.actor)
        deleted = sum(p["deleted"] for p in run["by_product"].values())
        held = sum(p["held"] for p in run["by_product"].values())
        return ctx.redirect(
            back(request_id), f"Erased {counted(deleted, 'item')}; {held} kept under legal hold."
        )

    @page(web, permission=Permission.PRIVACY_REQUESTS_WRITE)
    async def set_policy(ctx: PageContext) -> Response:
        values = {}
        for name in ("reminder_days", "export_link_days", "export_collect_hours"):
            value = whole_number(ctx.form.get(name))
            if value is None:
                raise InvalidInputError(
                    "enter whole numbers", fields=[FieldProblem(name, "a whole number")]
                )
            values[name] = value
        await service.set_policy(rules.RequestPolicyView(**values), actor=ctx.actor)
        return ctx.redirect("/console/privacy-requests", "Privacy request settings saved.")

    return [
        Route("/console/privacy-requests", queue, methods=["GET"]),
        Route("/console/privacy-requests/settings", set_policy, methods=["POST"]),
        Route("/console/privacy-requests/{id}", detail, methods=["GET"]),
        Route("/console/privacy-requests/{id}/assign", assign, methods=["POST"]),
        Route("/console/privacy-requests/{id}/notes", note, methods=["POST"]),
        Route("/console/privacy-requests/{id}/extend", extend, methods=["POST"]),
        Route("/console/privacy-requests/{id}/close", close, methods=["POST"]),
        Route("/console/privacy-requests/{id}/export", export, methods=["POST"]),
        Route("/console/privacy-requests/{id}/erasure", erase, methods=["POST"]),
    ]
