"""Pages on a phone (375 px, and 320 px: WCAG 1.4.10 reflow) and with words longer than the
window: nothing widens the page beyond the screen, so nobody scrolls the whole page
sideways to read one column."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import OrgHandle, make_group, make_member, make_product
from tests.departures.support import make_items, start
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
    members = [await make_member(org, name=f"Member {i} {WIDE[:40]}") for i in range(5)]
    group = await make_group(org)
    drive = await make_product(org, name="Drive")
    await make_items(org, members[0]["id"], drive["id"], 3)
    departure = await start(org, members[0]["id"])
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

    # 320 px: two-column pages fold to one (a 22rem column made them 368 px wide), the
    # departure's breakdowns too (26rem: 453 px), and the role matrix scrolls inside itself.
    await page.set_viewport_size({"width": 320, "height": 800})
    too_wide = {}
    for path in (
        f"/console/members/{members[1]['id']}",
        f"/console/groups/{group['id']}",
        f"/console/departures/{departure['id']}",
        "/console/members/new",
    ):
        await page.goto(f"{tab.base_url}{path}")
        await page.wait_for_load_state("load")
        width = await page.evaluate(PAGE_WIDTH)
        if width > 320:
            too_wide[path] = (width, await page.evaluate(WIDEST))
    assert too_wide == {}, too_wide
