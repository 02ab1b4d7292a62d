"""An organisation's email domains and their proof."""

from __future__ import annotations

from datetime import datetime

from tortoise import fields

from tenants.domains.rules import DomainProof, DomainStatus
from tenants.models_base import TenantModel


class Domain(TenantModel):
    """One email domain of the organisation, pending until proven.

    ``name`` is unique per organisation; among proven domains (verified or flagged) it is
    unique across organisations (a partial unique index, migration 0017), so two
    organisations proving the same domain at once cannot both win.
    """

    name = fields.CharField(max_length=253)
    #: The secret part of the TXT record to publish (``tenantry-verification=<token>``).
    token = fields.CharField(max_length=64)
    status = fields.CharEnumField(DomainStatus, max_length=16, default=DomainStatus.PENDING)
    proof = fields.CharEnumField(DomainProof, max_length=16, null=True)
    verified_at: datetime | None = fields.DatetimeField(null=True)
    last_checked_at: datetime | None = fields.DatetimeField(null=True)
    #: Set while flagged: since when the record has been missing.
    flagged_at: datetime | None = fields.DatetimeField(null=True)
    #: When the periodic re-check is due (a re-check job due at another time is stale).
    next_check_at: datetime | None = fields.DatetimeField(null=True)
    #: What the last check found, in words (shown in the console).
    last_check_result = fields.CharField(max_length=300, null=True)

    class Meta:
        table = "domains"
        unique_together = (("tenant_id", "name"),)
