"""An organisation's days are its own: a member's last day, the day a policy takes effect
and a review's due day end at midnight in the organisation's zone. Read as UTC days, a
Los Angeles member lost sign-in at 4 pm on their last day and an Auckland one kept it 13
hours into the next."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from tenants.organisations import days
from tests.conftest import OrgHandle, make_member, make_unit
from tests.web.flows import (
    PASSWORD,
    asgi_client,
    audit_events,
    set_local_sign_in,
    set_password,
    text_of,
)

ADS = "advertising.personalised_ads"


async def test_the_organisation_s_zone_is_set_checked_and_audited(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    assert (await org.get("/v1/organisation")).json()["time_zone"] == "UTC"
    for wrong in ("right/Europe/Paris", "Mars/Olympus", "../etc/passwd", ""):
        refused = await org.client.patch(
            "/v1/organisation", headers=org.headers, json={"time_zone": wrong}
        )
        assert refused.status_code == 422, (wrong, refused.text)
        assert refused.json()["errors"][0]["field"] == "time_zone"
    changed = await org.client.patch(
        "/v1/organisation", headers=org.headers, json={"time_zone": "America/Los_Angeles"}
    )
    assert changed.status_code == 200 and changed.json()["time_zone"] == "America/Los_Angeles"
    [event] = await audit_events(owner_conn, org.id, "organisation.updated")
    assert event.after == {"time_zone": "America/Los_Angeles"}


async def test_a_last_day_ends_at_midnight_where_the_organisation_is(org: OrgHandle) -> None:
    zone = ZoneInfo("America/Los_Angeles")
    await org.client.patch("/v1/organisation", headers=org.headers, json={"time_zone": zone.key})
    leaver = await make_member(org, name="Lee Leaver")
    last_day = days.today(zone) + timedelta(days=3)
    started = await org.post(
        "/v1/departures", {"member_id": leaver["id"], "last_day": last_day.isoformat()}
    )
    assert started.status_code == 201, started.text
    suspend_at = datetime.fromisoformat(started.json()["suspend_at"])
    assert suspend_at == days.end_of(last_day, zone)
    assert suspend_at.astimezone(zone).time().hour == 0
    assert suspend_at.astimezone(UTC).hour in (7, 8)  # not 00:00 UTC
    # Today there is a last day the organisation may still give, whatever UTC says.
    other = await make_member(org, name="Tod Today")
    preview = await org.post(
        f"/v1/members/{other['id']}/departure-preview", {"last_day": days.today(zone).isoformat()}
    )
    assert preview.status_code == 200, preview.text


async def test_the_console_sets_the_zone_and_dates_policies_by_it(
    app: Any, org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    await set_local_sign_in(org.id, True)
    owner = await make_member(org, name="Olive Owner", roles=["owner"])
    await set_password(org.id, owner["id"], PASSWORD)
    sales = await make_unit(org, "Sales")
    async with asgi_client(app) as browser:
        csrf = await browser.signed_in(org.slug, owner["email"])
        refused = await browser.post(
            "/console/settings/time-zone",
            {"csrf": csrf, "form": "time-zone", "time_zone": "Auckland"},
        )
        page = await browser.get(refused.headers["location"])
        assert 'aria-invalid="true" aria-describedby="time-zone-time_zone-error"' in page.text
        assert "expected an IANA time zone such as Europe/Paris" in text_of(page.text)
        saved = await browser.post(
            "/console/settings/time-zone", {"csrf": csrf, "time_zone": "Pacific/Auckland"}
        )
        assert "The organisation's days are Pacific/Auckland's" in text_of(
            (await browser.get(saved.headers["location"])).text
        )
        day = days.today(ZoneInfo("Pacific/Auckland")) + timedelta(days=12)
        scheduled = await browser.post(
            "/console/policies/rules",
            {
                "csrf": csrf,
                "target": f"unit:{sales['id']}",
                "setting": ADS,
                "value": "false",
                "enforced": "on",
                "reason": "",
                "effective_from": day.isoformat(),
            },
        )
        landing = text_of((await browser.get(scheduled.headers["location"])).text)
        assert f"from {day.isoformat()} (Pacific/Auckland)" in landing
        # Shown as the day the admin named, though it begins the day before in UTC.
        assert f"scheduled from {day.isoformat()}" in landing
        # Another zone: the change keeps its moment, and the admin is told to check it.
        moved = await browser.post(
            "/console/settings/time-zone", {"csrf": csrf, "time_zone": "UTC"}
        )
        assert (
            "Policy changes already scheduled (1) keep their moments, named in"
            " Pacific/Auckland's days" in text_of((await browser.get(moved.headers["location"])).text)
        )
    effective = await owner_conn.fetchval(
        "SELECT effective_from FROM policy_rules WHERE tenant_id = $1 AND setting = $2",
        org.id,
        ADS,
    )
    assert effective == days.start_of(day, ZoneInfo("Pacific/Auckland"))
    assert effective.astimezone(UTC).date() == day - timedelta(days=1)
