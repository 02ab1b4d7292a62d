"""Privacy requests in the caller's tenant transaction: receiving them, the queue's work
(assignment, notes, extension, answer) and the organisation's request policy.

Each write records the timeline entry the member (or, for internal entries, only the
organisation) sees, an audit event, and the emails it causes, in one transaction. The
fulfilment of a request (export, erasure) is in ``tenants.requests.fulfilment``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from tortoise.queryset import QuerySet

from tenants import db
from tenants import text as text_policy
from tenants.actors import Actor
from tenants.audit import service as audit
from tenants.errors import FieldProblem, InvalidInputError, NotFoundError
from tenants.jobs import service as jobs
from tenants.mail import service as mail
from tenants.members.lifecycle import MemberStatus
from tenants.members.models import Member
from tenants.members.roles import STAFF
from tenants.members.service import get_member
from tenants.models_base import get_by_id, get_referenced
from tenants.pagination import Page, Sort, paginate
from tenants.permissions import ROLE_PERMISSIONS, Permission, Role, permissions_of
from tenants.products.models import Product
from tenants.requests import rules
from tenants.requests.models import (
    PrivacyRequest,
    PrivacyRequestEvent,
    PrivacyRequestPolicy,
    RequestKind,
    RequestSource,
    RequestStatus,
)

MAX_MESSAGE = 5000
MAX_NOTE = 5000
SORTABLE = ("due_on", "received_at", "created_at")
REMINDER_JOB = "privacy_request.reminder"
#: Members may not flood the queue: open requests one member may have at once.
MAX_OPEN_PER_MEMBER = 20
SOURCE_TEXT = {
    RequestSource.ACCOUNT: "Sent from the account page",
    RequestSource.PRODUCT: "Forwarded by a product",
    RequestSource.API: "Recorded by the privacy team",
}


def snapshot(request: PrivacyRequest) -> dict[str, Any]:
    return {
        "member_id": request.member_id,
        "kind": request.kind,
        "source": request.source,
        "product_id": request.product_id,
        "status": request.status,
        "assignee_id": request.assignee_id,
        "due_on": request.due_on.isoformat(),
        "extension_months": request.extension_months,
    }


def account_path(request_id: uuid.UUID) -> str:
    """The member's status page of a request."""
    return f"/account/privacy-requests/{request_id}"


def console_path(request_id: uuid.UUID) -> str:
    return f"/console/privacy-requests/{request_id}"


async def get_request(request_id: uuid.UUID, *, for_update: bool = False) -> PrivacyRequest:
    return await get_by_id(PrivacyRequest, request_id, "privacy request", for_update=for_update)


async def get_policy() -> rules.RequestPolicyView:
    row = await PrivacyRequestPolicy.first()
    if row is None:
        return rules.DEFAULT_POLICY
    return rules.RequestPolicyView(
        reminder_days=row.reminder_days,
        export_link_days=row.export_link_days,
        export_collect_hours=row.export_collect_hours,
    )


def _check_policy(policy: rules.RequestPolicyView) -> None:
    problems = []
    for name, (low, high) in (
        ("reminder_days", rules.REMINDER_DAYS_RANGE),
        ("export_link_days", rules.EXPORT_LINK_DAYS_RANGE),
        ("export_collect_hours", rules.EXPORT_COLLECT_HOURS_RANGE),
    ):
        if not low <= getattr(policy, name) <= high:
            problems.append(FieldProblem(name, f"expected a number from {low} to {high}"))
    if problems:
        raise InvalidInputError("the privacy request policy is out of range", fields=problems)


async def set_policy(policy: rules.RequestPolicyView, *, actor: Actor) -> rules.RequestPolicyView:
    """Replace the organisation's request policy. Reminders already queued keep their
    time; requests received or extended from now on follow the new one."""
    _check_policy(policy)
    before = await get_policy()
    old, new = audit.changed_fields(vars_of(before), vars_of(policy))
    if not new:
        return before
    row = await PrivacyRequestPolicy.all().select_for_update().first()
    if row is None:
        await PrivacyRequestPolicy.create(
            tenant_id=db.current_org(),
            reminder_days=policy.reminder_days,
            export_link_days=policy.export_link_days,
            export_collect_hours=policy.export_collect_hours,
        )
    else:
        await PrivacyRequestPolicy.filter(id=row.id).update(
            **vars_of(policy), updated_at=datetime.now(UTC)
        )
    await audit.record(
        "privacy_request_policy.changed", "organisation", db.current_org(), actor=actor,
        before=old, after=new,
    )
    return policy


