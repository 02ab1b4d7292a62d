"""Sign-in through providers that speak their vendors' dialects, end to end (the hostile
provider of tests/support/hostile_idp.py, well behaved but for the dialect): Auth0's
issuer ending in "/", a token endpoint that takes the secret only in the form or only
form-encoded in HTTP Basic, a userinfo endpoint that will not answer (Entra's is on
Microsoft Graph), and groups claims as a single name or Keycloak's full paths."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import OrgHandle, make_group, make_member
from tests.support.hostile_idp import HostileIdp, hostile_idp
from tests.web.flows import WebClient, live_client, sign_in_log, text_of

pytestmark = pytest.mark.oidc

ACCOUNT = {"sub": "dialect-dee", "email": "", "email_verified": True, "name": "Dee Dialect"}


@pytest.fixture
async def idp(org: OrgHandle) -> AsyncIterator[HostileIdp]:
    account = {**ACCOUNT, "email": f"dee@{org.slug}.example"}
    async with hostile_idp(client_id="tenantry", account=account) as provider:
        yield provider


async def connect(org: OrgHandle, idp: HostileIdp, **fields: Any) -> None:
    saved = await org.put(
        "/v1/sso-connection",
        json={
            "issuer": idp.issuer,
            "client_id": idp.client_id,
            "client_secret": idp.client_secret,
            **fields,
        },
    )
    assert saved.status_code == 200, saved.text


async def sign_in(browser: WebClient, org: OrgHandle) -> httpx.Response:
    authorization_url = await browser.start_sso(org.slug)
    async with httpx.AsyncClient(timeout=30) as at_provider:
        answer = await at_provider.get(authorization_url)
    assert answer.status_code == 302, answer.text
    return await browser.get(answer.headers["location"])


async def test_an_issuer_ending_in_a_slash_is_kept_so_and_signs_in(
    org: OrgHandle, idp: HostileIdp, live_server: str
) -> None:
    """Auth0's issuer is ``https://tenant.auth0.com/``, in discovery and in ``iss``; the
    slash was cut on saving, and the exact comparison then refused every sign-in."""
    idp.issuer += "/"
    await make_member(org, email=idp.account["email"], name="Dee Dialect")
    await connect(org, idp)
    assert (await org.get("/v1/sso-connection")).json()["issuer"] == idp.issuer
    async with live_client(live_server) as browser:
        response = await sign_in(browser, org)
        assert response.status_code == 303, text_of(response.text)
    # Without the slash it is another issuer, saved as typed.
    bare = idp.issuer.rstrip("/")
    await org.put(
        "/v1/sso-connection", json={"issuer": bare, "client_id": "tenantry", "confirm_losing": 1}
    )
    assert (await org.get("/v1/sso-connection")).json()["issuer"] == bare


@pytest.mark.parametrize(
    "methods", [["client_secret_post"], ["client_secret_basic"]], ids=["post-only", "basic-only"]
)
async def test_the_secret_reaches_a_token_endpoint_the_way_it_takes_it(
    org: OrgHandle, idp: HostileIdp, live_server: str, methods: list[str]
) -> None:
    idp.token_auth_methods = methods
    idp.client_secret = "a+b/c%d:e~f g"  # what only a form-encoded Basic header carries
    await make_member(org, email=idp.account["email"], name="Dee Dialect")
    await connect(org, idp)
    async with live_client(live_server) as browser:
        response = await sign_in(browser, org)
        assert response.status_code == 303, text_of(response.text)


async def test_a_userinfo_endpoint_that_refuses_is_no_matter_when_the_id_token_names_the_person(
    org: OrgHandle, idp: HostileIdp, live_server: str, owner_conn: asyncpg.Connection
) -> None:
    """Entra's ID token carries the address but never email_verified, so userinfo is asked;
    Entra's userinfo is on Microsoft Graph and may answer 401. The sign-in goes on from
    the ID token; a provider whose ID token does not name the person still needs it."""
    idp.account.pop("email_verified")
    idp.userinfo_status = 401
    await make_member(org, email=idp.account["email"], name="Dee Dialect")
    await connect(org, idp)
    async with live_client(live_server) as browser:
        assert (await sign_in(browser, org)).status_code == 303
    idp.claims_in_id_token = False
    async with live_client(live_server) as browser:
        refused = await sign_in(browser, org)
        assert refused.status_code == 401
        assert "userinfo endpoint answered HTTP 401" in text_of(refused.text)
    logged = await sign_in_log(owner_conn, org.id)
    assert [e["reason"] for e in logged] == [None, "userinfo_failed"]
    # Who it was, and why, for the admin: the ID token had validated.
    refused = logged[1]
    assert (refused["idp_subject"], refused["detail"]) == (
        idp.account["sub"],
        "the identity provider's userinfo endpoint answered HTTP 401",
    )
    listed = (await org.get("/v1/sign-ins", params={"outcome": "refused"})).json()["items"]
    assert listed[0]["detail"] == refused["detail"]


@pytest.mark.parametrize(
    "claim", ["Staff", ["/Staff"], ["/School/Staff", "/Nowhere"]], ids=["adfs", "kc", "kc-nested"]
)
async def test_groups_claims_as_one_name_or_keycloak_paths_join_the_group(
    org: OrgHandle, idp: HostileIdp, live_server: str, claim: object
) -> None:
    staff = await make_group(org, name="Staff")
    member = await make_member(org, email=idp.account["email"], name="Dee Dialect")
    idp.account["groups"] = claim
    await connect(org, idp, groups_claim="groups")
    async with live_client(live_server) as browser:
        assert (await sign_in(browser, org)).status_code == 303
    members = (await org.get(f"/v1/groups/{staff['id']}/members")).json()["items"]
    assert [m["id"] for m in members] == [member["id"]]


async def test_a_signed_userinfo_answer_is_read_when_it_is_for_this_client(
    org: OrgHandle, idp: HostileIdp, live_server: str, owner_conn: asyncpg.Connection
) -> None:
    """Keycloak and PingFederate can answer userinfo as a signed JWT (``application/jwt``,
    OIDC Core §5.3.2): it was refused as "answered HTTP 200"."""
    idp.claims_in_id_token = False
    idp.userinfo_signed_for = idp.client_id
    await make_member(org, email=idp.account["email"], name="Dee Dialect")
    await connect(org, idp)
    async with live_client(live_server) as browser:
        assert (await sign_in(browser, org)).status_code == 303
    idp.userinfo_signed_for = "another-client"
    async with live_client(live_server) as browser:
        refused = await sign_in(browser, org)
        assert "signed userinfo answer names another issuer or client" in text_of(refused.text)
    assert [e["reason"] for e in await sign_in_log(owner_conn, org.id)] == [
        None,
        "userinfo_failed",
    ]


@pytest.mark.parametrize("promised", [True, False], ids=["promised", "not-promised"])
async def test_an_answer_without_the_issuer_a_provider_promises_is_refused(
    org: OrgHandle,
    idp: HostileIdp,
    live_server: str,
    owner_conn: asyncpg.Connection,
    promised: bool,
) -> None:
    """RFC 9207 §2.4: a provider whose discovery says it names itself in every
    authorization response (``authorization_response_iss_parameter_supported``), answering
    without ``iss``, is refused (a mix-up); one that promises nothing is taken without."""
    if not promised:
        idp.discovery_changes = {"authorization_response_iss_parameter_supported": None}
    idp.iss_in_response = False
    await make_member(org, email=idp.account["email"], name="Dee Dialect")
    await connect(org, idp)
    async with live_client(live_server) as browser:
        answer = await sign_in(browser, org)
    if promised:
        assert answer.status_code == 401
        assert "does not name its identity provider (iss)" in text_of(answer.text)
        assert [e["reason"] for e in await sign_in_log(owner_conn, org.id)] == ["issuer_mismatch"]
    else:
        assert answer.status_code == 303, text_of(answer.text)


async def test_a_groups_overage_signs_in_and_the_log_says_no_group_was_joined(
    org: OrgHandle, idp: HostileIdp, live_server: str, owner_conn: asyncpg.Connection
) -> None:
    await make_group(org, name="Staff")
    await make_member(org, email=idp.account["email"], name="Dee Dialect")
    idp.account["_claim_names"] = {"groups": "src1"}
    idp.account["_claim_sources"] = {"src1": {"endpoint": "https://graph.example/v1/me"}}
    await connect(org, idp, groups_claim="groups")
    async with live_client(live_server) as browser:
        assert (await sign_in(browser, org)).status_code == 303
    [entry] = await sign_in_log(owner_conn, org.id)
    assert entry["reason"] is None and "overage" in (entry["detail"] or ""), entry


async def test_a_provider_change_while_the_provider_answers_admits_nobody(
    org: OrgHandle, idp: HostileIdp, live_server: str, owner_conn: asyncpg.Connection
) -> None:
    """The callback waits on the provider outside any transaction: a provider replaced
    meanwhile (its token endpoint stalling on purpose) had its subject linked to a member
    under the new one. Admitting checks the connection it began with."""
    member = await make_member(org, email=idp.account["email"], name="Dee Dialect")
    await connect(org, idp)
    idp.token_delay = 2.0
    async with live_client(live_server) as browser:
        authorization_url = await browser.start_sso(org.slug)
        async with httpx.AsyncClient(timeout=30) as at_provider:
            callback = (await at_provider.get(authorization_url)).headers["location"]

        async def replace_the_provider() -> None:
            await asyncio.sleep(0.5)
            moved = await org.put(
                "/v1/sso-connection",
                json={
                    "issuer": "https://new-idp.example",
                    "client_id": "tenantry",
                    "confirm_losing": 0,
                },
            )
            assert moved.status_code == 200, moved.text

        answer, _ = await asyncio.gather(browser.get(callback), replace_the_provider())
        assert answer.status_code == 401, text_of(answer.text)
        assert "changed while you were signing in" in text_of(answer.text)
    linked = await owner_conn.fetchval(
        "SELECT idp_subject FROM members WHERE id = $1", uuid.UUID(member["id"])
    )
    assert linked is None
