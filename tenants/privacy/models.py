"""Per-member keys for the audit trail's personal fields (crypto-shredding)."""

from __future__ import annotations

import uuid

from tortoise import fields

from tenants.models_base import TenantModel


class MemberKey(TenantModel):
    """The AES-256-GCM key that seals one member's personal fields in audit events.

    Deleting the row is the erasure of those fields: the events stay, their hashes still
    verify, and nobody can read what they said about the person any more.
    """

    member_id: uuid.UUID = fields.UUIDField()
    key = fields.BinaryField()

    class Meta:
        table = "member_keys"
        unique_together = (("tenant_id", "member_id"),)


class RetentionPolicy(TenantModel):
    """How long an organisation keeps what piles up personal data (days); one row per
    organisation, absent until changed (the defaults of ``tenants.privacy.retention``)."""

    mail_days = fields.IntField(default=90)
    session_days = fields.IntField(default=30)
    sign_in_attempt_days = fields.IntField(default=1)
    outbox_payload_days = fields.IntField(default=30)
    webhook_delivery_days = fields.IntField(default=30)
    export_days = fields.IntField(default=30)
    access_log_days = fields.IntField(default=400)
    sign_in_days = fields.IntField(default=400)
    finished_job_days = fields.IntField(default=14)

    class Meta:
        table = "retention_policies"
        unique_together = (("tenant_id",),)