def vars_of(policy: rules.RequestPolicyView) -> dict[str, int]:
    return {
        "reminder_days": policy.reminder_days,
        "export_link_days": policy.export_link_days,
        "export_collect_hours": policy.export_collect_hours,
    }


async def add_event(
    request: PrivacyRequest,
    kind: str,
    *,
    actor: Actor,
    body: str = "",
    internal: bool = False,
    data: dict[str, Any] | None = None,
) -> PrivacyRequestEvent:
    """One timeline entry; ``internal`` ones are never shown to the member."""
    return await PrivacyRequestEvent.create(
        tenant_id=db.current_org(),
        request_id=request.id,
        kind=kind,
        internal=internal,
        body=body,
        data=audit.jsonable(data or {}),
        actor=actor.ref,
        actor_display=actor.display,
    )


async def timeline(request_id: uuid.UUID, *, for_member: bool) -> list[PrivacyRequestEvent]:
    """The request's entries, oldest first; for the member without internal ones."""
    query = PrivacyRequestEvent.filter(request_id=request_id)
    if for_member:
        query = query.filter(internal=False)
    return await query.order_by("created_at", "id")


async def officer_emails() -> list[str]:
    """Addresses of the organisation's active privacy officers; of every active member
    whose role lets them work on privacy requests (owners, admins) when it has none.

    That a colleague objects or asks for erasure is sensitive: told to every admin, it
    reached the requester's own manager. The officers are who the work is for; the others
    are told only when there is nobody else, so that no request waits unseen."""
    roles = [r.value for r, perms in ROLE_PERMISSIONS.items()
             if Permission.PRIVACY_REQUESTS_WRITE in perms]
    rows = await db.fetch(
        "SELECT email, roles ? $3 AS officer FROM members "  # noqa: S608 (STAFF is a constant)
        f"WHERE tenant_id = $1 AND status = 'active' AND {STAFF} AND roles ?| $2::text[] "
        "ORDER BY email",
        db.current_org(), roles, Role.PRIVACY_OFFICER.value,
    )
    officers = [r["email"] for r in rows if r["officer"]]
    return officers or [r["email"] for r in rows]


def can_handle(member: Member) -> bool:
    """Whether ``member`` may be assigned privacy requests."""
    return (
        member.status == MemberStatus.ACTIVE
        and Permission.PRIVACY_REQUESTS_WRITE in permissions_of(member.roles)
    )


async def schedule_reminder(request: PrivacyRequest, now: datetime | None = None) -> None:
    """Queue the reminder for the request's current due day (a new due day after an
    extension gets its own; the old one finds the request moved on and does nothing)."""
    policy = await get_policy()
    moment = rules.reminder_at(request.due_on, policy.reminder_days, now or datetime.now(UTC))
    if moment is None:
        return
    await jobs.enqueue(
        REMINDER_JOB,
        {"request_id": str(request.id), "due_on": request.due_on.isoformat()},
        key=f"privacy_request:{request.id}:reminder:{request.due_on.isoformat()}",
        run_at=moment,
    )


def _mail_context(request: PrivacyRequest, member: Member) -> dict[str, Any]:
    return {
        "member_name": member.name,
        "kind_label": rules.KIND_LABELS[request.kind],
        "due_on": request.due_on.isoformat(),
    }


