"""The web face's defences: CSRF tokens on every form, security headers, cookie flags, the
sign-in rate limit and credential lockout, the break-glass admin, and no open redirect.
Runs in process (no server): each test's browser has its own client address.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from app.settings import Settings
from tenants.ratelimits import RateLimiter
from tenants.sessions.passwords import MAX_FAILURES
from tenants.signins.rules import message_for
from tests.conftest import OrgHandle, make_member, row_counts
from tests.web.flows import (
    PASSWORD,
    WebClient,
    asgi_client,
    audit_events,
    configure_sso,
    set_local_sign_in,
    set_password,
    text_of,
)

WRONG = "not-the-right-password"


@pytest.fixture
async def local_org(org: OrgHandle) -> OrgHandle:
    """An organisation whose members may sign in with a password."""
    await set_local_sign_in(org.id, True)
    return org


async def admin_of(
    org: OrgHandle, *, break_glass: bool = False, role: str = "admin"
) -> dict[str, Any]:
    person = await make_member(org, name="Alex Admin", roles=[role])
    await set_password(org.id, person["id"], PASSWORD, break_glass=break_glass)
    return person


async def signed_in_admin(browser: WebClient, org: OrgHandle, admin: dict[str, Any]) -> str:
    """Sign ``admin`` in and return the session's CSRF token."""
    response = await browser.password_sign_in(org.slug, admin["email"], PASSWORD)
    assert response.status_code == 303 and response.headers["location"] == "/console", response.text
    return await browser.csrf_of("/console")


def refused_reason(response: httpx.Response) -> str:
    """The reason a refused password sign-in shows on the sign-in page it redirects to
    (lower case): the redirect carries a reason code, the page its fixed message."""
    assert response.status_code == 303, response.text
    assert "tenantry_session" not in response.headers.get("set-cookie", "")
    location = response.headers["location"]
    assert location.startswith("/login/"), location
    code = str(httpx.URL(location).params.get("reason", ""))
    message = message_for(code)
    assert message is not None, f"unknown reason code {code!r}"
    return message.lower()


# --- CSRF ---------------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["missing", "wrong", "another-sessions", "login-form"])
async def test_console_post_without_its_sessions_csrf_token_is_refused_and_changes_nothing(
    app: Any,
    local_org: OrgHandle,
    owner_conn: asyncpg.Connection,
    token: str,
) -> None:
    admin = await admin_of(local_org)
    target = await make_member(local_org)
    async with asgi_client(app) as browser, asgi_client(app) as other:
        await signed_in_admin(browser, local_org, admin)
        other_csrf = await signed_in_admin(other, local_org, admin)
        presented = {
            "missing": None,
            "wrong": "0" * 64,
            "another-sessions": other_csrf,
            "login-form": await browser.login_csrf(local_org.slug),
        }[token]
        form = {} if presented is None else {"csrf": presented}
        before = await row_counts(owner_conn)
        for path, fields in [
            ("/console/units", {"parent_id": str(local_org.root_unit_id), "name": "Sneaky"}),
            (f"/console/members/{target['id']}/transition", {"action": "suspend"}),
            (f"/console/members/{target['id']}/sign-out", {}),
            ("/console/settings/sign-in", {}),
            (
                "/console/settings/sso",
                {"issuer": "https://evil.example", "client_id": "evil", "enabled": "on"},
            ),
        ]:
            response = await browser.post(path, {**fields, **form})
            assert response.status_code == 403, path
            assert "This form was not sent from this session" in text_of(response.text)
        assert await row_counts(owner_conn) == before
        assert (await browser.get("/console")).status_code == 200  # still signed in
    assert (
        await owner_conn.fetchval(
            "SELECT status FROM members WHERE id = $1", uuid.UUID(target["id"])
        )
        == "active"
    )
    assert (
        await owner_conn.fetchval(
            "SELECT local_sign_in FROM organisations WHERE id = $1", local_org.id
        )
        is True
    )


