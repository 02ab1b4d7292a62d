"""axe-core (the npm package, injected into real Chromium) on every page reachable from the
navigation, for an owner and for a member: no violation of any impact. A standing test:
a new page in the navigation is checked without anyone adding it here."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from playwright.async_api import expect

from app.settings import Settings
from app.web.pages import CONSOLE_NAV
from tenants.ids import OrgId
from tenants.members import invitations
from tests.conftest import OrgHandle, make_group, make_member, make_product, make_unit
from tests.departures.support import make_items
from tests.web.browser import OpenTab, Tab, sign_in_with_password
from tests.web.flows import PASSWORD, configure_sso, set_local_sign_in, set_password

pytestmark = [pytest.mark.browser]

AXE = Path(__file__).resolve().parents[1] / "oidc" / "node_modules" / "axe-core" / "axe.min.js"


async def violations(tab: Tab, path: str) -> list[dict[str, Any]]:
    """axe's violations on ``path`` (every rule, every impact), as id, impact and where."""
    await tab.page.goto(f"{tab.base_url}{path}")
    await tab.page.wait_for_load_state("load")
    await tab.page.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = await tab.page.evaluate(
        """async () => {
            const result = await axe.run(document, {resultTypes: ['violations']});
            return result.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ')),
            }));
        }"""
    )
    return found


@pytest.fixture
async def people(org: OrgHandle) -> dict[str, Any]:
    await set_local_sign_in(org.id, True)
    owner = await make_member(org, name="Axe Owner", roles=["owner", "privacy_officer"])
    member = await make_member(org, name="Axe Member")
    for person in (owner, member):
        await set_password(org.id, person["id"], PASSWORD)
    unit = await make_unit(org, "Axe unit")
    await make_unit(org, "Axe team", parent=unit["id"])  # the units page's lazy sub-units
    await make_member(org, name="Axe Colleague", unit=unit["id"], manager_id=member["id"])
    group = await make_group(org)
    product = await make_product(org)
    # A held item with its member-facing text (the member's "Data kept because of a legal
    # obligation" section) and one without a review date (the owner's overview reminder).
    held = []
    for n, hold in enumerate(({"member_text": "Kept while a claim is open.",
                               "review_on": (datetime.now(UTC).date() + timedelta(days=365)).isoformat()}, None)):
        registered = await org.post("/v1/content", {
            "product_id": product["id"], "external_id": f"axe-{n}", "member_id": member["id"],
            "title": f"Axe file {n}", "kind": "personal"})
        assert registered.status_code in (200, 201), registered.text
        held.append(registered.json()["id"])
        if hold:
            placed = await org.put(f"/v1/content/{held[-1]}/legal-hold",
                                   json={"legal_hold": True, "reason": "axe", **hold})
            assert placed.status_code == 200, placed.text
    await make_items(org, member["id"], product["id"], 1, kind="personal", legal_hold=True)
    # An open access review whose items wait for the owner (their queue, the campaign page)
    # and for the member, who manages an admin (their account page's queue).
    await make_member(org, name="Axe Admin", roles=["admin"])
    await make_member(org, name="Axe Report", roles=["auditor"], manager_id=member["id"])
    today = datetime.now(UTC).date()
    review = await org.post("/v1/access-reviews", {
        "name": "Axe review", "scopes": ["admin_roles", "product_clients"],
        "reviewer_rule": "manager", "named_reviewer_ids": [owner["id"]],
        "starts_on": today.isoformat(), "due_on": (today + timedelta(days=7)).isoformat(),
        "default_on_due": "keep", "recurrence": {"every": 3, "unit": "months"},
    })
    assert review.status_code == 201, review.text
    return {"owner": owner, "member": member, "unit": unit, "held": held[0], "group": group,
            "review": review.json()["id"]}


