"""Content items: what products register about the content their members hold.

Tenantry never stores the content itself, only enough to decide and announce what
happens to each item when its owner leaves (``tenants.departures.planner``).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from tortoise import fields

from tenants.members.models import Member
from tenants.models_base import TenantModel
from tenants.products.models import Product


class ContentKind(StrEnum):
    #: Work content: it belongs to the organisation and stays with it.
    ORGANISATION = "organisation"
    #: Acquired on the member's own behalf while signed in with the organisation account.
    PERSONAL = "personal"


class ContentStatus(StrEnum):
    """Where an item stands; only ``active`` items are in their owner's hands."""

    ACTIVE = "active"
    #: Kept by the organisation after its owner left; nobody holds it.
    ARCHIVED = "archived"
    #: Its owner left; it is deleted when the departure's retention ends.
    PENDING_DELETION = "pending_deletion"
    #: A personal item whose owner left: the export window is over or closing, access ended.
    ACCESS_ENDED = "access_ended"


class ContentItem(TenantModel):
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "tenants.Member", related_name=False, on_delete=fields.RESTRICT,
        db_index=False, db_constraint=False,
    )
    member_id: uuid.UUID
    product: fields.ForeignKeyRelation[Product] = fields.ForeignKeyField(
        "tenants.Product", related_name=False, on_delete=fields.RESTRICT,
        db_index=False, db_constraint=False,
    )
    product_id: uuid.UUID
    #: The product's own id for the item; unique per product.
    external_id = fields.CharField(max_length=255)
    title = fields.CharField(max_length=500)
    kind = fields.CharEnumField(ContentKind, max_length=16)
    #: Bytes.
    size = fields.BigIntField(default=0)
    #: When the product says the item was created (not when it was registered).
    item_created_at: datetime | None = fields.DatetimeField(null=True)
    legal_hold = fields.BooleanField(default=False)
    #: What the member is told about the hold (the admin writes it when placing the hold;
    #: the hold's confidential reason is only in the audit trail).
    hold_member_text: str | None = fields.TextField(null=True)
    #: When the hold is next reviewed; None on holds placed before review dates existed.
    hold_review_on: date | None = fields.DateField(null=True)
    #: Where the owner can download the item themselves (set by the product).
    export_url = fields.CharField(max_length=2000, null=True)
    status = fields.CharEnumField(ContentStatus, max_length=16, default=ContentStatus.ACTIVE)
    #: The member who held the item before a departure transferred it.
    previous_member: fields.ForeignKeyNullableRelation[Member] = fields.ForeignKeyField(
        "tenants.Member", related_name=False, null=True, on_delete=fields.SET_NULL,
        db_index=False, db_constraint=False,
    )
    previous_member_id: uuid.UUID | None
    #: The departure that last acted on the item (a plain id: departures own their items'
    #: history through the audit trail, not through a foreign key that purge would fight).
    departure_id: uuid.UUID | None = fields.UUIDField(null=True)
    #: How many times a departure handed the item to a successor; the crash test reads it.
    transfer_count = fields.IntField(default=0)

    class Meta:
        table = "content_items"
        unique_together = (("tenant_id", "product_id", "external_id"),)
        indexes = (("tenant_id", "member_id", "status", "id"), ("tenant_id", "departure_id"))
