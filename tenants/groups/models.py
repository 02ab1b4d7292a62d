"""Groups cut across units; their priority orders their policy rules."""

from __future__ import annotations

import uuid

from tortoise import fields

from tenants.models_base import TenantModel


class Group(TenantModel):
    name = fields.CharField(max_length=200)
    description = fields.TextField(default="")
    #: Higher wins when two groups' rules set the same setting.
    priority = fields.IntField(default=0)

    class Meta:
        table = "groups"
        # A group's name is unique in its organisation whatever its capitals: the index on
        # (tenant_id, lower(name)) of migration 0035, which tortoise cannot declare. This
        # one serves the lists of groups in name order.
        indexes = (("tenant_id", "name"),)


class GroupMembership(TenantModel):
    group: fields.ForeignKeyRelation[Group] = fields.ForeignKeyField(
        "tenants.Group",
        related_name="memberships",
        on_delete=fields.CASCADE,
        db_index=False,
        db_constraint=False,
    )
    group_id: uuid.UUID
    member: fields.ForeignKeyRelation[TenantModel] = fields.ForeignKeyField(
        "tenants.Member",
        related_name="group_memberships",
        on_delete=fields.CASCADE,
        db_index=False,
        db_constraint=False,
    )
    member_id: uuid.UUID

    class Meta:
        table = "group_memberships"
        unique_together = (("tenant_id", "group_id", "member_id"),)
        indexes = (("tenant_id", "member_id"),)
