"""Sign-in through the organisation's own identity provider, end to end against the real
test OpenID provider (node ``oidc-provider``) and the app served over HTTP: landing pages,
just-in-time provisioning, refusals and their audit trail, the state and browser binding,
sign-out, back-channel logout (real and forged tokens), and ending a member's sessions.
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid

import asyncpg
import httpx
import pytest
from joserfc.jwk import RSAKey

from app.settings import Settings
from tests.conftest import OrgHandle, make_org, make_unit
from tests.support.hostile_idp import HostileIdp, LogoutTokenMisbehaviour
from tests.support.lifecycle import apply_as_workflow
from tests.support.oidc_provider import RunningProvider, login_with_browserless_flow
from tests.web.conftest import (
    ADA,
    ALPHA,
    BEA,
    BRAVO,
    EVE,
    IMPOSTOR,
    MAX,
    NORA,
    UNVERIFIED_MAX,
    UNVERIFIED_UMA,
    SsoWorld,
    client_id,
)
from tests.web.flows import (
    audit_events,
    configure_sso,
    live_client,
    live_sessions,
    member_row,
    sign_in_log,
    text_of,
)

pytestmark = pytest.mark.oidc


async def logged(conn: asyncpg.Connection, org: OrgHandle) -> list[tuple[str | None, str | None]]:
    """The organisation's sign-in log as (reason, email), oldest first; reason None is a
    successful sign-in."""
    return [(e["reason"], e["email"]) for e in await sign_in_log(conn, org.id)]


async def assert_refused_page(response: httpx.Response, *words: str) -> str:
    assert response.status_code == 403, response.text
    assert "tenantry_session" not in response.headers.get("set-cookie", "")
    text = text_of(response.text)
    assert "You cannot sign in" in text
    for word in words:
        assert word in text
    return text


# --- landing ------------------------------------------------------------------------------


async def test_admin_signs_in_and_sees_only_their_organisations_members(
    world: SsoWorld, live_server: str, owner_conn: asyncpg.Connection, idp: RunningProvider
) -> None:
    async with live_client(live_server) as bea_browser:
        assert (await bea_browser.sso_sign_in(BRAVO, BEA.sub)).headers["location"] == "/account"
    async with live_client(live_server) as browser:
        response = await browser.sso_sign_in(ALPHA, ADA.sub)
        assert response.status_code == 303
        assert response.headers["location"] == "/console"
        assert browser.session_cookie

        console = await browser.get("/console")
        assert console.status_code == 200
        assert "Alpha" in text_of(console.text)
        members = text_of((await browser.get("/console/members")).text)
        assert ADA.email in members and MAX.email in members
        assert BEA.email not in members
        assert "2 members match; showing 2" in members
    for org, person in ((world.alpha, ADA), (world.bravo, BEA)):
        entries = await sign_in_log(owner_conn, org.id)
        assert [
            (e["method"], e["outcome"], e["reason"], e["email"], e["idp_subject"]) for e in entries
        ] == [("sso", "succeeded", None, person.email, person.sub)]
        assert entries[0]["idp"] == idp.issuer
        assert entries[0]["member_id"] is not None and entries[0]["client_addr"]


async def test_member_lands_on_the_account_page_managed_by_their_organisation(
    world: SsoWorld, live_server: str
) -> None:
    async with live_client(live_server) as browser:
        response = await browser.sso_sign_in(ALPHA, MAX.sub, next_path="/console/members")
        assert response.status_code == 303
        assert response.headers["location"] == "/account"  # a member is never sent into the console
        page = await browser.get("/account")
        assert page.status_code == 200
        text = text_of(page.text)
        assert "This account is managed by Alpha" in text
        assert f"Signed in as {MAX.email}" in text


@pytest.fixture(params=["claims-only-in-userinfo", "claims-in-the-id-token"])
def provider(
    request: pytest.FixtureRequest, idp: RunningProvider, idp_claims_in_id_token: RunningProvider
) -> RunningProvider:
    return idp if request.param == "claims-only-in-userinfo" else idp_claims_in_id_token


async def test_sign_in_works_whether_claims_come_from_userinfo_or_the_id_token(
    world: SsoWorld,
    live_server: str,
    owner_conn: asyncpg.Connection,
    provider: RunningProvider,
) -> None:
    await world.use_issuer(world.alpha, provider)
    async with live_client(live_server) as browser:
        authorization_url = await browser.start_sso(ALPHA)
        assert authorization_url.startswith(provider.issuer)
        callback = await asyncio.to_thread(login_with_browserless_flow, authorization_url, MAX.sub)
        response = await browser.get(callback)
        assert response.status_code == 303, text_of(response.text)
        assert response.headers["location"] == "/account"
        assert f"Signed in as {MAX.email}" in text_of((await browser.get("/account")).text)
    row = await member_row(owner_conn, world.alpha.id, MAX.email)
    assert row is not None and row["idp_subject"] == MAX.sub


# --- who may come in ----------------------------------------------------------------------


async def test_just_in_time_provisioning_creates_the_member_in_the_default_unit(
    world: SsoWorld,
    live_server: str,
    idp: RunningProvider,
    owner_conn: asyncpg.Connection,
) -> None:
    newcomers = await make_unit(world.alpha, "Newcomers")
    await world.use_issuer(
        world.alpha, idp, jit_provisioning=True, default_unit_id=uuid.UUID(newcomers["id"])
    )
    assert await member_row(owner_conn, world.alpha.id, NORA.email) is None

    async with live_client(live_server) as browser:
        response = await browser.sso_sign_in(ALPHA, NORA.sub)
        assert response.status_code == 303, text_of(response.text)
        assert response.headers["location"] == "/account"
        assert "This account is managed by Alpha" in text_of((await browser.get("/account")).text)

    row = await member_row(owner_conn, world.alpha.id, NORA.email)
    assert row is not None
    assert str(row["unit_id"]) == newcomers["id"]
    assert row["idp_subject"] == NORA.sub
    assert row["status"] == "active"
    assert row["name"] == NORA.name
    created = [
        e
        for e in await audit_events(owner_conn, world.alpha.id, "member.created")
        if e.target_id == str(row["id"])
    ]
    assert len(created) == 1 and created[0].actor.startswith("identity_provider:")


async def test_unknown_person_is_refused_with_an_audit_event_when_provisioning_is_off(
    world: SsoWorld,
    live_server: str,
    owner_conn: asyncpg.Connection,
) -> None:
    async with live_client(live_server) as browser:
        response = await browser.sso_sign_in(ALPHA, NORA.sub)
        await assert_refused_page(response, "you have no account at Alpha")
        assert browser.session_cookie is None
    assert await member_row(owner_conn, world.alpha.id, NORA.email) is None
    refused = await audit_events(owner_conn, world.alpha.id, "session.sign_in_refused")
    assert [(e.after["reason"], e.after["email"], e.after["idp_subject"]) for e in refused] == [
        ("unknown_member", NORA.email, NORA.sub)
    ]
    assert await logged(owner_conn, world.alpha) == [("unknown_member", NORA.email)]


@pytest.mark.parametrize("status", ["suspended", "departed"])
async def test_suspended_and_departed_members_are_refused_with_an_audit_event(
    world: SsoWorld,
    live_server: str,
    owner_conn: asyncpg.Connection,
    status: str,
) -> None:
    actions = ["suspend"] if status == "suspended" else ["suspend", "depart"]
    await apply_as_workflow(world.alpha.id, world.max["id"], *actions)
    async with live_client(live_server) as browser:
        response = await browser.sso_sign_in(ALPHA, MAX.sub)
        await assert_refused_page(response, f"your account is {status}")
        assert browser.session_cookie is None
    assert await live_sessions(owner_conn, world.max["id"]) == 0
    refused = await audit_events(owner_conn, world.alpha.id, "session.sign_in_refused")
    assert [(e.target_id, e.after["reason"]) for e in refused] == [
        (world.max["id"], f"member_{status}")
    ]
    entries = await sign_in_log(owner_conn, world.alpha.id)
    assert [(e["reason"], str(e["member_id"])) for e in entries] == [
        (f"member_{status}", world.max["id"])
    ]


async def test_foreign_email_domain_is_refused_with_an_audit_event_even_with_provisioning_on(
    world: SsoWorld,
    live_server: str,
    idp: RunningProvider,
    owner_conn: asyncpg.Connection,
) -> None:
    await world.use_issuer(world.alpha, idp, jit_provisioning=True)
    async with live_client(live_server) as browser:
        response = await browser.sso_sign_in(ALPHA, EVE.sub)
        await assert_refused_page(response, "accounts from evil.example cannot sign in to Alpha")
    assert await member_row(owner_conn, world.alpha.id, EVE.email) is None
    refused = await audit_events(owner_conn, world.alpha.id, "session.sign_in_refused")
    assert [(e.after["reason"], e.after["email"]) for e in refused] == [
        ("domain_not_allowed", EVE.email)
    ]
    assert await logged(owner_conn, world.alpha) == [("domain_not_allowed", EVE.email)]


@pytest.mark.parametrize("how", ["listed as allowed", "added but not proven"])
async def test_an_unproven_domain_never_admits_anyone_even_when_listed(
    world: SsoWorld,
    live_server: str,
    idp: RunningProvider,
    owner_conn: asyncpg.Connection,
    how: str,
) -> None:
    """Listing a domain on the connection, or adding it without proof, lets nobody from it
    in: only proven domains count."""
    if how == "listed as allowed":
        await world.use_issuer(
            world.alpha, idp, jit_provisioning=True, allowed_domains=["evil.example"]
        )
    else:
        await world.use_issuer(world.alpha, idp, jit_provisioning=True)
        added = await world.alpha.post("/v1/domains", {"name": "evil.example"})
        assert added.status_code == 201 and added.json()["status"] == "pending"
    async with live_client(live_server) as browser:
        response = await browser.sso_sign_in(ALPHA, EVE.sub)
        await assert_refused_page(response, "accounts from evil.example cannot sign in")
    assert await member_row(owner_conn, world.alpha.id, EVE.email) is None
    assert await logged(owner_conn, world.alpha) == [("domain_not_allowed", EVE.email)]
    if how == "listed as allowed":
        # Alpha's own proven domain is not listed either, so it is refused as well.
        async with live_client(live_server) as browser:
            response = await browser.sso_sign_in(ALPHA, ADA.sub)
            await assert_refused_page(response, "accounts from alpha.example cannot sign in")


async def test_identity_provider_subject_is_linked_to_the_member_on_first_sign_in(
    world: SsoWorld,
    live_server: str,
    owner_conn: asyncpg.Connection,
) -> None:
    assert world.max["idp_subject"] is None
    async with live_client(live_server) as browser:
        assert (await browser.sso_sign_in(ALPHA, MAX.sub)).status_code == 303
    row = await member_row(owner_conn, world.alpha.id, MAX.email)
    assert row is not None and row["idp_subject"] == MAX.sub
    linked = [
        e
        for e in await audit_events(owner_conn, world.alpha.id, "member.updated")
        if e.target_id == world.max["id"]
    ]
    assert [e.after for e in linked] == [{"idp_subject": MAX.sub}]

    # From now on the subject finds the member, even after their address changed here.
    renamed = await world.alpha.patch(
        f"/v1/members/{world.max['id']}", {"email": "maxwell@alpha.example"}
    )
    assert renamed.status_code == 200, renamed.text
    async with live_client(live_server) as browser:
        response = await browser.sso_sign_in(ALPHA, MAX.sub)
        assert response.status_code == 303, text_of(response.text)
        assert "Signed in as maxwell@alpha.example" in text_of((await browser.get("/account")).text)


async def test_another_identity_carrying_a_linked_members_email_is_refused(
    world: SsoWorld,
    live_server: str,
    owner_conn: asyncpg.Connection,
) -> None:
    async with live_client(live_server) as ada:
        assert (await ada.sso_sign_in(ALPHA, ADA.sub)).headers["location"] == "/console"
    async with live_client(live_server) as impostor:
        response = await impostor.sso_sign_in(ALPHA, IMPOSTOR.sub)
        await assert_refused_page(response, "linked to another identity")
    assert await live_sessions(owner_conn, world.ada["id"]) == 1
    row = await member_row(owner_conn, world.alpha.id, ADA.email)
    assert row is not None and row["idp_subject"] == ADA.sub
    refused = await audit_events(owner_conn, world.alpha.id, "session.sign_in_refused")
    assert [(e.target_id, e.after["reason"], e.after["idp_subject"]) for e in refused] == [
        (world.ada["id"], "subject_mismatch", IMPOSTOR.sub)
    ]
    assert await logged(owner_conn, world.alpha) == [
        (None, ADA.email),
        ("subject_mismatch", ADA.email),
    ]


async def test_after_a_change_of_provider_its_subjects_name_nobody_the_old_one_linked(
    world: SsoWorld,
    live_server: str,
    idp_claims_in_id_token: RunningProvider,
    owner_conn: asyncpg.Connection,
) -> None:
    """A subject is unique only within its issuer (OIDC Core §5.7): the member the old
    provider called ``alpha-admin-ada`` is not whoever the new one calls that. Here the old
    provider had linked Max to that subject; at the new one it is Ada's, and she signs in
    as Ada (by her verified address), not as Max."""
    await owner_conn.execute(
        "UPDATE members SET idp_subject = $2 WHERE id = $1", world.max["id"], ADA.sub
    )
    await world.use_issuer(world.alpha, idp_claims_in_id_token)
    async with live_client(live_server) as browser:
        response = await browser.sso_sign_in(ALPHA, ADA.sub)
        assert response.status_code == 303, text_of(response.text)
        assert "Signed in as ada@alpha.example" in text_of((await browser.get("/account")).text)
    assert await live_sessions(owner_conn, world.max["id"]) == 0
    max_row = await member_row(owner_conn, world.alpha.id, MAX.email)
    ada_row = await member_row(owner_conn, world.alpha.id, ADA.email)
    assert max_row is not None and max_row["idp_subject"] is None
    assert ada_row is not None and ada_row["idp_subject"] == ADA.sub
    unlinked = await audit_events(owner_conn, world.alpha.id, "sso.subjects_unlinked")
    assert [e.after["members"] for e in unlinked] == [1]


@pytest.mark.parametrize("who", ["existing member", "newcomer"])
async def test_an_unverified_email_neither_links_a_member_nor_provisions_one(
    world: SsoWorld,
    live_server: str,
    idp: RunningProvider,
    owner_conn: asyncpg.Connection,
    who: str,
) -> None:
    await world.use_issuer(world.alpha, idp, jit_provisioning=True)
    person = UNVERIFIED_MAX if who == "existing member" else UNVERIFIED_UMA
    async with live_client(live_server) as browser:
        response = await browser.sso_sign_in(ALPHA, person.sub)
        await assert_refused_page(response, "has not verified your email address")
    row = await member_row(owner_conn, world.alpha.id, person.email)
    if who == "existing member":
        assert row is not None and row["idp_subject"] is None
    else:
        assert row is None
    refused = await audit_events(owner_conn, world.alpha.id, "session.sign_in_refused")
    assert [e.after["reason"] for e in refused] == ["email_not_verified"]
    assert await logged(owner_conn, world.alpha) == [("email_not_verified", person.email)]


# --- the state and the browser binding ----------------------------------------------------


async def test_replayed_callback_is_refused(
    world: SsoWorld, live_server: str, owner_conn: asyncpg.Connection
) -> None:
    async with live_client(live_server) as browser:
        callback = await browser.sso_callback_url(ALPHA, ADA.sub)
        assert (await browser.get(callback)).status_code == 303
        replay = await browser.get(callback)
        assert replay.status_code == 401
        assert "already completed" in text_of(replay.text)
        assert "tenantry_session" not in replay.headers.get("set-cookie", "")
    assert await live_sessions(owner_conn, world.ada["id"]) == 1
    assert await logged(owner_conn, world.alpha) == [(None, ADA.email), ("state_replayed", None)]


async def test_callback_in_another_browser_is_refused(
    world: SsoWorld, live_server: str, owner_conn: asyncpg.Connection
) -> None:
    async with live_client(live_server) as victim, live_client(live_server) as attacker:
        callback = await victim.sso_callback_url(ALPHA, ADA.sub)
        await attacker.login_csrf(ALPHA)  # the attacker's browser has its own browser cookie
        response = await attacker.get(callback)
        assert response.status_code == 401
        assert "started in another browser" in text_of(response.text)
        assert attacker.session_cookie is None

        # Without any browser cookie the answer is refused as incomplete.
        async with live_client(live_server) as cookieless:
            assert (await cookieless.get(callback)).status_code == 400

        # Neither spent the sign-in: the browser that started it still finishes it.
        assert (await victim.get(callback)).status_code == 303
    assert await live_sessions(owner_conn, world.ada["id"]) == 1
    assert await logged(owner_conn, world.alpha) == [
        ("browser_mismatch", None),
        ("incomplete_response", None),
        (None, ADA.email),
    ]


async def test_an_error_from_the_identity_provider_is_shown_in_plain_words_and_logged(
    world: SsoWorld, live_server: str, owner_conn: asyncpg.Connection, idp: RunningProvider
) -> None:
    async with live_client(live_server) as browser:
        await browser.login_csrf(ALPHA)
        response = await browser.get(
            f"/oidc/{ALPHA}/callback",
            params={"error": "access_denied", "error_description": "<b>Call 555-EVIL now</b>"},
        )
        assert response.status_code == 400
        text = text_of(response.text)
        assert "declined the sign-in" in text
        assert "555-EVIL" not in response.text  # the provider's free text is never shown
        odd = await browser.get(f"/oidc/{ALPHA}/callback", params={"error": "made_up_error"})
        assert odd.status_code == 400 and "made_up_error" not in odd.text
    entries = await sign_in_log(owner_conn, world.alpha.id)
    assert [(e["reason"], e["idp"]) for e in entries] == [
        ("idp_error", idp.issuer),
        ("idp_error", idp.issuer),
    ]


# --- ending sessions ----------------------------------------------------------------------


async def test_sign_out_ends_the_session(
    world: SsoWorld, live_server: str, owner_conn: asyncpg.Connection
) -> None:
    async with live_client(live_server) as browser:
        assert (await browser.sso_sign_in(ALPHA, ADA.sub)).status_code == 303
        old_cookie = browser.session_cookie
        assert old_cookie
        response = await browser.sign_out()
        assert response.status_code == 303
        assert response.headers["location"] == "/login?signed_out=1"
        assert browser.session_cookie is None
        assert "You are signed out" in text_of((await browser.get("/login?signed_out=1")).text)
    assert await live_sessions(owner_conn, world.ada["id"]) == 0

    async with live_client(live_server) as thief:
        thief.http.cookies.set("tenantry_session", old_cookie)
        console = await thief.get("/console")
        assert console.status_code == 303
        assert console.headers["location"].startswith("/login")


async def test_back_channel_logout_from_the_provider_ends_the_members_session(
    world: SsoWorld,
    live_server: str,
    idp: RunningProvider,
    owner_conn: asyncpg.Connection,
) -> None:
    async with live_client(live_server) as ada, live_client(live_server) as max_:
        assert (await ada.sso_sign_in(ALPHA, ADA.sub)).status_code == 303
        assert (await max_.sso_sign_in(ALPHA, MAX.sub)).status_code == 303
        assert (await ada.get("/console")).status_code == 200

        delivered = await asyncio.to_thread(
            idp.trigger_backchannel_logout, ADA.sub, client_id(ALPHA)
        )
        assert delivered == 200

        console = await ada.get("/console")
        assert console.status_code == 303
        assert console.headers["location"].startswith("/login")
        assert (
            await max_.get("/account")
        ).status_code == 200  # only the named person is signed out
    ended = await audit_events(owner_conn, world.alpha.id, "session.ended_by_idp")
    assert [(e.target_id, e.after["sessions"]) for e in ended] == [(world.ada["id"], 1)]


async def post_logout_token(base_url: str, slug: str, token: str) -> httpx.Response:
    """POST a logout token the way an identity provider does: no cookies, form-encoded."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as provider_side:
        return await provider_side.post(
            f"/oidc/{slug}/backchannel-logout", data={"logout_token": token}
        )


