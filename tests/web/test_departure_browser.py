"""The issue's departure scenario in real Chromium against the live server: the member sees
what leaving would mean for them; an admin previews and starts their departure; the member,
told, exports a personal item before the last day (the product's export link is a tiny HTTP
server of this test); the admin watches the departure run to completion while the test
runs the worker in-process.
"""

from __future__ import annotations

import asyncio
import re
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from playwright.async_api import expect

from tenants import db
from tenants.privacy import datamap
from tests.conftest import OrgHandle, make_member, make_product
from tests.departures.support import make_items, run_jobs
from tests.web.browser import OpenTab, sign_in_with_password
from tests.web.flows import PASSWORD, audit_events, set_local_sign_in, set_password

pytestmark = [pytest.mark.browser]

PAST_RETENTION = timedelta(days=400)


class ExportServer:
    """A product's export endpoint: answers every GET with a small page naming the path."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        paths = self.paths

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                paths.append(self.path)
                body = f"<!doctype html><title>Export</title><h1>Exported {self.path}</h1>".encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def export_server() -> Iterator[ExportServer]:
    server = ExportServer()
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()
    thread.join(timeout=5)


async def person(org: OrgHandle, name: str, **fields: Any) -> dict[str, Any]:
    made = await make_member(org, name=name, **fields)
    await set_password(org.id, made["id"], PASSWORD)
    return made


@pytest.mark.slow
async def test_admin_starts_a_departure_the_member_exports_and_the_admin_watches_it_complete(
    org: OrgHandle,
    tabs: OpenTab,
    export_server: ExportServer,
    tmp_path: Path,
    owner_conn: asyncpg.Connection,
) -> None:
    await set_local_sign_in(org.id, True)
    admin = await person(org, "Ada Admin", roles=["admin"])
    boss = await make_member(org, name="Bo Boss")
    lea = await person(org, "Lea Leaver", manager_id=boss["id"])
    drive = await make_product(org, name="Drive")
    await make_items(org, lea["id"], drive["id"], 12_345)
    await make_items(org, lea["id"], drive["id"], 3, kind="personal", prefix="photo")
    async with db.tenant_transaction(org.id):
        await db.connection().execute_query(
            "UPDATE content_items SET title = 'Holiday photo ' || external_id, "
            "export_url = $1 || '/export/' || external_id "
            "WHERE kind = 'personal' AND external_id <> 'photo-3'",
            [export_server.url],
        )
    today = datetime.now(UTC).date().isoformat()

    # Lea sees, before anything is planned, what leaving would mean for her.
    member = await tabs()
    await sign_in_with_password(member, org, lea["email"])
    await member.land("/account", tmp_path, "01-member-before")
    leaving = member.page.get_by_role("region", name="What leaving would mean for you")
    await expect(leaving).to_contain_text("Nothing is planned.")
    await expect(leaving).to_contain_text(
        "12,345 items in Drive: handed to Bo Boss (your manager)."
    )
    await expect(leaving).to_contain_text("3 items in Drive: yours to export until")
    await expect(leaving.get_by_role("button", name="Export Holiday photo photo-1")).to_be_visible()
    await expect(leaving).to_contain_text("ask Drive to export it")
    # What stays after leaving, and why, as the personal-data map keeps it (Art. 13(2)(a)):
    # the page said only "what is not kept is deleted".
    kept = leaving.get_by_role("list").filter(has_text="reviewed after")
    await expect(kept).to_contain_text("The departure's record: dates, steps and what happened")
    await expect(kept).to_contain_text("reviewed after 6 years")
    await expect(kept.get_by_role("listitem")).to_have_count(len(datamap.kept_kinds()))
    await leaving.screenshot(path=str(tmp_path / "01-member-leaving-section.png"))

    # The admin previews the departure from Lea's page, then starts it.
    console = await tabs()
    page = console.page
    await sign_in_with_password(console, org, admin["email"])
    await console.land("/console", tmp_path, "02-console")
    await page.goto(f"{console.base_url}/console/members/{lea['id']}")
    await page.get_by_role("link", name="Start a departure…").click()
    await console.land(f"/console/members/{lea['id']}/departure", tmp_path, "03-start-form")
    await page.get_by_label("Last day").fill("2020-01-01")
    # From the keyboard: the answer replaces the fields, the button pressed among them; the
    # focus goes to the field refused (it fell to the page), and the preview slot, a live
    # region, stays the same element (it was replaced, so nothing was announced).
    await page.evaluate("document.querySelector('#start-preview').dataset.kept = 'yes'")
    await page.get_by_role("button", name="Preview the plan").press("Enter")
    await expect(page.locator("#last_day-error")).to_contain_text(
        "The last day cannot be in the past."
    )
    await expect(page.get_by_label("Last day")).to_have_attribute("aria-invalid", "true")
    await expect(page.get_by_label("Last day")).to_be_focused()
    await expect(page.locator("#start-preview")).to_have_attribute("data-kept", "yes")
    await expect(page.locator("#start-preview")).to_contain_text("Not previewed")
    await page.get_by_label("Last day").fill(today)
    await page.get_by_label("Reason").fill("Moving abroad")
    # The successor search answers every change of its text (on the form as it came back
    # refused, too), and never offers the leaver herself.
    search = page.get_by_label("Successor")
    options = page.locator("#successor-options")
    await search.fill("Lea")
    await expect(options).to_contain_text("Nothing starts with “Lea”.")
    await search.fill("Bo")
    await expect(options.get_by_role("radio", name="Bo Boss")).to_be_checked()
    await search.fill("Ada")
    await expect(options.get_by_role("radio", name="Ada Admin")).to_be_visible()
    await expect(options.get_by_role("radio", name="Bo Boss")).to_have_count(0)
    await search.fill("")
    await expect(options.get_by_role("radio")).to_have_count(0)
    await page.get_by_role("radio", name="Default: their manager, Bo Boss").check()
    await expect(page.get_by_label("Successor")).to_have_value("")
    await page.get_by_role("button", name="Preview the plan").press("Enter")
    preview = page.get_by_role("region", name="What this departure does")
    # The plan's heading has the focus: its Confirm button is a few Tabs away (36 before).
    await expect(page.locator("#preview-h")).to_be_focused()
    await expect(page.locator("#start-preview")).to_have_attribute("data-kept", "yes")
    await expect(page.locator("#last_day-error")).to_have_count(0)
    await expect(preview).to_contain_text("Successor Bo Boss — their manager")
    await expect(preview).to_contain_text("12,348 items")
    transfer = preview.locator('table.breakdown tr[data-action="transfer"]')
    await expect(transfer.locator("th")).to_have_text("Transferred to the successor")
    await expect(transfer.locator("td").first).to_have_text("12,345")
    personal = preview.locator('table.breakdown tr[data-action="export_then_delete"]')
    await expect(personal.locator("td").first).to_have_text("3")
    await expect(preview).to_contain_text("Short notice:")
    await page.screenshot(path=str(tmp_path / "04-preview.png"), full_page=True)
    assert (
        await owner_conn.fetchval("SELECT count(*) FROM departures WHERE tenant_id = $1", org.id)
        == 0
    )
    # A reason typed after the preview would not have been saved by its Confirm (it
    # carries what was previewed): the preview goes, and comes back with the reason.
    await page.get_by_label("Reason").fill("Moving abroad in spring")
    await expect(page.locator(".preview-slot")).to_contain_text(
        "The form has changed since this preview"
    )
    await expect(page.get_by_role("button", name="Confirm and start the departure")).to_have_count(0)
    await page.get_by_role("button", name="Preview the plan").click()
    await preview.get_by_role("button", name="Confirm and start the departure").click()
    await console.land("^/console/departures/[0-9a-f-]{36}$", tmp_path, "05-started")
    departure_id = page.url.rsplit("/", 1)[-1]
    await expect(page.get_by_role("status").first).to_contain_text(
        f"Departure of Lea Leaver started: their last day is {today}."
    )
    progress = page.locator("#departure-progress")
    news = page.locator("#departure-news")  # the live region: one line, outside the card
    await expect(news).to_contain_text("Status: running")
    await expect(progress).to_contain_text("0 of 12,348 items")

    # Lea is told, and takes a personal item out before her last day is over.
    await member.page.reload()
    await expect(member.page.get_by_role("status")).to_contain_text(f"your last day is {today}")
    leaving = member.page.get_by_role("region", name=f"You are leaving {org.slug.title()}")
    await expect(leaving).to_contain_text(f"Your last day is {today}")
    await member.page.screenshot(path=str(tmp_path / "06-member-told.png"), full_page=True)
    await leaving.get_by_role("button", name="Export Holiday photo photo-1").click()
    await member.page.wait_for_url(f"{export_server.url}/export/photo-1")
    await expect(member.page.get_by_role("heading", level=1)).to_have_text(
        "Exported /export/photo-1"
    )
    assert [p for p in export_server.paths if p != "/favicon.ico"] == ["/export/photo-1"]
    [exported] = await audit_events(owner_conn, org.id, "content.exported")
    assert exported.actor == f"member:{lea['id']}"
    assert exported.after["departure_id"] == departure_id
    assert exported.after["external_id"] == "photo-1"

    # The admin watches the run: the page polls while the worker runs here, in-process.
    # She has begun typing a reason to reinstate Lea: a step finishing reloaded the whole
    # page, which threw the text and the focus away. Now only what changed is redrawn.
    reason = page.locator("#reinstate-reason")
    await reason.fill("She is staying after all")
    await page.evaluate("document.querySelector('#departure-news').dataset.kept = 'yes'")
    ran = await run_jobs(ahead=PAST_RETENTION)
    assert ran >= 3
    await expect(news).to_contain_text("Status: completed", timeout=20_000)
    await expect(news).to_contain_text("4 of 4 steps done")
    await expect(news).to_have_attribute("data-kept", "yes")  # the same live region
    await expect(page.locator("#departure-badge")).to_have_text("completed")
    await expect(reason).to_have_value("She is staying after all")
    await expect(reason).to_be_focused()
    await expect(page.locator("#reinstate-state")).to_contain_text("can no longer be reinstated")
    await expect(page.locator("#departure-log")).to_contain_text("transfer done")
    await expect(progress).to_contain_text("12,348 of 12,348 items")
    await expect(progress.locator(".badge.step-done")).to_have_count(4)
    await expect(progress.locator("progress#step-transfer-bar")).to_have_attribute("value", "12348")
    await page.screenshot(path=str(tmp_path / "07-completed.png"), full_page=True)
    # Finished: the fragment no longer asks for itself.
    await expect(progress).not_to_have_attribute("hx-trigger", "every 2s")
    requests_after: list[str] = []
    page.on("request", lambda r: requests_after.append(r.url) if "/progress" in r.url else None)
    await asyncio.sleep(2.5)
    assert requests_after == []
    # The list shows it completed; the policy it followed is one tab away.
    await (
        page.get_by_role("navigation", name="Console")
        .get_by_role("link", name="Departures")
        .click()
    )
    await console.land("/console/departures", tmp_path, "08-list")
    row = page.get_by_role("row", name=re.compile("erased member"))
    await expect(row).to_contain_text("completed")
    await expect(row).to_contain_text("all steps done")
    await (
        page.get_by_role("navigation", name="Departures", exact=True)
        .get_by_role("link", name="Policy")
        .click()
    )
    await console.land("/console/departures/policy", tmp_path, "09-policy")
    await expect(page.get_by_label("Retention")).to_have_value("30")
    assert console.csp_complaints() == [] and member.csp_complaints() == []
    status = await owner_conn.fetchval(
        "SELECT status FROM departures WHERE id = $1", uuid.UUID(departure_id)
    )
    assert status == "completed"
