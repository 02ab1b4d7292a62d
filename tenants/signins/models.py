"""The sign-in log table: append-only and high-volume (one row per attempt)."""

from __future__ import annotations

import uuid

from tortoise import fields

from tenants.models_base import TenantModel
from tenants.signins.rules import SignInMethod, SignInOutcome


class SignIn(TenantModel):
    """One sign-in attempt, as it ended. Never updated; the runtime role may insert, read,
    and delete (an erased member's rows, migration 0021; retention). Indexes (migration
    0017): ``(tenant_id, at DESC, id DESC)`` for the log itself and one per filter (member,
    outcome, method, reason, email) with the same tail, so every filtered page is one index
    range. Partitioned by month on ``at`` (migration 0022, ``tenants.privacy.partitions``)."""

    at = fields.DatetimeField()
    method = fields.CharEnumField(SignInMethod, max_length=16)
    outcome = fields.CharEnumField(SignInOutcome, max_length=16)
    #: ``tenants.signins.rules.Reason``; None when the sign-in succeeded.
    reason = fields.CharField(max_length=40, null=True)
    #: Who, as far as known: the email typed or claimed (lower case), the IdP subject,
    #: the member it matched. All None for a protocol refusal before the IdP named anyone.
    email = fields.CharField(max_length=320, null=True)
    idp_subject = fields.CharField(max_length=255, null=True)
    member_id: uuid.UUID | None = fields.UUIDField(null=True)
    #: The identity provider's issuer (SSO), or the product client's id (product_client).
    idp = fields.CharField(max_length=500, null=True)
    #: What went wrong in the protocol, in words (a SignInError's message; migration 0040).
    detail = fields.CharField(max_length=300, null=True)
    client_addr = fields.CharField(max_length=100, null=True)
    user_agent = fields.CharField(max_length=300, null=True)

    class Meta:
        table = "sign_ins"
