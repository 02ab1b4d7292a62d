"""Policy claims for identity providers, called while they issue a member's token.

Authenticated like products: an OAuth client (``POST /v1/products/{id}/clients``) holding
the scope ``claims:read``, using the client-credentials grant. Two shapes:

- ``GET /v1/claims?email=…`` (or ``idp_subject=…``, ``member_id=…``): the compact claim
  object, for a Keycloak protocol mapper that calls a URL and puts the JSON answer in a
  claim (see the README);
- ``POST /v1/claims/token-issuance``: the request and response of a custom claims
  provider in the shape Microsoft Entra's ``OnTokenIssuanceStart`` custom authentication
  extension uses (claims as strings and string lists).
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints
from starlette.responses import JSONResponse, Response

from app.api import ApiRouter, Call
from app.v1.common import Input, Output
from tenants.errors import FieldProblem, InvalidInputError
from tenants.identity.claims import claims_for
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
    authentication_context: EntraContext = Field(alias="authenticationContext")


class TokenIssuanceIn(Input):
    """The callout's envelope (unknown top-level fields are refused; the provider's many
    fields inside ``data`` are read leniently)."""

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
    summary="Claims for a token being issued (custom claims provider, Entra shape)",
    permission=Permission.CLAIMS_READ,
    body=TokenIssuanceIn,
    response=TokenIssuanceOut,
    errors=(404, 409, 422),
)
async def token_issuance_claims(call: Call[TokenIssuanceIn, Input]) -> Response:
    """The member is found by ``mail`` (else ``userPrincipalName``) and, failing that, by
    the user's ``id`` as IdP subject. Claims are strings or string lists, prefixed
    ``tenantry_``; the settings travel as one compact JSON string."""
    user = call.body.data.authentication_context.user
    email = user.mail or (
        user.user_principal_name if "@" in (user.user_principal_name or "") else None
    )
    if email is None and not user.id:
        raise InvalidInputError(
            "the request names no user",
            fields=[FieldProblem("data.authenticationContext.user", "give mail or id")],
        )
    claims = await claims_for(
        email=email, idp_subject=None if email else user.id, cache=_decisions(call)
    )
    body = {
        "data": {
            "@odata.type": RESPONSE_DATA,
            "actions": [{"@odata.type": PROVIDE_CLAIMS, "claims": claims.as_strings()}],
        }
    }
    return JSONResponse(body, headers={"Cache-Control": "no-store"})
