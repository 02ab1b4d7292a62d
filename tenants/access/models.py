"""Data-access grants, the organisation's access policy, and the log of access checks.

A grant gives one admin time-bound access to categories of one member's data (or, for
diagnostic data only, of everyone in a unit). Its stored ``status`` records decisions
(requested, approved, denied, revoked); whether an approved grant is active or expired
is computed from ``ends_at`` at the moment of asking, so expiry needs no job.

The access log is append-only (the runtime role may INSERT and SELECT, nothing else):
every check a product makes is one row; the allowed ones are the member's transparency
log.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

from tenants.members.models import Member
from tenants.models_base import TenantModel
from tenants.units.models import Unit


class DataCategory(StrEnum):
    """The categories of a member's data the organisation can access (the end-user notice)."""

    INTERACTION = "interaction"
    DIAGNOSTIC = "diagnostic"
    COMMUNICATIONS = "communications"
    FILES = "files"


class GrantStatus(StrEnum):
    """Decisions recorded on a grant. ``active`` and ``expired`` are not stored: an
    approved grant is active until ``ends_at`` and expired after it."""

    REQUESTED = "requested"
    APPROVED = "approved"
    DENIED = "denied"
    REVOKED = "revoked"


class AccessPolicy(TenantModel):
    """The organisation's rules for data access; absent means the defaults in
    ``tenants.access.rules.DEFAULT_POLICY``."""

    max_duration_hours = fields.IntField(default=168)
    emergency_allowed = fields.BooleanField(default=False)
    #: Emergency grants start without approval, so they are held shorter.
    emergency_max_hours = fields.IntField(default=24)
    #: Whether the member is emailed for each new access in their log.
    notify_member_per_access = fields.BooleanField(default=True)
    #: How far ahead disclosure of a grant to its member may be delayed; 0: never.
    max_disclosure_delay_days = fields.IntField(default=0)

    class Meta:
        table = "access_policies"
        unique_together = (("tenant_id",),)


class AccessGrant(TenantModel):
    #: The admin who gets access (and whose reads products check).
    admin: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "tenants.Member",
        related_name=False,
        on_delete=fields.RESTRICT,
        db_index=False,
        db_constraint=False,
    )
    admin_id: uuid.UUID
    #: Exactly one of member and unit: whose data.
    member: fields.ForeignKeyNullableRelation[Member] = fields.ForeignKeyField(
        "tenants.Member",
        related_name=False,
        null=True,
        on_delete=fields.RESTRICT,
        db_index=False,
        db_constraint=False,
    )
    member_id: uuid.UUID | None
    unit: fields.ForeignKeyNullableRelation[Unit] = fields.ForeignKeyField(
        "tenants.Unit",
        related_name=False,
        null=True,
        on_delete=fields.RESTRICT,
        db_index=False,
        db_constraint=False,
    )
    unit_id: uuid.UUID | None
    categories: fields.Field[list[str]] = fields.JSONField(default=list)
    all_products = fields.BooleanField(default=False)
    #: Product ids (text) when not ``all_products``.
    product_ids: fields.Field[list[str]] = fields.JSONField(default=list)
    justification = fields.TextField()
    case_reference = fields.CharField(max_length=200, null=True)
    duration_hours = fields.IntField()
    emergency = fields.BooleanField(default=False)
    status = fields.CharEnumField(GrantStatus, max_length=16, default=GrantStatus.REQUESTED)
    #: Who asked (an actor reference: ``member:<id>`` or ``api_token:<id>``).
    requested_by = fields.CharField(max_length=300)
    requested_by_display = fields.TextField()
    #: Set when access starts (approval, or at once for emergency access).
    starts_at: datetime | None = fields.DatetimeField(null=True)
    ends_at: datetime | None = fields.DatetimeField(null=True)
    decided_by: fields.ForeignKeyNullableRelation[Member] = fields.ForeignKeyField(
        "tenants.Member",
        related_name=False,
        null=True,
        on_delete=fields.RESTRICT,
        db_index=False,
        db_constraint=False,
    )
    decided_by_id: uuid.UUID | None
    decided_at: datetime | None = fields.DatetimeField(null=True)
    decision_reason: str | None = fields.TextField(null=True)
    revoked_at: datetime | None = fields.DatetimeField(null=True)
    revoked_by = fields.CharField(max_length=300, null=True)
    revoke_reason: str | None = fields.TextField(null=True)
    #: Emergency access waits for a privacy officer's review after the fact.
    review_required = fields.BooleanField(default=False)
    reviewed_by: fields.ForeignKeyNullableRelation[Member] = fields.ForeignKeyField(
        "tenants.Member",
        related_name=False,
        null=True,
        on_delete=fields.RESTRICT,
        db_index=False,
        db_constraint=False,
    )
    reviewed_by_id: uuid.UUID | None
    reviewed_at: datetime | None = fields.DatetimeField(null=True)
    review_note: str | None = fields.TextField(null=True)
    #: Until then the member does not see the grant or its accesses (an investigation).
    disclosure_delayed_until: datetime | None = fields.DatetimeField(null=True)
    disclosure_delay_reason: str | None = fields.TextField(null=True)

    class Meta:
        table = "access_grants"
        indexes = (
            ("tenant_id", "admin_id"),
            ("tenant_id", "member_id", "created_at"),
            ("tenant_id", "unit_id"),
            ("tenant_id", "status", "created_at"),
            ("tenant_id", "created_at"),
        )


class AccessLogEntry(Model):
    """One access check, as answered. Append-only: never updated; deleted only by retention
    (``access_log_days``). Partitioned by month on ``checked_at`` (migration 0022)."""

    id = fields.BigIntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Model] = fields.ForeignKeyField(
        "tenants.Organisation", related_name=False, on_delete=fields.RESTRICT, db_index=False
    )
    tenant_id: uuid.UUID
    checked_at = fields.DatetimeField()
    #: Plain ids, not keys: the log outlives products and keeps what was asked.
    admin_id = fields.UUIDField()
    member_id = fields.UUIDField()
    product_id = fields.UUIDField()
    category = fields.CharField(max_length=20)
    allowed = fields.BooleanField()
    #: Why a check was refused (``tenants.access.rules.DenyReason``); None when allowed.
    reason = fields.CharField(max_length=32, null=True)
    grant: fields.ForeignKeyNullableRelation[AccessGrant] = fields.ForeignKeyField(
        "tenants.AccessGrant",
        related_name=False,
        null=True,
        on_delete=fields.RESTRICT,
        db_index=False,
        db_constraint=False,
    )
    grant_id: uuid.UUID | None
    #: The product client (or token) that asked.
    checked_by = fields.CharField(max_length=300)

    class Meta:
        table = "access_log"
        indexes = (("tenant_id", "member_id", "id"), ("tenant_id", "admin_id", "id"))
