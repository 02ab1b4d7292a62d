"""Products' API credentials: client registration, the client-credentials token endpoint,
the published keys, and access tokens on the API — including ones from a trusted issuer."""

from __future__ import annotations

import time
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey
from starlette.requests import Request

from app.auth import BearerAuthenticator
from app.settings import TrustedIssuer
from tenants.errors import AuthenticationError
from tenants.sso.oidc import JwksCache, kid_of
from tests.conftest import OrgHandle, make_member, make_product
from tests.support.hostile_idp import run_hostile_idp


async def register(org: OrgHandle, scopes: list[str]) -> dict[str, Any]:
    product = await make_product(org)
    response = await org.post(
        f"/v1/products/{product['id']}/clients", {"name": "sync", "scopes": scopes}
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def token_for(
    client: httpx.AsyncClient, registered: dict[str, Any], **form: str
) -> httpx.Response:
    return await client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", **form},
        auth=(registered["client_id"], registered["client_secret"]),
    )


async def test_a_product_gets_a_token_and_reads_members_within_its_scopes(org: OrgHandle) -> None:
    member = await make_member(org)
    registered = await register(org, ["members:read", "settings:read"])
    assert registered["client_secret"] and registered["token_endpoint"].endswith("/oauth/token")
    issued = await token_for(org.client, registered)
    assert issued.status_code == 200 and issued.headers["cache-control"] == "no-store"
    body = issued.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    assert body["scope"] == "members:read settings:read"
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    read = await org.client.get(f"/v1/members/{member['id']}", headers=bearer)
    assert read.status_code == 200 and read.json()["id"] == member["id"]
    write = await org.client.patch(
        f"/v1/members/{member['id']}", headers=bearer, json={"name": "X"}
    )
    assert write.status_code == 403 and write.json()["required_permission"] == "members:write"
    # RFC 6750 §3.1: the challenge says the token lacks a scope, and which.
    assert write.headers["www-authenticate"] == (
        'Bearer realm="tenantry", error="insufficient_scope", scope="members:write"'
    )
    # Answers holding people's data are kept by no cache (RFC 9111 §5.2.2.5).
    assert read.headers["cache-control"] == "no-store"


async def test_the_listing_never_shows_the_secret(org: OrgHandle) -> None:
    registered = await register(org, ["members:read"])
    listed = (await org.get(f"/v1/products/{registered['product_id']}/clients")).json()["items"]
    assert [c["client_id"] for c in listed] == [registered["client_id"]]
    assert "client_secret" not in listed[0]


async def test_token_endpoint_errors_follow_rfc_6749(org: OrgHandle) -> None:
    registered = await register(org, ["members:read"])
    wrong = await org.client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(registered["client_id"], "not-the-secret"),
    )
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    assert wrong.headers["www-authenticate"].startswith("Basic")
    grant = await token_for(org.client, registered, grant_type="password")
    assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"
    scope = await token_for(org.client, registered, scope="members:write")
    assert scope.status_code == 400 and scope.json()["error"] == "invalid_scope"
    unknown = await org.client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=("pc_nothing_here", "x")
    )
    assert unknown.status_code == 401
    # §5.2: a missing grant type is a malformed request, not an unsupported grant type.
    missing = await org.client.post(
        "/oauth/token", data={}, auth=(registered["client_id"], registered["client_secret"])
    )
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
    # §3.2: parameters are sent once; which of two grant types was meant is not guessed.
    twice = await org.client.post(
        "/oauth/token",
        content="grant_type=password&grant_type=client_credentials",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        auth=(registered["client_id"], registered["client_secret"]),
    )
    assert twice.status_code == 400 and twice.json() == {
        "error": "invalid_request",
        "error_description": "grant_type is sent more than once",
    }
    # Naming the client in the body beside HTTP Basic is one way of authenticating
    # (oauthlib's include_client_id); a secret in both, or another client's id, is two.
    named = await token_for(org.client, registered, client_id=registered["client_id"])
    assert named.status_code == 200, named.text
    for extra in ({"client_secret": registered["client_secret"]}, {"client_id": "pc_other"}):
        two_ways = await token_for(org.client, registered, **extra)
        assert two_ways.status_code == 400 and two_ways.json()["error"] == "invalid_request"


async def test_the_server_metadata_is_what_rfc_8414_requires(org: OrgHandle) -> None:
    from authlib.oauth2.rfc8414 import AuthorizationServerMetadata

    document = (await org.client.get("/.well-known/oauth-authorization-server")).json()
    AuthorizationServerMetadata(document).validate()  # raises on a missing required field
    assert document["response_types_supported"] == ["none"]
    assert "members:read" in document["scopes_supported"]
    assert "members:write" not in document["scopes_supported"]  # an admin permission


