"""Privacy requests, their timeline, the organisation's request policy, and exports.

A request's ``status`` is where it stands in the queue; everything that happened to it is
a row of ``privacy_request_events`` (the timeline), some of them internal (notes) and
never shown to the member. An export is built once per request and kept in the database
(``bundle``), so any node can serve the download and no node keeps state on disk.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from tortoise import fields

from tenants.members.models import Member
from tenants.models_base import TenantModel
from tenants.products.models import Product
from tenants.requests.rules import ExportStatus, RequestKind, RequestSource, RequestStatus

__all__ = [
    "ExportStatus",
    "PrivacyExport",
    "PrivacyExportPart",
    "PrivacyRequest",
    "PrivacyRequestEvent",
    "PrivacyRequestPolicy",
    "RequestKind",
    "RequestSource",
    "RequestStatus",
]


class PrivacyRequest(TenantModel):
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "tenants.Member", related_name=False, on_delete=fields.RESTRICT,
        db_index=False, db_constraint=False,
    )
    member_id: uuid.UUID
    kind = fields.CharEnumField(RequestKind, max_length=20)
    message = fields.TextField()
    source = fields.CharEnumField(RequestSource, max_length=16)
    #: The product that forwarded the request, and its own reference for it.
    product: fields.ForeignKeyNullableRelation[Product] = fields.ForeignKeyField(
        "tenants.Product", related_name=False, null=True, on_delete=fields.SET_NULL,
        db_index=False, db_constraint=False,
    )
    product_id: uuid.UUID | None
    product_reference = fields.CharField(max_length=200, null=True)
    status = fields.CharEnumField(RequestStatus, max_length=16, default=RequestStatus.RECEIVED)
    assignee: fields.ForeignKeyNullableRelation[Member] = fields.ForeignKeyField(
        "tenants.Member", related_name=False, null=True, on_delete=fields.SET_NULL,
        db_index=False, db_constraint=False,
    )
    assignee_id: uuid.UUID | None
    received_at: datetime = fields.DatetimeField()
    #: The last day (UTC) to answer: received date plus one month plus any extension.
    due_on: date = fields.DateField()
    #: Months added to the one-month deadline (at most two in total).
    extension_months = fields.SmallIntField(default=0)
    #: Why the deadline was extended; the member is told.
    extension_reason: str | None = fields.TextField(null=True)
    #: The answer the member reads (also the reason for a rejection).
    answer: str | None = fields.TextField(null=True)
    closed_at: datetime | None = fields.DatetimeField(null=True)
    closed_by = fields.CharField(max_length=300, null=True)
    #: What an erasure removed, where and by whom (also in the audit trail).
    erasure_evidence: fields.Field[dict[str, Any] | None] = fields.JSONField(null=True)

    class Meta:
        table = "privacy_requests"
        unique_together = (("tenant_id", "product_id", "product_reference"),)
        indexes = (
            ("tenant_id", "status", "due_on"),
            ("tenant_id", "member_id", "created_at"),
            ("tenant_id", "assignee_id"),
            ("tenant_id", "created_at"),
        )


class PrivacyRequestEvent(TenantModel):
    """One entry of a request's timeline. ``internal`` entries (notes, assignment) are for
    the organisation only and never reach the member."""

    request: fields.ForeignKeyRelation[PrivacyRequest] = fields.ForeignKeyField(
        "tenants.PrivacyRequest", related_name=False, on_delete=fields.CASCADE,
        db_index=False, db_constraint=False,
    )
    request_id: uuid.UUID
    kind = fields.CharField(max_length=32)
    internal = fields.BooleanField(default=False)
    body = fields.TextField(default="")
    data: fields.Field[dict[str, Any]] = fields.JSONField(default=dict)
    actor = fields.CharField(max_length=300)
    actor_display = fields.TextField()

    class Meta:
        table = "privacy_request_events"
        indexes = (("tenant_id", "request_id", "created_at"),)


class PrivacyRequestPolicy(TenantModel):
    """The organisation's settings for privacy requests; absent means the defaults in
    ``tenants.requests.rules.DEFAULT_POLICY``."""

    #: Reminder to the assignee (or the privacy officers) this many days before the due day.
    reminder_days = fields.SmallIntField(default=7)
    #: How long the member's download link for an export stays valid.
    export_link_days = fields.SmallIntField(default=7)
    #: How long products have to upload their part of an export before it is built anyway.
    export_collect_hours = fields.SmallIntField(default=72)

    class Meta:
        table = "privacy_request_policies"
        unique_together = (("tenant_id",),)


class PrivacyExport(TenantModel):
    """The export of one access or portability request (one per request)."""

    request: fields.ForeignKeyRelation[PrivacyRequest] = fields.ForeignKeyField(
        "tenants.PrivacyRequest", related_name=False, on_delete=fields.CASCADE,
        db_index=False, db_constraint=False,
    )
    request_id: uuid.UUID
    status = fields.CharEnumField(ExportStatus, max_length=16, default=ExportStatus.COLLECTING)
    #: Products asked for their part (ids as text).
    expected_product_ids: fields.Field[list[str]] = fields.JSONField(default=list)
    collect_until: datetime = fields.DatetimeField()
    #: The ZIP; None until built and after it expired.
    bundle: bytes | None = fields.BinaryField(null=True)
    size = fields.BigIntField(default=0)
    sha256 = fields.CharField(max_length=64, null=True)
    #: ``[{"name": ..., "size": ...}]`` of the files in the ZIP, for the console.
    files: fields.Field[list[dict[str, Any]]] = fields.JSONField(default=list)
    ready_at: datetime | None = fields.DatetimeField(null=True)
    expires_at: datetime | None = fields.DatetimeField(null=True)

    class Meta:
        table = "privacy_exports"
        unique_together = (("tenant_id", "request_id"),)


class PrivacyExportPart(TenantModel):
    """A product's part of an export: the JSON it uploaded about the member."""

    export: fields.ForeignKeyRelation[PrivacyExport] = fields.ForeignKeyField(
        "tenants.PrivacyExport", related_name=False, on_delete=fields.CASCADE,
        db_index=False, db_constraint=False,
    )
    export_id: uuid.UUID
    product: fields.ForeignKeyRelation[Product] = fields.ForeignKeyField(
        "tenants.Product", related_name=False, on_delete=fields.CASCADE,
        db_index=False, db_constraint=False,
    )
    product_id: uuid.UUID
    #: UTF-8 JSON as uploaded (validated as JSON, stored as given).
    data: bytes = fields.BinaryField()
    size = fields.BigIntField(default=0)
    uploaded_by = fields.CharField(max_length=300)

    class Meta:
        table = "privacy_export_parts"
        unique_together = (("tenant_id", "export_id", "product_id"),)
