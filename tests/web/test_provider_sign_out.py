"""Signing out at the identity provider too (OpenID Connect RP-Initiated Logout 1.0), end
to end: against the real test provider (node ``oidc-provider``), whose session really ends,
and against a provider with no sign-out endpoint (Google's kind), whose person is told.

On a shared computer, signing out of Tenantry alone leaves the provider's session open:
the next person to press "Continue with …'s sign-in" comes in as the one before.
"""

from __future__ import annotations

import asyncio
import base64
import html
import json
import re
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import pytest

from tests.conftest import OrgHandle, make_member
from tests.support.hostile_idp import HostileIdp, hostile_idp
from tests.support.oidc_provider import (
    LoginRejected,
    RunningProvider,
    login_with_browserless_flow,
    logout_with_browserless_flow,
)
from tests.web.conftest import ALPHA, MAX, SsoWorld, client_id
from tests.web.flows import WebClient, live_client, set_local_sign_in, set_password, text_of
from tests.web.test_idp_dialects import sign_in

pytestmark = pytest.mark.oidc


async def kept_tokens(conn: asyncpg.Connection, org: OrgHandle) -> list[str | None]:
    """The ID tokens the organisation's sessions keep, live sessions first."""
    rows = await conn.fetch(
        "SELECT idp_id_token_enc FROM sessions WHERE tenant_id = $1"
        " ORDER BY revoked_at NULLS FIRST, created_at",
        org.id,
    )
    return [r["idp_id_token_enc"] for r in rows]


async def sign_in_keeping(browser: WebClient, at_idp: httpx.Client, login: str) -> None:
    """Sign in through the real provider with ``at_idp`` holding the provider's cookies,
    as one browser does on one computer."""
    authorization_url = await browser.start_sso(ALPHA)
    callback = await asyncio.to_thread(
        login_with_browserless_flow, authorization_url, login, client=at_idp
    )
    response = await browser.get(callback)
    assert response.status_code == 303, text_of(response.text)


def payload(jwt: str) -> dict[str, object]:
    body = jwt.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))))


async def test_signing_out_ends_the_providers_session_when_the_organisation_asks(
    world: SsoWorld, live_server: str, owner_conn: asyncpg.Connection, idp: RunningProvider
) -> None:
    await world.use_issuer(world.alpha, idp, sign_out_at_provider=True)
    with httpx.Client(timeout=10) as at_idp:
        async with live_client(live_server) as browser:
            await sign_in_keeping(browser, at_idp, MAX.sub)
            [kept] = await kept_tokens(owner_conn, world.alpha)
            # Kept encrypted: a JWT's header would begin "eyJ".
            assert kept is not None and not kept.startswith("eyJ")

            response = await browser.sign_out()
            # A page of this site sends the browser on (a redirect answering the sign-out
            # form is refused by the pages' CSP, form-action 'self').
            assert response.status_code == 200 and "no-store" in response.headers["cache-control"]
            found = re.search(
                r'<meta http-equiv="refresh" content="0; url=([^"]+)">', response.text
            )
            assert found is not None, response.text
            location = html.unescape(found[1])
            assert f'href="{found[1]}"' in response.text  # and a link, should it not
            parts = urlsplit(location)
            endpoint = idp.discovery()["end_session_endpoint"]
            assert f"{parts.scheme}://{parts.netloc}{parts.path}" == endpoint
            query = parse_qs(parts.query)
            assert query["client_id"] == [client_id(ALPHA)]
            assert query["post_logout_redirect_uri"] == [f"{live_server}/oidc/{ALPHA}/signed-out"]
            hint = payload(query["id_token_hint"][0])
            assert (hint["sub"], hint["aud"], hint["iss"]) == (
                MAX.sub,
                client_id(ALPHA),
                idp.issuer,
            )
            # Ended, and the token kept for it gone with it.
            assert await kept_tokens(owner_conn, world.alpha) == [None]
            assert (await browser.get("/account")).status_code in (302, 303)

            final = await asyncio.to_thread(logout_with_browserless_flow, location, client=at_idp)
            assert final == f"{live_server}/oidc/{ALPHA}/signed-out"
            back = await browser.get(final)
            assert back.status_code == 303
            assert back.headers["location"] == f"/login/{ALPHA}?signed_out=both"
            page = text_of((await browser.get(back.headers["location"])).text)
            assert "You are signed out of Tenantry and of Alpha's sign-in." in page

            # The provider's session is over: the next person here is asked who they are.
            again = await browser.start_sso(ALPHA)
            with pytest.raises(LoginRejected):
                await asyncio.to_thread(
                    login_with_browserless_flow, again, "someone-else", client=at_idp
                )