@pytest.mark.slow
async def test_every_page_in_the_owners_navigation_has_no_axe_violation(
    tabs: OpenTab, org: OrgHandle, people: dict[str, Any]
) -> None:
    tab = await tabs(bypass_csp=True)
    await sign_in_with_password(tab, org, people["owner"]["email"])
    await tab.page.wait_for_url(f"{tab.base_url}/console")
    member_page = f"/console/members/{people['member']['id']}"
    pages = [path for _, path, _ in CONSOLE_NAV] + [
        member_page,
        "/console/members/new",
        "/console/members/import",
        "/console/search?q=axe",
        "/console/units?q=axe",
        f"/console/units?parent={people['unit']['id']}",
        f"/console/units/{people['unit']['id']}/edit",
        "/console/audit?action=member.",
        "/console/data-access/new",
        f"/console/groups/{people['group']['id']}",
        "/console/departures/policy",
        f"{member_page}/departure",
        f"/console/holds/{people['held']}",
        f"{member_page}/content",
        "/console/access-reviews/new",
        f"/console/access-reviews/{people['review']}",
        "/account",
    ]
    found = {path: await violations(tab, path) for path in pages}
    assert {p: v for p, v in found.items() if v} == {}, json.dumps(found, indent=1)


async def test_the_units_page_opens_sub_units_and_their_forms_in_place_and_stays_accessible(
    tabs: OpenTab, org: OrgHandle, people: dict[str, Any]
) -> None:
    tab = await tabs(bypass_csp=True)
    await sign_in_with_password(tab, org, people["owner"]["email"])
    await tab.page.wait_for_url(f"{tab.base_url}/console")
    await tab.page.goto(f"{tab.base_url}/console/units")
    assert await tab.page.get_by_text("Axe team").count() == 0
    await tab.page.get_by_text("Sub-units of Axe unit", exact=True).click()
    await tab.page.get_by_text("Axe team", exact=True).wait_for()
    assert tab.page.url == f"{tab.base_url}/console/units"  # opened in place
    # A unit's forms are read when its "Edit" opens, in place too.
    assert await tab.page.get_by_label("New name for Axe team").count() == 0
    await tab.page.get_by_text("Edit Axe team", exact=True).click()
    await tab.page.get_by_label("New name for Axe team").wait_for()
    await tab.page.add_script_tag(path=str(AXE))
    found = await tab.page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => v.id)"
    )
    assert found == []
    await tab.page.get_by_label("New name for Axe team").fill("Axe squad")
    await tab.page.get_by_role("button", name="Rename", exact=True).click()
    await tab.page.get_by_text("Renamed to Axe squad.").wait_for()
    # "More sub-units" is replaced by the next rows: the focus goes to the first of them
    # (it fell to the page, and a keyboard user started again from the top).
    regions = await make_unit(org, "Axe regions")
    for i in range(51):
        await make_unit(org, f"Axe region {i:02d}", parent=uuid.UUID(regions["id"]))
    await tab.page.goto(f"{tab.base_url}/console/units?parent={regions['id']}")
    await tab.page.get_by_role("link", name="More sub-units").press("Enter")
    first_new = tab.page.locator("xpath=//li[strong[normalize-space()='Axe region 50']]")
    await expect(first_new).to_be_focused()


async def test_every_page_a_member_reaches_has_no_axe_violation(
    tabs: OpenTab, org: OrgHandle, people: dict[str, Any], settings: Settings
) -> None:
    tab = await tabs(bypass_csp=True)
    # The page an invitation email's sign-in link opens, before any sign-in.
    token = invitations.make_link_token(
        settings.secret_key, OrgId(org.id), uuid.UUID(str(people["member"]["id"]))
    )
    invited = await violations(tab, invitations.link_path(token))
    assert invited == [], json.dumps(invited, indent=1)
    # A scheduled change, so the account page shows "Coming changes".
    coming = datetime.now(UTC) + timedelta(days=9)
    scheduled = await org.put("/v1/policy/rules", json={
        "target_kind": "unit", "target_id": str(org.root_unit_id),
        "setting": "advertising.personalised_ads", "value": False, "enforced": True,
        "reason": "No ads from next month", "effective_from": coming.isoformat()})
    assert scheduled.status_code == 200, scheduled.text
    await sign_in_with_password(tab, org, people["member"]["email"])
    await tab.page.wait_for_url(f"{tab.base_url}/account")
    # The diagnostic-data samples opened, comparing the current level with another.
    pages = [
        "/account",
        "/account?sample=diagnostics.level&level=off",
        "/account/privacy-requests",
        "/account/access-reviews",
        "/console/members",
    ]
    found = {path: await violations(tab, path) for path in pages}
    assert {p: v for p, v in found.items() if v} == {}, json.dumps(found, indent=1)
    # At 320 px (WCAG 1.4.10) tables scroll inside themselves: each that does must take
    # the keyboard's focus (scrollable-region-focusable), or its last columns are out of
    # a keyboard user's reach.
    await tab.page.set_viewport_size({"width": 320, "height": 800})
    narrow = {path: await violations(tab, path) for path in pages[:3]}
    assert {p: v for p, v in narrow.items() if v} == {}, json.dumps(narrow, indent=1)
    scrolling = await tab.page.evaluate(
        """[...document.querySelectorAll('main table')]
             .filter(t => t.scrollWidth > t.clientWidth + 1)
             .map(t => t.getAttribute('tabindex'))"""
    )
    assert all(index == "0" for index in scrolling), scrolling


