"""The overview says what needs attention, to whom it concerns, and draws its trends as
inline SVG (no script)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import asyncpg

from app.settings import Settings
from tenants import db
from tenants.access import service as access
from tenants.access.models import DataCategory
from tenants.actors import Actor, ActorKind
from tenants.permissions import permissions_of
from tenants.signins import service as sign_ins
from tenants.signins.rules import Reason, SignInMethod
from tests.conftest import OrgHandle, make_member
from tests.web.flows import (
    PASSWORD,
    asgi_client,
    configure_sso,
    set_local_sign_in,
    set_password,
    text_of,
)


async def request_grant(org: OrgHandle, asker: dict[str, Any], subject: dict[str, Any]) -> str:
    async with db.tenant_transaction(org.id):
        grant = await access.request_access(
            access.NewGrant(
                member_id=uuid.UUID(subject["id"]),
                unit_id=None,
                categories=[DataCategory.FILES],
                product_ids=None,
                justification="Overview test: a justified request.",
                duration_hours=8,
            ),
            permissions=permissions_of(["admin"]),
            actor=Actor(ActorKind.MEMBER, asker["id"], asker["name"]),
        )
    return str(grant.id)


async def test_a_privacy_officer_sees_the_pending_grant_and_a_badge_an_admin_does_not(
    app: Any, org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    await set_local_sign_in(org.id, True)
    officer = await make_member(org, name="Pia Privacy", roles=["privacy_officer"])
    admin = await make_member(org, name="Adam Admin", roles=["admin"])
    subject = await make_member(org, name="Sue Subject")
    for person in (officer, admin):
        await set_password(org.id, person["id"], PASSWORD)
    grant = await request_grant(org, admin, subject)
    sent = await org.post(
        "/v1/privacy-requests", {"member_id": subject["id"], "kind": "access", "message": "Mine?"}
    )
    assert sent.status_code == 201, sent.text
    # Its legal deadline is a month away: bring it within the week.
    await owner_conn.execute(
        "UPDATE privacy_requests SET due_on = current_date + 3 WHERE id = $1",
        uuid.UUID(sent.json()["id"]),
    )
    async with asgi_client(app) as browser:
        await browser.password_sign_in(org.slug, officer["email"], PASSWORD)
        page = await browser.get("/console")
        text = text_of(page.text)
        assert "1 data-access request waits for your approval" in text
        assert f'href="/console/data-access/grants/{grant}"' in page.text
        # Who asked, and whose data: the admin asked, the subject did not.
        assert "Adam Admin asked for Sue Subject's data" in text
        assert "Sue Subject asked" not in text
        assert "1 privacy request due within 7 days or overdue" in text
        assert re.search(
            r'Data access <span class="count-badge">1<span class="sr-only"> waiting', page.text
        )
        # The badge and the overview's line lead to what waits, not to every grant.
        assert page.text.count('href="/console/data-access?state=requested"') == 2
        waiting = await browser.get("/console/data-access?state=requested")
        assert f'href="/console/data-access/grants/{grant}"' in waiting.text
        assert "Emergency access waiting for review" in waiting.text
        assert page.text.count('role="img"') == 3 and "<script" not in page.text.split("</head>")[1]
    async with asgi_client(app) as browser:
        await browser.password_sign_in(org.slug, admin["email"], PASSWORD)
        page = await browser.get("/console")
        assert "wait for your approval" not in text_of(page.text)  # admins do not approve
        assert "count-badge" not in page.text
    recorded = await owner_conn.fetch(
        "SELECT status, members FROM member_status_days WHERE tenant_id = $1", org.id
    )
    active = await owner_conn.fetchval(
        "SELECT count(*) FROM members WHERE tenant_id = $1 AND status = 'active'", org.id
    )
    assert {r["status"]: r["members"] for r in recorded}["active"] == active >= 3


async def test_domains_and_identity_set_up_needing_action_are_listed_for_who_can_fix_them(
    app: Any, org: OrgHandle, owner_conn: asyncpg.Connection, settings: Settings
) -> None:
    await set_local_sign_in(org.id, True)
    owner = await make_member(org, name="Olga Owner", roles=["owner"])
    officer = await make_member(org, name="Pia Privacy", roles=["privacy_officer"])
    for person in (owner, officer):
        await set_password(org.id, person["id"], PASSWORD)

    async def seen_by(who: dict[str, Any]) -> tuple[str, str]:
        async with asgi_client(app) as browser:
            await browser.password_sign_in(org.slug, who["email"], PASSWORD)
            page = await browser.get("/console")
            assert page.status_code == 200
            return page.text, text_of(page.text)

    _, text = await seen_by(owner)
    assert "No identity provider is set up" in text
    assert "No verified email domain" not in text  # the fixture's own domain is proven
    await owner_conn.execute("DELETE FROM domains WHERE tenant_id = $1", org.id)
    _, text = await seen_by(owner)
    assert "No verified email domain" in text

    for name in ("pending.example.org", "flagged.example.org"):
        added = await org.post("/v1/domains", {"name": name})
        assert added.status_code == 201, added.text
    await owner_conn.execute(
        "UPDATE domains SET status = 'flagged', verified_at = now(), flagged_at = now(), "
        "proof = 'dns_txt' WHERE tenant_id = $1 AND name = 'flagged.example.org'",
        org.id,
    )
    await configure_sso(
        settings,
        org.id,
        issuer="https://idp.example.org",
        client_id="tenantry",
        client_secret="s" * 20,
    )
    await owner_conn.execute(
        'UPDATE sso_connections SET last_test_result = \'{"ok": false, "steps": []}\' '
        "WHERE tenant_id = $1",
        org.id,
    )
    async with db.tenant_transaction(org.id):
        for _ in range(2):
            await sign_ins.record(
                sign_ins.SignInAttempt(
                    SignInMethod.SSO, reason=Reason.IDP_UNREACHABLE, idp="https://idp.example.org"
                )
            )
    page, text = await seen_by(owner)
    assert "flagged.example.org: its DNS verification record has disappeared" in text
    assert "1 domain not verified yet (pending.example.org)" in text
    assert "No verified email domain" not in text  # the flagged one was proven
    assert "No identity provider is set up" not in text
    assert "The last test of the identity provider connection failed" in text
    assert "2 sign-ins through the identity provider failed in the last 24 hours" in text
    assert 'href="/console/sign-ins?method=sso&amp;outcome=refused"' in page
    assert page.count('href="/console/domains"') >= 2

    _, text = await seen_by(officer)
    assert "Domains and identity set-up" not in text
