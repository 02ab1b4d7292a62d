"""Microsoft Entra's custom claims provider: which access tokens may call the token-issuance
callout for an organisation, and which member a callout is about.

Entra authenticates the ``OnTokenIssuanceStart`` callout with an access token it issues to
its Authentication Events service for the app registration that represents the API
(Microsoft's "custom claims provider" reference and "Protect your REST API"): the ``aud``
is that app (its application id, or for v1 tokens possibly its app ID URI), the caller is
the service's app ``99045fe1-7639-4a75-9d4a-577b6ca3810f`` (``azp`` in v2 tokens, ``appid``
in v1 tokens) and the issuer is the tenant's (``https://login.microsoftonline.com/{tid}/v2.0``
or, for v1, ``https://sts.windows.net/{tid}/``). ``check_callout_claims`` holds a token's
claims to that; the signature and the time claims are checked at the HTTP edge.

The user in a callout is matched as the organisation chooses (``EntraMatch``): Entra's
OIDC ``sub`` is pairwise, so the object id, the UPN or the mail are what it sends that
Tenantry can hold. A user Tenantry does not know (a guest, someone not yet provisioned)
matches no member: the callout answers with no claims rather than fail their sign-in.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from tenants import db
from tenants.actors import Actor
from tenants.audit import service as audit
from tenants.errors import AuthenticationError, ConflictError
from tenants.identity.models import EntraClaimsProvider, EntraMatch
from tenants.ids import OrgId

#: Microsoft's Authentication Events service: the only caller a callout token may name.
AUTHENTICATION_EVENTS_APP_ID = "99045fe1-7639-4a75-9d4a-577b6ca3810f"
CALLOUT_DATA_TYPE = "microsoft.graph.onTokenIssuanceStartCalloutData"
_GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_ISSUER = re.compile(
    rf"^(?:https://login\.microsoftonline\.com/(?P<v2>{_GUID})/v2\.0"
    rf"|https://sts\.windows\.net/(?P<v1>{_GUID})/)$"
)
ACTOR_PREFIX = "entra:"


def entra_tenant_of(issuer: object) -> str | None:
    """The tenant id in an Entra issuer (v2 or v1 form), lower case; None for others."""
    if not isinstance(issuer, str):
        return None
    found = _ISSUER.match(issuer)
    if found is None:
        return None
    return (found.group("v2") or found.group("v1")).lower()


@dataclass(frozen=True, slots=True)
class ProviderView:
    """What checks a callout token: the organisation's Entra tenant and app."""

    entra_tenant_id: str
    app_id: str
    app_id_uri: str | None
    match_by: EntraMatch


def _audiences(claims: dict[str, Any]) -> list[str]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return [aud]
    return [a for a in aud if isinstance(a, str)] if isinstance(aud, list) else []


def check_callout_claims(claims: dict[str, Any], provider: ProviderView) -> None:
    """Raise AuthenticationError naming the first claim that does not belong to a callout
    token of ``provider`` (issuer, tenant, audience, calling app); None when all do."""
    tenant = entra_tenant_of(claims.get("iss"))
    if tenant is None or tenant != provider.entra_tenant_id:
        raise AuthenticationError("the token was not issued by the organisation's Entra tenant")
    if "tid" in claims and str(claims["tid"]).lower() != provider.entra_tenant_id:
        raise AuthenticationError("the token's tid is not the organisation's Entra tenant")
    wanted = {provider.app_id.lower(), *([provider.app_id_uri] if provider.app_id_uri else [])}
    if not any(a.lower() in wanted or a in wanted for a in _audiences(claims)):
        raise AuthenticationError("the token is not for the organisation's app registration")
    version_two = str(claims.get("ver", "")) == "2.0" or "azp" in claims
    caller = claims.get("azp") if version_two else claims.get("appid")
    if not isinstance(caller, str) or caller.lower() != AUTHENTICATION_EVENTS_APP_ID:
        raise AuthenticationError(
            "the token was not issued to Microsoft's Authentication Events service "
            f"({'azp' if version_two else 'appid'} is not {AUTHENTICATION_EVENTS_APP_ID})"
        )


# --- the organisation's configuration ------------------------------------------------------


def view(provider: EntraClaimsProvider) -> ProviderView:
    return ProviderView(
        provider.entra_tenant_id, provider.app_id, provider.app_id_uri, provider.match_by
    )


