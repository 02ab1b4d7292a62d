"""Entra's custom claims provider, called the way Entra calls it: ``POST
/v1/claims/token-issuance`` with an access token Entra issued to its Authentication Events
service for the organisation's app registration, signed with a key of the tenant's JWKS
(served over real HTTP on 127.0.0.1 by tests/support/entra.py).

The request and response bodies are Microsoft's, from "Custom claims provider reference"
(learn.microsoft.com/entra/identity-platform/custom-claims-provider-reference): the
documented request payload (and its B2B guest ``user``), and the documented response shape
``microsoft.graph.onTokenIssuanceStartResponseData`` with one
``microsoft.graph.tokenIssuanceStart.provideClaimsForToken`` action."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tenants import db
from tenants.errors import AuthenticationError
from tenants.identity.entra import ProviderView, check_callout_claims, entra_tenant_of
from tenants.identity.models import EntraMatch
from tenants.members.models import Member
from tests.conftest import OrgHandle, make_member, make_product
from tests.support.entra import AUTHENTICATION_EVENTS_APP_ID, EntraKeys

PERSONALISATION = "personalisation.recommendations"
URL = "/v1/claims/token-issuance"


def documented_request(tenant: str, app_id: str, user: dict[str, Any]) -> dict[str, Any]:
    """Microsoft's example request payload, with the placeholders filled in."""
    return {
        "type": "microsoft.graph.authenticationEvent.tokenIssuanceStart",
        "source": f"/tenants/{tenant}/applications/{app_id}",
        "data": {
            "@odata.type": "microsoft.graph.onTokenIssuanceStartCalloutData",
            "tenantId": tenant,
            "authenticationEventListenerId": str(uuid.uuid4()),
            "customAuthenticationExtensionId": str(uuid.uuid4()),
            "authenticationContext": {
                "correlationId": str(uuid.uuid4()),
                "client": {"ip": "30.51.176.110", "locale": "en-us", "market": "en-us"},
                "protocol": "OAUTH2.0",
                "clientServicePrincipal": {
                    "id": str(uuid.uuid4()),
                    "appId": app_id,
                    "appDisplayName": "My Test application",
                    "displayName": "My Test application",
                },
                "resourceServicePrincipal": {
                    "id": str(uuid.uuid4()),
                    "appId": app_id,
                    "appDisplayName": "My Test application",
                    "displayName": "My Test application",
                },
                "user": user,
            },
        },
    }


def casey(mail: str, object_id: str, upn: str | None = None) -> dict[str, Any]:
    """The documented member ``user`` element."""
    return {
        "companyName": "Casey Jensen",
        "createdDateTime": "2016-03-01T15:23:40Z",
        "displayName": "Casey Jensen",
        "givenName": "Casey",
        "id": object_id,
        "mail": mail,
        "onPremisesSamAccountName": "caseyjensen",
        "onPremisesSecurityIdentifier": "S-1-5-21-0-0-0-1001",
        "onPremisesUserPrincipalName": "Casey Jensen",
        "preferredLanguage": "en-us",
        "surname": "Jensen",
        "userPrincipalName": upn or mail,
        "userType": "Member",
    }


GUEST = {
    "companyName": "Fabrikam",
    "createdDateTime": "2022-07-15T00:00:00Z",
    "displayName": "John Wright",
    "id": "00aa00aa-bb11-cc22-dd33-44ee44ee44ee",
    "mail": "johnwright@fabrikam.com",
    "preferredDataLocation": "EUR",
    "userPrincipalName": "johnwright_fabrikam.com#EXT#@contoso.onmicrosoft.com",
    "userType": "Guest",
}