async def test_sign_out_needs_the_csrf_token(app: Any, local_org: OrgHandle) -> None:
    admin = await admin_of(local_org)
    async with asgi_client(app) as browser:
        await signed_in_admin(browser, local_org, admin)
        forged = await browser.post("/logout", {})
        # It says so: a sign-out that ends nothing once answered "signed out".
        assert forged.status_code == 403 and "Not signed out" in forged.text
        assert (
            await browser.get("/console")
        ).status_code == 200  # a cross-site form cannot sign you out


async def test_login_forms_need_their_csrf_token(
    app: Any,
    local_org: OrgHandle,
    owner_conn: asyncpg.Connection,
    settings: Settings,
) -> None:
    admin = await admin_of(local_org)
    await configure_sso(
        settings,
        local_org.id,
        issuer="https://idp.example",
        client_id="c",
        client_secret="c-secret-0123456789",
    )
    async with asgi_client(app) as browser, asgi_client(app) as other:
        await browser.login_csrf(local_org.slug)  # the browser has its browser cookie
        others_token = await other.login_csrf(local_org.slug)
        for label, form in [("no token", {}), ("another browser's token", {"csrf": others_token})]:
            email = await browser.post("/login", {**form, "email": admin["email"]})
            assert email.status_code == 400, label
            assert "The form expired" in text_of(email.text)

            password = await browser.post(
                f"/login/{local_org.slug}/password",
                {**form, "email": admin["email"], "password": PASSWORD},
            )
            assert "form expired" in refused_reason(password), label

            sso = await browser.post(f"/login/{local_org.slug}/sso", form)
            assert sso.status_code == 303
            assert sso.headers["location"].startswith(f"/login/{local_org.slug}?reason="), label
        assert browser.session_cookie is None
    assert await owner_conn.fetchval("SELECT count(*) FROM sessions") == 0
    assert await owner_conn.fetchval("SELECT count(*) FROM login_attempts") == 0


# --- headers and cookies ------------------------------------------------------------------


async def test_pages_carry_the_security_headers(app: Any, local_org: OrgHandle) -> None:
    admin = await admin_of(local_org)
    async with asgi_client(app) as browser:
        pages = [
            await browser.get("/login"),
            await browser.get(f"/login/{local_org.slug}"),
            await browser.get("/login/no-such-org"),
        ]
        await signed_in_admin(browser, local_org, admin)
        pages += [
            await browser.get("/console"),
            await browser.get("/console/members"),
            await browser.get("/account"),
        ]
    for page in pages:
        where = page.request.url.path
        assert page.headers["content-type"].startswith("text/html"), where
        csp = page.headers["content-security-policy"]
        directives = {d.strip().split(" ", 1)[0]: d.strip() for d in csp.split(";") if d.strip()}
        assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp, where
        assert directives["frame-ancestors"] == "frame-ancestors 'none'", where
        assert directives["default-src"] == "default-src 'self'", where
        assert directives["script-src"] == "script-src 'self'", where
        assert page.headers["x-content-type-options"] == "nosniff", where
        assert page.headers["x-frame-options"] == "DENY", where
        assert page.headers["referrer-policy"] == "same-origin", where


def form_action(response: httpx.Response) -> str:
    csp = response.headers["content-security-policy"]
    assert "'unsafe-inline'" not in csp and "frame-ancestors 'none'" in csp
    return next(d.strip() for d in csp.split(";") if d.strip().startswith("form-action"))


async def test_sign_in_page_lets_the_sso_form_lead_to_the_identity_provider_only(
    app: Any,
    local_org: OrgHandle,
    settings: Settings,
) -> None:
    """CSP form-action also covers the redirect that answers the SSO form: the organisation's
    sign-in page names its identity provider, and every other page still only itself."""
    admin = await admin_of(local_org)
    async with asgi_client(app) as browser:
        without_sso = await browser.get(f"/login/{local_org.slug}")
        assert form_action(without_sso) == "form-action 'self'"
        await configure_sso(
            settings,
            local_org.id,
            issuer="http://127.0.0.1:9/realms/x",
            client_id="c",
            client_secret="c-secret-0123456789",
        )
        with_sso = await browser.get(f"/login/{local_org.slug}")
        assert form_action(with_sso) == "form-action 'self' http://127.0.0.1:9"
        await signed_in_admin(browser, local_org, admin)
        assert form_action(await browser.get("/console")) == "form-action 'self'"

        # An issuer that tries to smuggle a directive into the header adds nothing.
        await configure_sso(
            settings,
            local_org.id,
            issuer="https://idp.example; script-src *",
            client_id="c",
            client_secret="c-secret-0123456789",
        )
        hostile = await browser.get(f"/login/{local_org.slug}")
        assert form_action(hostile) == "form-action 'self'"
        assert "script-src *" not in hostile.headers["content-security-policy"]


