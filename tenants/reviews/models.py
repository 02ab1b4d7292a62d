"""Access reviews: campaigns and their items (one per reviewed access).

Items are a snapshot taken when the campaign opens: access given later is in the next
campaign, and an item keeps its subject's label even after the access or the person is
gone, so the campaign's result stays readable and exportable.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from zoneinfo import ZoneInfo

from tortoise import fields

from tenants.models_base import TenantModel
from tenants.reviews.rules import (
    CampaignStatus,
    DueDefault,
    ItemKind,
    ItemState,
    RecurrenceUnit,
    ReviewerRule,
)


class AccessReview(TenantModel):
    """One campaign."""

    name = fields.CharField(max_length=200)
    #: ``ScopeKind`` values: what the campaign reviews.
    scopes: fields.Field[list[str]] = fields.JSONField(default=list)
    reviewer_rule = fields.CharEnumField(ReviewerRule, max_length=16)
    #: Member ids (text) of the named reviewers (the rule's people, and the fallback).
    named_reviewer_ids: fields.Field[list[str]] = fields.JSONField(default=list)
    starts_on: date = fields.DateField()
    due_on: date = fields.DateField()
    recurrence_every: int | None = fields.IntField(null=True)
    recurrence_unit = fields.CharEnumField(RecurrenceUnit, max_length=8, null=True)
    default_on_due = fields.CharEnumField(DueDefault, max_length=8)
    status = fields.CharEnumField(CampaignStatus, max_length=16, default=CampaignStatus.SCHEDULED)
    #: The member who owns the campaign (its creator, or the person behind their token);
    #: reviewers of last resort. None when a credential acting for nobody created it.
    owner_id: uuid.UUID | None = fields.UUIDField(null=True)
    created_by = fields.CharField(max_length=300)
    created_by_display = fields.TextField()
    #: The campaign this one recurs from (unique: a recurrence happens once).
    previous_id: uuid.UUID | None = fields.UUIDField(null=True)
    opened_at: datetime | None = fields.DatetimeField(null=True)
    reminded_at: datetime | None = fields.DatetimeField(null=True)
    closed_at: datetime | None = fields.DatetimeField(null=True)
    items_total = fields.IntField(default=0)
    items_decided = fields.IntField(default=0)
    #: The zone of its days (the organisation's when it was made): it opens and closes at
    #: midnight there, whatever the organisation's zone becomes meanwhile.
    time_zone = fields.CharField(max_length=64, default="UTC")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    class Meta:
        table = "access_reviews"
        unique_together = (("tenant_id", "previous_id"),)
        indexes = (
            ("tenant_id", "created_at"),
            ("tenant_id", "starts_on"),
            ("tenant_id", "due_on"),
            ("tenant_id", "status", "due_on"),
            ("tenant_id", "status", "created_at"),
        )


class AccessReviewItem(TenantModel):
    """One access under review and its decision."""

    review_id: uuid.UUID = fields.UUIDField()
    kind = fields.CharEnumField(ItemKind, max_length=16)
    #: The person whose access it is: the role holder, the admin holding a grant.
    member_id: uuid.UUID | None = fields.UUIDField(null=True)
    role = fields.CharField(max_length=32, null=True)
    grant_id: uuid.UUID | None = fields.UUIDField(null=True)
    client_id: uuid.UUID | None = fields.UUIDField(null=True)
    #: What the reviewer sees, as it was at the snapshot ("Ada Admin: admin").
    subject_label = fields.CharField(max_length=500)
    #: Member ids (text) who may decide it.
    reviewer_ids: fields.Field[list[str]] = fields.JSONField(default=list)
    state = fields.CharEnumField(ItemState, max_length=16, default=ItemState.PENDING)
    reason: str | None = fields.TextField(null=True)
    decided_by: uuid.UUID | None = fields.UUIDField(null=True)
    decided_by_display = fields.TextField(null=True)
    decided_at: datetime | None = fields.DatetimeField(null=True)
    #: What applying a revocation found ("already ended") when there was nothing left to end.
    outcome_note = fields.CharField(max_length=300, null=True)

    class Meta:
        table = "access_review_items"
        indexes = (
            ("tenant_id", "review_id", "created_at"),
            ("tenant_id", "review_id", "state", "created_at"),
            ("tenant_id", "member_id"),
        )
