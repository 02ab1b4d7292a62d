"""Privacy requests: the organisation's queue (list, read, assign, notes, extend, answer,
reject), fulfilment (export, erasure), products forwarding requests and uploading their
part of an export, and the organisation's request policy."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from app.api import ApiRouter, Call
from app.v1.common import FREE_TEXT, NAME, Day, Input, ListQuery, Output, Page, sort_param
from tenants.content.models import ContentKind
from tenants.content.service import acting_product
from tenants.errors import FieldProblem, NotFoundError, PermissionDeniedError
from tenants.pagination import Sort
from tenants.permissions import Permission
from tenants.requests import fulfilment, rules, service
from tenants.requests.models import (
    ExportStatus,
    PrivacyExport,
    PrivacyRequest,
    RequestKind,
    RequestSource,
    RequestStatus,
)

router = ApiRouter("/v1/privacy-requests", "privacy requests")
policy_router = ApiRouter("/v1/privacy-request-policy", "privacy requests")

Message = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=service.MAX_MESSAGE),
    FREE_TEXT,
]
Reference = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NAME
]


class RequestOut(Output):
    id: uuid.UUID
    member_id: uuid.UUID
    kind: RequestKind
    message: str
    source: RequestSource
    product_id: uuid.UUID | None
    product_reference: str | None
    status: RequestStatus
    assignee_id: uuid.UUID | None
    received_at: datetime
    due_on: date = Field(description="The last day (UTC) to answer.")
    days_left: int = Field(description="Until the due day; negative once overdue.")
    overdue: bool
    extension_months: int
    extension_reason: str | None
    answer: str | None
    closed_at: datetime | None
    closed_by: str | None
    erasure_evidence: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, request: PrivacyRequest, today: date | None = None) -> RequestOut:
        today = today or datetime.now(UTC).date()
        left = rules.days_left(request.due_on, today)
        return cls.model_validate(
            {
                **{
                    f: getattr(request, f)
                    for f in cls.model_fields
                    if f not in ("days_left", "overdue")
                },
                "days_left": left,
                "overdue": rules.is_open(request.status) and left < 0,
            }
        )


class EventOut(Output):
    id: uuid.UUID
    kind: str
    internal: bool = Field(description="Never shown to the member (notes, assignment).")
    body: str
    data: dict[str, Any]
    actor: str
    actor_display: str
    created_at: datetime


class ExportOut(Output):
    id: uuid.UUID
    request_id: uuid.UUID
    status: ExportStatus
    expected_product_ids: list[str]
    uploaded_product_ids: list[str]
    collect_until: datetime
    size: int
    sha256: str | None
    files: list[dict[str, Any]]
    ready_at: datetime | None
    expires_at: datetime | None

    @classmethod
    async def of(cls, export: PrivacyExport) -> ExportOut:
        from tenants.requests.models import PrivacyExportPart

        uploaded = await PrivacyExportPart.filter(export_id=export.id).values_list(
            "product_id", flat=True
        )
        return cls.model_validate(
            {
                **{f: getattr(export, f) for f in cls.model_fields if f != "uploaded_product_ids"},
                "uploaded_product_ids": sorted(str(p) for p in uploaded),
            }
        )


class RequestDetail(RequestOut):
    timeline: list[EventOut] = Field(default_factory=list)
    export: ExportOut | None = None


class RequestPage(Page[RequestOut]):
    pass


class RequestQuery(ListQuery):
    status: RequestStatus | None = None
    kind: RequestKind | None = None
    assignee_id: uuid.UUID | None = None
    member_id: uuid.UUID | None = None
    open: bool = Field(False, description="Only received or in-progress requests.")
    overdue: bool = Field(False, description="Only open requests past their due day.")
    sort: str = sort_param("due_on", service.SORTABLE)


class RequestCreate(Input):
    member_id: uuid.UUID
    kind: RequestKind
    message: Message
    product_id: uuid.UUID | None = Field(
        None,
        description="The product that received the request; a product's own client "
        "may leave it out.",
    )
    product_reference: Reference | None = Field(
        None,
        description="The product's own id for the request: sending it again returns "
        "the first request instead of a second one.",
    )
    received_on: Day | None = Field(
        None,
        description="The day (UTC) the request reached the organisation, when it came by "
        "post or email and is entered later: the deadline runs from it. Not in the future, "
        "at most a year ago. Default: today.",
    )


class AssignBody(Input):
    assignee_id: uuid.UUID | None = Field(
        None, description="A privacy officer, admin or owner; null or absent: back to the queue."
    )


class NoteBody(Input):
    text: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=service.MAX_NOTE),
        FREE_TEXT,
    ]


class ExtendBody(Input):
    months: int = Field(
        ge=1,
        le=rules.MAX_EXTENSION_MONTHS,
        description="Added to the deadline; at most two in total.",
    )
    reason: Message = Field(description="Told to the member.")


class AnswerBody(Input):
    answer: Message = Field(description="What the member reads.")


class RejectBody(Input):
    reason: Message = Field(description="Told to the member.")


class ErasureBody(Input):
    kinds: list[ContentKind] = Field(
        default_factory=lambda: [ContentKind.PERSONAL],
        min_length=1,
        max_length=2,
        description="Which of the member's content to erase. Default: personal items only; "
        "work content is the organisation's and kept for its retention.",
    )
    member: bool = Field(
        True,
        description="Also erase the member (profile, sessions, SCIM record, emails, exports, "
        "their fields in the audit trail) as the personal-data map says; false erases "
        "content only.",
    )


class KeptOut(Output):
    table: str
    rows: int
    reason: str
    legal_basis: str
    review_on: date


class MemberErasureOut(Output):
    deleted: dict[str, int]
    pseudonymised: dict[str, int]
    kept: list[KeptOut] = Field(description="What stays, why and until when it is reviewed.")
    audit_key_deleted: bool
    products_told: int


class ErasureOut(Output):
    member_erasure: MemberErasureOut | None = None
    member_id: uuid.UUID
    erased_at: datetime
    kinds: list[str]
    by_product: dict[str, dict[str, int]]
    kept_by_kind: dict[str, int]
    erased_by: str
    audit_event_id: int


class PartBody(Input):
    product_id: uuid.UUID | None = Field(
        None, description="Required for API tokens; a product's own client may leave it out."
    )
    data: dict[str, Any] | list[Any] = Field(description="The product's data about the member.")


class PartOut(Output):
    export_id: uuid.UUID
    product_id: uuid.UUID
    size: int
    uploaded_by: str


@router.get(
    "",
    summary="List privacy requests (the queue)",
    permission=Permission.PRIVACY_REQUESTS_READ,
    query=RequestQuery,
    response=RequestPage,
    errors=(422,),
)
async def list_privacy_requests(call: Call[Input, RequestQuery]) -> RequestPage:
    """Soonest due first by default; ``overdue=true`` shows what is late."""
    q = call.query
    page = await service.list_requests(
        service.RequestFilter(
            status=q.status,
            kind=q.kind,
            assignee_id=q.assignee_id,
            member_id=q.member_id,
            open=q.open,
            overdue=q.overdue,
        ),
        Sort.parse(q.sort, service.SORTABLE),
        cursor=q.cursor,
        limit=q.limit,
    )
    return RequestPage(items=[RequestOut.of(r) for r in page.items], next_cursor=page.next_cursor)


@router.post(
    "",
    summary="Forward a privacy request a product received",
    permission=Permission.PRIVACY_REQUESTS_SUBMIT,
    body=RequestCreate,
    response=RequestOut,
    status=201,
    errors=(403, 422),
)
async def submit_privacy_request(call: Call[RequestCreate, Input]) -> RequestOut:
    """The request joins the organisation's queue with a deadline one month from the day
    of receipt (``received_on``, default today);
    the member is told it was received. A product's own client forwards for its own
    product only. Idempotent on ``product_reference``."""
    b = call.body
    own = await acting_product(call.actor)
    if own is not None and b.product_id is not None and b.product_id != own:
        raise PermissionDeniedError(
            "a product forwards the requests it received itself",
            fields=[FieldProblem("product_id", "not your product")],
        )
    request, _ = await service.submit_request(
        b.member_id,
        b.kind,
        b.message,
        actor=call.actor,
        source=RequestSource.API,
        product_id=own or b.product_id,
        product_reference=b.product_reference,
        received_on=b.received_on,
    )
    return RequestOut.of(request)


async def _detail(request: PrivacyRequest) -> RequestDetail:
    export = await fulfilment.export_of(request.id)
    out = RequestDetail.model_validate(RequestOut.of(request).model_dump())
    out.timeline = [
        EventOut.model_validate(e) for e in await service.timeline(request.id, for_member=False)
    ]
    out.export = await ExportOut.of(export) if export else None
    return out


@router.get(
    "/{id}",
    summary="Get a privacy request with its timeline",
    permission=Permission.PRIVACY_REQUESTS_READ,
    response=RequestDetail,
    errors=(404,),
)
async def get_privacy_request(call: Call[Input, Input]) -> RequestDetail:
    """The timeline includes internal entries (notes, assignment) that the member never sees."""
    return await _detail(await service.get_request(call.id()))


@router.post(
    "/{id}/assign",
    summary="Assign a privacy request",
    permission=Permission.PRIVACY_REQUESTS_WRITE,
    body=AssignBody,
    response=RequestOut,
    errors=(404, 409, 422),
)
async def assign_privacy_request(call: Call[AssignBody, Input]) -> RequestOut:
    """A received request is in progress from its first assignment."""
    return RequestOut.of(
        await service.assign_request(call.id(), call.body.assignee_id, actor=call.actor)
    )


@router.post(
    "/{id}/notes",
    summary="Add an internal note (never shown to the member)",
    permission=Permission.PRIVACY_REQUESTS_WRITE,
    body=NoteBody,
    response=EventOut,
    status=201,
    errors=(404, 422),
)
async def note_privacy_request(call: Call[NoteBody, Input]) -> EventOut:
    return EventOut.model_validate(
        await service.add_note(call.id(), call.body.text, actor=call.actor)
    )


@router.post(
    "/{id}/extend",
    summary="Extend the deadline (at most two more months, with a reason told to the member)",
    permission=Permission.PRIVACY_REQUESTS_WRITE,
    body=ExtendBody,
    response=RequestOut,
    errors=(404, 409, 422),
)
async def extend_privacy_request(call: Call[ExtendBody, Input]) -> RequestOut:
    """Counted from the day of receipt: received 31 January and extended by two months,
    the request is due 30 April."""
    b = call.body
    return RequestOut.of(
        await service.extend_deadline(call.id(), b.months, b.reason, actor=call.actor)
    )


@router.post(
    "/{id}/answer",
    summary="Answer a privacy request",
    permission=Permission.PRIVACY_REQUESTS_WRITE,
    body=AnswerBody,
    response=RequestOut,
    errors=(404, 409, 422),
)
async def answer_privacy_request(call: Call[AnswerBody, Input]) -> RequestOut:
    return RequestOut.of(
        await service.close_request(
            call.id(), RequestStatus.ANSWERED, call.body.answer, actor=call.actor
        )
    )


@router.post(
    "/{id}/reject",
    summary="Reject a privacy request, with the reason told to the member",
    permission=Permission.PRIVACY_REQUESTS_WRITE,
    body=RejectBody,
    response=RequestOut,
    errors=(404, 409, 422),
)
async def reject_privacy_request(call: Call[RejectBody, Input]) -> RequestOut:
    return RequestOut.of(
        await service.close_request(
            call.id(), RequestStatus.REJECTED, call.body.reason, actor=call.actor
        )
    )


@router.post(
    "/{id}/export",
    summary="Start the export of the member's data",
    permission=Permission.PRIVACY_REQUESTS_WRITE,
    response=ExportOut,
    status=202,
    errors=(404, 409),
)
async def start_privacy_export(call: Call[Input, Input]) -> ExportOut:
    """Products the member has an account in are asked for their part by the
    ``privacy_request.export_requested`` webhook; the bundle is built when all have
    uploaded or the organisation's collection time is over. Idempotent while collecting or
    ready."""
    return await ExportOut.of(await fulfilment.start_export(call.id(), actor=call.actor))


@router.get(
    "/{id}/export",
    summary="Get the export's progress",
    permission=Permission.PRIVACY_REQUESTS_READ,
    response=ExportOut,
    errors=(404,),
)
async def get_privacy_export(call: Call[Input, Input]) -> ExportOut:
    request = await service.get_request(call.id())
    export = await fulfilment.export_of(request.id)
    if export is None:
        raise NotFoundError("no export was started for this request")
    return await ExportOut.of(export)


@router.put(
    "/{id}/export/parts",
    summary="Upload a product's part of an export",
    permission=Permission.PRIVACY_REQUESTS_SUBMIT,
    body=PartBody,
    response=PartOut,
    errors=(403, 404, 409, 422),
)
async def upload_privacy_export_part(call: Call[PartBody, Input]) -> PartOut:
    """A product answers ``privacy_request.export_requested`` here with what it holds about
    the member (JSON, up to the body limit; link large files instead). Uploading again
    replaces the part while the export is collecting (409 after it was built)."""
    data = json.dumps(call.body.data, ensure_ascii=False, indent=1).encode()
    part = await fulfilment.upload_part(
        call.id(), data, product_id=call.body.product_id, actor=call.actor
    )
    return PartOut.model_validate(part)


@router.post(
    "/{id}/erasure",
    summary="Erase the member's content for an erasure request",
    permission=Permission.PRIVACY_REQUESTS_WRITE,
    body=ErasureBody,
    response=ErasureOut,
    errors=(404, 409, 422),
)
async def erase_for_privacy_request(call: Call[ErasureBody, Input]) -> ErasureOut:
    """Items under legal hold are kept; products are told which of their items went; the
    evidence (per product, by whom, the audit event) is stored on the request."""
    run = await fulfilment.erase_for_request(
        call.id(), call.body.kinds, member=call.body.member, actor=call.actor
    )
    return ErasureOut.model_validate(run)


class PolicyBody(Input):
    reminder_days: int = Field(
        rules.DEFAULT_POLICY.reminder_days,
        ge=rules.REMINDER_DAYS_RANGE[0],
        le=rules.REMINDER_DAYS_RANGE[1],
        description="Remind the assignee (or the privacy officers) this many days before the "
        "due day; 0: no reminder.",
    )
    export_link_days: int = Field(
        rules.DEFAULT_POLICY.export_link_days,
        ge=rules.EXPORT_LINK_DAYS_RANGE[0],
        le=rules.EXPORT_LINK_DAYS_RANGE[1],
        description="How long the member's download link works.",
    )
    export_collect_hours: int = Field(
        rules.DEFAULT_POLICY.export_collect_hours,
        ge=rules.EXPORT_COLLECT_HOURS_RANGE[0],
        le=rules.EXPORT_COLLECT_HOURS_RANGE[1],
        description="How long products have to send their part before the export is built.",
    )


class PolicyOut(Output):
    organisation_id: uuid.UUID
    reminder_days: int
    export_link_days: int
    export_collect_hours: int


@policy_router.get(
    "",
    summary="Get the privacy request policy",
    permission=Permission.PRIVACY_REQUESTS_READ,
    response=PolicyOut,
)
async def get_privacy_request_policy(call: Call[Input, Input]) -> PolicyOut:
    return _policy_out(call, await service.get_policy())


@policy_router.put(
    "",
    summary="Replace the privacy request policy",
    permission=Permission.PRIVACY_REQUESTS_WRITE,
    body=PolicyBody,
    response=PolicyOut,
    errors=(422,),
)
async def set_privacy_request_policy(call: Call[PolicyBody, Input]) -> PolicyOut:
    b = call.body
    view = rules.RequestPolicyView(b.reminder_days, b.export_link_days, b.export_collect_hours)
    return _policy_out(call, await service.set_policy(view, actor=call.actor))


def _policy_out(call: Call[Any, Any], view: rules.RequestPolicyView) -> PolicyOut:
    return PolicyOut(organisation_id=call.principal.org_id, **service.vars_of(view))
