"""The organisation's identity provider connection (the client secret is write-only)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import AnyHttpUrl, Field, PrivateAttr, StringConstraints, model_validator
from pydantic_core.core_schema import ValidatorFunctionWrapHandler

from app.api import ApiRouter, Call
from app.v1.common import NAME, ConfirmLosing, Input, Output, StoredUrl
from tenants.errors import NotFoundError
from tenants.models_base import max_length_of
from tenants.organisations.service import normalise_domains
from tenants.permissions import Permission
from tenants.sso import safety, service
from tenants.sso.models import SsoConnection

router = ApiRouter("/v1/sso-connection", "sign-in")

Claim = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), NAME]
Scope = Annotated[str, StringConstraints(pattern=r"^[\x21\x23-\x5b\x5d-\x7e]{1,100}$")]


class SsoConnectionOut(Output):
    issuer: str
    client_id: str
    has_client_secret: bool = Field(description="Whether a secret is stored; it is never returned.")
    scopes: list[str]
    email_claim: str
    name_claim: str
    groups_claim: str | None
    unit_claim: str | None
    allowed_domains: list[str]
    jit_provisioning: bool
    default_unit_id: uuid.UUID | None
    enabled: bool
    sign_out_at_provider: bool = Field(
        description="Signing out of Tenantry also signs the person out at the identity "
        "provider (OpenID Connect RP-Initiated Logout 1.0), so the next person at a shared "
        "computer does not come in as them. Needs an end_session_endpoint in the "
        "provider's discovery document and post_logout_redirect_uri registered there."
    )
    redirect_uri: str = Field(description="Register this at the identity provider.")
    backchannel_logout_uri: str
    post_logout_redirect_uri: str = Field(
        description="Register this at the identity provider as an address to return to "
        "after signing out (with sign_out_at_provider)."
    )


class SsoConnectionIn(Input):
    issuer: Annotated[AnyHttpUrl, StoredUrl(max_length_of(SsoConnection, "issuer"))]
    client_id: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255), NAME
    ]
    client_secret: Annotated[str, StringConstraints(min_length=1, max_length=2000)] | None = Field(
        None, description="Omit to keep the stored secret."
    )
    scopes: list[Scope] = Field(
        default_factory=lambda: ["openid", "email", "profile"], max_length=20
    )
    email_claim: Claim = "email"
    name_claim: Claim = "name"
    groups_claim: Claim | None = None
    unit_claim: Claim | None = None
    allowed_domains: list[Annotated[str, StringConstraints(max_length=253)]] = Field(
        default_factory=list, max_length=100
    )
    jit_provisioning: bool = False
    default_unit_id: uuid.UUID | None = None
    enabled: bool = True
    sign_out_at_provider: bool = False
    #: Whether the issuer as sent ends in "/": parsed, ``https://idp`` and ``https://idp/``
    #: are one URL, but an issuer is compared character for character (OIDC Discovery
    #: §4.3), and Auth0's is ``https://tenant.auth0.com/``, Okta's is ``https://tenant.okta.com``.
    _issuer_slash: bool = PrivateAttr(default=False)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_issuer_as_sent(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        model = handler(data)
        issuer = data.get("issuer") if isinstance(data, dict) else None
        model._issuer_slash = isinstance(issuer, str) and issuer.strip().endswith("/")
        return model


class SsoConnectionChange(SsoConnectionIn):
    confirm_losing: ConfirmLosing = Field(
        None,
        description="When the change takes sign-in from members, their count as the "
        "preview answered it (the change is refused otherwise).",
    )


class LosingMemberOut(Output):
    name: str
    email: str
    roles: list[str]
    reason: str = Field(
        description="domain (email domain no longer admitted), subject (linked to the old "
        "issuer or client) or disabled (sign-in through the provider switched off)."
    )


class SignInLossOut(Output):
    losing: int = Field(description="Members able to sign in now who would no longer be.")
    losing_by_domain: int
    losing_by_subject: int
    admins_losing: int
    owners_losing: int
    every_owner_locked_out: bool
    break_glass_owner: bool
    refused: bool = Field(
        description="The change would lock out every owner and no owner has a break-glass "
        "password: it is refused."
    )
    confirm_losing: int | None = Field(
        description="What to send as confirm_losing to go ahead (null: nothing to confirm)."
    )
    people: list[LosingMemberOut] = Field(
        description="Admins first, then other members; at most 50 of each."
    )

    @classmethod
    def of(cls, preview: safety.Preview) -> SignInLossOut:
        return cls(
            losing=preview.losing,
            losing_by_domain=preview.losing_by_domain,
            losing_by_subject=preview.losing_by_subject,
            admins_losing=preview.admins_losing,
            owners_losing=preview.owners_losing,
            every_owner_locked_out=preview.every_owner_locked_out,
            break_glass_owner=preview.break_glass_owner,
            refused=preview.refused,
            confirm_losing=preview.losing or None,
            people=[
                LosingMemberOut(name=p.name, email=p.email, roles=list(p.roles), reason=p.reason)
                for p in preview.people
            ],
        )


class TestStep(Output):
    step: str
    ok: bool
    detail: str


class ConnectionTestOut(Output):
    ok: bool
    steps: list[TestStep]


async def _view(call: Call[Any, Any]) -> SsoConnectionOut:
    from tenants.organisations.service import get_current_organisation

    connection = await service.get_connection()
    if connection is None:
        raise NotFoundError("no identity provider is configured yet")
    org = await get_current_organisation()
    base = call.request.app.state.settings.base_url
    return SsoConnectionOut(
        **service.connection_view(connection),
        redirect_uri=f"{base}/oidc/{org.slug}/callback",
        backchannel_logout_uri=f"{base}/oidc/{org.slug}/backchannel-logout",
        post_logout_redirect_uri=f"{base}/oidc/{org.slug}/signed-out",
    )


@router.get(
    "",
    summary="Get the identity provider connection",
    permission=Permission.SSO_READ,
    response=SsoConnectionOut,
    errors=(404,),
)
async def get_sso_connection(call: Call[Input, Input]) -> SsoConnectionOut:
    return await _view(call)


def connection_changes(body: SsoConnectionIn) -> dict[str, Any]:
    """The service's changes from the body: the issuer as sent (with a trailing slash
    after the host only when it was sent with one), the domains normalised, an absent
    secret kept."""
    changes = body.model_dump(exclude={"confirm_losing"})
    issuer = str(body.issuer)
    bare_host = body.issuer.path in ("/", None) and not body.issuer.query
    changes["issuer"] = (
        issuer[:-1] if bare_host and issuer.endswith("/") and not body._issuer_slash else issuer
    )
    changes["allowed_domains"] = normalise_domains(changes["allowed_domains"])
    if changes["client_secret"] is None:
        changes.pop("client_secret")
    return changes


@router.put(
    "",
    summary="Create or replace the identity provider connection",
    permission=Permission.SSO_WRITE,
    body=SsoConnectionChange,
    response=SsoConnectionOut,
    errors=(409, 422),
)
async def put_sso_connection(call: Call[SsoConnectionChange, Input]) -> SsoConnectionOut:
    """409 when the change would lock out every owner and none has a break-glass password;
    422 naming ``confirm_losing`` when members would lose sign-in and it is not their count
    (see ``POST /v1/sso-connection/preview``)."""
    await service.save_connection(
        connection_changes(call.body),
        box=call.request.app.state.web.box,
        actor=call.actor,
        confirm_losing=call.body.confirm_losing,
    )
    return await _view(call)


@router.post(
    "/preview",
    summary="Who would lose sign-in if the connection changed so (nothing changes)",
    permission=Permission.SSO_WRITE,
    body=SsoConnectionIn,
    response=SignInLossOut,
    errors=(422,),
)
async def preview_sso_connection(call: Call[SsoConnectionIn, Input]) -> SignInLossOut:
    """Members able to sign in whose email domain would no longer be admitted or whose
    identity-provider link would no longer match (issuer or client change), admins first."""
    return SignInLossOut.of(await service.preview_change(connection_changes(call.body)))


class RestoreQuery(Input):
    confirm_losing: ConfirmLosing = Field(
        None,
        description="When the restore takes sign-in from members, their count as "
        "POST /v1/sso-connection/restore-preview answers it.",
    )


@router.post(
    "/restore-preview",
    summary="Who would lose sign-in if the previous configuration came back",
    permission=Permission.SSO_WRITE,
    response=SignInLossOut,
)
async def preview_sso_restore(call: Call[Input, Input]) -> SignInLossOut:
    """Changes nothing; the same counts as a change's preview."""
    return SignInLossOut.of(await service.preview_restore())


@router.post(
    "/restore",
    summary="Restore the configuration before the last change (within 24 hours)",
    permission=Permission.SSO_WRITE,
    query=RestoreQuery,
    response=SsoConnectionOut,
    errors=(404, 409, 422),
)
async def restore_sso_connection(call: Call[Input, RestoreQuery]) -> SsoConnectionOut:
    """409 when there is no previous configuration, it was replaced over 24 hours ago, or
    it would lock out every owner; 422 naming ``confirm_losing`` when members would lose
    sign-in and it is not their count (as for a change)."""
    await service.restore_previous(actor=call.actor, confirm_losing=call.query.confirm_losing)
    return await _view(call)


@router.post(
    "/test",
    summary="Fetch discovery and keys now and report what is wrong",
    permission=Permission.SSO_WRITE,
    response=ConnectionTestOut,
    errors=(404,),
)
async def test_sso_connection(call: Call[Input, Input]) -> ConnectionTestOut:
    result = await service.test_connection(call.request.app.state.web.rp, actor=call.actor)
    return ConnectionTestOut(
        ok=result.ok, steps=[TestStep(step=s, ok=o, detail=d) for s, o, d in result.steps]
    )
