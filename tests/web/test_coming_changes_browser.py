"""The issue's "Coming changes" in real Chromium against the live server: an organisation
schedules a lock on the member's unit for a date ahead; the member's account page shows
it in "Coming changes" with the date, the value before and after, and the organisation's
reason, while the setting itself still shows today's value (the change is not in force)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import expect

from tests.app.test_decisions import ADS, set_rule
from tests.conftest import OrgHandle, make_member, make_unit
from tests.web.browser import OpenTab, sign_in_with_password
from tests.web.flows import PASSWORD, set_local_sign_in, set_password
from tests.web.test_console_browser import shots_dir

pytestmark = [pytest.mark.browser]


async def test_the_member_sees_the_coming_change_with_its_date_and_reason(
    org: OrgHandle, tabs: OpenTab, tmp_path: Path
) -> None:
    await set_local_sign_in(org.id, True)
    sales = await make_unit(org, "Sales")
    mia = await make_member(org, unit=sales["id"], name="Mia Member")
    await set_password(org.id, mia["id"], PASSWORD)
    at = (datetime.now(UTC) + timedelta(days=12)).replace(hour=8, minute=0, second=0,
                                                            microsecond=0)
    await set_rule(org, "unit", sales["id"], False, enforced=True, setting=ADS,
                   reason="No personalised ads while the advertising audit runs",
                   effective_from=at.isoformat())
    await set_rule(org, "unit", sales["id"], False, setting="personalisation.recommendations",
                   reason="Recommendations are off by default from the new season",
                   effective_from=(at + timedelta(days=7)).isoformat())

    member = await tabs()
    await sign_in_with_password(member, org, mia["email"])
    await member.land("/account", tmp_path, "01-account")
    coming = member.page.get_by_role("region", name="Coming changes")
    await expect(coming).to_be_visible()
    await expect(coming).to_contain_text("Use of data to improve products")
    await expect(coming).to_contain_text("becomes Off, set by")
    await expect(coming).to_contain_text("No personalised ads while the advertising audit runs")
    await expect(coming).to_contain_text(at.strftime("%Y-%m-%d"))
    await expect(coming).to_contain_text("Recommendations are off by default from the new season")
    # Today the member still decides: the setting is not locked yet, and says what comes.
    settings = member.page.get_by_role("region", name="Your privacy settings")
    await expect(settings).to_contain_text(
        f"Coming change: from {at.strftime('%Y-%m-%d')} 08:00 UTC it becomes Off, set by")
    await coming.screenshot(path=str(shots_dir(tmp_path) / "coming-changes.png"))
