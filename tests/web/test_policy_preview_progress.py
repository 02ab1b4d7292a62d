"""A large impact preview runs as a job and the console polls its progress (htmx) instead
of holding the request open: the answer is a progress fragment that asks again with the
same change; once a worker has counted the scope part by part, the poll answers the same
impact as the preview made in the request, in process and in real Chromium (htmx polling
until the impact replaces the progress). The size from which a preview is large is
lowered here (a real one is 20,000 members)."""

from __future__ import annotations

import json
import re
from html import unescape
from typing import Any

import asyncpg
import pytest
from playwright.async_api import expect

from tenants.jobs.worker import Worker
from tenants.policy import previews
from tests.conftest import OrgHandle, make_member, make_unit
from tests.web.browser import OpenTab, sign_in_with_password
from tests.web.flows import asgi_client, set_local_sign_in, text_of
from tests.web.test_policies_ui import ADS, person, rule_form, signed_in

HTMX = {"HX-Request": "true"}


def poll_values(fragment: str) -> dict[str, str]:
    """What the progress fragment sends when it asks again (its hx-vals)."""
    found = re.search(r"hx-vals='([^']*)'", fragment)
    assert found, fragment
    return dict(json.loads(unescape(found.group(1))))


@pytest.fixture
async def local_org(org: OrgHandle) -> OrgHandle:
    await set_local_sign_in(org.id, True)
    return org


@pytest.fixture
def small_large_previews(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(previews, "LARGE_SCOPE", 3)
    monkeypatch.setattr(previews, "PART_MEMBERS", 2)


async def test_a_large_preview_shows_its_progress_then_the_impact_it_would_have_shown(
    app: Any,
    local_org: OrgHandle,
    owner_conn: asyncpg.Connection,
    small_large_previews: None,
) -> None:
    org = local_org
    sales = await make_unit(org, "Sales")
    north = await make_unit(org, "North", parent=sales["id"])
    for unit in (sales, north, north, sales, north):
        await make_member(org, unit=unit["id"])
    chooser = await make_member(org, unit=north["id"])
    chosen = await org.post(
        f"/v1/members/{chooser['id']}/choices", json={"setting": ADS, "value": True}
    )
    assert chosen.status_code == 200, chosen.text
    admin = await person(org, "Ada Admin", role="admin")
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, org, admin)
        form = rule_form(csrf, sales["id"])
        waited = text_of((await browser.post("/console/policies/preview", form)).text)
        started = await browser.post("/console/policies/preview", form, headers=HTMX)
        assert started.status_code == 200, started.text
        assert 'class="preview-progress"' in started.text and "Confirm and save" not in started.text
        again = poll_values(started.text)
        assert again["run"] and again["target"] == f"unit:{sales['id']}" and again["csrf"] == csrf
        assert "reason" in again  # the whole change comes back to be saved from the result
        # No worker has run yet: still counting.
        pending = await browser.post("/console/policies/preview", again, headers=HTMX)
        assert "Counting the members this change reaches" in text_of(pending.text)
        # Progress as a worker saves it after a part.
        await owner_conn.execute(
            'UPDATE jobs SET checkpoint = \'{"done": 2, "total": 6}\' WHERE id = $1::uuid',
            again["run"],
        )
        part = await browser.post("/console/policies/preview", again, headers=HTMX)
        assert "2 of about 6 so far" in text_of(part.text)
        assert '<progress max="6" value="2"' in part.text
        await owner_conn.execute(
            "UPDATE jobs SET checkpoint = '{}' WHERE id = $1::uuid", again["run"]
        )
        assert await Worker(name="preview-tests").run_until_idle() == 1
        done = await browser.post("/console/policies/preview", again, headers=HTMX)
        assert 'class="preview-progress"' not in done.text and "Confirm and save" in done.text
    shown = text_of(done.text)
    assert "Members in scope 6" in shown and "Locked afterwards 6 members" in shown

    def facts(text: str) -> str:
        return text[text.index("Members in scope") : text.index("Confirm and save")]

    assert facts(shown) == facts(waited)  # what the request would have answered
    checkpoint = await owner_conn.fetchval(
        "SELECT checkpoint FROM jobs WHERE id = $1::uuid", again["run"]
    )
    assert json.loads(checkpoint)["done"] == 6


async def test_a_removal_is_previewed_as_a_job_too_and_a_stranger_run_is_refused(
    app: Any, local_org: OrgHandle, small_large_previews: None
) -> None:
    org = local_org
    for _ in range(4):
        await make_member(org)
    admin = await person(org, "Ada Admin", role="admin")
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, org, admin)
        form = {**rule_form(csrf, org.root_unit_id), "remove": "yes"}
        started = await browser.post("/console/policies/preview", form, headers=HTMX)
        again = poll_values(started.text)
        assert again["remove"] == "yes"
        await Worker(name="preview-tests").run_until_idle()
        done = text_of((await browser.post("/console/policies/preview", again, headers=HTMX)).text)
        assert "Remove the rule for" in done and "Members in scope 5" in done
        unknown = {**again, "run": "00000000-0000-4000-8000-000000000000"}
        refused = await browser.post("/console/policies/preview", unknown, headers=HTMX)
        assert "Not previewed: there is no such preview" in text_of(refused.text)
        bad = await browser.post("/console/policies/preview", {**again, "run": "x"}, headers=HTMX)
        assert "Not previewed: the preview is not one" in text_of(bad.text)


@pytest.mark.browser
async def test_in_a_browser_the_progress_is_replaced_by_the_impact_when_the_job_is_done(
    tabs: OpenTab, local_org: OrgHandle, small_large_previews: None
) -> None:
    for _ in range(4):
        await make_member(local_org)
    admin = await person(local_org, "Ada Admin", role="admin")
    tab = await tabs()
    page = tab.page
    await sign_in_with_password(tab, local_org, admin["email"])
    await page.wait_for_url(f"{tab.base_url}/console")
    await page.goto(f"{tab.base_url}/console/policies")
    ads = page.get_by_role("article", name="Personalised ads")
    await ads.get_by_text("Set a rule").click()
    await ads.get_by_label("Lock for everyone below").check()
    await ads.get_by_role("button", name="Preview impact").click()
    await expect(ads.get_by_role("status")).to_contain_text("Counting the members")
    await expect(ads.locator("progress")).to_be_visible()
    # The page asks again every moment; a worker counts the scope meanwhile.
    assert await Worker(name="preview-browser").run_until_idle() == 1
    impact = ads.get_by_role("region", name="Impact of this change")
    await expect(impact).to_contain_text("Members in scope 5", timeout=10_000)
    await expect(impact.get_by_role("button", name="Confirm and save")).to_be_visible()
    await expect(ads.locator("progress")).to_have_count(0)
    assert tab.csp_complaints() == []
