"""Inviting a member: the email goes through the outbox to a real SMTP server (aiosmtpd);
without an identity provider it carries a sign-in link that signs the member in once;
an expired, reused or forged link is refused with a page saying which; with an identity
provider the email says to sign in there and carries no link that signs anyone in."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from app.settings import Settings
from tenants.ids import OrgId
from tenants.members import invitations
from tests.conftest import OrgHandle, make_member
from tests.requests.support import mails, run_jobs
from tests.support.smtp_server import mail_to, smtp_server
from tests.web.flows import (
    asgi_client,
    audit_events,
    configure_sso,
    csrf_in,
    sign_in_log,
    text_of,
)
from tests.web.test_console_directory import follow, signed_in_admin

LINK = re.compile(r"https?://\S+/invitation/\S+")


async def test_an_invited_member_gets_a_link_by_smtp_that_signs_them_in_once(
    app: Any, org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    async with asgi_client(app) as admin:
        _, csrf = await signed_in_admin(admin, org)
        added = await admin.post(
            "/console/members",
            {"csrf": csrf, "name": "Nina New", "email": "nina@example.org",
             "unit_id": str(org.root_unit_id), "status": "invited", "invite": "1",
             "outside_domain_ok": "example.org"},
        )
        shown = await follow(admin, added)
        assert "Added Nina New. Invitation emailed to nina@example.org" in shown
    nina_id = uuid.UUID(added.headers["location"].rsplit("/", 1)[1])

    async with smtp_server() as (server, port):
        with mail_to(port):
            await run_jobs()
    [mail] = [d for d in server.delivered if d.rcpt_tos == ["nina@example.org"]]
    assert str(mail.message["Subject"]) == f"You are invited to {org.slug.title()}"
    text = mail.part("plain")
    assert "Hello Nina New," in text and "works once" in text
    [link] = LINK.findall(text)
    assert link in mail.part("html")
    path = urlsplit(link).path

    async with asgi_client(app) as nina:
        # Opening the link (as a mail scanner would) spends nothing and signs no one in.
        opened = await nina.get(path)
        assert opened.status_code == 200
        assert "Sign in as Nina New" in text_of(opened.text)
        opened_again = await nina.get(path)
        assert opened_again.status_code == 200 and nina.session_cookie is None
        signed_in = await nina.post(path, {"csrf": csrf_in(opened_again.text)})
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/account"
        assert nina.session_cookie
        account = await nina.get("/account")
        assert account.status_code == 200 and "Nina New" in account.text

    status = await owner_conn.fetchval("SELECT status FROM members WHERE id = $1", nina_id)
    assert status == "active"
    assert [e.after["way"] for e in await audit_events(owner_conn, org.id, "member.invited")] == [
        "sign_in_link"
    ]
    assert await audit_events(owner_conn, org.id, "member.activate")
    method = await owner_conn.fetchval(
        "SELECT auth_method FROM sessions WHERE member_id = $1", nina_id
    )
    assert method == "invitation"

    # The same link again, in another browser: refused with a page saying why.
    async with asgi_client(app) as someone:
        page = await someone.get(path)
        assert page.status_code == 410
        assert "already used" in text_of(page.text)
        # With this browser's own form token, the POST is refused for the link itself.
        replay = await someone.post(path, {"csrf": await someone.login_csrf(org.slug)})
        assert replay.status_code == 410 and someone.session_cookie is None
    log = await sign_in_log(owner_conn, org.id)
    outcomes = [(r["method"], r["outcome"], r["reason"]) for r in log]
    assert ("invitation", "succeeded", None) in outcomes
    assert ("invitation", "refused", "invitation_used") in outcomes


async def test_an_expired_or_forged_link_is_refused_with_a_clear_page(
    app: Any, org: OrgHandle, settings: Settings
) -> None:
    mia = await make_member(org, name="Mia Late", status="invited")
    expired = invitations.make_link_token(
        settings.secret_key, OrgId(org.id), uuid.UUID(str(mia["id"])),
        issued_at=datetime.now(UTC) - invitations.LINK_LIFETIME - timedelta(minutes=1),
    )
    fresh = invitations.make_link_token(settings.secret_key, OrgId(org.id),
                                        uuid.UUID(str(mia["id"])))
    forged = fresh[:-4] + ("AAAA" if not fresh.endswith("AAAA") else "BBBB")
    other_key = invitations.make_link_token("another-secret-" + "y" * 40, OrgId(org.id),
                                            uuid.UUID(str(mia["id"])))
    async with asgi_client(app) as browser:
        page = await browser.get(invitations.link_path(expired))
        assert page.status_code == 410 and "has expired" in text_of(page.text)
        assert 'href="/login"' in page.text
        for token in (forged, other_key, "not-a-token"):
            page = await browser.get(invitations.link_path(token))
            assert page.status_code == 400, token
            assert "not one this service made" in text_of(page.text)
        # The valid one still works once.
        page = await browser.get(invitations.link_path(fresh))
        assert page.status_code == 200
        signed_in = await browser.post(invitations.link_path(fresh), {"csrf": csrf_in(page.text)})
        assert signed_in.status_code == 303 and browser.session_cookie


async def test_a_suspended_members_link_signs_nobody_in(
    app: Any, org: OrgHandle, settings: Settings
) -> None:
    sam = await make_member(org, name="Sam Suspended")
    suspended = await org.post(f"/v1/members/{sam['id']}/transitions", {"action": "suspend"})
    assert suspended.status_code == 200, suspended.text
    token = invitations.make_link_token(settings.secret_key, OrgId(org.id),
                                        uuid.UUID(str(sam["id"])))
    async with asgi_client(app) as browser:
        page = await browser.get(invitations.link_path(token))
        assert page.status_code == 403 and "cannot sign in" in text_of(page.text)
    response = await org.post(f"/v1/members/{sam['id']}/invitation")
    assert response.status_code == 409, response.text
    assert response.json()["errors"][0]["field"] == "invite"


async def test_with_an_identity_provider_the_email_says_to_sign_in_there(
    org: OrgHandle, owner_conn: asyncpg.Connection, settings: Settings
) -> None:
    await configure_sso(settings, org.id, issuer="https://idp.example.org",
                        client_id="tenantry", client_secret="s" * 20)
    response = await org.post("/v1/members", {
        "email": "sso.person@example.org", "name": "Sso Person",
        "unit_id": str(org.root_unit_id), "invite": True,
    })
    assert response.status_code == 201, response.text
    [mail] = await mails(owner_conn, org, "invitation_sso")
    assert mail["recipients"] == ["sso.person@example.org"]
    assert "identity provider" in mail["text"]
    assert f"/login/{org.slug}?email=sso.person%40example.org" in mail["text"]
    assert "/invitation/" not in mail["text"]
    again = await org.post(f"/v1/members/{response.json()['id']}/invitation")
    assert again.status_code == 202 and again.json()["way"] == "identity_provider"
    assert again.json()["expires_at"] is None


async def test_the_api_invites_with_a_link_when_asked_and_not_otherwise(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    quiet = await org.post("/v1/members", {
        "email": "quiet@example.org", "name": "Quiet", "unit_id": str(org.root_unit_id)})
    assert quiet.status_code == 201
    assert await mails(owner_conn, org) == []
    invited = await org.post(f"/v1/members/{quiet.json()['id']}/invitation")
    assert invited.status_code == 202, invited.text
    assert invited.json()["way"] == "sign_in_link" and invited.json()["expires_at"]
    [mail] = await mails(owner_conn, org, "invitation_link")
    assert LINK.search(mail["text"])