async def test_session_and_browser_cookies_are_http_only_and_same_site_lax(
    app: Any, local_org: OrgHandle
) -> None:
    admin = await admin_of(local_org)
    async with asgi_client(app) as browser:
        login_page = await browser.get(f"/login/{local_org.slug}")
        response = await browser.password_sign_in(local_org.slug, admin["email"], PASSWORD)
    cookies = {
        c.split("=", 1)[0]: c
        for c in login_page.headers.get_list("set-cookie") + response.headers.get_list("set-cookie")
    }
    for name in ("tenantry_session", "tenantry_browser"):
        flags = {part.strip().lower() for part in cookies[name].split(";")[1:]}
        assert "httponly" in flags, cookies[name]
        assert "samesite=lax" in flags, cookies[name]
        assert "path=/" in flags, cookies[name]


async def test_a_session_the_browser_gives_up_for_another_sign_in_ends(
    app: Any, local_org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    """Someone signing in at a browser where an admin was signed in replaced the admin's
    session in the cookie, and the admin's session went on working for whoever had
    copied it, until it timed out."""
    admin = await admin_of(local_org)
    other = await make_member(local_org, name="Next Person")
    await set_password(local_org.id, other["id"], PASSWORD)
    async with asgi_client(app) as browser:
        await signed_in_admin(browser, local_org, admin)
        held = browser.session_cookie
        assert (await browser.get("/console")).status_code == 200
        await browser.signed_in(local_org.slug, other["email"])
    async with asgi_client(app) as copied:
        copied.http.cookies.set("tenantry_session", held or "")
        assert (await copied.get("/console")).status_code != 200
    reasons = await owner_conn.fetch(
        "SELECT revoked_reason FROM sessions WHERE tenant_id = $1 AND member_id = $2",
        local_org.id,
        uuid.UUID(admin["id"]),
    )
    assert [r["revoked_reason"] for r in reasons] == ["replaced by another sign-in in this browser"]


def test_cookies_are_secure_wherever_the_service_is_reached_by_https() -> None:
    """Secure followed the environment, not the address: a staging site at an https
    address sent its session cookie in clear wherever a link was http."""
    assert Settings.from_env({"TENANTRY_PUBLIC_URL": "https://staging.example"}).secure_cookies
    assert not Settings.from_env({"TENANTRY_PUBLIC_URL": "http://127.0.0.1:8000"}).secure_cookies
    assert not Settings.from_env({}).secure_cookies


# --- sign-in limits -----------------------------------------------------------------------


async def test_password_sign_in_is_rate_limited_per_client_address(
    app: Any, local_org: OrgHandle
) -> None:
    admin = await admin_of(local_org)
    async with asgi_client(app) as attacker:
        csrf = await attacker.login_csrf(local_org.slug)
        limit = app.state.settings.login_rate_limit
        answers = []
        for n in range(limit + 1):
            response = await attacker.post(
                f"/login/{local_org.slug}/password",
                {"csrf": csrf, "email": f"guess-{n}@{local_org.slug}.example", "password": WRONG},
            )
            answers.append(response.status_code)
        assert answers[:limit] == [303] * limit
        assert answers[limit] == 429
        assert 0 < int(response.headers["retry-after"]) <= 300
        assert "Too many sign-in attempts from your address" in text_of(response.text)
        # Even the right password waits: the limit is on the address, not the guess.
        right = await attacker.post(
            f"/login/{local_org.slug}/password",
            {"csrf": csrf, "email": admin["email"], "password": PASSWORD},
        )
        assert right.status_code == 429
    async with asgi_client(app) as someone_else:
        response = await someone_else.password_sign_in(local_org.slug, admin["email"], PASSWORD)
        assert response.headers["location"] == "/console"


async def test_the_address_limit_is_shared_by_every_process_and_keeps_no_address(
    app: Any, owner_conn: asyncpg.Connection
) -> None:
    # Two limiters stand for two processes: they share nothing but the database.
    one, two = RateLimiter("shared-test", 3, 60), RateLimiter("shared-test", 3, 60)
    address = f"198.51.100.{uuid.uuid4().int % 250}-{uuid.uuid4().hex[:6]}"
    assert [await one.retry_after(address), await two.retry_after(address)] == [None, None]
    assert await one.retry_after(address) is None
    wait = await two.retry_after(address)
    assert wait is not None and 0 < wait <= 60
    assert await one.retry_after(address) is not None, "a refused attempt on one, refused on all"
    assert await one.retry_after(address + "-other") is None
    assert await RateLimiter("another-limit", 3, 60).retry_after(address) is None
    stored = await owner_conn.fetch("SELECT bucket FROM rate_limit_hits")
    assert stored and all(address not in r["bucket"] for r in stored)


async def test_five_wrong_passwords_lock_that_client_out_of_that_address_alone(
    app: Any,
    local_org: OrgHandle,
    owner_conn: asyncpg.Connection,
) -> None:
    """Five wrong passwords for an address locked its credential for everyone: anyone
    could keep any member, the break-glass owner too, locked out; and a locked account
    answered unlike an unknown address, which told which addresses exist. The lock is
    now the client's, for that address, and an unknown address locks alike."""
    admin = await admin_of(local_org, break_glass=True)
    nobody = f"nobody-{uuid.uuid4().hex[:6]}@{local_org.slug}.example"
    async with asgi_client(app) as browser:
        for address in (admin["email"], nobody):
            for _ in range(MAX_FAILURES):
                wrong = await browser.password_sign_in(local_org.slug, address, WRONG)
                assert refused_reason(wrong) == "the email or password is not right."
        refusals = await audit_events(owner_conn, local_org.id, "session.sign_in_refused")
        assert [e.after["locked"] for e in refusals] == [False] * (MAX_FAILURES - 1) + [True]
        assert {e.target_id for e in refusals} == {admin["id"]}
        # Locked, right password or not, known address or not: the same answer.
        locked = await browser.password_sign_in(local_org.slug, admin["email"], PASSWORD)
        unknown = await browser.password_sign_in(local_org.slug, nobody, PASSWORD)
        assert "too many failed attempts" in refused_reason(locked)
        assert refused_reason(unknown) == refused_reason(locked)
        assert browser.session_cookie is None
        assert await owner_conn.fetchval("SELECT count(*) FROM sessions") == 0
    # Another client is not locked out of the address.
    async with asgi_client(app) as elsewhere:
        fine = await elsewhere.password_sign_in(local_org.slug, admin["email"], PASSWORD)
        assert fine.headers["location"] == "/console"
        # When the failures leave the window, the locked-out client may try again.
        await owner_conn.execute("UPDATE rate_limit_hits SET at = at - interval '16 minutes'")
    async with asgi_client(app, address=browser.address) as again:
        unlocked = await again.password_sign_in(local_org.slug, admin["email"], PASSWORD)
        assert unlocked.headers["location"] == "/console"


async def test_a_burst_of_wrong_passwords_locks_a_known_and_an_unknown_address_alike(
    app: Any, local_org: OrgHandle
) -> None:
    """Sent at once, attempts at a known address queued on its credential's row while
    those at an unknown address were counted side by side, past the limit: 5 refusals as
    'not right' for one, 7 or 8 for the other, which told them apart."""
    admin = await admin_of(local_org)
    nobody = f"nobody-{uuid.uuid4().hex[:6]}@{local_org.slug}.example"
    counts = []
    async with asgi_client(app) as browser:
        for address in (admin["email"], nobody):
            answers = await asyncio.gather(
                *(browser.password_sign_in(local_org.slug, address, f"{WRONG}{i}") for i in range(12))
            )
            said = [refused_reason(a) for a in answers]
            counts.append(said.count("the email or password is not right."))
    assert counts == [MAX_FAILURES, MAX_FAILURES]


# --- the break-glass administrator --------------------------------------------------------


async def test_break_glass_admin_signs_in_when_password_sign_in_is_off_and_is_shown_to_all(
    app: Any,
    org: OrgHandle,
    owner_conn: asyncpg.Connection,
    settings: Settings,
) -> None:
    await configure_sso(
        settings,
        org.id,
        issuer="https://idp.example",
        client_id="c",
        client_secret="c-secret-0123456789",
    )
    assert (
        await owner_conn.fetchval("SELECT local_sign_in FROM organisations WHERE id = $1", org.id)
        is False
    )
    rescuer = await admin_of(org, break_glass=True, role="owner")
    ordinary = await admin_of(org)
    async with asgi_client(app) as browser:
        page = text_of((await browser.get(f"/login/{org.slug}?break_glass=1")).text)
        assert "Emergency administrator access. Every use is recorded" in page

        refused = await browser.password_sign_in(org.slug, ordinary["email"], PASSWORD)
        assert "password sign-in is switched off" in refused_reason(refused)

        response = await browser.password_sign_in(
            org.slug, rescuer["email"], PASSWORD, break_glass=True
        )
        assert response.status_code == 303
        assert response.headers["location"] == "/console"
        console = text_of((await browser.get("/console")).text)
        assert "Emergency (break-glass) session" in console
        assert "None recorded." not in console
        assert re.search(
            r"Emergency \(break-glass\) sign-ins When Who From \S+ \S+ UTC Alex Admin", console
        ), console
    lifetime = await owner_conn.fetchval(
        "SELECT expires_at - last_seen_at FROM sessions WHERE member_id = $1",
        uuid.UUID(rescuer["id"]),
    )
    assert lifetime.total_seconds() <= 3600

    # Every other administrator sees it on the overview too.
    async with asgi_client(app) as colleague:
        await set_local_sign_in(org.id, True)
        await signed_in_admin(colleague, org, ordinary)
        overview = text_of((await colleague.get("/console")).text)
        assert "Emergency (break-glass) session" not in overview
        assert "Alex Admin <" in overview


# --- open redirects -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "next_path",
    [
        "//evil.example",
        "//evil.example/console",
        "https://evil.example/",
        "/\\evil.example",
        "http:/evil.example",
    ],
)
async def test_next_cannot_send_anyone_off_site(
    app: Any, local_org: OrgHandle, next_path: str
) -> None:
    admin = await admin_of(local_org)
    async with asgi_client(app) as browser:
        for page in ("/login", f"/login/{local_org.slug}"):
            form = (await browser.get(page, params={"next": next_path})).text
            assert 'name="next" value=""' in form, page
        email = await browser.post(
            "/login",
            {
                "csrf": await browser.login_csrf(local_org.slug),
                "email": admin["email"],
                "next": next_path,
            },
        )
        assert email.status_code == 303
        onward = httpx.URL(email.headers["location"])
        assert (onward.path, onward.params.get("email"), onward.params.get("next", "")) == (
            f"/login/{local_org.slug}",
            None,  # the address goes on in a cookie, not in the URL
            "",
        )
        assert f'value="{admin["email"]}"' in (await browser.get(str(onward))).text
        response = await browser.password_sign_in(
            local_org.slug, admin["email"], PASSWORD, next_path=next_path
        )
        assert response.status_code == 303
        assert response.headers["location"] == "/console"


async def test_next_within_the_site_is_followed(app: Any, local_org: OrgHandle) -> None:
    admin = await admin_of(local_org)
    async with asgi_client(app) as browser:
        response = await browser.password_sign_in(
            local_org.slug, admin["email"], PASSWORD, next_path="/console/members"
        )
        assert response.headers["location"] == "/console/members"