async def submit_request(
    member_id: uuid.UUID,
    kind: RequestKind,
    message: str,
    *,
    actor: Actor,
    source: RequestSource,
    product_id: uuid.UUID | None = None,
    product_reference: str | None = None,
    received_on: date | None = None,
    now: datetime | None = None,
) -> tuple[PrivacyRequest, bool]:
    """Receive a request into the organisation's queue; (request, created).

    From the account page (no product) or forwarded by a product, whose own reference
    makes forwarding idempotent: the same reference again returns the first request.
    The deadline runs from the day of receipt: ``received_on`` for a request that came by
    post or email and is entered later (``rules.check_received_on``: not in the future,
    at most a year ago; not for a member's own request from the account page), else
    ``now``. The member gets an
    acknowledgement, the privacy officers a notice, and the reminder is queued.
    InvalidInputError for an empty or overlong message, or a member who cannot ask.
    """
    text = message.strip()
    received = now or datetime.now(UTC)
    problems = []
    if received_on is not None and source is RequestSource.ACCOUNT:
        problems.append(FieldProblem("received_on", "not for a request from the account page"))
    elif received_on is not None:
        try:
            rules.check_received_on(received_on, received.astimezone(UTC).date())
        except InvalidInputError as refused:
            problems += refused.fields
    if text_policy.is_blank(text):
        problems.append(FieldProblem("message", "say what you are asking for"))
    elif len(text) > MAX_MESSAGE:
        problems.append(FieldProblem("message", f"at most {MAX_MESSAGE} characters"))
    if problems:
        raise InvalidInputError("the request cannot be sent", fields=problems)
    member = await get_referenced(Member, member_id, "member", field="member_id")
    if member.status == MemberStatus.PURGED:
        raise InvalidInputError(
            "the member's data is purged",
            fields=[FieldProblem("member_id", "the member is purged")],
        )
    product = None
    if product_id is not None:
        product = await get_referenced(Product, product_id, "product", field="product_id")
        if product_reference is not None:
            earlier = await PrivacyRequest.filter(
                product_id=product.id, product_reference=product_reference
            ).first()
            if earlier is not None:
                return earlier, False
    open_count = await PrivacyRequest.filter(
        member_id=member.id, status__in=list(rules.OPEN)
    ).count()
    if open_count >= MAX_OPEN_PER_MEMBER:
        raise InvalidInputError(
            f"{member.name} has {open_count} open requests; wait for answers first",
            fields=[FieldProblem("member_id", "too many open requests")],
        )
    entered = received
    if received_on is not None and received_on != received.astimezone(UTC).date():
        # The start of the UTC day of receipt: the hour of a letter's arrival is not known.
        received = datetime.combine(received_on, time(), UTC)
    request = await PrivacyRequest.create(
        tenant_id=db.current_org(),
        member_id=member.id,
        kind=kind,
        message=text,
        source=RequestSource.PRODUCT if product else source,
        product_id=product.id if product else None,
        product_reference=product_reference if product else None,
        received_at=received,
        due_on=rules.due_date(received.date()),
    )
    await add_event(
        request, "received", actor=actor,
        body=f"Forwarded by {product.name}" if product else SOURCE_TEXT[source],
        data={"due_on": request.due_on,
              **({"received_on": received_on} if received_on is not None else {})},
    )
    await audit.record(
        "privacy_request.received", "privacy_request", request.id, actor=actor,
        after={**snapshot(request), "received_on": received.date().isoformat()},
    )
    context = _mail_context(request, member)
    await mail.send_later(
        "request_received", to=[member.email],
        context={**context, "link_path": account_path(request.id)},
        key=f"privacy_request:{request.id}:received",
    )
    await mail.send_later(
        "request_queued", to=await officer_emails(),
        context={**context, "kind_label": rules.STAFF_KIND_LABELS[request.kind],
                 "link_path": console_path(request.id)},
        key=f"privacy_request:{request.id}:queued",
    )
    await schedule_reminder(request, entered)
    return request, True


@dataclass(frozen=True, slots=True)
class RequestFilter:
    status: RequestStatus | None = None
    kind: RequestKind | None = None
    assignee_id: uuid.UUID | None = None
    member_id: uuid.UUID | None = None
    #: Only open requests whose due day has passed.
    overdue: bool = False
    #: Only open (received or in progress) requests.
    open: bool = False


def filtered(filters: RequestFilter, today: date | None = None) -> QuerySet[PrivacyRequest]:
    query = PrivacyRequest.all()
    for field in ("status", "kind", "assignee_id", "member_id"):
        value = getattr(filters, field)
        if value is not None:
            query = query.filter(**{field: value})
    if filters.open or filters.overdue:
        query = query.filter(status__in=list(rules.OPEN))
    if filters.overdue:
        query = query.filter(due_on__lt=today or datetime.now(UTC).date())
    return query


