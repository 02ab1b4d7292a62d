"""Server-side sign-in sessions (revocable) and local password credentials."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from tortoise import fields

from tenants.members.models import Member
from tenants.models_base import TenantModel


class AuthMethod(StrEnum):
    OIDC = "oidc"
    PASSWORD = "password"
    BREAK_GLASS = "break_glass"
    #: A one-time link from an invitation email (tenants.members.invitations).
    INVITATION = "invitation"


class Session(TenantModel):
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "tenants.Member",
        related_name="sessions",
        on_delete=fields.CASCADE,
        db_index=False,
        db_constraint=False,
    )
    member_id: uuid.UUID
    #: SHA-256 of the secret in the browser's cookie.
    secret_hash = fields.CharField(max_length=64)
    auth_method = fields.CharEnumField(AuthMethod, max_length=16)
    last_seen_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    revoked_at: datetime | None = fields.DatetimeField(null=True)
    revoked_reason = fields.CharField(max_length=200, null=True)
    #: The IdP's session id (``sid``) and subject, for back-channel logout.
    idp_sid = fields.CharField(max_length=255, null=True)
    idp_subject = fields.CharField(max_length=255, null=True)
    #: The ID token the session began with, encrypted (``tenants.secrets``), kept only
    #: while the organisation signs out at its provider too: the ``id_token_hint`` of
    #: RP-Initiated Logout. Cleared when the session ends.
    idp_id_token_enc = fields.TextField(null=True)
    client_addr = fields.CharField(max_length=100, null=True)
    user_agent = fields.CharField(max_length=300, null=True)

    class Meta:
        table = "sessions"
        indexes = (
            ("tenant_id", "member_id"),
            ("tenant_id", "idp_sid"),
            ("tenant_id", "idp_subject"),
        )


class LocalCredential(TenantModel):
    """A password for local sign-in (argon2id), or the break-glass admin's."""

    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "tenants.Member",
        related_name=False,
        on_delete=fields.CASCADE,
        db_index=False,
        db_constraint=False,
    )
    member_id: uuid.UUID
    password_hash = fields.CharField(max_length=300)
    break_glass = fields.BooleanField(default=False)
    # Written by versions before migration 0046, read by none since (wrong passwords are
    # counted per address and client in rate_limit_hits); kept while such a version may run
    # beside this one.
    failed_attempts = fields.IntField(default=0)
    locked_until: datetime | None = fields.DatetimeField(null=True)
    last_used_at: datetime | None = fields.DatetimeField(null=True)

    class Meta:
        table = "local_credentials"
        unique_together = (("tenant_id", "member_id"),)
