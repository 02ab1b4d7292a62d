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
    #: What the rule is until ``effective_from`` when that is ahead and the rule was in
    #: force before it was rescheduled: ``{"value", "enforced", "reason"}`` (None: no rule
    #: until then). A scheduled change of a rule in force never removes it early.
    replaces: dict[str, Any] | None = fields.JSONField(null=True)
    #: When products were told (``policy.changed``) that the rule is in force: at once for a
    #: rule in force when written, by the worker's sweep once a scheduled one comes into
    #: force (None until then, so a worker that was down still announces it later).
    announced_at: datetime | None = fields.DatetimeField(null=True)
    #: The ``effective_from`` whose advance notices went out to the members it affects
    #: (None: not yet); a rule moved to another date is noticed again.
    noticed_for: datetime | None = fields.DatetimeField(null=True)

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


class PolicyChangeNotice(TenantModel):
    """A member was told in advance that a scheduled rule changes ``setting`` for them at
    ``effective_at``: each member is told once, and cancelling (or moving) the change tells
    exactly those told. What they were told is the email itself (``mail_messages``)."""

    rule_id: uuid.UUID = fields.UUIDField()
    member_id: uuid.UUID = fields.UUIDField()
    setting = fields.CharField(max_length=100)
    effective_at: datetime = fields.DatetimeField()
    #: When the member was told the change will not happen at ``effective_at`` after all.
    cancelled_at: datetime | None = fields.DatetimeField(null=True)

    class Meta:
        table = "policy_change_notices"
        unique_together = (("tenant_id", "rule_id", "member_id", "effective_at"),)
