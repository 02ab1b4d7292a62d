"""Policy claims for identity providers, called while they issue a member's token.

Two callers:

- ``GET /v1/claims?email=…`` (or ``idp_subject=…``, ``member_id=…``): the compact claim
  object, for a Keycloak protocol mapper that calls a URL and puts the JSON answer in a
  claim (see the README); authenticated like products, an OAuth client
  (``POST /v1/products/{id}/clients``) holding the scope ``claims:read``;
- ``POST /v1/claims/token-issuance``: Microsoft Entra's custom claims provider
  (``OnTokenIssuanceStart`` custom authentication extension), called the way Entra calls
  it: with an access token Entra issues to its Authentication Events service for the
  organisation's app registration (``/v1/claims/entra-provider`` names the Entra tenant and
  app), and nothing else; claims as strings and string lists.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints
from starlette.responses import JSONResponse, Response

from app.api import ApiRouter, Call
from app.auth import is_entra_callout
from app.v1.common import Input, Output
from tenants.errors import FieldProblem, InvalidInputError, NotFoundError, PermissionDeniedError
from tenants.identity import entra
from tenants.identity.claims import claims_for
from tenants.identity.models import EntraMatch
from tenants.permissions import Permission

router = ApiRouter("/v1/claims", "claims")

RESPONSE_DATA = "microsoft.graph.onTokenIssuanceStartResponseData"
PROVIDE_CLAIMS = "microsoft.graph.tokenIssuanceStart.provideClaimsForToken"


class ClaimsQuery(Input):
    email: EmailStr | None = None
    idp_subject: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None
    member_id: uuid.UUID | None = Field(
        None, description="Tenantry's member id (a mirrored Keycloak user's username)."
    )


class ClaimsOut(Output):
    mid: uuid.UUID = Field(description="The member's id in Tenantry.")
    org: str = Field(description="The organisation's slug.")
    roles: list[str] = Field(description="The member's roles in the organisation.")
    s: dict[str, Any] = Field(description="Settings that are locked or not the default.")
    l: list[str] = Field(description="The settings the organisation locks.")  # noqa: E741
    v: int = Field(description="The policy version these settings come from.")


def _decisions(call: Call[Any, Any]) -> Any:
    return call.request.app.state.decisions


@router.get(
    "",
    summary="A member's settings and roles as compact token claims",
    permission=Permission.CLAIMS_READ,
    query=ClaimsQuery,
    response=ClaimsOut,
    errors=(404, 409, 422),
)
async def get_claims(call: Call[Input, ClaimsQuery]) -> Response:
    """Give exactly one of ``email``, ``idp_subject``, ``member_id``. Unknown members answer
    404; members who may not sign in (suspended, departed) answer 409
    ``member_cannot_sign_in``, so the identity provider issues no token."""
    q = call.query
    given = [name for name in ("email", "idp_subject", "member_id") if getattr(q, name)]
    if len(given) != 1:
        raise InvalidInputError(
            "give exactly one of email, idp_subject and member_id",
            fields=[FieldProblem(f"query.{n}", "give exactly one") for n in given or ["email"]],
        )
    claims = await claims_for(
        email=q.email, idp_subject=q.idp_subject, member_id=q.member_id, cache=_decisions(call)
    )
    return JSONResponse(claims.compact(), headers={"Cache-Control": "no-store"})


class CalloutType(StrEnum):
    TOKEN_ISSUANCE_START = "microsoft.graph.authenticationEvent.tokenIssuanceStart"  # noqa: S105


class _Lenient(BaseModel):
    """Parts of a provider's request: fields we do not need are ignored, not refused."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class EntraUser(_Lenient):
    id: Annotated[str, StringConstraints(max_length=255)] | None = None
    mail: Annotated[str, StringConstraints(max_length=320)] | None = None
    user_principal_name: Annotated[str, StringConstraints(max_length=320)] | None = Field(
        None, alias="userPrincipalName"
    )


class EntraContext(_Lenient):
    user: EntraUser


class EntraData(_Lenient):
    odata_type: Annotated[str, StringConstraints(max_length=200)] = Field(alias="@odata.type")
    authentication_context: EntraContext = Field(alias="authenticationContext")


class TokenIssuanceIn(_Lenient):
    """The callout as Entra sends it; fields Microsoft adds anywhere are ignored."""

    type: CalloutType
    source: Annotated[str, StringConstraints(max_length=2000)] | None = None
    data: EntraData


class ProvideClaims(Output):
    odata_type: Literal["microsoft.graph.tokenIssuanceStart.provideClaimsForToken"] = Field(
        alias="@odata.type"
    )
    claims: dict[str, str | list[str]]


class TokenIssuanceData(Output):
    odata_type: Literal["microsoft.graph.onTokenIssuanceStartResponseData"] = Field(
        alias="@odata.type"
    )
    actions: list[ProvideClaims]


