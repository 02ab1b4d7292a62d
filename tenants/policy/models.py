"""Stored policy: rules on units and groups, their version history, members' own choices,
and settings that products declared. Resolution itself is pure (``policies.resolve``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from tortoise import fields

from tenants.groups.models import Group
from tenants.members.models import Member
from tenants.models_base import TenantModel
from tenants.products.models import Product
from tenants.units.models import Unit


class PolicyRule(TenantModel):
    """One setting's value on one unit or one group. Exactly one of unit/group is set."""

    unit: fields.ForeignKeyNullableRelation[Unit] = fields.ForeignKeyField(
        "tenants.Unit",
        related_name=False,
        null=True,
        on_delete=fields.CASCADE,
        db_index=False,
        db_constraint=False,
    )
    unit_id: uuid.UUID | None
    group: fields.ForeignKeyNullableRelation[Group] = fields.ForeignKeyField(
        "tenants.Group",
        related_name=False,
        null=True,
        on_delete=fields.CASCADE,
        db_index=False,
        db_constraint=False,
    )
    group_id: uuid.UUID | None
    setting = fields.CharField(max_length=100)
    value: fields.Field[Any] = fields.JSONField()
    enforced = fields.BooleanField(default=False)
    #: Shown to members next to the setting.
    reason = fields.TextField(default="")
    #: The rule applies from this moment; before it, it is scheduled and ignored.
    effective_from: datetime | None = fields.DatetimeField(null=True)

    class Meta:
        table = "policy_rules"


class PolicyVersion(TenantModel):
    """The organisation's whole rule set after one change: history, diff and rollback."""

    number = fields.IntField()
    summary = fields.TextField(default="")
    actor = fields.CharField(max_length=300)
    rules: fields.Field[list[dict[str, Any]]] = fields.JSONField(default=list)

    class Meta:
        table = "policy_versions"
        unique_together = (("tenant_id", "number"),)


class MemberChoice(TenantModel):
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "tenants.Member",
        related_name=False,
        on_delete=fields.CASCADE,
        db_index=False,
        db_constraint=False,
    )
    member_id: uuid.UUID
    setting = fields.CharField(max_length=100)
    value: fields.Field[Any] = fields.JSONField()

    class Meta:
        table = "member_choices"
        unique_together = (("tenant_id", "member_id", "setting"),)


class DeclaredSetting(TenantModel):
    """A setting a product declared for this organisation (same schema as built-ins)."""

    product: fields.ForeignKeyRelation[Product] = fields.ForeignKeyField(
        "tenants.Product",
        related_name=False,
        on_delete=fields.CASCADE,
        db_index=False,
        db_constraint=False,
    )
    product_id: uuid.UUID
    key = fields.CharField(max_length=100)
    definition: fields.Field[dict[str, Any]] = fields.JSONField()

    class Meta:
        table = "declared_settings"
        unique_together = (("tenant_id", "key"),)
