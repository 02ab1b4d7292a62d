"""The transactional outbox: events written in the same transaction as the change they
announce (``tenants.webhooks.service.publish``), delivered afterwards by jobs, one webhook
delivery per product (``tenants.webhooks.models.WebhookDelivery``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tortoise import fields
from tortoise.models import Model


class OutboxEvent(Model):
    id = fields.BigIntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Model] = fields.ForeignKeyField(
        "tenants.Organisation", related_name=False, on_delete=fields.RESTRICT, db_index=False
    )
    topic = fields.CharField(max_length=100)
    #: Stable per event; receivers de-duplicate on it.
    idempotency_key = fields.CharField(max_length=100)
    payload: fields.Field[dict[str, Any]] = fields.JSONField()
    created_at = fields.DatetimeField(auto_now_add=True)
    delivered_at: datetime | None = fields.DatetimeField(null=True)

    class Meta:
        table = "outbox_events"
        unique_together = (("tenant_id", "idempotency_key"),)
        indexes = (("tenant_id", "topic", "id"),)
