"""Departure policy (one per organisation), departures and their steps."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from tortoise import fields

from tenants.members.models import Member
from tenants.models_base import TenantModel


class ContentAction(StrEnum):
    """What a departure does with one organisation content item."""

    TRANSFER = "transfer"
    ARCHIVE = "archive"
    DELETE = "delete"


class PersonalOutcome(StrEnum):
    """What becomes of personal items once the export window has closed."""

    #: Deleted when retention ends (unless under legal hold).
    DELETE = "delete"
    #: Kept in the organisation archive; the member's access still ends.
    ARCHIVE = "archive"


class DeparturePolicy(TenantModel):
    """The organisation's rules for departures; absent means the defaults in
    ``tenants.departures.planner.DEFAULT_POLICY``."""

    fallback_successor: fields.ForeignKeyNullableRelation[Member] = fields.ForeignKeyField(
        "tenants.Member", related_name=False, null=True, on_delete=fields.SET_NULL,
        db_index=False, db_constraint=False,
    )
    fallback_successor_id: uuid.UUID | None
    default_action = fields.CharEnumField(ContentAction, max_length=16, default=ContentAction.TRANSFER)
    #: ``{product_id: action}`` for products that differ from ``default_action``.
    product_actions: fields.Field[dict[str, str]] = fields.JSONField(default=dict)
    retention_days = fields.IntField(default=30)
    export_window_days = fields.IntField(default=14)
    personal_outcome = fields.CharEnumField(
        PersonalOutcome, max_length=16, default=PersonalOutcome.DELETE
    )
    reinstatement_returns_items = fields.BooleanField(default=True)

    class Meta:
        table = "departure_policies"
        unique_together = (("tenant_id",),)


class DepartureStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    #: The member was reinstated before purge.
    CANCELLED = "cancelled"


class Departure(TenantModel):
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "tenants.Member", related_name=False, on_delete=fields.RESTRICT,
        db_index=False, db_constraint=False,
    )
    member_id: uuid.UUID
    successor: fields.ForeignKeyNullableRelation[Member] = fields.ForeignKeyField(
        "tenants.Member", related_name=False, null=True, on_delete=fields.SET_NULL,
        db_index=False, db_constraint=False,
    )
    successor_id: uuid.UUID | None
    last_day: date = fields.DateField()
    #: End of the last day (UTC): sign-in ends, sessions end, products suspend.
    suspend_at: datetime = fields.DatetimeField()
    #: Until when the member can export their personal items.
    export_until: datetime = fields.DatetimeField()
    #: When items pending deletion are deleted and the member record anonymised.
    purge_at: datetime = fields.DatetimeField()
    status = fields.CharEnumField(DepartureStatus, max_length=16, default=DepartureStatus.RUNNING)
    reason = fields.TextField(default="")
    #: The departure policy as it was at the start: a later policy change does not alter a
    #: departure under way.
    policy: fields.Field[dict[str, Any]] = fields.JSONField()
    #: Totals of the plan at the start (the preview the admin confirmed).
    plan_totals: fields.Field[dict[str, Any]] = fields.JSONField(default=dict)
    started_by = fields.CharField(max_length=300)
    finished_at: datetime | None = fields.DatetimeField(null=True)

    class Meta:
        table = "departures"
        indexes = (("tenant_id", "member_id"), ("tenant_id", "status", "created_at"))


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    #: Not run because the departure was cancelled first.
    SKIPPED = "skipped"
    #: Stopped part-way because the departure was cancelled; ``done`` says how far it got.
    CANCELLED = "cancelled"


class DepartureStep(TenantModel):
    departure: fields.ForeignKeyRelation[Departure] = fields.ForeignKeyField(
        "tenants.Departure", related_name=False, on_delete=fields.CASCADE,
        db_index=False, db_constraint=False,
    )
    departure_id: uuid.UUID
    name = fields.CharField(max_length=32)
    position = fields.SmallIntField()
    status = fields.CharEnumField(StepStatus, max_length=16, default=StepStatus.PENDING)
    due_at: datetime = fields.DatetimeField()
    #: Units of work (items, products) in the step, and how many are done.
    total = fields.BigIntField(default=0)
    done = fields.BigIntField(default=0)
    started_at: datetime | None = fields.DatetimeField(null=True)
    finished_at: datetime | None = fields.DatetimeField(null=True)
    last_error = fields.TextField(null=True)

    class Meta:
        table = "departure_steps"
        unique_together = (("tenant_id", "departure_id", "name"),)