class Entra:
    """One organisation's Entra tenant and app registration, configured in Tenantry."""

    def __init__(self, org: OrgHandle, keys: EntraKeys) -> None:
        self.org = org
        self.keys = keys
        self.tenant = str(uuid.uuid4())
        self.app_id = str(uuid.uuid4())
        self.app_id_uri = f"api://tenantry.test/{self.app_id}"

    async def configure(self, match_by: EntraMatch = EntraMatch.MAIL) -> dict[str, Any]:
        response = await self.org.put(
            "/v1/claims/entra-provider",
            json={
                "entra_tenant_id": self.tenant.upper(),
                "app_id": self.app_id,
                "app_id_uri": self.app_id_uri,
                "match_by": match_by.value,
            },
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def token(self, **options: Any) -> str:
        return self.keys.token(self.tenant, options.pop("audience", self.app_id), **options)

    async def call(self, body: dict[str, Any], token: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {token or self.token()}"}
        return await self.org.client.post(URL, json=body, headers=headers)

    def request(self, user: dict[str, Any]) -> dict[str, Any]:
        return documented_request(self.tenant, self.app_id, user)


@pytest.fixture
async def entra(org: OrgHandle, entra_keys: EntraKeys) -> Entra:
    handle = Entra(org, entra_keys)
    await handle.configure()
    return handle


# --- the token rules, without HTTP --------------------------------------------------------

TENANT = "aaaaaaaa-1111-2222-3333-444444444444"
APP = "bbbbbbbb-1111-2222-3333-444444444444"
VIEW = ProviderView(TENANT, APP, "api://tenantry", EntraMatch.MAIL)
V2 = {
    "iss": f"https://login.microsoftonline.com/{TENANT}/v2.0",
    "aud": APP,
    "azp": AUTHENTICATION_EVENTS_APP_ID,
    "tid": TENANT,
    "ver": "2.0",
}
V1 = {
    "iss": f"https://sts.windows.net/{TENANT}/",
    "aud": "api://tenantry",
    "appid": AUTHENTICATION_EVENTS_APP_ID,
    "tid": TENANT,
    "ver": "1.0",
}


def test_entra_issuers_name_their_tenant_and_nothing_else_does() -> None:
    assert entra_tenant_of(V2["iss"]) == TENANT
    assert entra_tenant_of(V1["iss"]) == TENANT
    assert entra_tenant_of(f"https://login.microsoftonline.com/{TENANT}/v2.0/") is None
    assert entra_tenant_of("https://login.microsoftonline.com/common/v2.0") is None
    assert entra_tenant_of(f"https://evil.example/{TENANT}/v2.0") is None


def test_a_callout_token_must_come_from_the_tenant_for_the_app_and_from_the_events_service() -> (
    None
):
    check_callout_claims(V2, VIEW)
    check_callout_claims(V1, VIEW)
    check_callout_claims({**V2, "aud": [APP.upper()]}, VIEW)
    refused = [
        {**V2, "iss": "https://login.microsoftonline.com/" + APP + "/v2.0"},
        {**V2, "tid": APP},
        {**V2, "aud": str(uuid.uuid4())},
        {**V2, "azp": str(uuid.uuid4())},  # another app of the tenant, not Entra's service
        {k: v for k, v in V2.items() if k != "azp"},
        {**V1, "appid": APP},
        {**V1, "ver": "2.0"},  # a v2 token names its caller in azp, not appid
    ]
    for claims in refused:
        with pytest.raises(AuthenticationError):
            check_callout_claims(claims, VIEW)


# --- the callout over HTTP ------------------------------------------------------------------


async def test_microsofts_documented_request_gets_the_documented_response_shape(
    entra: Entra,
) -> None:
    member = await make_member(entra.org, roles=["member", "helpdesk"])
    response = await entra.org.put(
        "/v1/policy/rules",
        json={
            "target_kind": "unit",
            "target_id": str(entra.org.root_unit_id),
            "setting": PERSONALISATION,
            "value": False,
            "enforced": True,
            "reason": "school policy",
        },
    )
    assert response.status_code == 200, response.text
    response = await entra.call(entra.request(casey(member["email"].upper(), str(uuid.uuid4()))))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["data"]
    assert body["data"]["@odata.type"] == "microsoft.graph.onTokenIssuanceStartResponseData"
    (action,) = body["data"]["actions"]
    assert set(action) == {"@odata.type", "claims"}
    assert action["@odata.type"] == "microsoft.graph.tokenIssuanceStart.provideClaimsForToken"
    claims = action["claims"]
    assert claims["tenantry_member_id"] == member["id"]
    assert claims["tenantry_org"] == entra.org.slug
    assert claims["tenantry_roles"] == ["helpdesk", "member"]
    assert json.loads(claims["tenantry_settings"]) == {PERSONALISATION: False}
    assert claims["tenantry_locked"] == [PERSONALISATION]
    # Entra takes strings and string arrays only, 3 KB in all.
    assert all(
        isinstance(v, str) or (isinstance(v, list) and all(isinstance(i, str) for i in v))
        for v in claims.values()
    )
    assert len(json.dumps(claims)) < 3072


async def test_a_user_tenantry_does_not_know_gets_a_valid_answer_with_no_claims(
    entra: Entra,
) -> None:
    for user in (GUEST, casey("nobody@contoso.com", str(uuid.uuid4())), {"id": "x"}):
        response = await entra.call(entra.request(user))
        assert response.status_code == 200, response.text
        assert response.json() == {
            "data": {
                "@odata.type": "microsoft.graph.onTokenIssuanceStartResponseData",
                "actions": [
                    {
                        "@odata.type": "microsoft.graph.tokenIssuanceStart.provideClaimsForToken",
                        "claims": {},
                    }
                ],
            }
        }


async def test_members_are_matched_by_object_id_or_upn_as_the_organisation_chooses(
    entra: Entra,
) -> None:
    member = await make_member(entra.org)
    object_id = str(uuid.uuid4())
    async with db.tenant_transaction(entra.org.id):
        await Member.filter(id=member["id"]).update(external_id=object_id)
    user = casey("someone-else@contoso.com", object_id, upn=member["email"])

    async def matched() -> str | None:
        response = await entra.call(entra.request(user))
        assert response.status_code == 200, response.text
        value = response.json()["data"]["actions"][0]["claims"].get("tenantry_member_id")
        return str(value) if value else None

    assert await matched() is None  # by mail: someone-else is no member
    await entra.configure(EntraMatch.OBJECT_ID)
    assert await matched() == member["id"]
    await entra.configure(EntraMatch.UPN)
    assert await matched() == member["id"]
    # The OIDC sub Entra puts in ID tokens is pairwise: never what a callout is matched by.
    user["id"] = member.get("idp_subject") or str(uuid.uuid4())
    await entra.configure(EntraMatch.OBJECT_ID)
    assert await matched() is None


async def test_fields_microsoft_adds_are_tolerated_and_the_data_type_is_checked(
    entra: Entra,
) -> None:
    member = await make_member(entra.org)
    body = entra.request(casey(member["email"], str(uuid.uuid4())))
    body["specversion"] = "1.0"
    body["data"]["authenticationContext"]["user"]["employeeHireDate"] = "2021-01-01"
    body["data"]["newThing"] = {"nested": [1, 2]}
    response = await entra.call(body)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["actions"][0]["claims"]["tenantry_member_id"] == member["id"]
    body["data"]["@odata.type"] = "microsoft.graph.onAttributeCollectionStartCalloutData"
    response = await entra.call(body)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "data.@odata.type"


async def test_v1_tokens_for_the_app_id_uri_are_accepted_too(entra: Entra) -> None:
    member = await make_member(entra.org)
    token = entra.token(version=1, audience=entra.app_id_uri)
    response = await entra.call(entra.request(casey(member["email"], "x")), token)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["actions"][0]["claims"]["tenantry_member_id"] == member["id"]


async def test_only_entras_callout_token_for_the_organisations_app_is_accepted(
    entra: Entra, entra_keys: EntraKeys
) -> None:
    member = await make_member(entra.org)
    body = entra.request(casey(member["email"], "x"))
    other_key = entra_keys.rotate(str(uuid.uuid4()))
    refused = {
        "another app of the tenant calls": entra.token(caller=str(uuid.uuid4())),
        "a token for another app": entra.token(audience=str(uuid.uuid4())),
        "another tenant's token for the app": entra_keys.token(str(uuid.uuid4()), entra.app_id),
        "expired": entra.token(lifetime=-3600),
        "signed with a key the tenant does not publish": entra.token(key=other_key),
        "tampered": entra.token()[:-4] + "AAAA",
    }
    for why, token in refused.items():
        response = await entra.call(body, token)
        assert response.status_code == 401, why
        assert response.headers["content-type"] == "application/problem+json", why
    # A product client with claims:read may read /v1/claims, but is not Entra's callout.
    product = await make_product(entra.org)
    registered = (
        await entra.org.post(
            f"/v1/products/{product['id']}/clients", {"name": "idp", "scopes": ["claims:read"]}
        )
    ).json()
    issued = await entra.org.client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(registered["client_id"], registered["client_secret"]),
    )
    response = await entra.call(body, issued.json()["access_token"])
    assert response.status_code == 403
    # And no Entra token opens any other endpoint.
    response = await entra.org.client.get(
        "/v1/members", headers={"Authorization": f"Bearer {entra.token()}"}
    )
    assert response.status_code == 403


async def test_an_entra_app_belongs_to_one_organisation_and_reaches_only_its_members(
    two_orgs: tuple[OrgHandle, OrgHandle], entra_keys: EntraKeys
) -> None:
    alpha, bravo = two_orgs
    alpha_entra = Entra(alpha, entra_keys)
    await alpha_entra.configure()
    clash = await bravo.put(
        "/v1/claims/entra-provider",
        json={"entra_tenant_id": alpha_entra.tenant, "app_id": alpha_entra.app_id},
    )
    assert clash.status_code == 409
    bravo_member = await make_member(bravo)
    response = await alpha_entra.call(alpha_entra.request(casey(bravo_member["email"], "x")))
    assert response.status_code == 200
    assert response.json()["data"]["actions"][0]["claims"] == {}


async def test_the_provider_is_configured_read_back_and_removed(entra: Entra) -> None:
    shown = (await entra.org.get("/v1/claims/entra-provider")).json()
    assert shown["entra_tenant_id"] == entra.tenant  # stored lower case
    assert shown["callout_url"].endswith("/v1/claims/token-issuance")
    bad = await entra.org.put(
        "/v1/claims/entra-provider", json={"entra_tenant_id": "contoso", "app_id": entra.app_id}
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "entra_tenant_id"
    assert (await entra.org.delete("/v1/claims/entra-provider")).status_code == 204
    shown = (await entra.org.get("/v1/claims/entra-provider")).json()
    assert shown["configured"] is False and shown["app_id"] is None
    member = await make_member(entra.org)
    response = await entra.call(entra.request(casey(member["email"], "x")))
    assert response.status_code == 401
