"""A provider whose discovery document names endpoints Tenantry must not use: the sign-in
stops at its start with a readable page naming the field, logged, and nothing is sent
there (no code, no client secret, no browser). Once the document is right, the same
organisation signs in, so the refusal is the document's and not a broken set-up."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from app.settings import Settings
from tests.conftest import make_member, make_org
from tests.support.hostile_idp import HostileIdp, hostile_idp
from tests.web.flows import configure_sso, live_client, sign_in_log, text_of

pytestmark = pytest.mark.oidc

SLUG = "delta"
CLIENT_ID = "tenantry-delta"
CLIENT_SECRET = "delta-client-secret-0123456789"
ACCOUNT = {
    "sub": "delta-dan",
    "email": f"dan@{SLUG}.example",
    "email_verified": True,
    "name": "Dan Delta",
}

#: Each document defect, and the words the page shows for it.
DEFECTS: list[tuple[dict[str, Any], str]] = [
    ({"token_endpoint": "file:///etc/passwd"}, "token_endpoint names no host"),
    ({"jwks_uri": "http://169.254.169.254/latest/meta-data/"}, "jwks_uri must use https://"),
    (
        {"authorization_endpoint": "javascript:alert(document.cookie)"},
        "authorization_endpoint names no host",
    ),
    ({"userinfo_endpoint": {"href": "https://x.example"}}, "userinfo_endpoint is not a URL"),
    (
        {"end_session_endpoint": "https://idp.example/logout\r\nSet-Cookie: x=1"},
        "end_session_endpoint contains whitespace or control characters",
    ),
    ({"token_endpoint": None}, "lacks token_endpoint"),
]


@pytest.fixture(scope="module")
async def hostile(live_server: str) -> AsyncIterator[HostileIdp]:
    # Its own provider (its own issuer): the service caches a document it accepted, so
    # this module's must never have been read by another test's sign-in.
    async with hostile_idp(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, account=ACCOUNT
    ) as idp:
        yield idp


async def test_a_discovery_document_naming_unusable_endpoints_stops_the_sign_in_at_its_start(
    client: httpx.AsyncClient,
    hostile: HostileIdp,
    live_server: str,
    owner_conn: asyncpg.Connection,
    settings: Settings,
) -> None:
    org = await make_org(client, SLUG)
    await make_member(org, email=ACCOUNT["email"], name=ACCOUNT["name"], roles=["admin"])
    await configure_sso(
        settings, org.id, issuer=hostile.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET
    )
    async with live_client(live_server) as browser:
        for changes, words in DEFECTS:
            hostile.discovery_changes = changes
            csrf = await browser.login_csrf(SLUG)
            answer = await browser.post(f"/login/{SLUG}/sso", {"csrf": csrf, "next": ""})
            assert answer.status_code == 502, text_of(answer.text)
            assert answer.headers["content-type"].startswith("text/html")
            assert "location" not in answer.headers  # the browser is sent nowhere
            text = text_of(answer.text)
            assert text.startswith("Sign-in is not available"), text
            assert words in text, text
            assert f'href="/login/{SLUG}"' in answer.text
        assert hostile.issued_id_tokens == []  # no code was exchanged anywhere

        hostile.discovery_changes = {}
        assert (await browser.start_sso(SLUG)).startswith(f"{hostile.issuer}/authorize?")
    logged = await sign_in_log(owner_conn, org.id)
    assert [(e["reason"], e["outcome"]) for e in logged] == [
        ("idp_metadata_invalid", "refused")
    ] * len(DEFECTS)


async def test_a_discovery_document_that_is_no_json_object_is_refused_and_leaves_password_sign_in(
    client: httpx.AsyncClient, live_server: str, settings: Settings
) -> None:
    """A list, a string, or arrays nested past the JSON reader's depth: the sign-in stops at
    its start with a readable page, and the organisation's login page still renders, so
    password and break-glass sign-in do not depend on the provider (they used to be a 500).
    A provider of its own: the service remembers a document it accepted, and the module's
    provider serves a good one to the other test."""
    org = await make_org(client, "delta-two")
    async with (
        hostile_idp(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, account=ACCOUNT) as hostile,
        live_client(live_server) as browser,
    ):
        await configure_sso(
            settings,
            org.id,
            issuer=hostile.issuer,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
        )
        for raw, words in (
            (b"[1, 2, 3]", "not a JSON object"),
            (b'"hello"', "not a JSON object"),
            (b"[" * 100_000 + b"]" * 100_000, "cannot fetch the discovery document"),
        ):
            hostile.discovery_raw = raw
            page = await browser.get("/login/delta-two")
            assert page.status_code == 200, text_of(page.text)
            assert 'name="csrf"' in page.text  # the page's forms, break-glass's too
            csrf = await browser.login_csrf("delta-two")
            answer = await browser.post("/login/delta-two/sso", {"csrf": csrf, "next": ""})
            assert answer.status_code == 502, text_of(answer.text)
            assert words in text_of(answer.text)
