"""Pages on a phone (375 px) and with words longer than the window: nothing widens the
page beyond the screen, so nobody scrolls the whole page sideways to read one column."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import OrgHandle, make_member
from tests.web.browser import OpenTab, sign_in_with_password
from tests.web.flows import PASSWORD, set_local_sign_in, set_password

pytestmark = [pytest.mark.browser]

WIDE = "Zoë-" + "Longname" * 24  # 196 characters and no space to break at

PAGE_WIDTH = "document.documentElement.scrollWidth"
#: The elements that reach past the window, for the failure message.
WIDEST = """[...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
  .slice(-5).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))"""


async def test_console_and_account_pages_fit_a_phone_and_long_names_wrap(
    org: OrgHandle, tabs: OpenTab, tmp_path: Path
) -> None:
    await set_local_sign_in(org.id, True)
    owner = await make_member(org, name="Olga Owner", roles=["owner"])
    await set_password(org.id, owner["id"], PASSWORD)
    for i in range(5):
        await make_member(org, name=f"Member {i} {WIDE[:40]}")
    tab = await tabs()
    page = tab.page
    await sign_in_with_password(tab, org, owner["email"])
    await page.wait_for_url(f"{tab.base_url}/console")

    # A name with no place to break, in the banner that says it was saved (1,366 px wide).
    await page.goto(f"{tab.base_url}/console/groups")
    await page.get_by_label("New group").fill(WIDE)
    await page.get_by_role("button", name="Create", exact=True).click()
    await page.wait_for_load_state("load")
    await page.screenshot(path=str(tmp_path / "long-name.png"), full_page=True)
    assert WIDE in (await page.get_by_role("status").text_content() or "")
    assert await page.evaluate(PAGE_WIDTH) <= 1366, await page.evaluate(WIDEST)

    await page.set_viewport_size({"width": 375, "height": 800})
    for path in ("/console/members", "/console", "/console/audit", "/account"):
        await page.goto(f"{tab.base_url}{path}")
        await page.wait_for_load_state("load")
        await page.screenshot(path=str(tmp_path / f"narrow{path.replace('/', '-')}.png"))
        width = await page.evaluate(PAGE_WIDTH)
        wide = await page.evaluate(WIDEST)
        assert width <= 375, f"{path} is {width} px wide on a 375 px screen: {wide}"
