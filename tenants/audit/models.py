"""Audit events (append-only, hash-chained per organisation) and each chain's head."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from tenants.models_base import TenantModel


class AuditEvent(Model):
    """One write. The runtime role may INSERT and SELECT, never UPDATE or DELETE."""

    id = fields.BigIntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Model] = fields.ForeignKeyField(
        "tenants.Organisation", related_name=False, on_delete=fields.RESTRICT, db_index=False
    )
    seq = fields.BigIntField()
    occurred_at = fields.DatetimeField()
    actor = fields.CharField(max_length=300)
    actor_display = fields.CharField(max_length=300)
    action = fields.CharField(max_length=100)
    target_type = fields.CharField(max_length=50)
    target_id = fields.CharField(max_length=100)
    before: fields.Field[dict[str, object] | None] = fields.JSONField(null=True)
    after: fields.Field[dict[str, object] | None] = fields.JSONField(null=True)
    request_id = fields.CharField(max_length=100, null=True)
    client_addr = fields.CharField(max_length=100, null=True)
    prev_hash = fields.CharField(max_length=64)
    hash = fields.CharField(max_length=64)

    class Meta:
        table = "audit_events"
        unique_together = (("tenant_id", "seq"),)
        indexes = (
            ("tenant_id", "action", "seq"),
            ("tenant_id", "target_type", "target_id", "seq"),
            ("tenant_id", "occurred_at"),
        )


class AuditHead(TenantModel):
    """The newest event of one organisation's chain; locked to append, one row per org."""

    seq = fields.BigIntField(default=0)
    hash = fields.CharField(max_length=64)

    class Meta:
        table = "audit_heads"
        unique_together = (("tenant_id",),)
