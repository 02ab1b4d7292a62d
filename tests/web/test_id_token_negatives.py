"""Every defect of an ID token (and a failing token endpoint) ends the sign-in with a readable
401 page and no session, never a 500. The identity provider is the hostile one from
tests/support/hostile_idp.py, which is correct in everything but the one defect asked for;
its well-behaved sign-in must succeed, so these tests can fail.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from app.settings import Settings
from tests.conftest import OrgHandle, make_member, make_org
from tests.support.hostile_idp import HostileIdp, Misbehaviour, hostile_idp
from tests.web.flows import WebClient, configure_sso, live_client, sign_in_log, text_of

pytestmark = pytest.mark.oidc

SLUG = "gamma"
CLIENT_ID = "tenantry-gamma"
CLIENT_SECRET = "gamma-client-secret-0123456789"
ACCOUNT = {
    "sub": "gamma-mia",
    "email": f"mia@{SLUG}.example",
    "email_verified": True,
    "name": "Mia Gamma",
    "groups": ["staff"],
}

#: What the refusal page says for each defect (OIDC Core 1.0 §3.1.3.7 checks, in words).
REASONS: dict[Misbehaviour, str] = {
    Misbehaviour.WRONG_ISSUER: r"ID token was issued by .* not",
    Misbehaviour.WRONG_AUDIENCE: r"ID token is meant for another client",
    Misbehaviour.EXPIRED: r"ID token (has expired|was issued too long ago)",
    Misbehaviour.IAT_IN_FUTURE: r"ID token was issued in the future",
    Misbehaviour.NBF_IN_FUTURE: r"ID token is not valid yet \(nbf\)",
    Misbehaviour.MISSING_NONCE: r"ID token carries no nonce",
    Misbehaviour.WRONG_NONCE: r"ID token's nonce does not match",
    Misbehaviour.BAD_SIGNATURE: r"ID token is not validly signed",
    Misbehaviour.UNKNOWN_KID: r"ID token is signed with a key the provider.s key set does not hold",
    Misbehaviour.ALG_NONE: r"ID token is not validly signed",
    Misbehaviour.MISSING_SUB: r"ID token has no subject",
    Misbehaviour.EMPTY_SUB: r"ID token's subject \(sub\) is empty",
    Misbehaviour.LONG_SUB: r"ID token's subject \(sub\) is longer than 255 characters",
    Misbehaviour.NAN_EXPIRY: r"ID token has expired",
    Misbehaviour.NUL_IN_CLAIM: r"ID token's claim 'name' holds a NUL character",
    Misbehaviour.HEADER_NOT_OBJECT: r"ID token is not validly signed",
    Misbehaviour.TOKEN_ENDPOINT_ERROR: r"refused the code exchange \(HTTP 500",
}

#: The sign-in log's reason for each defect (an expired token is also too old).
LOGGED: dict[Misbehaviour, set[str]] = {
    Misbehaviour.WRONG_ISSUER: {"id_token_wrong_issuer"},
    Misbehaviour.WRONG_AUDIENCE: {"id_token_wrong_audience"},
    Misbehaviour.EXPIRED: {"id_token_expired", "id_token_too_old"},
    Misbehaviour.IAT_IN_FUTURE: {"id_token_issued_in_future"},
    Misbehaviour.NBF_IN_FUTURE: {"id_token_not_yet_valid"},
    Misbehaviour.MISSING_NONCE: {"nonce_missing"},
    Misbehaviour.WRONG_NONCE: {"nonce_mismatch"},
    Misbehaviour.BAD_SIGNATURE: {"id_token_bad_signature"},
    Misbehaviour.UNKNOWN_KID: {"id_token_bad_signature"},
    Misbehaviour.ALG_NONE: {"id_token_bad_signature"},
    Misbehaviour.MISSING_SUB: {"id_token_no_subject"},
    Misbehaviour.EMPTY_SUB: {"id_token_bad_claims"},
    Misbehaviour.LONG_SUB: {"id_token_bad_claims"},
    Misbehaviour.NAN_EXPIRY: {"id_token_expired"},
    Misbehaviour.NUL_IN_CLAIM: {"id_token_bad_claims"},
    Misbehaviour.HEADER_NOT_OBJECT: {"id_token_bad_signature"},
    Misbehaviour.TOKEN_ENDPOINT_ERROR: {"token_exchange_failed"},
}


@pytest.fixture(scope="module")
async def hostile(live_server: str) -> AsyncIterator[HostileIdp]:
    async with hostile_idp(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, account=ACCOUNT
    ) as idp:
        yield idp


@pytest.fixture
async def gamma(client: httpx.AsyncClient, hostile: HostileIdp, settings: Settings) -> OrgHandle:
    hostile.reset()
    org = await make_org(client, SLUG)
    await make_member(org, email=ACCOUNT["email"], name=ACCOUNT["name"], roles=["admin"])
    await configure_sso(
        settings, org.id, issuer=hostile.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET
    )
    return org


async def callback_url(browser: WebClient) -> str:
    """Start a sign-in and let the hostile provider answer; the callback URL it redirects to."""
    authorization_url = await browser.start_sso(SLUG)
    async with httpx.AsyncClient(timeout=30) as at_provider:
        answer = await at_provider.get(authorization_url)
    assert answer.status_code == 302, answer.text
    return answer.headers["location"]


async def sessions_of(conn: asyncpg.Connection, org: OrgHandle) -> int:
    count: int = await conn.fetchval("SELECT count(*) FROM sessions WHERE tenant_id = $1", org.id)
    return count


@pytest.mark.parametrize("defect", list(REASONS), ids=lambda d: d.value)
async def test_defective_id_token_is_refused_with_a_readable_401_and_no_session(
    gamma: OrgHandle,
    hostile: HostileIdp,
    live_server: str,
    owner_conn: asyncpg.Connection,
    defect: Misbehaviour,
) -> None:
    hostile.misbehaviour = defect
    async with live_client(live_server) as browser:
        response = await browser.get(await callback_url(browser))
        assert response.status_code == 401, text_of(response.text)
        assert response.headers["content-type"].startswith("text/html")
        assert "tenantry_session" not in response.headers.get("set-cookie", "")
        assert browser.session_cookie is None
        text = text_of(response.text)
        assert text.startswith("Sign-in failed")
        assert re.search(REASONS[defect], text), text
        # Plain words: no library exception names (joserfc, httpx) on the page.
        assert not re.search(r"[A-Z][a-z]+(Error|Exception)\b", text), text
        assert 'href="/login/gamma"' in response.text  # a way to try again
        assert await sessions_of(owner_conn, gamma) == 0
        refused = await sign_in_log(owner_conn, gamma.id)
        assert len(refused) == 1
        assert refused[0]["reason"] in LOGGED[defect]
        assert (refused[0]["method"], refused[0]["outcome"]) == ("sso", "refused")
        assert refused[0]["idp"] == hostile.issuer
        assert refused[0]["client_addr"] == browser.address
        # The admin reads the cause in the same words (it was the code alone).
        assert re.search(REASONS[defect], refused[0]["detail"] or ""), refused[0]["detail"]

        # Nothing was left broken: the same browser signs in once the provider behaves.
        hostile.misbehaviour = Misbehaviour.NONE
        retry = await browser.get(await callback_url(browser))
        assert retry.status_code == 303, text_of(retry.text)
        assert retry.headers["location"] == "/console"
        assert browser.session_cookie
        logged = await sign_in_log(owner_conn, gamma.id)
        assert [(e["outcome"], e["email"], e["idp_subject"]) for e in logged[1:]] == [
            ("succeeded", ACCOUNT["email"], ACCOUNT["sub"])
        ]


@pytest.mark.parametrize(
    "claims_in_id_token", [True, False], ids=["claims-in-id-token", "claims-in-userinfo"]
)
async def test_well_behaved_provider_signs_the_member_in(
    gamma: OrgHandle,
    hostile: HostileIdp,
    live_server: str,
    owner_conn: asyncpg.Connection,
    claims_in_id_token: bool,
) -> None:
    hostile.claims_in_id_token = claims_in_id_token
    async with live_client(live_server) as browser:
        response = await browser.get(await callback_url(browser))
        assert response.status_code == 303, text_of(response.text)
        assert response.headers["location"] == "/console"
        assert browser.session_cookie
        assert (await browser.get("/console")).status_code == 200
    assert await sessions_of(owner_conn, gamma) == 1


async def test_replayed_state_is_refused(
    gamma: OrgHandle, live_server: str, owner_conn: asyncpg.Connection
) -> None:
    async with live_client(live_server) as browser:
        callback = await callback_url(browser)
        assert (await browser.get(callback)).status_code == 303
    async with live_client(live_server) as browser:
        await browser.login_csrf(SLUG)
        replay = await browser.get(callback)
        assert replay.status_code == 401
        assert "already completed (replayed state)" in text_of(replay.text)
        assert browser.session_cookie is None
    assert await sessions_of(owner_conn, gamma) == 1
    assert [e["reason"] for e in await sign_in_log(owner_conn, gamma.id)] == [
        None, "state_replayed"
    ]


async def test_unknown_state_is_refused(
    gamma: OrgHandle, live_server: str, owner_conn: asyncpg.Connection
) -> None:
    async with live_client(live_server) as browser:
        callback = await callback_url(browser)
        forged = re.sub(r"state=[^&]+", "state=made-up-state", callback)
        response = await browser.get(forged)
        assert response.status_code == 401
        assert "unknown or has expired" in text_of(response.text)
    assert [e["reason"] for e in await sign_in_log(owner_conn, gamma.id)] == ["state_unknown"]


async def test_a_provider_too_slow_in_all_is_cut_off_with_a_readable_page(
    gamma: OrgHandle,
    hostile: HostileIdp,
    live_server: str,
    owner_conn: asyncpg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each call to the provider has its own timeout, but the callback as a whole has one
    too (``CALLBACK_SECONDS``, shortened here), so a provider slow at every step cannot
    hold the browser for minutes."""
    from tenants.sso import service

    monkeypatch.setattr(service, "CALLBACK_SECONDS", 0.5)
    hostile.token_delay = 2.0
    async with live_client(live_server) as browser:
        response = await browser.get(await callback_url(browser))
        assert response.status_code == 401, text_of(response.text)
        assert "did not finish answering within 0.5 seconds" in text_of(response.text)
        assert browser.session_cookie is None
    assert [e["reason"] for e in await sign_in_log(owner_conn, gamma.id)] == ["idp_unreachable"]


