"""Data access in real Chromium against the live server: an admin requests access to a
member's files, a privacy officer approves it, a product checks the access over HTTP, and
the member finds the entry on their account page. Screenshots of each step are saved
under the test's tmp_path; the pages must not trip the Content-Security-Policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from playwright.async_api import expect

from tests.conftest import OrgHandle, make_member, make_product
from tests.web.browser import OpenTab, sign_in_with_password
from tests.web.flows import PASSWORD, set_local_sign_in, set_password
from tests.web.test_console_browser import pick

pytestmark = [pytest.mark.browser]

WHY = "Recovering a contract from Mia's files for the legal team, ticket LEG-12."


async def person(org: OrgHandle, name: str, role: str) -> dict[str, Any]:
    made = await make_member(org, name=name, roles=[role])
    await set_password(org.id, made["id"], PASSWORD)
    return made


async def product_token(org: OrgHandle, product: dict[str, Any]) -> str:
    registered = await org.post(
        f"/v1/products/{product['id']}/clients", {"name": "mailbox", "scopes": ["access:check"]}
    )
    assert registered.status_code == 201, registered.text
    issued = await org.client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(registered.json()["client_id"], registered.json()["client_secret"]),
    )
    assert issued.status_code == 200, issued.text
    return str(issued.json()["access_token"])


async def test_admin_requests_access_another_approves_a_product_checks_and_the_member_sees_it(
    org: OrgHandle,
    tabs: OpenTab,
    live_server: str,
    tmp_path: Path,
    owner_conn: asyncpg.Connection,
) -> None:
    await set_local_sign_in(org.id, True)
    ada = await person(org, "Ada Admin", "admin")
    olga = await person(org, "Olga Officer", "privacy_officer")
    mia = await person(org, "Mia Member", "member")
    mailbox = await make_product(org, name="Mailbox")

    # Ada asks for access to Mia's files, with a justification.
    tab = await tabs()
    page = tab.page
    await sign_in_with_password(tab, org, ada["email"])
    await tab.land("/console", tmp_path, "01-ada-console")
    nav = page.get_by_role("navigation", name="Console")
    await nav.get_by_role("link", name="Data access").click()
    await tab.land("/console/data-access", tmp_path, "02-data-access")
    await (
        page.get_by_role("navigation", name="Data access")
        .get_by_role("link", name="Request access")
        .click()
    )
    await tab.land("/console/data-access/new", tmp_path, "03-request-form")
    await pick(page, "Member", mia["email"][:6], f"{mia['name']} ({mia['email']})")
    await page.get_by_label("Files").check()
    await page.get_by_label("Justification").fill(WHY)
    await page.get_by_label("Case reference").fill("LEG-12")
    await page.get_by_label("Duration in hours").fill("8")
    await page.get_by_role("button", name="Request access").click()
    await tab.land("^/console/data-access/grants/[0-9a-f-]{36}$", tmp_path, "04-requested")
    await expect(page.get_by_role("status")).to_have_text(
        "Request sent; a privacy officer decides."  # Ada is an admin, not an officer
    )
    await expect(page.locator("#grant-state")).to_have_text("requested")
    await expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    grant_url = page.url

    # Olga, a privacy officer, finds it in the list and approves it.
    tab_olga = await tabs()
    officer_page = tab_olga.page
    await sign_in_with_password(tab_olga, org, olga["email"])
    await tab_olga.land("/console", tmp_path, "05-olga-console")
    await officer_page.goto(f"{live_server}/console/data-access")
    await tab_olga.land("/console/data-access", tmp_path, "06-olga-list")
    listed = officer_page.get_by_role("table")
    await expect(listed.locator("tbody tr")).to_have_count(1)
    await expect(listed.locator(".badge.requested")).to_have_text("requested")
    await listed.get_by_role("link", name="Mia Member").click()
    await officer_page.wait_for_url(grant_url)
    await expect(officer_page.get_by_text(WHY)).to_be_visible()
    await officer_page.get_by_role("button", name="Approve").click()
    await tab_olga.land(grant_url.removeprefix(live_server), tmp_path, "07-approved")
    await expect(officer_page.get_by_role("status")).to_have_text("Approved: access starts now.")
    await expect(officer_page.locator("#grant-state")).to_have_text("active")
    await expect(officer_page.locator("ol.timeline")).to_contain_text("Approved by Olga Officer")

    # The mailbox product asks before showing Ada Mia's files.
    token = await product_token(org, mailbox)
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as product:
        answer = await product.post(
            "/v1/access/check",
            headers={"Authorization": f"Bearer {token}"},
            json={
                "admin_email": ada["email"],
                "member_id": mia["id"],
                "product_id": mailbox["id"],
                "category": "files",
            },
        )
        refused = await product.post(
            "/v1/access/check",
            headers={"Authorization": f"Bearer {token}"},
            json={
                "admin_email": ada["email"],
                "member_id": mia["id"],
                "product_id": mailbox["id"],
                "category": "communications",
            },
        )
    assert answer.status_code == 200, answer.text
    assert answer.json()["allowed"] is True
    assert answer.json()["grant_id"] == grant_url.rsplit("/", 1)[-1]
    assert (refused.json()["allowed"], refused.json()["reason"]) == (
        False,
        "category_not_granted",
    )
    assert (
        await owner_conn.fetchval("SELECT count(*) FROM access_log WHERE tenant_id = $1", org.id)
        == 2
    )

    # Mia sees who accessed her data, when, in which product and why.
    tab_mia = await tabs()
    await sign_in_with_password(tab_mia, org, mia["email"])
    await tab_mia.land("/account", tmp_path, "08-mia-account")
    section = tab_mia.page.get_by_role("region", name="Who accessed your data")
    await section.scroll_into_view_if_needed()
    await section.screenshot(path=str(tmp_path / "09-who-accessed.png"))
    entries = section.locator("ol.timeline > li")
    await expect(entries).to_have_count(2)
    await expect(entries.first).to_contain_text("Ada Admin")
    await expect(entries.first).to_contain_text("viewed your files in Mailbox.")
    await expect(entries.first).to_contain_text(f"Purpose: {WHY} (case LEG-12)")
    await expect(entries.nth(1)).to_contain_text("was given access to your files in every product")
    # The second person the page promises is named (GDPR Art. 15(1)(a): who decided).
    await expect(entries.nth(1)).to_contain_text("Approved by Olga Officer")
    await expect(section).not_to_contain_text("communications")

    # Back in the console, the access log shows both checks.
    await page.goto(f"{live_server}/console/data-access/log")
    await tab.land("/console/data-access/log", tmp_path, "10-access-log")
    rows = page.locator("table.access-log tbody tr")
    await expect(rows).to_have_count(2)
    await expect(rows.first).to_contain_text("category not granted")
    await expect(rows.nth(1)).to_contain_text("allowed")