async def list_requests(
    filters: RequestFilter, sort: Sort, *, cursor: str | None, limit: int
) -> Page[PrivacyRequest]:
    return await paginate(filtered(filters), sort, cursor=cursor, limit=limit)


async def member_requests(member_id: uuid.UUID) -> list[PrivacyRequest]:
    """A member's own requests, newest first."""
    return await PrivacyRequest.filter(member_id=member_id).order_by("-received_at")


async def member_request(member_id: uuid.UUID, request_id: uuid.UUID) -> PrivacyRequest:
    """The member's own request; NotFoundError for anyone else's, exactly as for none."""
    request = await get_request(request_id)
    if request.member_id != member_id:
        raise NotFoundError(
            f"there is no privacy request with id {request_id}",
            extra={"resource": "privacy request"},
        )
    return request


async def _open_request(request_id: uuid.UUID) -> PrivacyRequest:
    request = await get_request(request_id, for_update=True)
    if not rules.is_open(request.status):
        rules.check_transition(request.status, RequestStatus.IN_PROGRESS)
    return request


async def _set_status(request: PrivacyRequest, status: RequestStatus, *, actor: Actor) -> None:
    rules.check_transition(request.status, status)
    request.status = status
    if not rules.is_open(status):
        request.closed_at = datetime.now(UTC)
        request.closed_by = actor.display


async def begin_work(request: PrivacyRequest, *, actor: Actor) -> bool:
    """A received request is in progress once someone works on it (its first assignment,
    an export started, an erasure run), and its timeline says so. Whether it changed
    (the caller saves ``status``)."""
    if request.status != RequestStatus.RECEIVED:
        return False
    await _set_status(request, RequestStatus.IN_PROGRESS, actor=actor)
    await add_event(request, "status", actor=actor, body="In progress",
                    data={"status": RequestStatus.IN_PROGRESS})
    return True


async def assign_request(
    request_id: uuid.UUID, assignee_id: uuid.UUID | None, *, actor: Actor
) -> PrivacyRequest:
    """Give the request to a privacy officer or admin (None: back to the queue). A
    received request is in progress from its first assignment. InvalidInputError naming
    ``assignee_id`` for someone who may not handle privacy requests."""
    request = await _open_request(request_id)
    before = snapshot(request)
    assignee = None
    if assignee_id is not None:
        assignee = await get_referenced(Member, assignee_id, "member", field="assignee_id")
        if not can_handle(assignee):
            raise InvalidInputError(
                f"{assignee.name} cannot handle privacy requests",
                fields=[FieldProblem("assignee_id", "needs an active member with a privacy "
                                     "officer, admin or owner role")],
            )
    if request.assignee_id == assignee_id:
        return request
    request.assignee_id = assignee_id
    fields = ["assignee_id", "updated_at"]
    if assignee is not None and await begin_work(request, actor=actor):
        fields.append("status")
    await request.save(update_fields=fields)
    await add_event(
        request, "assigned", actor=actor, internal=True,
        body=f"Assigned to {assignee.name}" if assignee else "Back to the queue",
        data={"assignee_id": assignee_id},
    )
    old, new = audit.changed_fields(before, snapshot(request))
    await audit.record("privacy_request.assigned", "privacy_request", request.id, actor=actor,
                       before=old, after=new)
    return request


async def add_note(request_id: uuid.UUID, text: str, *, actor: Actor) -> PrivacyRequestEvent:
    """An internal note: for the organisation's eyes only, never shown to the member."""
    note = text.strip()
    if not note or len(note) > MAX_NOTE:
        raise InvalidInputError(
            "the note cannot be added",
            fields=[FieldProblem("text", f"write 1 to {MAX_NOTE} characters")],
        )
    request = await get_request(request_id, for_update=True)
    event = await add_event(request, "note", actor=actor, internal=True, body=note)
    await audit.record("privacy_request.noted", "privacy_request", request.id, actor=actor,
                       after={"note": note})
    return event


