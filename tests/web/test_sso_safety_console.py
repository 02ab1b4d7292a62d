"""The console's identity-change safety net: saving a connection that takes sign-in from
members shows who (admins first) and asks for the count; the confirmed form saves it; the
previous configuration can then be restored from the settings page."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from app.settings import Settings
from tests.conftest import OrgHandle, make_member
from tests.web.flows import (
    PASSWORD,
    asgi_client,
    configure_sso,
    csrf_in,
    set_local_sign_in,
    set_password,
    text_of,
)

ISSUER = "http://127.0.0.1:9"


async def test_saving_a_connection_that_unlinks_members_previews_and_asks_for_the_count(
    app: Any, org: OrgHandle, settings: Settings, owner_conn: asyncpg.Connection
) -> None:
    await set_local_sign_in(org.id, True)
    await configure_sso(settings, org.id, issuer=ISSUER, client_id="before", client_secret="s" * 24)
    admin = await make_member(org, name="Ada Admin", roles=["owner"])
    await set_password(org.id, admin["id"], PASSWORD, break_glass=True)
    plain = await make_member(org, name="Abe Plain")
    for person in (admin, plain):
        await owner_conn.execute(
            "UPDATE members SET idp_subject = $2 WHERE id = $1",
            uuid.UUID(person["id"]),
            f"sub-{uuid.uuid4().hex[:8]}",
        )
    form = {"issuer": ISSUER, "client_id": "after", "scopes": "openid email", "enabled": "on"}
    async with asgi_client(app) as browser:
        signed_in = await browser.password_sign_in(org.slug, admin["email"], PASSWORD)
        assert signed_in.status_code == 303, signed_in.text
        csrf = await browser.csrf_of("/console/settings")

        preview = await browser.post("/console/settings/sso", {**form, "csrf": csrf})
        assert preview.status_code == 200, preview.text
        words = text_of(preview.text)
        assert "2 members would lose sign-in" in words
        assert words.index("Ada Admin") < words.index("Abe Plain")  # admins first
        assert 'name="confirm_losing" value="2"' in preview.text
        # A secret typed with the change is asked for again, never written into the page.
        with_secret = await browser.post(
            "/console/settings/sso", {**form, "client_secret": "t0p-secret-" + "x" * 20, "csrf": csrf}
        )
        assert with_secret.status_code == 200, with_secret.text
        assert "t0p-secret-" not in with_secret.text
        assert 'type="password" id="again-client_secret" name="client_secret" required' in with_secret.text
        assert (
            await owner_conn.fetchval(
                "SELECT client_id FROM sso_connections WHERE tenant_id = $1", org.id
            )
            == "before"
        )

        confirmed = await browser.post(
            "/console/settings/sso",
            {**form, "csrf": csrf_in(preview.text), "confirm_losing": "2", "understood": "on"},
        )
        assert confirmed.status_code == 303, confirmed.text
        assert (
            await owner_conn.fetchval(
                "SELECT client_id FROM sso_connections WHERE tenant_id = $1", org.id
            )
            == "after"
        )

        settings_page = await browser.get("/console/settings")
        assert "Restore previous configuration" in settings_page.text
        restored = await browser.post(
            "/console/settings/sso/restore",
            {"csrf": csrf_in(settings_page.text), "understood": "on"},
        )
        assert restored.status_code == 303
        assert "Restored" in text_of((await browser.get(restored.headers["location"])).text)
    assert (
        await owner_conn.fetchval(
            "SELECT client_id FROM sso_connections WHERE tenant_id = $1", org.id
        )
        == "before"
    )
    assert (
        await owner_conn.fetchval(
            "SELECT count(*) FROM audit_events WHERE tenant_id = $1"
            " AND action = 'sso.connection_restored'",
            org.id,
        )
        == 1
    )
