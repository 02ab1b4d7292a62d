"""Units form one tree per organisation, stored with a materialised path.

``path`` is the slash-joined ids from the root down to the unit itself, so a subtree is a
prefix (an index range scan) and a move rewrites the prefix of the subtree in one UPDATE.
"""

from __future__ import annotations

import uuid

from tortoise import fields

from tenants.models_base import TenantModel


class Unit(TenantModel):
    parent: fields.ForeignKeyNullableRelation[Unit] = fields.ForeignKeyField(
        "tenants.Unit",
        related_name="children",
        null=True,
        on_delete=fields.RESTRICT,
        db_index=False,
        db_constraint=False,
    )
    parent_id: uuid.UUID | None
    name = fields.CharField(max_length=200)
    path = fields.TextField()
    depth = fields.IntField()

    class Meta:
        table = "units"
        # A unit's name is unique among its siblings whatever its capitals: the index on
        # (tenant_id, parent_id, lower(name)) of migration 0035, which tortoise cannot
        # declare. This one serves the pages of siblings in name order.
        indexes = (("tenant_id", "parent_id", "name"), ("tenant_id", "path"))
