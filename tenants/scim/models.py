"""What SCIM provisioning stores beside members and groups.

A SCIM User *is* a member and a SCIM Group *is* a group: their ids are the member's and the
group's ids. The rows here hold only what the member and group tables have no column for,
so that the service provider can echo every attribute an identity provider sent
(RFC 7643 §2: attributes a client sets are returned as set), and the organisation's
provisioning rules.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from tortoise import fields

from tenants.models_base import TenantModel


class Deprovisioning(StrEnum):
    """What ``active: false`` or DELETE does to a member (the organisation's choice)."""

    #: Suspend at once: sign-in ends and sessions are revoked in the same transaction.
    SUSPEND = "suspend"
    #: Start a departure with the organisation's default departure policy.
    DEPARTURE = "departure"


class ScimSettings(TenantModel):
    """The organisation's provisioning rules (at most one row per organisation)."""

    #: The User attribute whose value names the member's unit: ``department`` (enterprise
    #: extension) by default, or another enterprise attribute (``division``,
    #: ``organization``, ``costCenter``).
    unit_attribute = fields.CharField(max_length=100, default="department")
    #: Where members go whose attribute names no existing unit (None: the root unit).
    default_unit_id: uuid.UUID | None = fields.UUIDField(null=True)
    deprovisioning = fields.CharEnumField(
        Deprovisioning, max_length=16, default=Deprovisioning.SUSPEND
    )
    #: A SCIM Group created with the name of an existing group not yet provisioned adopts
    #: that group instead of being refused as a duplicate.
    adopt_groups = fields.BooleanField(default=True)

    class Meta:
        table = "scim_settings"
        unique_together = (("tenant_id",),)


class ScimUser(TenantModel):
    """The SCIM side of a member; ``id`` is the member's id.

    Members created elsewhere have no row until SCIM first writes them: their
    ``userName`` reads as their email.
    """

    #: ``userName`` as the client sent it (unique per organisation, case-insensitively).
    user_name = fields.CharField(max_length=320)
    #: The attributes the member table has no column for (name parts, displayName,
    #: title, emails, phone numbers, the enterprise extension...), as SCIM JSON.
    attributes: fields.Field[dict[str, Any]] = fields.JSONField(default=dict)
    #: Set by DELETE: the member is kept (deprovisioned, never destroyed) but the SCIM
    #: resource is gone (RFC 7644 §3.6: later requests for it answer 404).
    deleted_at: datetime | None = fields.DatetimeField(null=True)

    class Meta:
        table = "scim_users"


class ScimGroup(TenantModel):
    """The SCIM side of a group; ``id`` is the group's id."""

    external_id = fields.CharField(max_length=255, null=True)

    class Meta:
        table = "scim_groups"
        unique_together = (("tenant_id", "external_id"),)
