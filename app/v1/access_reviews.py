"""Access reviews: recertification campaigns of admin roles, standing data-access grants and
product clients; their items, each reviewer's decision, and the result as CSV.

A campaign opens on its start day (at once when that is today): every access in its scope
becomes an item with its reviewers. Reviewers approve or revoke with a reason; a revocation
ends the access at once through the same path as a manual revocation. At the end of the
due day undecided items follow ``default_on_due``; a recurring campaign then has a successor.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import Field, StringConstraints
from starlette.responses import Response

from app.api import ApiRouter, Call
from app.downloads import attachment
from app.v1.common import FREE_TEXT, Day, Input, ListQuery, Name, Output, Page
from tenants.csvcells import csv_line
from tenants.permissions import Permission
from tenants.reviews import rules, service
from tenants.reviews.models import AccessReview, AccessReviewItem
from tenants.reviews.rules import (
    CampaignStatus,
    DueDefault,
    ItemKind,
    ItemState,
    RecurrenceUnit,
    ReviewerRule,
    ScopeKind,
)

router = ApiRouter("/v1/access-reviews", "access reviews")

Reason = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=service.MAX_REASON),
    FREE_TEXT,
]


class RecurrenceIn(Input):
    every: int = Field(ge=1, le=rules.MAX_EVERY[RecurrenceUnit.DAYS])
    unit: RecurrenceUnit


class ReviewIn(Input):
    name: Name
    scopes: list[ScopeKind] = Field(min_length=1, max_length=3)
    reviewer_rule: ReviewerRule = Field(
        description="manager: the subject's manager; unit_admins: the owners and admins of "
        "the subject's unit (the nearest unit up the tree that has any); named: the named "
        "reviewers. Nobody reviews their own access: the named reviewers, then the "
        "campaign's owner, take over."
    )
    named_reviewer_ids: list[uuid.UUID] = Field(default_factory=list, max_length=rules.MAX_NAMED)
    starts_on: Day
    due_on: Day = Field(description="The last day to decide (UTC).")
    recurrence: RecurrenceIn | None = None
    default_on_due: DueDefault = Field(
        description="What happens to items nobody decided by the end of the due day."
    )


class ReviewOut(Output):
    id: uuid.UUID
    name: str
    scopes: list[ScopeKind]
    reviewer_rule: ReviewerRule
    named_reviewer_ids: list[uuid.UUID]
    starts_on: date
    due_on: date
    recurrence: RecurrenceIn | None
    default_on_due: DueDefault
    status: CampaignStatus
    owner_id: uuid.UUID | None
    created_by_display: str
    previous_id: uuid.UUID | None = Field(description="The campaign this one recurs from.")
    items_total: int
    items_decided: int
    opened_at: datetime | None
    closed_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, review: AccessReview) -> ReviewOut:
        recurrence = service.recurrence_of(review)
        return cls(
            id=review.id,
            name=review.name,
            scopes=[ScopeKind(s) for s in review.scopes],
            reviewer_rule=review.reviewer_rule,
            named_reviewer_ids=[uuid.UUID(i) for i in review.named_reviewer_ids],
            starts_on=review.starts_on,
            due_on=review.due_on,
            recurrence=RecurrenceIn(every=recurrence.every, unit=recurrence.unit)
            if recurrence
            else None,
            default_on_due=review.default_on_due,
            status=review.status,
            owner_id=review.owner_id,
            created_by_display=review.created_by_display,
            previous_id=review.previous_id,
            items_total=review.items_total,
            items_decided=review.items_decided,
            opened_at=review.opened_at,
            closed_at=review.closed_at,
            created_at=review.created_at,
        )


class ReviewPage(Page[ReviewOut]):
    pass


class ReviewQuery(ListQuery):
    status: CampaignStatus | None = None


class ItemOut(Output):
    id: uuid.UUID
    review_id: uuid.UUID
    kind: ItemKind
    subject_label: str = Field(description="The access as it was when the campaign opened.")
    member_id: uuid.UUID | None = Field(description="Whose access (none for a product client).")
    role: str | None
    grant_id: uuid.UUID | None
    client_id: uuid.UUID | None
    reviewer_ids: list[uuid.UUID]
    state: ItemState
    reason: str | None
    decided_by: uuid.UUID | None
    decided_by_display: str | None
    decided_at: datetime | None
    outcome_note: str | None

    @classmethod
    def of(cls, item: AccessReviewItem) -> ItemOut:
        return cls(
            id=item.id,
            review_id=item.review_id,
            kind=item.kind,
            subject_label=item.subject_label,
            member_id=item.member_id,
            role=item.role,
            grant_id=item.grant_id,
            client_id=item.client_id,
            reviewer_ids=[uuid.UUID(i) for i in item.reviewer_ids],
            state=item.state,
            reason=item.reason,
            decided_by=item.decided_by,
            decided_by_display=item.decided_by_display,
            decided_at=item.decided_at,
            outcome_note=item.outcome_note,
        )


class ItemPage(Page[ItemOut]):
    pass


class ItemQuery(ListQuery):
    state: ItemState | None = None


class DecisionIn(Input):
    decision: Annotated[str, StringConstraints(pattern="^(approve|revoke)$")] = Field(
        description="approve (keep the access) or revoke (end it now)."
    )
    reason: Reason


def draft_of(body: ReviewIn) -> rules.CampaignDraft:
    return rules.CampaignDraft(
        name=body.name,
        scopes=tuple(dict.fromkeys(body.scopes)),
        reviewer_rule=body.reviewer_rule,
        named_reviewers=tuple(body.named_reviewer_ids),
        starts_on=body.starts_on,
        due_on=body.due_on,
        recurrence=rules.Recurrence(body.recurrence.every, body.recurrence.unit)
        if body.recurrence
        else None,
        default_on_due=body.default_on_due,
    )


@router.get(
    "",
    summary="List access-review campaigns, newest first",
    permission=Permission.REVIEWS_READ,
    query=ReviewQuery,
    response=ReviewPage,
    errors=(422,),
)
async def list_access_reviews(call: Call[Input, ReviewQuery]) -> ReviewPage:
    q = call.query
    page = await service.list_reviews(status=q.status, cursor=q.cursor, limit=q.limit)
    return ReviewPage(items=[ReviewOut.of(r) for r in page.items], next_cursor=page.next_cursor)


@router.post(
    "",
    summary="Create an access-review campaign",
    permission=Permission.REVIEWS_WRITE,
    body=ReviewIn,
    response=ReviewOut,
    status=201,
    errors=(422,),
)
async def create_access_review(call: Call[ReviewIn, Input]) -> ReviewOut:
    """A campaign starting today opens at once: its items are the access standing now, and
    each reviewer is emailed how many items wait for them."""
    review = await service.create_review(draft_of(call.body), actor=call.actor)
    return ReviewOut.of(review)


@router.get(
    "/{id}",
    summary="Get an access-review campaign and its progress",
    permission=Permission.REVIEWS_READ,
    response=ReviewOut,
    errors=(404,),
)
async def get_access_review(call: Call[Input, Input]) -> ReviewOut:
    return ReviewOut.of(await service.get_review(call.id()))


@router.get(
    "/{id}/items",
    summary="List a campaign's items (one per reviewed access)",
    permission=Permission.REVIEWS_READ,
    query=ItemQuery,
    response=ItemPage,
    errors=(404, 422),
)
async def list_access_review_items(call: Call[Input, ItemQuery]) -> ItemPage:
    q = call.query
    page = await service.list_items(call.id(), state=q.state, cursor=q.cursor, limit=q.limit)
    return ItemPage(items=[ItemOut.of(i) for i in page.items], next_cursor=page.next_cursor)


@router.post(
    "/{id}/items/{item_id}/decision",
    summary="Approve or revoke one reviewed access, with a reason",
    permission=Permission.REVIEWS_DECIDE,
    body=DecisionIn,
    response=ItemOut,
    errors=(403, 404, 409, 422),
)
async def decide_access_review_item(call: Call[DecisionIn, Input]) -> ItemOut:
    """The item's reviewers decide, and holders of ``reviews:write``; nobody decides on their
    own access (403). A revocation ends the access now, with its own audit event. 409 when
    the campaign is not open or the item already decided."""
    item = await service.decide_item(
        call.id(),
        call.id("item_id"),
        approve=call.body.decision == "approve",
        reason=call.body.reason,
        permissions=call.principal.permissions,
        actor=call.actor,
    )
    return ItemOut.of(item)


@router.get(
    "/{id}/export",
    summary="A campaign's results as CSV",
    permission=Permission.REVIEWS_READ,
    errors=(404,),
    alternatives=("text/csv",),
)
async def export_access_review(call: Call[Input, Input]) -> Response:
    """One line per item: the access, its reviewers, the decision, its reason, who decided
    and when. Cells that could start a spreadsheet formula get a leading quote."""
    rows = await service.export_rows(call.id())
    body = csv_line(list(service.EXPORT_COLUMNS)) + "".join(csv_line(r) for r in rows)
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": attachment(f"access-review-{call.id()}.csv"),
            "Cache-Control": "no-store",
        },
    )