@pytest.fixture(scope="module")
def forger(idp: RunningProvider) -> HostileIdp:
    """Makes logout tokens claiming to come from ``idp``, signed with its real key unless the
    defect is the signature, so the defect is the only reason to refuse them."""
    hostile = HostileIdp(idp.issuer, client_id=client_id(ALPHA))
    hostile.signing_key = RSAKey.import_key(dict(idp.private_jwks["keys"][0]))
    return hostile


@pytest.mark.parametrize(
    "defect",
    [
        LogoutTokenMisbehaviour.BAD_SIGNATURE,
        LogoutTokenMisbehaviour.WRONG_AUDIENCE,
        LogoutTokenMisbehaviour.WRONG_ISSUER,
        LogoutTokenMisbehaviour.EXPIRED,
        LogoutTokenMisbehaviour.MISSING_EVENTS,
        LogoutTokenMisbehaviour.CONTAINS_NONCE,
    ],
    ids=lambda d: d.value,
)
async def test_forged_logout_token_is_answered_400_and_ends_nothing(
    world: SsoWorld,
    live_server: str,
    forger: HostileIdp,
    owner_conn: asyncpg.Connection,
    defect: LogoutTokenMisbehaviour,
) -> None:
    async with live_client(live_server) as ada:
        assert (await ada.sso_sign_in(ALPHA, ADA.sub)).status_code == 303
        token = forger.logout_token(ADA.sub, client_id(ALPHA), misbehaviour=defect)
        response = await post_logout_token(live_server, ALPHA, token)
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_request"
        assert response.headers["cache-control"] == "no-store"
        assert (await ada.get("/console")).status_code == 200
    assert await live_sessions(owner_conn, world.ada["id"]) == 1
    assert await audit_events(owner_conn, world.alpha.id, "session.ended_by_idp") == []


