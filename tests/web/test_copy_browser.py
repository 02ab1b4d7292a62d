"""Copy buttons in real Chromium: a token shown once is copied whole, from an input (API
tokens) or from the text of a <code> (SCIM tokens), and the copy is announced through a
status region, not only by the button's label."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.conftest import OrgHandle, make_member
from tests.web.browser import OpenTab, sign_in_with_password
from tests.web.flows import PASSWORD, set_local_sign_in, set_password

pytestmark = [pytest.mark.browser]


async def test_tokens_shown_once_are_copied_whole_and_the_copy_is_announced(
    org: OrgHandle, tabs: OpenTab
) -> None:
    await set_local_sign_in(org.id, True)
    owner = await make_member(org, name="Olga Owner", roles=["owner"])
    await set_password(org.id, owner["id"], PASSWORD)
    tab = await tabs()
    page = tab.page
    await page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=tab.base_url)
    await sign_in_with_password(tab, org, owner["email"])
    await page.wait_for_url(f"{tab.base_url}/console")

    await page.goto(f"{tab.base_url}/console/api-tokens/new")
    await page.get_by_label("Name", exact=False).first.fill("Nightly export")
    await page.get_by_label("See members", exact=False).first.check()
    await page.get_by_role("button", name="Create token").click()
    shown = await page.locator("#new-token").input_value()
    assert shown.startswith("tnt_")
    await page.bring_to_front()  # a browser writes the clipboard for the page in front only
    await page.get_by_role("button", name="Copy").click()
    # The status beside the button, so that a refusal shows its own words when this fails.
    await expect(page.locator("button[data-copy] + [role=status]")).to_have_text(
        "Copied to the clipboard"
    )
    assert await page.evaluate("navigator.clipboard.readText()") == shown

    await page.goto(f"{tab.base_url}/console/provisioning")
    await page.get_by_label("Token name", exact=False).fill("Entra")
    await page.get_by_role("button", name="Create a SCIM token").click()
    scim = (await page.locator("#new-scim-token").text_content() or "").strip()
    assert scim.startswith("tnt_")
    await page.bring_to_front()  # a browser writes the clipboard for the page in front only
    await page.get_by_role("button", name="Copy").click()
    await expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert await page.evaluate("navigator.clipboard.readText()") == scim
    assert tab.csp_complaints() == []
