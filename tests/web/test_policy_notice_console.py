"""The days of notice of scheduled policy changes, in the console's settings: saved and
audited; a value that is not a whole number from 0 to 90 comes back beside its field,
with what was typed, and changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from tenants.ids import OrgId
from tests.conftest import OrgHandle
from tests.web.flows import asgi_client, audit_events, text_of
from tests.web.test_console_directory import follow, signed_in_admin


async def test_an_admin_sets_the_days_of_notice_and_a_bad_value_is_refused_beside_the_field(
    app: Any, org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    async with asgi_client(app) as browser:
        _, csrf = await signed_in_admin(browser, org)
        page = await browser.get("/console/settings")
        assert 'name="policy_notice_days"' in page.text and 'value="7"' in page.text
        for bad in ("ninety", "91", "-1", ""):
            refused = await browser.post(
                "/console/settings/policy-notice",
                {"csrf": csrf, "form": "policy-notice", "policy_notice_days": bad},
            )
            assert refused.status_code == 303
            back = await browser.get(refused.headers["location"])
            assert 'id="policy-notice-policy_notice_days-error"' in back.text, bad
            assert "whole number from 0 to 90" in text_of(back.text)
        saved = await browser.post(
            "/console/settings/policy-notice",
            {"csrf": csrf, "form": "policy-notice", "policy_notice_days": "14"},
        )
        assert "told of scheduled policy changes 14 days before" in await follow(browser, saved)
    days = await owner_conn.fetchval(
        "SELECT policy_notice_days FROM organisations WHERE id = $1", org.id
    )
    assert days == 14
    [event] = await audit_events(owner_conn, OrgId(org.id), "organisation.updated")
    assert event.after == {"policy_notice_days": 14}


async def test_the_policies_page_shows_a_scheduled_change_and_the_rule_in_force_until_then(
    app: Any, org: OrgHandle
) -> None:
    rule = {"target_kind": "unit", "target_id": str(org.root_unit_id),
            "setting": "improvement.use_data", "reason": "Ads policy"}
    assert (await org.put("/v1/policy/rules", json={**rule, "value": True})).status_code == 200
    when = datetime.now(UTC) + timedelta(days=30)
    scheduled = await org.put("/v1/policy/rules", json={
        **rule, "value": False, "enforced": True, "effective_from": when.isoformat()})
    assert scheduled.status_code == 200
    async with asgi_client(app) as browser:
        await signed_in_admin(browser, org)
        page = text_of((await browser.get("/console/policies")).text)
    assert f"scheduled from {when.strftime('%Y-%m-%d')}; until then On" in page
