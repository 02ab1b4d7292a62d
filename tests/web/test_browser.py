"""Real Chromium (Playwright) against the live server and the real test OpenID provider: the
sign-in a person actually goes through, typing into the provider's own login form.

Each test saves a screenshot of the page it lands on under its tmp_path, and fails on any
Content-Security-Policy complaint the browser logs for the app's pages.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import expect

from tests.support.oidc_provider import OidcAccount, RunningProvider
from tests.web.browser import Tab
from tests.web.conftest import ADA, BEA, MAX, SsoWorld

pytestmark = [pytest.mark.browser, pytest.mark.oidc]


async def sign_in_at_the_provider(tab: Tab, person: OidcAccount) -> None:
    """From the app's front door through the provider's login form, as a person would."""
    page = tab.page
    await page.goto(f"{tab.base_url}/")
    await page.wait_for_url(f"{tab.base_url}/login")
    await page.get_by_label("Work or school email").fill(person.email)
    await page.get_by_role("button", name="Continue").click()
    await page.get_by_role("button", name="Continue with Alpha's sign-in").click()
    # Now at the identity provider, on its own login page.
    await page.locator("input[name=login]").fill(person.sub)
    await page.locator("input[name=password]").fill("any-password")
    await page.locator("button[type=submit]").click()


async def test_admin_signs_in_through_the_provider_and_sees_only_their_organisations_members(
    world: SsoWorld,
    tab: Tab,
    tmp_path: Path,
) -> None:
    await sign_in_at_the_provider(tab, ADA)
    await tab.land("/console", tmp_path, "admin-console")
    page = tab.page
    await expect(page.get_by_role("heading", level=1)).to_have_text("Alpha")
    await page.get_by_role("navigation", name="Console").get_by_role("link", name="Members").click()
    await tab.land("/console/members", tmp_path, "admin-members")
    table = page.get_by_role("table")
    await expect(table.get_by_role("link", name=ADA.name)).to_be_visible()
    await expect(table.get_by_role("link", name=MAX.name)).to_be_visible()
    await expect(table).not_to_contain_text(BEA.email)
    await expect(table).not_to_contain_text(BEA.name)
    await expect(table.locator("tbody tr")).to_have_count(2)


async def test_member_signs_in_and_reaches_their_account_page(
    world: SsoWorld, tab: Tab, tmp_path: Path
) -> None:
    await sign_in_at_the_provider(tab, MAX)
    await tab.land("/account", tmp_path, "member-account")
    await expect(tab.page.get_by_role("heading", level=1)).to_have_text(
        "This account is managed by Alpha"
    )
    await expect(tab.page.get_by_text(f"Signed in as {MAX.email}")).to_be_visible()


async def test_sign_out_returns_to_the_login_page(
    world: SsoWorld, tab: Tab, tmp_path: Path
) -> None:
    await sign_in_at_the_provider(tab, ADA)
    await tab.land("/console", tmp_path, "before-sign-out")
    await tab.page.get_by_role("button", name="Sign out").click()
    await tab.land("/login?signed_out=1", tmp_path, "signed-out")
    await expect(tab.page.get_by_role("status")).to_have_text("You are signed out.")
    await tab.page.goto(f"{tab.base_url}/console")
    await tab.page.wait_for_url(f"{tab.base_url}/login?next=/console")


async def test_suspended_member_is_refused_with_a_visible_message(
    world: SsoWorld, tab: Tab, tmp_path: Path
) -> None:
    response = await world.alpha.post(
        f"/v1/members/{world.max['id']}/transitions", {"action": "suspend"}
    )
    assert response.status_code == 200, response.text
    await sign_in_at_the_provider(tab, MAX)
    await tab.land(r"^/oidc/alpha/callback\?.*", tmp_path, "suspended-refused")
    page = tab.page
    await expect(page.get_by_role("heading", level=1)).to_have_text("You cannot sign in")
    await expect(page.get_by_text("your account is suspended; it cannot sign in")).to_be_visible()
    await expect(page.get_by_role("link", name="Try again")).to_be_visible()


async def test_signing_out_at_the_provider_works_in_a_browser_and_the_next_person_is_asked(
    world: SsoWorld, tab: Tab, tmp_path: Path, idp: RunningProvider
) -> None:
    """Sign-out at the provider was a redirect answering the sign-out form, which every
    page's CSP (form-action 'self') let the browser refuse: it stayed on the page showing
    the member's data, and the provider's session stayed open (httpx, which knows no
    CSP, had passed it)."""
    await world.use_issuer(world.alpha, idp, sign_out_at_provider=True)
    await sign_in_at_the_provider(tab, MAX)
    await tab.land("/account", tmp_path, "before-sign-out")
    page = tab.page
    await page.get_by_role("button", name="Sign out").click()
    # The provider asks to confirm (oidc-provider's own page), then sends the browser back.
    await page.wait_for_url(f"{idp.issuer}/**")
    await page.locator("button[autofocus], button[type=submit]").first.click()
    await tab.land(f"/login/{world.alpha.slug}?signed_out=both", tmp_path, "signed-out-both")
    await expect(page.get_by_role("status")).to_contain_text(
        "You are signed out of Tenantry and of Alpha's sign-in."
    )
    # The next person here is asked who they are, and is not offered the last address.
    await page.get_by_role("button", name="Continue with Alpha's sign-in").click()
    await expect(page.locator("input[name=login]")).to_be_visible()
    await page.goto(f"{tab.base_url}/login/{world.alpha.slug}")
    assert MAX.email not in await page.content()