async def test_without_it_the_providers_session_outlives_tenantrys_and_no_token_is_kept(
    world: SsoWorld, live_server: str, owner_conn: asyncpg.Connection
) -> None:
    """The default, and why the setting exists: signed out of Tenantry, the next sign-in
    on the same computer comes in without being asked who it is."""
    with httpx.Client(timeout=10) as at_idp:
        async with live_client(live_server) as browser:
            await sign_in_keeping(browser, at_idp, MAX.sub)
            assert await kept_tokens(owner_conn, world.alpha) == [None]
            response = await browser.sign_out()
            assert response.headers["location"] == "/login?signed_out=1"
            again = await browser.start_sso(ALPHA)
            callback = await asyncio.to_thread(
                login_with_browserless_flow, again, "someone-else", client=at_idp
            )
            response = await browser.get(callback)
            assert response.status_code == 303
            assert f"Signed in as {MAX.email}" in text_of((await browser.get("/account")).text)


@pytest.fixture
async def googlish(org: OrgHandle) -> AsyncIterator[HostileIdp]:
    """A provider whose discovery names no end_session_endpoint, as Google's does not."""
    account = {
        "sub": "g-1",
        "email": f"gail@{org.slug}.example",
        "email_verified": True,
        "name": "Gail",
    }
    async with hostile_idp(client_id="tenantry", account=account) as provider:
        assert "end_session_endpoint" not in provider.discovery()
        yield provider


async def sign_in_at(browser: WebClient, org: OrgHandle) -> None:
    response = await sign_in(browser, org)  # the dialect tests' provider round trip
    assert response.status_code == 303, text_of(response.text)


async def test_a_provider_that_cannot_sign_out_leaves_the_person_told_so(
    org: OrgHandle, googlish: HostileIdp, live_server: str, owner_conn: asyncpg.Connection
) -> None:
    await make_member(org, email=googlish.account["email"], name="Gail")
    saved = await org.put(
        "/v1/sso-connection",
        json={
            "issuer": googlish.issuer,
            "client_id": googlish.client_id,
            "client_secret": googlish.client_secret,
            "sign_out_at_provider": True,
        },
    )
    assert saved.status_code == 200, saved.text
    view = saved.json()
    assert view["sign_out_at_provider"] is True
    assert view["post_logout_redirect_uri"] == f"{live_server}/oidc/{org.slug}/signed-out"
    async with live_client(live_server) as browser:
        await sign_in_at(browser, org)
        response = await browser.sign_out()
        assert response.headers["location"] == f"/login/{org.slug}?signed_out=here"
        page = text_of((await browser.get(response.headers["location"])).text)
        assert "could not sign you out: you may still be signed in there" in page


async def test_password_sessions_sign_out_here_and_switching_it_off_forgets_the_tokens(
    org: OrgHandle, googlish: HostileIdp, live_server: str, owner_conn: asyncpg.Connection
) -> None:
    gail = await make_member(org, email=googlish.account["email"], name="Gail")
    fields = {
        "issuer": googlish.issuer,
        "client_id": googlish.client_id,
        "client_secret": googlish.client_secret,
    }
    saved = await org.put("/v1/sso-connection", json={**fields, "sign_out_at_provider": True})
    assert saved.status_code == 200, saved.text
    async with live_client(live_server) as browser:
        await sign_in_at(browser, org)
    assert [t is not None for t in await kept_tokens(owner_conn, org)] == [True]

    # Switched off: the tokens kept only for it go at once.
    saved = await org.put("/v1/sso-connection", json=fields)
    assert saved.status_code == 200 and saved.json()["sign_out_at_provider"] is False
    assert await kept_tokens(owner_conn, org) == [None]

    # A password session has nothing to end at the provider, whatever the setting.
    await org.put("/v1/sso-connection", json={**fields, "sign_out_at_provider": True})
    await set_local_sign_in(org.id, True)
    await set_password(org.id, gail["id"], "a long enough password 42")
    async with live_client(live_server) as browser:
        await browser.signed_in(org.slug, gail["email"], "a long enough password 42")
        response = await browser.sign_out()
        assert response.headers["location"] == "/login?signed_out=1"
