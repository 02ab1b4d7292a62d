"""Webhook deliveries to products: one row per event and product, the delivery log."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from tortoise import fields

from tenants.models_base import TenantModel
from tenants.products.models import Product


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    #: Out of attempts; retried from the console.
    DEAD = "dead"


# Partitioned by month on ``created_at`` (migration 0022): in the database the unique key
# ``(tenant_id, event_id, product_id)`` carries ``created_at`` too, which changes nothing
# since a delivery is only inserted together with its event (``PUBLISH_SQL``).
class WebhookDelivery(TenantModel):
    product: fields.ForeignKeyRelation[Product] = fields.ForeignKeyField(
        "tenants.Product", related_name=False, on_delete=fields.CASCADE,
        db_index=False, db_constraint=False,
    )
    product_id: uuid.UUID
    #: The outbox event delivered (``outbox_events.id``).
    event_id = fields.BigIntField()
    topic = fields.CharField(max_length=100)
    #: The event's idempotency key, sent as ``webhook-id``: the same on every attempt.
    idempotency_key = fields.CharField(max_length=100)
    status = fields.CharEnumField(DeliveryStatus, max_length=16, default=DeliveryStatus.PENDING)
    attempts = fields.IntField(default=0)
    last_status_code = fields.IntField(null=True)
    last_error = fields.TextField(null=True)
    last_attempt_at: datetime | None = fields.DatetimeField(null=True)
    delivered_at: datetime | None = fields.DatetimeField(null=True)

    class Meta:
        table = "webhook_deliveries"
        unique_together = (("tenant_id", "event_id", "product_id"),)
        indexes = (("tenant_id", "product_id", "created_at"), ("tenant_id", "status"))