class TokenIssuanceOut(Output):
    data: TokenIssuanceData


@router.post(
    "/token-issuance",
    summary="Claims for a token Entra is issuing (custom claims provider)",
    permission=Permission.CLAIMS_CALLOUT,
    body=TokenIssuanceIn,
    response=TokenIssuanceOut,
    errors=(401, 403, 409, 422),
)
async def token_issuance_claims(call: Call[TokenIssuanceIn, Input]) -> Response:
    """Only Entra's callout token for the organisation's app registration is accepted
    (anything else: 403). ``data.@odata.type`` must be
    ``microsoft.graph.onTokenIssuanceStartCalloutData``. The member is matched by the
    user's object id, UPN or mail, as the organisation configured; a user Tenantry does not
    know gets an answer with no claims (their sign-in goes on). Claims are strings or
    string lists, prefixed ``tenantry_``; the settings travel as one compact JSON string.
    A member who may not sign in (suspended, departed) answers 409, which makes Entra
    refuse the token."""
    if not is_entra_callout(call.principal):
        raise PermissionDeniedError(
            "only Entra's token-issuance callout may call this, with the access token Entra "
            "issues for the organisation's app registration"
        )
    data = call.body.data
    if data.odata_type.removeprefix("#") != entra.CALLOUT_DATA_TYPE:
        raise InvalidInputError(
            "this is not a token issuance start callout",
            fields=[FieldProblem("data.@odata.type", f"expected {entra.CALLOUT_DATA_TYPE}")],
        )
    provider = await entra.get_provider()
    if provider is None:  # removed since the token was checked
        raise NotFoundError("the organisation has no Entra claims provider")
    user = data.authentication_context.user
    found = await entra.find_member(
        entra.CalloutUser(user.id, user.user_principal_name, user.mail), provider.match_by
    )
    claims: dict[str, Any] = {}
    if found is not None:
        claims = (await claims_for(member_id=found, cache=_decisions(call))).as_strings()
    body = {
        "data": {
            "@odata.type": RESPONSE_DATA,
            "actions": [{"@odata.type": PROVIDE_CLAIMS, "claims": claims}],
        }
    }
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


# --- the organisation's Entra claims provider -----------------------------------------------

Guid = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
    ),
]


class EntraProviderIn(Input):
    entra_tenant_id: Guid = Field(description="The Entra tenant (directory) id.")
    app_id: Guid = Field(
        description="The application (client) id of the app registration representing "
        "Tenantry's API, which the custom authentication extension targets."
    )
    app_id_uri: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = Field(
        None, description="Its application ID URI (api://…), the audience of v1 tokens."
    )
    match_by: EntraMatch = Field(
        EntraMatch.OBJECT_ID,
        description="How a callout's user is matched: object_id (SCIM externalId, as "
        "Entra provisions it), upn (SCIM userName, else email) or mail (email).",
    )


class EntraProviderOut(Output):
    configured: bool = Field(description="False: no Entra callout is accepted.")
    entra_tenant_id: str | None
    app_id: str | None
    app_id_uri: str | None
    match_by: EntraMatch | None
    callout_url: str = Field(description="Where the custom authentication extension calls.")


def _provider_out(call: Call[Any, Any], provider: Any) -> EntraProviderOut:
    base = call.request.app.state.settings.base_url
    return EntraProviderOut(
        configured=provider is not None,
        entra_tenant_id=provider.entra_tenant_id if provider else None,
        app_id=provider.app_id if provider else None,
        app_id_uri=provider.app_id_uri if provider else None,
        match_by=provider.match_by if provider else None,
        callout_url=f"{base}/v1/claims/token-issuance",
    )


@router.get(
    "/entra-provider",
    summary="Get the organisation's Entra custom claims provider",
    permission=Permission.SSO_READ,
    response=EntraProviderOut,
)
async def get_entra_provider(call: Call[Input, Input]) -> EntraProviderOut:
    """``configured`` is false (and the fields null) until one is set."""
    return _provider_out(call, await entra.get_provider())


@router.put(
    "/entra-provider",
    summary="Set the Entra tenant and app registration whose callout tokens are accepted",
    permission=Permission.SSO_WRITE,
    body=EntraProviderIn,
    response=EntraProviderOut,
    errors=(409, 422),
)
async def put_entra_provider(call: Call[EntraProviderIn, Input]) -> EntraProviderOut:
    provider = await entra.save_provider(call.body.model_dump(), actor=call.actor)
    return _provider_out(call, provider)


@router.delete(
    "/entra-provider",
    summary="Stop accepting Entra's token-issuance callout",
    permission=Permission.SSO_WRITE,
    status=204,
    errors=(404,),
)
async def delete_entra_provider(call: Call[Input, Input]) -> None:
    if not await entra.delete_provider(actor=call.actor):
        raise NotFoundError("the organisation has no Entra claims provider")