async def test_claims_the_database_cannot_hold_are_refused_or_left_out_never_a_500(
    gamma: OrgHandle, hostile: HostileIdp, live_server: str, owner_conn: asyncpg.Connection
) -> None:
    """A userinfo answer is checked as an ID token is (NUL is refused), and a group name
    longer than any group's is simply no group's: the member signs in."""
    saved = dict(hostile.account)
    try:
        hostile.claims_in_id_token = False
        hostile.account = {**saved, "name": "Mia\x00Gamma"}
        async with live_client(live_server) as browser:
            refused = await browser.get(await callback_url(browser))
            assert refused.status_code == 401, text_of(refused.text)
            assert "userinfo answer's claim 'name' holds a NUL" in text_of(refused.text)
        hostile.claims_in_id_token = True
        hostile.account = {**saved, "groups": ["g" * 5000, "staff"]}
        async with live_client(live_server) as browser:
            signed_in = await browser.get(await callback_url(browser))
            assert signed_in.status_code == 303, text_of(signed_in.text)
    finally:
        hostile.account = saved
    assert [e["reason"] for e in await sign_in_log(owner_conn, gamma.id)] == [
        "id_token_bad_claims",
        None,
    ]


def test_a_provisioned_name_meets_the_rules_of_a_typed_one() -> None:
    from tenants.sso.service import NAME_MAX, _provisioned_name

    assert _provisioned_name("  Nora\u0301 N  ", "nora@x.example") == "Norá N"
    assert _provisioned_name("n" * 300, "nora@x.example") == "n" * NAME_MAX
    for odd in ("Bob\x1b[31m", "evil\u202egnp.exe", "\u200b", ["a", "b"], None, 7):
        assert _provisioned_name(odd, "nora@x.example") == "nora"
