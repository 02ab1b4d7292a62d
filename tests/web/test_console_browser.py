"""An admin runs the directory from the console in real Chromium: adds a member, moves
them, gives them a role and a product, imports a CSV (dry run, then apply), bulk-moves
three members, confirms a destructive action, filters and exports the audit log; a
privacy officer sees the pending grant on the overview and approves it; a session that
expires mid-htmx lands on sign-in and comes back to the page.

Screenshots go under tmp_path, or under $TENANTRY_SCREENSHOTS when set (how the ones in
docs/screenshots/ are made)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from playwright.async_api import Page, expect

from tests.conftest import OrgHandle, make_member, make_product, make_unit
from tests.web.browser import OpenTab, Tab, sign_in_with_password
from tests.web.flows import PASSWORD, set_local_sign_in, set_password
from tests.web.test_overview import request_grant

pytestmark = [pytest.mark.browser]


def shots_dir(tmp_path: Path) -> Path:
    chosen = os.environ.get("TENANTRY_SCREENSHOTS")
    path = Path(chosen) if chosen else tmp_path
    path.mkdir(parents=True, exist_ok=True)
    return path


async def pick(page: Page, picker_label: str, typed: str, choice: str) -> None:
    """Type into a typeahead picker and choose one of the matches htmx brings back."""
    await page.get_by_label(picker_label, exact=True).fill(typed)
    option = page.get_by_role("radio", name=choice)
    await expect(option).to_be_visible()
    await option.check()


async def seed_history(owner_conn: asyncpg.Connection, org: OrgHandle) -> None:
    """Counts per status for the last 90 days, as the overview would have recorded them
    (so its chart has a history to draw)."""
    await owner_conn.execute(
        "INSERT INTO member_status_days (tenant_id, day, status, members) "
        "SELECT $1, current_date - d, s.status, "
        "  CASE s.status WHEN 'active' THEN 4 - (d > 30)::int - (d > 60)::int "
        "  WHEN 'invited' THEN (d > 30)::int + (d % 20 = 0)::int "
        "  WHEN 'departing' THEN (d BETWEEN 40 AND 50)::int ELSE (d > 50)::int END "
        "FROM generate_series(1, 89) AS d, "
        "(VALUES ('active'), ('invited'), ('departing'), ('suspended')) AS s(status)",
        org.id,
    )


@pytest.fixture
async def staff(org: OrgHandle) -> dict[str, Any]:
    await set_local_sign_in(org.id, True)
    owner = await make_member(org, name="Olga Owner", roles=["owner"])
    officer = await make_member(org, name="Pia Privacy", roles=["privacy_officer"])
    admin = await make_member(org, name="Adam Admin", roles=["admin"])
    for person in (owner, officer, admin):
        await set_password(org.id, person["id"], PASSWORD)
    return {"owner": owner, "officer": officer, "admin": admin}


async def test_an_admin_runs_the_directory_from_the_console(
    tabs: OpenTab,
    org: OrgHandle,
    staff: dict[str, Any],
    owner_conn: asyncpg.Connection,
    tmp_path: Path,
) -> None:
    shots = shots_dir(tmp_path)
    sales = await make_unit(org, "Sales")
    warehouse = await make_unit(org, "Warehouse")
    # A rule the move brings her under, so its preview has a change to show.
    ruled = await org.put(
        "/v1/policy/rules",
        json={
            "target_kind": "unit",
            "target_id": warehouse["id"],
            "setting": "advertising.personalised_ads",
            "value": False,
            "enforced": True,
            "reason": "Shared devices in the warehouse",
        },
    )
    assert ruled.status_code in (200, 201), ruled.text
    await make_product(org, name="Mailbox")
    for i in range(3):
        await make_member(org, name=f"Bulk Person {i}", email=f"bulk{i}@example.org")
    tab = await tabs()
    page = tab.page
    await sign_in_with_password(tab, org, staff["owner"]["email"])
    await tab.land("/console", shots, "overview-owner")

    # Add a member.
    await page.get_by_role("navigation", name="Console").get_by_role("link", name="Members").click()
    await page.get_by_role("link", name="Add a member").click()
    await page.get_by_label("Name", exact=True).fill("Nora Newcomer")
    await page.get_by_label("Email", exact=True).fill("nora@example.org")
    await pick(page, "Unit", "Sal", "Sales")
    await pick(page, "Manager (optional)", "Olga", "Olga Owner (" + staff["owner"]["email"] + ")")
    await page.get_by_role("button", name="Add member").click()
    # example.org is not one of the organisation's verified domains: the console asks
    # first, beside the address, keeping everything chosen; then it adds her.
    await expect(page.locator("#email-warning")).to_contain_text("example.org is not one of Org")
    await expect(page.get_by_label("Email", exact=True)).to_have_value("nora@example.org")
    await expect(page.get_by_role("radio", name="Sales")).to_be_checked()
    await page.get_by_role("checkbox", name="Add anyway").check()
    await page.get_by_role("button", name="Add member").click()
    # "Send an invitation email" is ticked by default.
    await expect(page.get_by_role("status")).to_have_text(
        "Added Nora Newcomer. Invitation emailed to nora@example.org with a sign-in link "
        "that works once, for 7 days."
    )
    nora_page = page.url

    # Move her, give her a role and a product.
    # By keyboard: ArrowDown from the field reaches the match and chooses it.
    await page.get_by_label("Move to unit", exact=True).fill("ware")
    await expect(page.get_by_role("radio", name="Warehouse")).to_be_visible()
    await page.get_by_label("Move to unit", exact=True).press("ArrowDown")
    await expect(page.get_by_role("radio", name="Warehouse")).to_be_focused()
    await expect(page.get_by_role("radio", name="Warehouse")).to_be_checked()
    await page.get_by_role("button", name="Move", exact=True).click()
    # The move's preview asks first (what changes for her), then the move happens.
    confirm = page.get_by_role("button", name="Move Nora Newcomer")
    await expect(confirm).to_be_visible()
    await expect(page.get_by_text("Shared devices in the warehouse")).to_be_visible()
    await page.screenshot(path=str(shots / "move-preview.png"), full_page=True)
    await confirm.click()
    await expect(page.get_by_role("status")).to_have_text("Moved Nora Newcomer.")
    await page.goto(nora_page)
    await page.get_by_role("checkbox", name="helpdesk").check()
    await page.get_by_role("button", name="Save roles").click()
    # Giving a role asks first, saying what it lets her do.
    await expect(page.get_by_text("Edits members (not those with more rights)")).to_be_visible()
    await page.get_by_role("button", name="Give Helpdesk").click()
    await expect(page.get_by_role("status")).to_contain_text("roles: Helpdesk")
    await page.get_by_label("Assign a product").select_option(label="Mailbox")
    await page.get_by_role("button", name="Assign", exact=True).click()
    await expect(page.get_by_role("status")).to_have_text("Nora Newcomer has Mailbox.")
    await tab.land(nora_page.removeprefix(tab.base_url), shots, "member-page")

    # Import a CSV file (as a spreadsheet saves it: a byte-order mark, CRLF): it is read
    # into the text area, to be seen before the dry run; then apply.
    await page.goto(f"{tab.base_url}/console/members/import")
    picker = page.get_by_label("Choose a CSV file")
    await picker.set_input_files(
        files=[
            {"name": "all.csv", "mimeType": "text/csv", "buffer": b"email,name\n" + b"x" * 400_000}
        ]
    )
    await expect(page.get_by_role("status")).to_have_text(
        "all.csv is larger than the console takes (341 KB): import it through the API "
        "(POST /v1/members/import)."
    )
    assert await page.get_by_label("CSV text").input_value() == ""
    csv = "email,name,unit,roles\r\nivy@example.org,Ivy Ímported,Sales,\r\njon@example.org,Jon Imported,,auditor\r\n"
    await picker.set_input_files(
        files=[
            {"name": "people.csv", "mimeType": "text/csv", "buffer": b"\xef\xbb\xbf" + csv.encode()}
        ]
    )
    await expect(page.get_by_role("status")).to_have_text(
        "Read people.csv: 3 lines. Check it below, then press Check (dry run)."
    )
    assert await page.get_by_label("CSV text").input_value() == csv.replace("\r\n", "\n")
    await page.get_by_role("button", name="Check (dry run)").click()
    await expect(
        page.get_by_text("2 created · 0 changed · 0 unchanged · 0 refused")
    ).to_be_visible()
    assert (
        await owner_conn.fetchval("SELECT count(*) FROM members WHERE email = 'ivy@example.org'")
        == 0
    )
    await page.get_by_role("button", name="Import 2 new, 0 changed").click()
    await expect(page.get_by_role("status")).to_have_text(
        "Imported: 2 created, 0 changed, 0 unchanged."
    )

    # Bulk-move three members.
    await page.goto(f"{tab.base_url}/console/members?q=bulk")
    count = page.locator('[data-selected-count="member_"]')
    await expect(count).to_have_text("None selected.")
    every = page.get_by_role("checkbox", name="Select every member on this page")
    await every.check()
    await expect(count).to_have_text("3 members selected.")
    await page.get_by_role("checkbox", name="Select Bulk Person 1").uncheck()
    await expect(count).to_have_text("2 members selected.")
    assert await every.evaluate("box => box.indeterminate")
    await every.check()
    for i in range(3):
        await expect(page.get_by_role("checkbox", name=f"Select Bulk Person {i}")).to_be_checked()
    # Only the field the chosen action needs shows.
    await page.get_by_label("Action").select_option("add_to_group")
    await expect(page.get_by_label("Group", exact=True)).to_be_visible()
    await expect(page.get_by_label("Unit (for a move)")).to_be_hidden()
    await page.get_by_label("Action").select_option("move")
    await expect(page.get_by_label("Group", exact=True)).to_be_hidden()
    await pick(page, "Unit (for a move)", "Sa", "Sales")
    await page.screenshot(path=str(shots / "members-bulk-selection.png"), full_page=True)
    await page.get_by_role("button", name="Apply to selected").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Move 3 members to Sales?")
    # Cancel goes back to the list with the same members still ticked.
    await page.get_by_role("link", name="Cancel").click()
    await expect(count).to_have_text("3 members selected.")
    await pick(page, "Unit (for a move)", "Sa", "Sales")
    await page.get_by_role("button", name="Apply to selected").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Move 3 members to Sales?")
    await page.get_by_role("button", name="Move 3 members to Sales").click()
    await expect(page.get_by_role("status")).to_have_text("Moved 3 members.")
    listed = page.url
    # Back from the outcome goes to where the action started, not to a confirmation the
    # browser would have to send again ("Confirm form resubmission").
    await page.go_back()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Members")
    assert "/console/members" in page.url and "bulk" not in page.url.split("?")[0]
    await page.go_forward()
    assert page.url == listed
    moved = await owner_conn.fetchval(
        "SELECT count(*) FROM members WHERE email LIKE 'bulk%' AND unit_id = $1",
        uuid.UUID(sales["id"]),
    )
    assert moved == 3

    # A destructive action asks first, naming what happens.
    await page.goto(nora_page)
    await page.get_by_role("button", name="Suspend", exact=True).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Suspend Nora Newcomer?")
    await expect(page.get_by_text("Nora Newcomer can no longer sign in")).to_be_visible()
    await page.get_by_role("button", name="Suspend Nora Newcomer").click()
    await expect(page.get_by_role("status")).to_have_text("Nora Newcomer is now suspended.")

    # Filter the audit log and export it.
    await (
        page.get_by_role("navigation", name="Console").get_by_role("link", name="Audit log").click()
    )
    await page.get_by_label("Action (or its start: member, departure.)").fill("member.")
    await page.get_by_role("searchbox", name="Who").fill(staff["owner"]["email"])
    await page.get_by_role("button", name="Filter").click()
    table = page.locator("table.audit")
    await expect(table).to_contain_text("member.suspend")
    await expect(table).to_contain_text("member.moved")
    await expect(table).not_to_contain_text("group.")
    await tab.land("^/console/audit\\?.*", shots, "audit-investigation")
    async with page.expect_download() as download_info:
        await page.get_by_role("link", name="CSV").click()
    download = await download_info.value
    saved = tmp_path / "audit.csv"
    await download.save_as(saved)
    exported = saved.read_text()
    assert exported.startswith("id,seq,occurred_at,actor") and "member.suspend" in exported
    assert "group." not in exported
    assert tab.csp_complaints() == []


async def test_the_privacy_officer_sees_the_pending_grant_on_the_overview_and_approves_it(
    tabs: OpenTab,
    org: OrgHandle,
    staff: dict[str, Any],
    owner_conn: asyncpg.Connection,
    tmp_path: Path,
) -> None:
    subject = await make_member(org, name="Sue Subject")
    grant = await request_grant(org, staff["admin"], subject)
    await seed_history(owner_conn, org)
    tab = await tabs()
    page = tab.page
    await sign_in_with_password(tab, org, staff["officer"]["email"])
    await tab.land("/console", shots_dir(tmp_path), "overview")
    await expect(
        page.get_by_role("navigation", name="Console").get_by_role(
            "link", name="Data access 1 waiting for approval"
        )
    ).to_be_visible()
    await page.get_by_role("link", name="Sue Subject").click()
    await tab.land(f"/console/data-access/grants/{grant}", tmp_path, "grant")
    await page.get_by_role("button", name="Approve").click()
    await page.wait_for_load_state("load")
    status = await owner_conn.fetchval(
        "SELECT status FROM access_grants WHERE id = $1", uuid.UUID(grant)
    )
    assert status == "approved"
    await page.goto(f"{tab.base_url}/console")
    await expect(page.get_by_text("Nothing waits for you.")).to_be_visible()


async def test_a_session_expiring_mid_htmx_lands_on_sign_in_and_returns_to_the_page(
    tabs: OpenTab, org: OrgHandle, staff: dict[str, Any], tmp_path: Path
) -> None:
    await make_unit(org, "Research")
    tab: Tab = await tabs()
    page = tab.page
    await sign_in_with_password(tab, org, staff["owner"]["email"])
    await tab.land("/console", tmp_path, "before")
    await page.goto(f"{tab.base_url}/console/members/new")
    await page.context.clear_cookies(name="tenantry_session")
    await page.get_by_label("Unit", exact=True).fill("Res")  # htmx asks for the matches
    await page.wait_for_url(f"{tab.base_url}/login?next=/console/members/new")
    await page.get_by_label("Work or school email").fill(staff["owner"]["email"])
    await page.get_by_role("button", name="Continue").click()
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in with password").click()
    await tab.land("/console/members/new", tmp_path, "back-on-the-page")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Add a member")