async def test_a_product_cannot_be_granted_admin_permissions(org: OrgHandle) -> None:
    product = await make_product(org)
    response = await org.post(
        f"/v1/products/{product['id']}/clients",
        {"name": "x", "scopes": ["members:read", "members:write", "no:such"]},
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "field": "scopes[1]",
            "reason": "expected a scope a product may hold: this one is not grantable to products",
        },
        {"field": "scopes[2]", "reason": "expected a known scope"},
    ]


async def test_a_revoked_client_gets_no_token_and_its_tokens_stop_working(org: OrgHandle) -> None:
    member = await make_member(org)
    registered = await register(org, ["members:read"])
    bearer = {
        "Authorization": f"Bearer {(await token_for(org.client, registered)).json()['access_token']}"
    }
    revoked = await org.delete(
        f"/v1/products/{registered['product_id']}/clients/{registered['id']}"
    )
    assert revoked.status_code == 204
    assert (await token_for(org.client, registered)).status_code == 401
    assert (await org.client.get(f"/v1/members/{member['id']}", headers=bearer)).status_code == 401


async def test_a_token_for_one_organisation_cannot_read_another(
    two_orgs: tuple[OrgHandle, OrgHandle],
) -> None:
    alpha, bravo = two_orgs
    theirs = await make_member(bravo)
    registered = await register(alpha, ["members:read"])
    bearer = {
        "Authorization": f"Bearer {(await token_for(alpha.client, registered)).json()['access_token']}"
    }
    assert (
        await alpha.client.get(f"/v1/members/{theirs['id']}", headers=bearer)
    ).status_code == 404


async def test_forged_and_tampered_tokens_are_refused(org: OrgHandle, app: Any) -> None:
    member = await make_member(org)
    registered = await register(org, ["members:read"])
    good = (await token_for(org.client, registered)).json()["access_token"]
    header, payload, signature = good.split(".")
    tampered = f"{header}.{payload[:-4]}AAAA.{signature}"
    stranger = ECKey.generate_key("P-256", parameters={"kid": "stranger"})
    forged = jwt.encode(
        {"alg": "ES256", "kid": "stranger"},
        {
            "iss": app.state.settings.base_url,
            "aud": "tenantry-api",
            "org": str(org.id),
            "sub": registered["client_id"],
            "scope": "members:read",
            "exp": int(time.time()) + 60,
        },
        stranger,
    )
    for token in (tampered, forged, "not.a.token", "garbage"):
        response = await org.client.get(
            f"/v1/members/{member['id']}", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 401, token


async def test_jwks_publishes_the_signing_key_and_rotation_keeps_old_tokens_valid(
    org: OrgHandle, app: Any
) -> None:
    member = await make_member(org)
    registered = await register(org, ["members:read"])
    old = (await token_for(org.client, registered)).json()["access_token"]
    kid_old = kid_of(old)
    await app.state.keyring.retire_current()
    new = (await token_for(org.client, registered)).json()["access_token"]
    kid_new = kid_of(new)
    assert kid_new != kid_old
    published = {k["kid"] for k in (await org.client.get("/.well-known/jwks.json")).json()["keys"]}
    assert {kid_old, kid_new} <= published
    for token in (old, new):
        response = await org.client.get(
            f"/v1/members/{member['id']}", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200


def _request(token: str) -> Request:
    return Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/v1/members",
            "headers": [(b"authorization", f"Bearer {token}".encode())],
            "query_string": b"",
            "state": {},
        }
    )


async def test_tokens_from_a_trusted_issuer_are_accepted_with_issuer_audience_and_organisation_checks(
    org: OrgHandle, app: Any
) -> None:
    with run_hostile_idp() as idp:
        trusted = TrustedIssuer(
            issuer=idp.issuer, jwks_uri=f"{idp.issuer}/jwks", audience="tenantry"
        )
        async with httpx.AsyncClient() as http:
            authenticator = BearerAuthenticator(
                keyring=app.state.keyring,
                issuer="http://self",
                trusted=(trusted,),
                jwks=JwksCache(http),
            )

            def mint(**claims: Any) -> str:
                base = {
                    "iss": idp.issuer,
                    "aud": "tenantry",
                    "sub": "svc",
                    "exp": int(time.time()) + 60,
                    "organization": [org.slug],
                    "scope": "members:read unknown:scope",
                }
                base.update(claims)
                return jwt.encode(
                    {"alg": "RS256", "kid": idp.signing_key.kid}, base, idp.signing_key
                )

            credential = await authenticator.identify(_request(mint()))
            assert credential.org_id == org.id
            assert {p.value for p in credential.scopes} == {"members:read"}  # type: ignore[attr-defined]
            for bad in (
                mint(aud="someone-else"),
                mint(exp=int(time.time()) - 120),
                mint(organization=["no-such-org"]),
                mint(iss="https://evil.example"),
            ):
                try:
                    await authenticator.identify(_request(bad))
                except AuthenticationError:
                    continue
                raise AssertionError(f"accepted {bad}")
