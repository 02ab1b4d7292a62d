"""Real Chromium: a member sends an access request from the account page, follows it, and
downloads the export once it is built (the privacy team's side is driven through the API,
and the jobs run in the test's process)."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from pathlib import Path

import asyncpg
import pytest
from playwright.async_api import expect

from tests.conftest import OrgHandle, make_member, make_product
from tests.departures.support import make_items
from tests.requests.support import run_jobs, submit
from tests.web.browser import Tab, sign_in_with_password
from tests.web.flows import PASSWORD, set_local_sign_in, set_password

pytestmark = pytest.mark.browser


async def test_a_member_sends_an_access_request_and_downloads_the_export_when_it_is_done(
    org: OrgHandle, tab: Tab, tmp_path: Path
) -> None:
    await set_local_sign_in(org.id, True)
    mia = await make_member(org, name="Mia Member")
    await set_password(org.id, mia["id"], PASSWORD)
    drive = await make_product(org, name="Drive", key="drive")
    await org.post("/v1/product-accounts", {"member_id": mia["id"], "product_id": drive["id"]})
    await make_items(org, mia["id"], drive["id"], 25, prefix="doc")
    page = tab.page

    await sign_in_with_password(tab, org, mia["email"])
    await tab.land("/account", tmp_path, "account")
    card = page.locator("#privacy-requests")
    await expect(card.get_by_role("heading", name="Your privacy requests")).to_be_visible()
    await card.get_by_role("link", name="Send a privacy request").click()
    await tab.land("/account/privacy-requests", tmp_path, "send-form")
    await page.get_by_label("Access: a copy of your data").check()
    await page.get_by_label("Your message").fill("Please send me everything you hold about me.")
    await page.get_by_role("button", name="Send request").click()
    await tab.land("^/account/privacy-requests/[0-9a-f-]{36}$", tmp_path, "request-sent")
    await expect(page.get_by_role("status")).to_contain_text("Sent.")
    await expect(page.locator(".deadline")).to_contain_text("due in")
    await expect(page.locator("ol.timeline")).to_contain_text("Request received")
    request_id = page.url.rsplit("/", 1)[-1]

    started = await org.post(f"/v1/privacy-requests/{request_id}/export")
    assert started.status_code == 202, started.text
    await page.reload()
    await expect(page.get_by_text("Your data is being collected")).to_be_visible()
    await run_jobs()
    answered = await org.post(
        f"/v1/privacy-requests/{request_id}/answer",
        {"answer": "Your data is attached as a download."},
    )
    assert answered.status_code == 200, answered.text

    await page.reload()
    await tab.land(f"/account/privacy-requests/{request_id}", tmp_path, "export-ready")
    await expect(page.get_by_role("heading", name="Your data is ready")).to_be_visible()
    await expect(page.locator("ol.timeline")).to_contain_text("Data ready to download")
    await expect(page.locator("blockquote.answer")).to_have_text(
        "Your data is attached as a download."
    )
    async with page.expect_download() as info:
        await page.get_by_role("link", name="Download your data").click()
    download = await info.value
    saved = tmp_path / download.suggested_filename
    await download.save_as(saved)

    assert saved.name.startswith("my-data-") and saved.suffix == ".zip"
    archive = zipfile.ZipFile(io.BytesIO(saved.read_bytes()))
    assert archive.namelist()[0] == "README.txt"
    assert "Mia Member" in archive.read("README.txt").decode()
    assert len(json.loads(archive.read("content_items.json"))) == 25
    assert tab.csp_complaints() == [], tab.logged


async def test_a_privacy_officer_works_the_queue_from_the_overdue_badge_to_the_answer(
    org: OrgHandle, tab: Tab, tmp_path: Path, owner_conn: asyncpg.Connection
) -> None:
    await set_local_sign_in(org.id, True)
    olivia = await make_member(org, name="Olivia Officer", roles=["privacy_officer"])
    await set_password(org.id, olivia["id"], PASSWORD)
    mia, max_ = await make_member(org, name="Mia Member"), await make_member(org, name="Max M")
    late = await submit(org, mia, "erasure", "Delete the photos I uploaded.")
    await submit(org, max_, "inquiry", "Who can read my messages?")
    await owner_conn.execute(
        "UPDATE privacy_requests SET due_on = current_date - 3 WHERE id = $1",
        uuid.UUID(late["id"]),
    )
    page = tab.page

    await sign_in_with_password(tab, org, olivia["email"])
    await tab.land("/console", tmp_path, "console")
    await (
        page.get_by_role("navigation", name="Console")
        .get_by_role("link", name="Privacy requests")
        .click()
    )
    await tab.land("/console/privacy-requests", tmp_path, "queue")
    rows = page.locator("table.privacy-queue tbody tr")
    await expect(rows).to_have_count(2)
    await expect(rows.first).to_contain_text("overdue by 3 days")
    await expect(rows.first.locator(".deadline.overdue")).to_be_visible()
    await expect(rows.nth(1)).to_contain_text("due in")
    await rows.first.get_by_role("link", name="Mia Member").click()
    await tab.land(f"/console/privacy-requests/{late['id']}", tmp_path, "request")

    await page.get_by_label("Assign to").select_option(label="Olivia Officer")
    await page.get_by_role("button", name="Assign").click()
    await expect(page.get_by_role("status")).to_contain_text("Assigned to Olivia Officer")
    await page.get_by_label("Internal note").fill("Photos are in Drive and in Chat.")
    await page.get_by_role("button", name="Add note").click()
    await page.get_by_label("Personal items").check()
    await page.get_by_role("button", name="Run erasure").click()
    # It asks first, naming that the member's account goes too.
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Erase Mia Member")
    await expect(page.get_by_text("they can no longer sign in")).to_be_visible()
    await page.get_by_role("button", name="Erase the member").click()
    await expect(page.get_by_role("status")).to_contain_text("Erased 0 items")
    await page.get_by_label("Answer").fill("Your photos are deleted.")
    await page.get_by_role("button", name="Send answer").click()
    # Closing is for good: it asks first (the erasure ran, so no warning about it).
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Send this answer")
    await expect(page.get_by_text("No erasure was run")).to_have_count(0)
    await page.get_by_role("button", name="Send the answer").click()
    await tab.land(f"/console/privacy-requests/{late['id']}", tmp_path, "answered")
    timeline = page.locator("ol.timeline")
    for text in (
        "Request received",
        "Work started",
        "Assigned",
        "Internal note",
        "Data erased",
        "Answered",
    ):
        await expect(timeline).to_contain_text(text)
    await expect(timeline.locator("li.internal")).to_have_count(2)
    await expect(page.locator("h1 .badge")).to_have_text("Answered")


async def test_a_long_message_comes_back_whole_when_the_request_is_refused(
    org: OrgHandle, tab: Tab, tmp_path: Path
) -> None:
    """The refused form's input rides in a cookie of a few kilobytes, which a long message
    does not fit: the browser's copy (keep-input.js) puts it back, so nothing typed is lost
    to a missing choice."""
    await set_local_sign_in(org.id, True)
    mia = await make_member(org, name="Mia Member")
    await set_password(org.id, mia["id"], PASSWORD)
    page = tab.page
    message = " ".join(f"Sentence {i} about what I would like to receive." for i in range(90))
    assert 3_000 < len(message) <= 5_000

    await sign_in_with_password(tab, org, mia["email"])
    await page.goto(f"{tab.base_url}/account/privacy-requests")
    await tab.land("/account/privacy-requests", tmp_path, "send-form")
    await page.get_by_label("Your message").fill(message)
    await page.get_by_role("button", name="Send request").click()
    await tab.land("/account/privacy-requests", tmp_path, "refused")
    await expect(page.locator(".field-error").first).to_be_visible()
    await expect(page.get_by_label("Your message")).to_have_value(message)

    await page.get_by_label("Access: a copy of your data").check()
    await page.get_by_role("button", name="Send request").click()
    await tab.land("^/account/privacy-requests/[0-9a-f-]{36}$", tmp_path, "sent")
    await expect(page.locator("main")).to_contain_text("Sentence 89 about")
    # The copy is gone once a page has been shown: a later visit starts empty.
    await page.goto(f"{tab.base_url}/account/privacy-requests")
    await tab.land("/account/privacy-requests", tmp_path, "again")
    await expect(page.get_by_label("Your message")).to_have_value("")


async def test_an_answer_being_written_survives_a_note_added_beside_it(
    org: OrgHandle, tab: Tab, tmp_path: Path
) -> None:
    """The request page has five forms and is drawn again after each: a long answer typed
    but not yet sent was lost to a note added beside it (keep-input.js keeps the text
    areas of the forms not sent, for the page drawn again)."""
    await set_local_sign_in(org.id, True)
    mia = await make_member(org, name="Mia Member")
    olivia = await make_member(org, name="Olivia Officer", roles=["privacy_officer"])
    await set_password(org.id, olivia["id"], PASSWORD)
    request = await submit(org, mia, "rectification", "My surname is spelt wrong.")
    page = tab.page
    await sign_in_with_password(tab, org, olivia["email"])
    await page.goto(f"{tab.base_url}/console/privacy-requests/{request['id']}")
    draft = "We corrected your surname in the directory, in Mail and in Drive. " * 8
    await page.get_by_label("Answer").fill(draft)
    await page.get_by_label("Internal note").fill("Checked the HR export too.")
    await page.get_by_role("button", name="Add note").click()
    await expect(page.locator("ol.timeline")).to_contain_text("Checked the HR export too.")
    await expect(page.get_by_label("Answer")).to_have_value(draft)
    await expect(page.get_by_label("Internal note")).to_have_value("")
    # Only once: a later visit starts empty.
    await page.reload()
    await expect(page.get_by_label("Answer")).to_have_value("")
