"""An organisation's single sign-on connection and the sign-ins in flight through it."""

from __future__ import annotations

import uuid
from datetime import datetime

from tortoise import fields

from tenants.models_base import TenantModel
from tenants.units.models import Unit


def default_scopes() -> list[str]:
    return ["openid", "email", "profile"]


class SsoConnection(TenantModel):
    """The organisation's OpenID Connect identity provider (one per organisation)."""

    issuer = fields.CharField(max_length=500)
    client_id = fields.CharField(max_length=255)
    #: AES-GCM ciphertext of the client secret (see tenants/secrets.py); never returned.
    client_secret_enc = fields.TextField(default="")
    scopes: fields.Field[list[str]] = fields.JSONField(default=default_scopes)
    email_claim = fields.CharField(max_length=100, default="email")
    name_claim = fields.CharField(max_length=100, default="name")
    groups_claim = fields.CharField(max_length=100, null=True)
    unit_claim = fields.CharField(max_length=100, null=True)
    #: Email domains allowed to sign in; empty means the organisation's verified domains.
    allowed_domains: fields.Field[list[str]] = fields.JSONField(default=list)
    jit_provisioning = fields.BooleanField(default=False)
    default_unit: fields.ForeignKeyNullableRelation[Unit] = fields.ForeignKeyField(
        "tenants.Unit",
        related_name=False,
        null=True,
        on_delete=fields.SET_NULL,
        db_index=False,
        db_constraint=False,
    )
    default_unit_id: uuid.UUID | None
    enabled = fields.BooleanField(default=True)
    #: Signing out of Tenantry also signs out at the provider (RP-Initiated Logout 1.0).
    sign_out_at_provider = fields.BooleanField(default=False)
    last_tested_at: datetime | None = fields.DatetimeField(null=True)
    last_test_result: fields.Field[dict[str, object] | None] = fields.JSONField(null=True)
    #: The configuration before the last change (``service.restorable``), restorable for
    #: a day: the identity-change safety net's way back.
    previous_config: fields.Field[dict[str, object] | None] = fields.JSONField(
        null=True, description="The configuration before the last change (restorable)."
    )
    previous_saved_at: datetime | None = fields.DatetimeField(null=True)

    class Meta:
        table = "sso_connections"
        unique_together = (("tenant_id",),)


class LoginAttempt(TenantModel):
    """One authorization request sent to the IdP, awaiting its callback (single use)."""

    state = fields.CharField(max_length=100)
    nonce = fields.CharField(max_length=100)
    code_verifier = fields.CharField(max_length=200)
    #: SHA-256 of a cookie set on the browser that started the sign-in (login CSRF guard).
    browser_binding = fields.CharField(max_length=64)
    return_to = fields.CharField(max_length=500, default="")
    used_at: datetime | None = fields.DatetimeField(null=True)
    #: The provider and client the browser was sent to (None: made before migration 0039).
    issuer = fields.CharField(max_length=500, null=True)
    client_id = fields.CharField(max_length=255, null=True)

    class Meta:
        table = "login_attempts"
        unique_together = (("tenant_id", "state"),)


class SeenLogoutToken(TenantModel):
    """A back-channel logout token already acted on, kept until it expires so a captured
    token cannot be replayed (Back-Channel Logout 1.0 §2.6: the jti SHOULD be tracked)."""

    jti = fields.CharField(max_length=255)
    expires_at = fields.DatetimeField()

    class Meta:
        table = "seen_logout_tokens"
        unique_together = (("tenant_id", "jti"),)
