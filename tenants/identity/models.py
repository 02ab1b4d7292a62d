"""Where an organisation's members are mirrored: its identity backend configuration."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from tortoise import fields

from tenants.models_base import TenantModel


class BackendKind(StrEnum):
    #: Nothing is mirrored: Tenantry is the OIDC client of the organisation's own IdP.
    LOCAL = "local"
    #: Organisations, members, groups and sessions are mirrored into a Keycloak 26 realm.
    KEYCLOAK = "keycloak"


class IdentityBackendConfig(TenantModel):
    """One per organisation; no row means ``local``."""

    kind = fields.CharEnumField(BackendKind, max_length=16, default=BackendKind.LOCAL)
    #: Keycloak's base URL (``https://kc.example``, without ``/admin``).
    server_url = fields.CharField(max_length=500, null=True)
    realm = fields.CharField(max_length=255, null=True)
    #: A confidential client of ``realm`` with the realm-management roles the adapter needs.
    client_id = fields.CharField(max_length=255, null=True)
    #: AES-GCM ciphertext of the client secret (tenants/secrets.py); never returned.
    client_secret_enc = fields.TextField(default="")
    last_synced_at: datetime | None = fields.DatetimeField(null=True)
    #: The last failure talking to the backend (cleared by the next success).
    last_error: str | None = fields.TextField(null=True)

    class Meta:
        table = "identity_backends"
        unique_together = (("tenant_id",),)
