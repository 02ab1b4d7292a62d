"""The member: the organisation-managed account of one person."""

from __future__ import annotations

import uuid
from datetime import datetime

from tortoise import fields

from tenants.members.lifecycle import MemberStatus
from tenants.models_base import TenantModel
from tenants.units.models import Unit


class Member(TenantModel):
    #: Stored lower-cased; unique per organisation.
    email = fields.CharField(max_length=320)
    name = fields.CharField(max_length=200)
    unit: fields.ForeignKeyRelation[Unit] = fields.ForeignKeyField(
        "tenants.Unit",
        related_name="members",
        on_delete=fields.RESTRICT,
        db_index=False,
        db_constraint=False,
    )
    unit_id: uuid.UUID
    manager: fields.ForeignKeyNullableRelation[Member] = fields.ForeignKeyField(
        "tenants.Member",
        related_name="reports",
        null=True,
        on_delete=fields.SET_NULL,
        db_index=False,
        db_constraint=False,
    )
    manager_id: uuid.UUID | None
    #: The ``sub`` claim from the organisation's identity provider.
    idp_subject = fields.CharField(max_length=255, null=True)
    #: SCIM ``externalId`` set by the provisioning client.
    external_id = fields.CharField(max_length=255, null=True)
    roles: fields.Field[list[str]] = fields.JSONField(default=list)
    status = fields.CharEnumField(MemberStatus, max_length=16, default=MemberStatus.INVITED)
    status_changed_at: datetime | None = fields.DatetimeField(null=True)
    #: IANA time zone the member's pages show times in (``Europe/Paris``), as their browser
    #: reported it; None: UTC. Checked with zoneinfo (``tenants.members.preferences``).
    time_zone = fields.CharField(max_length=64, null=True)

    class Meta:
        table = "members"
        unique_together = (
            ("tenant_id", "email"),
            ("tenant_id", "idp_subject"),
            ("tenant_id", "external_id"),
        )
        indexes = (
            ("tenant_id", "unit_id"),
            ("tenant_id", "status"),
            ("tenant_id", "name"),
            ("tenant_id", "manager_id"),
            ("tenant_id", "created_at"),
        )
