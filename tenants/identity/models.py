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


class EntraMatch(StrEnum):
    """How a member is found from the user in an Entra token-issuance callout. Entra's OIDC
    ``sub`` is pairwise (per application), so it never equals anything Entra sends here."""

    #: The user's object id, as Entra's provisioning sends it in SCIM ``externalId``.
    OBJECT_ID = "object_id"
    #: The user principal name, as Entra's provisioning sends it in SCIM ``userName``
    #: (else the member's email).
    UPN = "upn"
    #: The user's ``mail`` against the member's email.
    MAIL = "mail"


class EntraClaimsProvider(TenantModel):
    """The organisation's Entra tenant and the app registration of Tenantry's API, whose
    access tokens (issued by Entra to its Authentication Events service) are the only
    ones ``POST /v1/claims/token-issuance`` accepts for the organisation. One per
    organisation; an Entra app belongs to one organisation (unique across them)."""

    #: The Entra tenant id (a GUID), as in the token's ``iss`` and ``tid``.
    entra_tenant_id = fields.CharField(max_length=36)
    #: The app registration's application (client) id: the token's ``aud`` (v2 tokens).
    app_id = fields.CharField(max_length=36)
    #: The app ID URI (``api://…``), the ``aud`` of v1 tokens when it is set.
    app_id_uri = fields.CharField(max_length=500, null=True)
    match_by = fields.CharEnumField(EntraMatch, max_length=16, default=EntraMatch.OBJECT_ID)

    class Meta:
        table = "entra_claims_providers"
        unique_together = (("tenant_id",), ("entra_tenant_id", "app_id"))
