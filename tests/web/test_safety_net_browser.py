"""The issue's "show it before it happens" pages in real Chromium against the live server:
an owner changing the SSO connection's client sees who would lose sign-in (admins first)
and must confirm the count, then restores the previous configuration; an admin choosing a
diagnostic level sees what the products send now and at that level, side by side.

Screenshots go under tmp_path, or under $TENANTRY_SCREENSHOTS (docs/screenshots/)."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg
import pytest
from playwright.async_api import expect

from app.settings import Settings
from tests.conftest import OrgHandle, make_member
from tests.web.browser import OpenTab, sign_in_with_password
from tests.web.flows import PASSWORD, configure_sso, set_local_sign_in, set_password
from tests.web.test_console_browser import shots_dir

pytestmark = [pytest.mark.browser]

ISSUER = "http://127.0.0.1:9"


async def test_the_owner_sees_who_would_lose_sign_in_confirms_the_count_and_restores(
    org: OrgHandle,
    tabs: OpenTab,
    settings: Settings,
    owner_conn: asyncpg.Connection,
    tmp_path: Path,
) -> None:
    await set_local_sign_in(org.id, True)
    await configure_sso(settings, org.id, issuer=ISSUER, client_id="before", client_secret="s" * 24)
    owner = await make_member(org, name="Olga Owner", roles=["owner"])
    await set_password(org.id, owner["id"], PASSWORD, break_glass=True)
    linked = [
        owner,
        await make_member(org, name="Abe Plain"),
        await make_member(org, name="Ada Admin", roles=["admin"]),
    ]
    for person in linked:
        await owner_conn.execute(
            "UPDATE members SET idp_subject = $2 WHERE id = $1",
            uuid.UUID(person["id"]),
            f"sub-{uuid.uuid4().hex[:8]}",
        )
    shots = shots_dir(tmp_path)
    tab = await tabs()
    page = tab.page
    await sign_in_with_password(tab, org, owner["email"])
    await tab.land("/console", tmp_path, "01-overview")

    await page.goto(f"{tab.base_url}/console/settings")
    connection = page.locator('form[action="/console/settings/sso"]')
    await connection.get_by_label("Client id").fill("after")
    await connection.get_by_role("button", name="Save", exact=True).click()

    loss = page.locator("#sign-in-loss")
    await expect(loss.get_by_role("heading")).to_have_text("3 members would lose sign-in")
    names = await loss.locator("tbody tr td:first-child").all_inner_texts()
    assert names[:2] == ["Ada Admin", "Olga Owner"] or names[:2] == ["Olga Owner", "Ada Admin"]
    assert names[2] == "Abe Plain"  # administrators first
    await page.screenshot(path=str(shots / "sso-safety-net.png"), full_page=True)
    # Nothing has changed until the count is confirmed.
    assert (
        await owner_conn.fetchval(
            "SELECT client_id FROM sso_connections WHERE tenant_id = $1", org.id
        )
        == "before"
    )

    await page.get_by_label("I understand that 3 members will lose sign-in").check()
    await page.get_by_role("button", name="Confirm: 3 lose sign-in").click()
    await tab.land("^/console/settings.*", tmp_path, "02-saved")
    assert (
        await owner_conn.fetchval(
            "SELECT client_id FROM sso_connections WHERE tenant_id = $1", org.id
        )
        == "after"
    )

    restore = page.locator("#restore-previous")
    await restore.get_by_label("Put the previous configuration back").check()
    await restore.get_by_role("button", name="Restore previous configuration").click()
    await expect(page.get_by_role("status")).to_contain_text("Restored")
    assert (
        await owner_conn.fetchval(
            "SELECT client_id FROM sso_connections WHERE tenant_id = $1", org.id
        )
        == "before"
    )


async def test_the_admin_sees_what_is_sent_now_and_at_the_chosen_level(
    org: OrgHandle, tabs: OpenTab, tmp_path: Path
) -> None:
    await set_local_sign_in(org.id, True)
    admin = await make_member(org, name="Ada Admin", roles=["admin"])
    await set_password(org.id, admin["id"], PASSWORD)
    shots = shots_dir(tmp_path)
    tab = await tabs()
    page = tab.page
    await sign_in_with_password(tab, org, admin["email"])
    await tab.land("/console", tmp_path, "01-overview")

    await page.goto(f"{tab.base_url}/console/policies")
    diagnostics = page.get_by_role("article", name="Diagnostic data")
    await diagnostics.get_by_text("Set a rule").click()
    await diagnostics.get_by_label("Value", exact=True).select_option(value="optional")
    await diagnostics.get_by_role("button", name="Preview impact").click()
    compare = diagnostics.locator(".sample-compare")
    await expect(compare).to_contain_text("Now: Required data only")
    await expect(compare).to_contain_text("Selected: Required and optional data")
    await expect(compare).to_contain_text('"feature": "export_to_pdf"')
    await compare.screenshot(path=str(shots / "diagnostic-samples.png"))