async def get_provider() -> EntraClaimsProvider | None:
    return await EntraClaimsProvider.filter().first()


async def save_provider(changes: dict[str, Any], *, actor: Actor) -> EntraClaimsProvider:
    """Create or change the organisation's Entra claims provider (tenant id, app id, app ID
    URI, how members are matched). ConflictError when another organisation holds the
    same Entra app: a callout token then could not say which organisation it is for."""
    provider = await EntraClaimsProvider.filter().select_for_update().first()
    before = _view_dict(provider) if provider else None
    changes = {
        **changes,
        "entra_tenant_id": str(changes["entra_tenant_id"]).lower(),
        "app_id": str(changes["app_id"]).lower(),
    }
    other = await organisation_for(changes["entra_tenant_id"], changes["app_id"])
    if other is not None and other != db.current_org():
        raise ConflictError("another organisation already uses this Entra app registration")
    if provider is None:
        provider = EntraClaimsProvider(tenant_id=db.current_org())
    for key, value in changes.items():
        setattr(provider, key, value)
    old, new = audit.changed_fields(before or {}, _view_dict(provider))
    if before is not None and not new:
        return provider
    await provider.save()
    await audit.record(
        "identity.entra_claims_provider_saved",
        "entra_claims_provider",
        provider.id,
        actor=actor,
        before=old if before else None,
        after=new,
    )
    return provider


async def delete_provider(*, actor: Actor) -> bool:
    provider = await EntraClaimsProvider.filter().select_for_update().first()
    if provider is None:
        return False
    await provider.delete()
    await audit.record(
        "identity.entra_claims_provider_deleted",
        "entra_claims_provider",
        provider.id,
        actor=actor,
        before=_view_dict(provider),
    )
    return True


def _view_dict(provider: EntraClaimsProvider) -> dict[str, Any]:
    return {
        "entra_tenant_id": provider.entra_tenant_id,
        "app_id": provider.app_id,
        "app_id_uri": provider.app_id_uri,
        "match_by": provider.match_by,
    }


async def organisation_for(entra_tenant_id: str, audience: str) -> OrgId | None:
    """The organisation whose Entra app is ``audience`` in ``entra_tenant_id`` (callable
    before any tenant transaction: a SECURITY DEFINER lookup, like a domain's)."""
    from tortoise import connections

    _, rows = await connections.get("default").execute_query(
        "SELECT organisation_id_by_entra_app($1, $2) AS id", [entra_tenant_id, audience]
    )
    return OrgId(rows[0]["id"]) if rows and rows[0]["id"] else None


# --- the member a callout is about ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CalloutUser:
    """The ``data.authenticationContext.user`` of a callout, as far as matching needs it."""

    object_id: str | None
    user_principal_name: str | None
    mail: str | None


_MEMBER_BY = {
    EntraMatch.OBJECT_ID: "SELECT id FROM members WHERE tenant_id = $1 AND external_id = $2",
    EntraMatch.MAIL: "SELECT id FROM members WHERE tenant_id = $1 AND email = lower($2)",
    # Entra provisions userName from the UPN; a member it did not provision is matched by
    # email (most organisations' UPNs are their mail addresses).
    EntraMatch.UPN: (
        "SELECT id FROM scim_users WHERE tenant_id = $1 AND lower(user_name) = lower($2) "
        "AND deleted_at IS NULL UNION ALL "
        "SELECT id FROM members WHERE tenant_id = $1 AND email = lower($2) LIMIT 1"
    ),
}


def lookup_value(user: CalloutUser, match_by: EntraMatch) -> str | None:
    """What the member is looked up by; None when the callout does not carry it."""
    value = {
        EntraMatch.OBJECT_ID: user.object_id,
        EntraMatch.UPN: user.user_principal_name,
        EntraMatch.MAIL: user.mail,
    }[match_by]
    return value.strip() if value and value.strip() else None


async def find_member(user: CalloutUser, match_by: EntraMatch) -> uuid.UUID | None:
    """The member the callout is about, in the open tenant transaction; None when Tenantry
    does not know them."""
    value = lookup_value(user, match_by)
    if value is None:
        return None
    row = await db.fetch_one(_MEMBER_BY[match_by], db.current_org(), value)
    return row["id"] if row else None