async def extend_deadline(
    request_id: uuid.UUID, months: int, reason: str, *, actor: Actor, today: date | None = None
) -> PrivacyRequest:
    """Extend the deadline by ``months`` (at most two in total, counted from the day of
    receipt); the member is told the new date and the reason. Refused (InvalidInputError
    naming ``months``, nothing written) once the first month after receipt is over:
    ``rules.check_extension``. ``today`` is the UTC day (tests pass one)."""
    request = await _open_request(request_id)
    total = rules.check_extension(
        request.extension_months, months, reason,
        received_on=request.received_at.astimezone(UTC).date(),
        today=today or datetime.now(UTC).date(),
    )
    before = snapshot(request)
    request.extension_months = total
    request.extension_reason = reason.strip()
    request.due_on = rules.due_date(request.received_at.astimezone(UTC).date(), total)
    await request.save(update_fields=["extension_months", "extension_reason", "due_on",
                                      "updated_at"])
    await add_event(request, "extended", actor=actor, body=request.extension_reason,
                    data={"due_on": request.due_on, "months": months})
    old, new = audit.changed_fields(before, snapshot(request))
    await audit.record("privacy_request.extended", "privacy_request", request.id, actor=actor,
                       before=old, after={**new, "reason": request.extension_reason})
    member = await get_member(request.member_id)
    await mail.send_later(
        "request_extended", to=[member.email],
        context={**_mail_context(request, member), "reason": request.extension_reason,
                 "link_path": account_path(request.id)},
        key=f"privacy_request:{request.id}:extended:{total}",
    )
    await schedule_reminder(request)
    return request


def check_closing(status: RequestStatus, answer: str) -> str:
    """The answer a request is closed with, stripped; InvalidInputError naming the field
    when ``status`` does not close a request or the answer is empty or too long (for the
    console to say before it asks to confirm)."""
    if status not in (RequestStatus.ANSWERED, RequestStatus.REJECTED):
        raise InvalidInputError("a request is closed as answered or rejected",
                                fields=[FieldProblem("status", "answered or rejected")])
    text = answer.strip()
    if text_policy.is_blank(text) or len(text) > MAX_MESSAGE:
        raise InvalidInputError(
            "the member is told the answer; write one",
            fields=[FieldProblem("answer", f"write 1 to {MAX_MESSAGE} characters")],
        )
    return text


async def close_request(
    request_id: uuid.UUID, status: RequestStatus, answer: str, *, actor: Actor
) -> PrivacyRequest:
    """Answer or reject the request (``answer`` is what the member reads: the reply, or
    the reason for a rejection). Closed requests stay closed; the member is emailed, unless
    they were erased."""
    text = check_closing(status, answer)
    request = await get_request(request_id, for_update=True)
    before = snapshot(request)
    await _set_status(request, status, actor=actor)
    request.answer = text
    await request.save(update_fields=["status", "answer", "closed_at", "closed_by", "updated_at"])
    await add_event(request, status.value, actor=actor, body=text, data={"status": status})
    old, new = audit.changed_fields(before, snapshot(request))
    await audit.record(f"privacy_request.{status.value}", "privacy_request", request.id,
                       actor=actor, before=old, after={**new, "answer": text})
    member = await get_member(request.member_id)
    if member.status is MemberStatus.PURGED:
        return request  # erased: no address is left to write to (their record says so)
    await mail.send_later(
        "request_answered", to=[member.email],
        context={**_mail_context(request, member), "answer": text,
                 "status_label": rules.STATUS_LABELS[status],
                 "rejected": status is RequestStatus.REJECTED,
                 "link_path": account_path(request.id)},
        key=f"privacy_request:{request.id}:closed",
    )
    return request


async def withdraw_request(request_id: uuid.UUID, *, member_id: uuid.UUID,
                           actor: Actor) -> PrivacyRequest:
    """The member takes their own open request back."""
    await member_request(member_id, request_id)
    request = await get_request(request_id, for_update=True)
    before = snapshot(request)
    await _set_status(request, RequestStatus.WITHDRAWN, actor=actor)
    await request.save(update_fields=["status", "closed_at", "closed_by", "updated_at"])
    await add_event(request, "withdrawn", actor=actor, body="Withdrawn by the member")
    old, new = audit.changed_fields(before, snapshot(request))
    await audit.record("privacy_request.withdrawn", "privacy_request", request.id, actor=actor,
                       before=old, after=new)
    return request
