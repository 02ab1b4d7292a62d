"""Policy claims for identity providers: an IdP's client (scope ``claims:read``) asks for a
member's compact claims while issuing a token, in the plain shape (Keycloak protocol
mapper) or the custom-claims-provider shape (Entra ``OnTokenIssuanceStart``)."""

from __future__ import annotations

import json
from typing import Any

from tenants.permissions import PRODUCT_SCOPES, Permission
from tests.conftest import OrgHandle, make_group, make_member, make_product

PERSONALISATION = "personalisation.recommendations"
ADS = "advertising.personalised_ads"


async def idp_token(org: OrgHandle, scopes: list[str]) -> dict[str, str]:
    """Register an identity provider as a product client and get its access token."""
    product = await make_product(org, name="Keycloak")
    response = await org.post(
        f"/v1/products/{product['id']}/clients", {"name": "token enrichment", "scopes": scopes}
    )
    assert response.status_code == 201, response.text
    registered = response.json()
    issued = await org.client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(registered["client_id"], registered["client_secret"]),
    )
    assert issued.status_code == 200, issued.text
    return {"Authorization": f"Bearer {issued.json()['access_token']}"}


async def rule(
    org: OrgHandle, kind: str, target: str, setting: str, value: Any, *, lock: bool
) -> None:
    response = await org.put(
        "/v1/policy/rules",
        json={
            "target_kind": kind,
            "target_id": target,
            "setting": setting,
            "value": value,
            "enforced": lock,
            "reason": "school policy",
        },
    )
    assert response.status_code == 200, response.text


def test_claims_read_is_a_product_scope_no_role_holds() -> None:
    assert Permission.CLAIMS_READ in PRODUCT_SCOPES


async def test_claims_carry_roles_and_only_locked_or_non_default_settings(org: OrgHandle) -> None:
    member = await make_member(org, roles=["member", "helpdesk"])
    group = await make_group(org, priority=5)
    await org.put(f"/v1/groups/{group['id']}/members/{member['id']}")
    await rule(org, "unit", str(org.root_unit_id), PERSONALISATION, False, lock=True)
    await rule(org, "group", group["id"], ADS, False, lock=False)  # the default: left out
    headers = await idp_token(org, ["claims:read"])

    response = await org.client.get(
        "/v1/claims", params={"email": member["email"]}, headers=headers
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    claims = response.json()
    policy_version = (await org.get("/v1/policy/rules")).json()["policy_version"]
    assert claims == {
        "mid": member["id"],
        "org": org.slug,
        "roles": ["helpdesk", "member"],
        "s": {PERSONALISATION: False},
        "l": [PERSONALISATION],
        "v": policy_version,
    }
    # Compact enough for a token: a few dozen bytes, not the full decision document.
    assert len(json.dumps(claims, separators=(",", ":"))) < 250

    by_id = await org.client.get("/v1/claims", params={"member_id": member["id"]}, headers=headers)
    assert by_id.json() == claims


async def test_a_members_own_choice_that_differs_from_the_default_travels(org: OrgHandle) -> None:
    member = await make_member(org, idp_subject="kc-sub-1")
    headers = await idp_token(org, ["claims:read"])
    response = await org.post(
        f"/v1/members/{member['id']}/choices", {"setting": PERSONALISATION, "value": False}
    )
    assert response.status_code == 200, response.text
    claims = (
        await org.client.get("/v1/claims", params={"idp_subject": "kc-sub-1"}, headers=headers)
    ).json()
    assert claims["s"] == {PERSONALISATION: False} and claims["l"] == []


async def test_claims_need_the_claims_read_scope(org: OrgHandle) -> None:
    member = await make_member(org)
    headers = await idp_token(org, ["settings:read"])
    response = await org.client.get(
        "/v1/claims", params={"email": member["email"]}, headers=headers
    )
    assert response.status_code == 403
    assert response.json()["required_permission"] == "claims:read"
    assert (
        await org.client.get("/v1/claims", params={"email": member["email"]})
    ).status_code == 401


async def test_unknown_members_are_not_found_and_suspended_ones_get_no_claims(
    org: OrgHandle,
) -> None:
    headers = await idp_token(org, ["claims:read"])
    response = await org.client.get(
        "/v1/claims", params={"email": "nobody@example.org"}, headers=headers
    )
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    member = await make_member(org)
    await org.post(f"/v1/members/{member['id']}/transitions", {"action": "suspend"})
    response = await org.client.get(
        "/v1/claims", params={"email": member["email"]}, headers=headers
    )
    assert response.status_code == 409
    assert response.json()["type"] == "/problems/member_cannot_sign_in"


async def test_exactly_one_lookup_is_required(org: OrgHandle) -> None:
    member = await make_member(org)
    headers = await idp_token(org, ["claims:read"])
    none = await org.client.get("/v1/claims", headers=headers)
    both = await org.client.get(
        "/v1/claims", params={"email": member["email"], "member_id": member["id"]}, headers=headers
    )
    assert none.status_code == both.status_code == 422
    assert {e["field"] for e in both.json()["errors"]} == {"query.email", "query.member_id"}


async def test_another_organisations_member_is_not_found(
    two_orgs: tuple[OrgHandle, OrgHandle],
) -> None:
    alpha, bravo = two_orgs
    member = await make_member(bravo)
    headers = await idp_token(alpha, ["claims:read"])
    for params in ({"email": member["email"]}, {"member_id": member["id"]}):
        response = await alpha.client.get("/v1/claims", params=params, headers=headers)
        assert response.status_code == 404, params