async def test_the_sso_safety_net_shows_who_loses_sign_in_and_restores_accessibly(
    tabs: OpenTab,
    org: OrgHandle,
    people: dict[str, Any],
    settings: Settings,
    owner_conn: asyncpg.Connection,
) -> None:
    """The admin changes the client id: the preview step names the member who would lose
    sign-in and asks for the count; after confirming, the settings page offers the restore."""
    await configure_sso(
        settings, org.id, issuer="http://127.0.0.1:9", client_id="before", client_secret="s" * 24
    )
    await owner_conn.execute(
        "UPDATE members SET idp_subject = 'axe-sub' WHERE id = $1",
        uuid.UUID(people["member"]["id"]),
    )
    # Without a password the provider is the member's only way in (one with a password
    # keeps signing in, and the safety net rightly does not count them).
    await owner_conn.execute(
        "DELETE FROM local_credentials WHERE member_id = $1", uuid.UUID(people["member"]["id"])
    )
    tab = await tabs(bypass_csp=True)
    await sign_in_with_password(tab, org, people["owner"]["email"])
    await tab.page.wait_for_url(f"{tab.base_url}/console")
    await tab.page.goto(f"{tab.base_url}/console/settings")
    await tab.page.fill("#client_id", "after")
    await tab.page.get_by_role("button", name="Save", exact=True).first.click()
    await tab.page.get_by_text("1 member would lose sign-in").wait_for()
    assert await tab.page.get_by_text("Axe Member").count() == 1
    await tab.page.add_script_tag(path=str(AXE))
    found = await tab.page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => v.id)"
    )
    assert found == []
    await tab.page.get_by_label("I understand that 1 member will lose sign-in").check()
    await tab.page.get_by_role("button", name="Confirm: 1 lose sign-in").click()
    await tab.page.get_by_role("button", name="Restore previous configuration").wait_for()
    assert await violations(tab, "/console/settings") == []
    await tab.page.get_by_label("Put the previous configuration back").check()
    await tab.page.get_by_role("button", name="Restore previous configuration").click()
    await tab.page.get_by_text("Restored the previous identity provider connection.").wait_for()
    assert (
        await owner_conn.fetchval(
            "SELECT client_id FROM sso_connections WHERE tenant_id = $1", org.id
        )
        == "before"
    )


async def current_violations(tab: Tab) -> list[str]:
    """axe's violations on the page the tab shows now (without opening it again)."""
    await tab.page.add_script_tag(path=str(AXE))
    found: list[str] = await tab.page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => v.id + ': ' + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', '))"
    )
    return found


