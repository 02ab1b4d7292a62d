"""A scheduled policy change end to end: the decision API lists it as upcoming and applies it
at its date with nothing run; the members it affects (and only they) are emailed once, by a
real SMTP server, within the organisation's notice window; ``policy.changed`` fires once
when it comes into force, also after a worker that was down; calling it off (or moving it)
tells exactly those already told. The sweep's clock is given (``now=``)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from tenants.ids import OrgId
from tenants.policy import schedule
from tests.app.test_decisions import ADS, set_rule, settings_of
from tests.conftest import OrgHandle, make_group, make_member, make_unit
from tests.requests.support import mails, run_jobs
from tests.support.smtp_server import mail_to, smtp_server
from tests.web.flows import audit_events


async def policy_events(conn: asyncpg.Connection, org: OrgHandle) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT payload FROM outbox_events WHERE tenant_id = $1 AND topic = 'policy.changed' "
        "ORDER BY created_at, id",
        org.id,
    )
    return [json.loads(r["payload"]) for r in rows]


async def audit_actions(conn: asyncpg.Connection, org: OrgHandle, action: str) -> list[Any]:
    return await audit_events(conn, OrgId(org.id), action)


async def sales_team(org: OrgHandle) -> dict[str, Any]:
    """Sales with Ana (no choice), Ben (chose ads on) and Eve (already locked off by a
    group), an invited member of Sales, and Cy in Support."""
    sales = await make_unit(org, "Sales")
    support = await make_unit(org, "Support")
    audit_group = await make_group(org, priority=5)
    ana = await make_member(org, unit=sales["id"], name="Ana Sales")
    ben = await make_member(org, unit=sales["id"], name="Ben Sales")
    eve = await make_member(org, unit=sales["id"], name="Eve Sales")
    dee = await make_member(org, unit=sales["id"], name="Dee Invited", status="invited")
    cy = await make_member(org, unit=support["id"], name="Cy Support")
    chosen = await org.post(f"/v1/members/{ben['id']}/choices", json={"setting": ADS, "value": True})
    assert chosen.status_code == 200
    added = await org.put(f"/v1/groups/{audit_group['id']}/members/{eve['id']}")
    assert added.status_code == 204, added.text
    await set_rule(org, "group", audit_group["id"], False, enforced=True, reason="Audit group")
    return {"sales": sales, "support": support, "ana": ana, "ben": ben, "eve": eve, "dee": dee,
            "cy": cy}


async def test_notice_goes_once_to_exactly_the_affected_members_and_the_change_lands_at_its_date(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    team = await sales_team(org)
    now = datetime.now(UTC)
    at = (now + timedelta(days=10)).replace(microsecond=0)
    rule = await set_rule(org, "unit", team["sales"]["id"], False, enforced=True,
                          reason="No ads while the audit runs", effective_from=at.isoformat())
    events_before = len(await policy_events(owner_conn, org))

    # The decision API: today's value, and the change coming for Ben and Ana, not Cy or Eve.
    ben = (await settings_of(org, team["ben"]["id"])).json()["settings"][ADS]
    assert (ben["value"], ben["locked"]) == (True, False)
    assert ben["upcoming"] == [{"value": False, "locked": True, "effective_at": at.isoformat(),
                                "reason": "No ads while the audit runs"}]
    ana = (await settings_of(org, team["ana"]["id"])).json()["settings"][ADS]
    assert (ana["value"], ana["locked"], len(ana["upcoming"])) == (False, False, 1)
    for quiet in ("cy", "eve"):
        assert (await settings_of(org, team[quiet]["id"])).json()["settings"][ADS]["upcoming"] == []

    # Outside the notice window (7 days by default): nobody is told yet.
    assert await schedule.sweep_policy_schedule(now=now) == 0
    assert await mails(owner_conn, org, "policy_change_notice") == []
    # Within it: Ana and Ben are told, once, what changes for them.
    await schedule.sweep_policy_schedule(now=at - timedelta(days=6))
    await schedule.sweep_policy_schedule(now=at - timedelta(days=5))
    async with smtp_server() as (server, port):
        with mail_to(port):
            await run_jobs()
    notices = [d for d in server.delivered if "Coming changes" in str(d.message["Subject"])]
    assert sorted(r for d in notices for r in d.rcpt_tos) == sorted(
        [team["ana"]["email"], team["ben"]["email"]]
    )
    text = {d.rcpt_tos[0]: d.part("plain") for d in notices}
    when = at.strftime("%Y-%m-%d %H:%M UTC")
    assert (f"From {when}, Use of data to improve products: on -> off, locked (No ads while the audit runs)"
            in text[team["ben"]["email"]])
    assert (f"From {when}, Use of data to improve products: off -> off, locked (No ads while the audit runs)"
            in text[team["ana"]["email"]])
    assert "Hello Ben Sales," in text[team["ben"]["email"]]
    told = await owner_conn.fetch(
        "SELECT member_id::text AS m FROM policy_change_notices WHERE tenant_id = $1", org.id)
    assert sorted(r["m"] for r in told) == sorted([team["ana"]["id"], team["ben"]["id"]])
    [noticed] = await audit_actions(owner_conn, org, "policy.change_noticed")
    assert noticed.after["members_told"] == 2
    # Nothing is announced to products before its time.
    assert len(await policy_events(owner_conn, org)) == events_before

    # At its time: announced once, whatever the number of sweeps.
    await schedule.sweep_policy_schedule(now=at + timedelta(seconds=1))
    await schedule.sweep_policy_schedule(now=at + timedelta(minutes=5))
    events = await policy_events(owner_conn, org)
    assert len(events) == events_before + 1
    assert "scheduled change in force: " + ADS in events[-1]["summary"]
    [in_force] = await audit_actions(owner_conn, org, "policy.rule_in_force")
    assert str(in_force.target_id) == rule["id"]
    assert len(await mails(owner_conn, org, "policy_change_notice")) == 2


async def test_the_decision_api_applies_a_change_at_its_time_with_nothing_run(
    org: OrgHandle,
) -> None:
    """The cached answer expires at the effective time: no sweep, no job, no notification."""
    sales = await make_unit(org, "Sales")
    ana = await make_member(org, unit=sales["id"])
    await set_rule(org, "unit", sales["id"], True, reason="Ads on for all")
    at = datetime.now(UTC) + timedelta(seconds=2)
    # A scheduled change of the rule in force: Sales keeps ads on until then.
    rule = await set_rule(org, "unit", sales["id"], False, enforced=True, setting=ADS,
                          reason="Company-wide: no ads", effective_from=at.isoformat())
    assert rule["replaces"] == {"value": True, "enforced": False, "reason": "Ads on for all"}
    before = await settings_of(org, ana["id"])
    ads = before.json()["settings"][ADS]
    assert (ads["value"], ads["locked"], ads["reason"]) == (True, False, "Ads on for all")
    assert [(u["value"], u["locked"]) for u in ads["upcoming"]] == [(False, True)]
    # Answered again from the cache meanwhile.
    assert (await settings_of(org, ana["id"], **{"If-None-Match": before.headers["etag"]})
            ).status_code == 304
    await asyncio.sleep(max(0.0, (at - datetime.now(UTC)).total_seconds()) + 0.2)
    after = await settings_of(org, ana["id"], **{"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200
    ads = after.json()["settings"][ADS]
    assert (ads["value"], ads["locked"], ads["reason"]) == (False, True, "Company-wide: no ads")
    assert ads["upcoming"] == []
    # Once announced, what it replaced is history.
    await schedule.sweep_policy_schedule(now=datetime.now(UTC))
    [stored] = (await org.get(f"/v1/policy/rules?target_id={sales['id']}")).json()["items"]
    assert stored["replaces"] is None and stored["value"] is False


async def test_a_lifted_lock_is_noticed_with_the_rules_reason_and_the_choice_comes_back(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    """The answer after a lock is lifted is the member's own choice (no rule of its own):
    the member is still told, with the reason of the rule that lifts it."""
    team = await sales_team(org)
    await set_rule(org, "unit", team["sales"]["id"], False, enforced=True, reason="Audit")
    at = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    await set_rule(org, "unit", team["sales"]["id"], False, reason="Audit over: yours again",
                   effective_from=at.isoformat())
    ben = (await settings_of(org, team["ben"]["id"])).json()["settings"][ADS]
    assert (ben["value"], ben["locked"], ben["hidden_choice"]) == (False, True, True)
    assert [(u["value"], u["locked"], u["reason"]) for u in ben["upcoming"]] == [
        (True, False, "Audit over: yours again")]
    await schedule.sweep_policy_schedule(now=datetime.now(UTC))
    notices = await mails(owner_conn, org, "policy_change_notice")
    assert sorted(m["recipients"][0] for m in notices) == sorted(
        [team["ana"]["email"], team["ben"]["email"]])
    ben_text = next(m["text"] for m in notices if m["recipients"] == [team["ben"]["email"]])
    assert "Use of data to improve products: off, locked -> on (Audit over: yours again)" in ben_text


async def test_cancelling_or_moving_a_noticed_change_tells_exactly_those_told(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    team = await sales_team(org)
    now = datetime.now(UTC)
    at = (now + timedelta(days=3)).replace(microsecond=0)
    rule = await set_rule(org, "unit", team["sales"]["id"], False, enforced=True,
                          reason="Audit", effective_from=at.isoformat())
    other = await set_rule(org, "unit", team["support"]["id"], True, enforced=True,
                           reason="Support shows partner ads", effective_from=at.isoformat())
    await schedule.sweep_policy_schedule(now=now)
    assert len(await mails(owner_conn, org, "policy_change_notice")) == 3  # Ana, Ben, Cy

    # Moving the Sales change: Ana and Ben hear it moved, and are noticed again in time.
    later = (now + timedelta(days=20)).replace(microsecond=0)
    await set_rule(org, "unit", team["sales"]["id"], False, enforced=True, reason="Audit",
                   effective_from=later.isoformat())
    moved = await mails(owner_conn, org, "policy_change_cancelled")
    assert sorted(m["recipients"][0] for m in moved) == sorted(
        [team["ana"]["email"], team["ben"]["email"]])
    assert f"now takes effect from {later.strftime('%Y-%m-%d %H:%M UTC')}" in moved[0]["text"]
    await schedule.sweep_policy_schedule(now=later - timedelta(days=6))
    assert len(await mails(owner_conn, org, "policy_change_notice")) == 5

    # Deleting the Support change before its date: Cy alone hears it is off.
    deleted = await org.delete(f"/v1/policy/rules/{other['id']}")
    assert deleted.status_code == 204
    cancelled = await mails(owner_conn, org, "policy_change_cancelled")
    assert [m["recipients"] for m in cancelled[2:]] == [[team["cy"]["email"]]]
    assert "will not happen." in cancelled[2]["text"]
    audited = await audit_actions(owner_conn, org, "policy.change_cancelled")
    assert sorted(str(a.target_id) for a in audited) == sorted([rule["id"], other["id"]])
    open_notices = await owner_conn.fetchval(
        "SELECT count(*) FROM policy_change_notices WHERE tenant_id = $1 AND cancelled_at IS NULL",
        org.id)
    assert open_notices == 2  # Ana and Ben, for the new date

    # A new reason alone is no cancellation.
    await set_rule(org, "unit", team["sales"]["id"], False, enforced=True, reason="Audit 2027",
                   effective_from=later.isoformat())
    assert len(await mails(owner_conn, org, "policy_change_cancelled")) == 3


async def test_a_worker_down_at_the_time_still_notices_and_announces_once_it_is_back(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    team = await sales_team(org)
    now = datetime.now(UTC)
    at = now + timedelta(days=1)
    await set_rule(org, "unit", team["sales"]["id"], False, enforced=True, reason="Audit",
                   effective_from=at.isoformat())
    events_before = len(await policy_events(owner_conn, org))
    # The first sweep after the effective time: both due, each done once.
    assert await schedule.due_organisations(at + timedelta(days=2)) == [OrgId(org.id)]
    await schedule.sweep_policy_schedule(now=at + timedelta(days=2))
    await schedule.sweep_policy_schedule(now=at + timedelta(days=3))
    assert await schedule.due_organisations(at + timedelta(days=3)) == []
    assert sorted(m["recipients"][0] for m in await mails(owner_conn, org, "policy_change_notice")
                  ) == sorted([team["ana"]["email"], team["ben"]["email"]])
    assert len(await policy_events(owner_conn, org)) == events_before + 1


async def test_the_days_of_notice_are_the_organisations_and_checked(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    team = await sales_team(org)
    now = datetime.now(UTC)
    await set_rule(org, "unit", team["sales"]["id"], False, enforced=True, reason="Audit",
                   effective_from=(now + timedelta(days=10)).isoformat())
    await schedule.sweep_policy_schedule(now=now)
    assert await mails(owner_conn, org, "policy_change_notice") == []
    refused = await org.patch("/v1/organisation", {"policy_notice_days": 91})
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "policy_notice_days" in refused.text
    changed = await org.patch("/v1/organisation", {"policy_notice_days": 14})
    assert changed.status_code == 200 and changed.json()["policy_notice_days"] == 14
    await schedule.sweep_policy_schedule(now=now)
    assert len(await mails(owner_conn, org, "policy_change_notice")) == 2


async def test_an_effective_date_that_is_not_a_date_or_has_no_zone_is_refused_naming_it(
    org: OrgHandle,
) -> None:
    unit = await make_unit(org)
    for bad in ("next tuesday", "2030-01-01T09:00:00", "2030-13-01T00:00:00Z"):
        response = await org.put("/v1/policy/rules", json={
            "target_kind": "unit", "target_id": unit["id"], "setting": ADS, "value": False,
            "effective_from": bad})
        assert response.status_code == 422, bad
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "effective_from" in response.text, bad
    # A date in the past is a change that applies at once (and is announced at once): the
    # rule is in force from now, not "since" a date it never had.
    past = await org.put("/v1/policy/rules", json={
        "target_kind": "unit", "target_id": unit["id"], "setting": ADS, "value": True,
        "effective_from": "2020-01-01T00:00:00Z"})
    assert past.status_code == 200
    assert past.json()["effective_from"] is None