async def test_a_logout_token_that_does_not_parse_or_holds_what_cannot_be_stored_is_400(
    world: SsoWorld,
    live_server: str,
    forger: HostileIdp,
    owner_conn: asyncpg.Connection,
) -> None:
    """Anyone may post to this endpoint: a header that is no JSON object (a list, a number,
    arrays nested past the reader's depth) and a validly signed token whose identifiers
    PostgreSQL cannot hold (NUL) or that are overlong are refused, never a 500."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    unparsable = [f"{b64(header)}.e30.x" for header in (b'["x"]', b"5", b"[" * 50_000)]
    now = int(time.time())
    base = {
        "iss": forger.issuer,
        "aud": client_id(ALPHA),
        "iat": now,
        "exp": now + 120,
        "jti": uuid.uuid4().hex,
        "sub": ADA.sub,
        "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
    }
    signed = [
        forger._sign({**base, **change}, typ="logout+jwt")
        for change in ({"jti": "j\x00"}, {"sid": "s\x00"}, {"sub": "a" * 256}, {"exp": 1e400})
    ]
    async with live_client(live_server) as ada:
        assert (await ada.sso_sign_in(ALPHA, ADA.sub)).status_code == 303
        for token in unparsable + signed:
            response = await post_logout_token(live_server, ALPHA, token)
            assert response.status_code == 400, (token[:40], response.text)
            assert response.json()["error"] == "invalid_request"
        assert (await ada.get("/console")).status_code == 200
    assert await live_sessions(owner_conn, world.ada["id"]) == 1


async def test_logout_token_made_like_the_forged_ones_but_without_a_defect_is_accepted(
    world: SsoWorld,
    live_server: str,
    forger: HostileIdp,
) -> None:
    """The control for the forged-token test: its tokens fail only because of their defect."""
    async with live_client(live_server) as ada:
        assert (await ada.sso_sign_in(ALPHA, ADA.sub)).status_code == 303
        token = forger.logout_token(ADA.sub, client_id(ALPHA))
        response = await post_logout_token(live_server, ALPHA, token)
        assert response.status_code == 200
        assert (await ada.get("/console")).status_code == 303


async def test_a_replayed_logout_token_is_refused_and_ends_nothing(
    world: SsoWorld,
    live_server: str,
    forger: HostileIdp,
    owner_conn: asyncpg.Connection,
) -> None:
    """Back-Channel Logout 1.0 §2.6: a logout token's jti is remembered, so a captured
    token replayed after the member signed in again does not sign them out."""
    async with live_client(live_server) as ada:
        assert (await ada.sso_sign_in(ALPHA, ADA.sub)).status_code == 303
        token = forger.logout_token(ADA.sub, client_id(ALPHA))
        assert (await post_logout_token(live_server, ALPHA, token)).status_code == 200
        assert (await ada.sso_sign_in(ALPHA, ADA.sub)).status_code == 303
        replayed = await post_logout_token(live_server, ALPHA, token)
        assert replayed.status_code == 400
        assert "replayed" in replayed.json()["error_description"]
        assert (await ada.get("/console")).status_code == 200
    assert await live_sessions(owner_conn, world.ada["id"]) == 1


async def test_sign_out_everywhere_from_the_console_ends_all_sessions_of_a_member(
    world: SsoWorld,
    live_server: str,
    owner_conn: asyncpg.Connection,
) -> None:
    async with (
        live_client(live_server) as admin,
        live_client(live_server) as laptop,
        live_client(live_server) as phone,
    ):
        assert (await admin.sso_sign_in(ALPHA, ADA.sub)).status_code == 303
        for device in (laptop, phone):
            assert (await device.sso_sign_in(ALPHA, MAX.sub)).status_code == 303
            assert (await device.get("/account")).status_code == 200
        assert await live_sessions(owner_conn, world.max["id"]) == 2

        detail = await admin.get(f"/console/members/{world.max['id']}")
        assert "Live sessions 2" in text_of(detail.text)
        response = await admin.post(
            f"/console/members/{world.max['id']}/sign-out",
            {"csrf": await admin.csrf_of("/console"), "confirmed": "1"},
        )
        assert response.status_code == 303
        assert response.headers["location"] == f"/console/members/{world.max['id']}"
        flash = text_of((await admin.get(response.headers["location"])).text)
        assert "Ended 2 sessions of Max Member" in flash

        for device in (laptop, phone):
            account = await device.get("/account")
            assert account.status_code == 303
            assert account.headers["location"].startswith("/login")
        assert (await admin.get("/console")).status_code == 200
    assert await live_sessions(owner_conn, world.max["id"]) == 0
    assert len(await audit_events(owner_conn, world.alpha.id, "session.ended_all")) == 1


async def test_suspending_a_member_through_the_api_ends_their_sessions(
    world: SsoWorld,
    live_server: str,
    owner_conn: asyncpg.Connection,
) -> None:
    async with live_client(live_server) as browser:
        assert (await browser.sso_sign_in(ALPHA, MAX.sub)).status_code == 303
        assert (await browser.get("/account")).status_code == 200

        suspended = await world.alpha.post(
            f"/v1/members/{world.max['id']}/transitions", {"action": "suspend"}
        )
        assert suspended.status_code == 200, suspended.text
        assert await live_sessions(owner_conn, world.max["id"]) == 0

        # Reinstating the member does not bring the ended session back.
        reinstated = await world.alpha.post(
            f"/v1/members/{world.max['id']}/transitions", {"action": "reinstate"}
        )
        assert reinstated.status_code == 200, reinstated.text
        account = await browser.get("/account")
        assert account.status_code == 303
        assert account.headers["location"].startswith("/login")


async def test_a_stranger_posting_logout_tokens_learns_nothing_of_how_sign_in_is_set_up(
    world: SsoWorld, live_server: str, settings: Settings, org: OrgHandle, client: httpx.AsyncClient
) -> None:
    """Anyone may post to the back-channel logout endpoint: an organisation without a
    provider, one whose provider cannot be reached and one that does not exist answer the
    same bare 400, and no answer names a provider's address."""
    unreachable = await make_org(client)
    await configure_sso(
        settings,
        unreachable.id,
        issuer="https://idp.unreachable.invalid",
        client_id="c",
        client_secret="s" * 20,
    )
    answers = [
        await post_logout_token(live_server, slug, "x.y.z")
        for slug in (org.slug, unreachable.slug, "no-such-organisation")
    ]
    assert [(a.status_code, a.json()) for a in answers] == [(400, {"error": "invalid_request"})] * 3
    # What is wrong with a token itself is still said, for the provider's operators.
    forged = await post_logout_token(live_server, ALPHA, "x.y.z")
    assert forged.json()["error_description"] == (
        "the logout token is not validly signed by the identity provider"
    )


async def test_a_sign_in_started_before_the_provider_changed_is_refused_and_sends_nothing(
    world: SsoWorld, live_server: str, owner_conn: asyncpg.Connection
) -> None:
    """The callback uses the provider the browser was sent to, or none: after an admin
    switches the connection, a sign-in started before cannot send its code, verifier or
    the new client's secret to the new provider."""
    async with live_client(live_server) as ada:
        callback = await ada.sso_callback_url(ALPHA, ADA.sub)
        await owner_conn.execute(
            "UPDATE sso_connections SET client_id = 'another-client' WHERE tenant_id = $1",
            world.alpha.id,
        )
        response = await ada.get(callback)
        assert response.status_code == 401
        assert "identity provider changed while you were signing in" in text_of(response.text)
        assert ada.session_cookie is None
    assert await logged(owner_conn, world.alpha) == [("issuer_mismatch", None)]