async def test_an_api_token_is_made_shown_once_and_revoked_accessibly(
    tabs: OpenTab, org: OrgHandle, people: dict[str, Any]
) -> None:
    """The token form (also refused, with its errors beside the fields), the token shown
    once with its copy button, and the revoke confirmation: each without an axe violation."""
    tab = await tabs(bypass_csp=True)
    await sign_in_with_password(tab, org, people["owner"]["email"])
    await tab.page.wait_for_url(f"{tab.base_url}/console")
    assert await violations(tab, "/console/api-tokens/new") == []
    await tab.page.get_by_role("button", name="Create token").click()
    await tab.page.locator("#name-error").wait_for()
    # The refused form is a new page: the focus is on the first field refused, not at the
    # top of the page.
    await expect(tab.page.locator("#name")).to_be_focused()
    assert await current_violations(tab) == []
    await tab.page.locator("#name").fill("Axe sync")
    await tab.page.locator('input[name="scopes"][value="members:read"]').check()
    await tab.page.get_by_role("button", name="Create token").click()
    await tab.page.get_by_text("Store it now: it will not be shown again").wait_for()
    assert (await tab.page.locator("#new-token").input_value()).startswith("tnt_")
    assert await tab.page.get_by_role("button", name="Copy").is_visible()
    assert await current_violations(tab) == []
    await tab.page.get_by_role("link", name="Done").click()
    await tab.page.get_by_role("button", name="Revoke Axe sync").click()
    await tab.page.get_by_text("Revoke the API token Axe sync?").wait_for()
    assert await current_violations(tab) == []
    await tab.page.get_by_role("button", name="Revoke Axe sync").click()
    await tab.page.get_by_text("Revoked the API token Axe sync").wait_for()


#: The ring's contrast with the page (WCAG 1.4.11: 3:1 for what shows a component's state).
FOCUS_CONTRAST = """
(el) => {
  const rgb = (s) => (s.match(/[\\d.]+/g) || []).slice(0, 3).map(Number);
  const lum = ([r, g, b]) => {
    const c = [r, g, b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  let back = el.parentElement, bg = "rgba(0, 0, 0, 0)";
  while (back && /rgba\\(0, 0, 0, 0\\)|transparent/.test(bg)) {
    bg = getComputedStyle(back).backgroundColor; back = back.parentElement;
  }
  if (/rgba\\(0, 0, 0, 0\\)|transparent/.test(bg)) { bg = "rgb(255, 255, 255)"; }
  const style = getComputedStyle(el);
  const [a, b] = [lum(rgb(style.outlineColor)), lum(rgb(bg))];
  return { width: style.outlineWidth, style: style.outlineStyle,
           ratio: (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05) };
}
"""


async def test_the_keyboard_focus_ring_stands_out_from_the_page(
    tab: Tab, org: OrgHandle, people: dict[str, Any]
) -> None:
    """The ring was a 3 px yellow line, 1.6:1 against white: hard to see on radios,
    links and text fields (and text areas had none of their own)."""
    await sign_in_with_password(tab, org, people["member"]["email"])
    await tab.page.goto(f"{tab.base_url}/account/privacy-requests")
    for field in ("input[type=radio]", "textarea", "button[type=submit]"):
        element = tab.page.locator(f"main {field}").first
        await element.focus()
        await tab.page.keyboard.press("Shift+Tab")
        await tab.page.keyboard.press("Tab")  # focus from the keyboard: :focus-visible
        ring = await element.evaluate(FOCUS_CONTRAST)
        assert ring["style"] != "none" and ring["width"] != "0px", (field, ring)
        assert ring["ratio"] >= 3, (field, ring)


async def test_a_date_field_shows_the_ring_on_each_of_its_parts(
    tab: Tab, org: OrgHandle, people: dict[str, Any]
) -> None:
    """Tabbing through a date field reaches its calendar button, inside the field: the
    ring went when it got there (:focus-visible is not set on the field then)."""
    await sign_in_with_password(tab, org, people["owner"]["email"])
    await tab.page.goto(f"{tab.base_url}/console/audit")
    since = tab.page.locator("#since")
    await tab.page.locator("#target_id").focus()
    seen = []
    for _ in range(6):  # month, day, year, the calendar button
        await tab.page.keyboard.press("Tab")
        if not await since.evaluate("(el) => el === document.activeElement"):
            break
        ring = await since.evaluate(FOCUS_CONTRAST)
        seen.append(ring)
    assert len(seen) == 4, seen
    assert all(r["style"] != "none" and r["ratio"] >= 3 for r in seen), seen
