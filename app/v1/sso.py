"""The organisation's identity provider connection (the client secret is write-only)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import AnyHttpUrl, Field, StringConstraints

from app.api import ApiRouter, Call
from app.v1.common import Input, Output
from tenants.errors import NotFoundError
from tenants.organisations.service import normalise_domains
from tenants.permissions import Permission
from tenants.sso import service

router = ApiRouter("/v1/sso-connection", "sign-in")

Claim = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
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
    redirect_uri: str = Field(description="Register this at the identity provider.")
    backchannel_logout_uri: str


class SsoConnectionIn(Input):
    issuer: AnyHttpUrl
    client_id: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)
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


@router.put(
    "",
    summary="Create or replace the identity provider connection",
    permission=Permission.SSO_WRITE,
    body=SsoConnectionIn,
    response=SsoConnectionOut,
    errors=(422,),
)
async def put_sso_connection(call: Call[SsoConnectionIn, Input]) -> SsoConnectionOut:
    changes = call.body.model_dump()
    changes["issuer"] = (
        str(call.body.issuer).rstrip("/")
        if str(call.body.issuer).endswith("/") and call.body.issuer.path in ("/", None)
        else str(call.body.issuer)
    )
    changes["allowed_domains"] = normalise_domains(changes["allowed_domains"])
    if changes["client_secret"] is None:
        changes.pop("client_secret")
    await service.save_connection(changes, box=call.request.app.state.web.box, actor=call.actor)
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
