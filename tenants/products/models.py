"""Products the organisation provides, and each member's account in them."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from tortoise import fields

from tenants.members.models import Member
from tenants.models_base import TenantModel


class ProductAccountStatus(StrEnum):
    ASSIGNED = "assigned"
    SUSPENDED = "suspended"
    REMOVED = "removed"


class Product(TenantModel):
    #: Stable short name products use to identify themselves (``mail``, ``drive``).
    key = fields.CharField(max_length=63)
    name = fields.CharField(max_length=200)
    description = fields.TextField(default="")
    #: Where Tenantry posts events for this product (``tenants.webhooks``); None: no webhooks.
    webhook_url = fields.CharField(max_length=2000, null=True)
    #: The signing secret, encrypted (``tenants.secrets``).
    webhook_secret = fields.CharField(max_length=500, null=True)
    #: The secret before the last rotation, still signed with until ``webhook_previous_until``
    #: so receivers can switch without losing events.
    webhook_previous_secret = fields.CharField(max_length=500, null=True)
    webhook_previous_until: datetime | None = fields.DatetimeField(null=True)

    class Meta:
        table = "products"
        unique_together = (("tenant_id", "key"),)


class ProductAccount(TenantModel):
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "tenants.Member",
        related_name="product_accounts",
        on_delete=fields.RESTRICT,
        db_index=False,
        db_constraint=False,
    )
    member_id: uuid.UUID
    product: fields.ForeignKeyRelation[Product] = fields.ForeignKeyField(
        "tenants.Product",
        related_name="accounts",
        on_delete=fields.RESTRICT,
        db_index=False,
        db_constraint=False,
    )
    product_id: uuid.UUID
    status = fields.CharEnumField(
        ProductAccountStatus, max_length=16, default=ProductAccountStatus.ASSIGNED
    )

    class Meta:
        table = "product_accounts"
        unique_together = (("tenant_id", "member_id", "product_id"),)
        indexes = (("tenant_id", "product_id"),)
