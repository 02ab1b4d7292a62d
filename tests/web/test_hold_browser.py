"""The issue's hold explanation in real Chromium against the live server: an admin fills in
the member-facing text and review date of a hold that had none (from the overview's
reminder); the member then sees on their account page which of their data is kept, that a
legal obligation requires it, that text and the review date, and not the hold's reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import expect

from tests.conftest import OrgHandle, make_member, make_product
from tests.departures.support import make_items
from tests.web.browser import OpenTab, sign_in_with_password
from tests.web.flows import PASSWORD, set_local_sign_in, set_password
from tests.web.test_console_browser import shots_dir

pytestmark = [pytest.mark.browser]


async def test_the_admin_sets_the_holds_text_and_the_member_sees_the_explanation(
    org: OrgHandle, tabs: OpenTab, tmp_path: Path
) -> None:
    await set_local_sign_in(org.id, True)
    admin = await make_member(org, name="Ada Admin", roles=["admin"])
    mia = await make_member(org, name="Mia Member")
    for who in (admin, mia):
        await set_password(org.id, who["id"], PASSWORD)
    drive = await make_product(org, name="Drive")
    await make_items(org, mia["id"], drive["id"], 3, kind="personal", legal_hold=True)
    review = (datetime.now(UTC).date() + timedelta(days=120)).isoformat()

    console = await tabs()
    page = console.page
    await sign_in_with_password(console, org, admin["email"])
    await console.land("/console", tmp_path, "01-overview")
    await expect(page.get_by_text("3 legal holds without a review date")).to_be_visible()
    await page.get_by_role("link", name="Item 1", exact=True).click()
    await console.land("^/console/holds/.+", tmp_path, "02-hold-form")
    await page.get_by_label("What the member is told").fill(
        "Your files are kept while a tax audit of the organisation is open.")
    await page.get_by_label("Review date").fill(review)
    await page.get_by_label("Reason (confidential: audit trail only)").fill("Audit 2026-44 (secret)")
    await page.get_by_role("button", name="Save").click()
    await console.land("/console", tmp_path, "03-saved")
    await expect(page.get_by_text("2 legal holds without a review date")).to_be_visible()

    member = await tabs()
    await sign_in_with_password(member, org, mia["email"])
    await member.land("/account", tmp_path, "04-account")
    holds = member.page.get_by_role("region", name="Data kept because of a legal obligation")
    await expect(holds).to_contain_text("personal items in Drive (3)")
    await expect(holds).to_contain_text("A legal obligation requires the organisation to keep")
    await expect(holds).to_contain_text(
        "Your files are kept while a tax audit of the organisation is open.")
    await expect(holds).to_contain_text(f"The hold is reviewed by {review}")
    await expect(holds).not_to_contain_text("secret")
    await holds.screenshot(path=str(shots_dir(tmp_path) / "hold-explanation.png"))
