"""A departure from start to purge on the real database, through the API and the worker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

from tests.conftest import OrgHandle, make_member, make_product
from tests.departures.support import make_items, run_jobs, start

PAST_RETENTION = timedelta(days=400)


async def statuses(conn: asyncpg.Connection, member_id: str) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT status, count(*) AS n FROM content_items WHERE member_id = $1 GROUP BY status",
        __import__("uuid").UUID(member_id),
    )
    return {r["status"]: r["n"] for r in rows}


async def test_a_departure_runs_from_notice_to_purge_and_every_step_is_audited(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    boss = await make_member(org, name="Bo Boss")
    leaver = await make_member(org, name="Lea Leaver", manager_id=boss["id"])
    drive, mail = await make_product(org), await make_product(org)
    await org.put(
        "/v1/departure-policy",
        json={
            "product_actions": {mail["id"]: "delete"},
            "retention_days": 30,
        },
    )
    await make_items(org, leaver["id"], drive["id"], 30)
    await make_items(org, leaver["id"], mail["id"], 20)
    await make_items(org, leaver["id"], mail["id"], 5, legal_hold=True)
    await make_items(org, leaver["id"], drive["id"], 4, kind="personal")

    preview = await org.post(
        f"/v1/members/{leaver['id']}/departure-preview",
        {"last_day": datetime.now(UTC).date().isoformat()},
    )
    assert preview.status_code == 200, preview.text
    plan = preview.json()
    assert plan["successor_id"] == boss["id"] and plan["successor_source"] == "manager"
    assert plan["total"]["count"] == 59
    assert plan["by_action"]["transfer"]["count"] == 30
    assert plan["by_action"]["delete_after_retention"]["count"] == 20
    assert plan["held"]["count"] == 5
    assert plan["by_action"]["export_then_delete"]["count"] == 4

    departure = await start(org, leaver["id"], reason="moving on")
    assert [s["status"] for s in departure["steps"]] == ["done", "pending", "pending", "pending"]
    member = (await org.get(f"/v1/members/{leaver['id']}")).json()
    assert member["status"] == "departing"
    notice = await owner_conn.fetchrow(
        "SELECT recipients, subject FROM mail_messages WHERE template = 'departure_notice'"
    )
    assert notice is not None and leaver["email"] in notice["recipients"]

    await run_jobs()  # nothing is due before the end of the last day
    assert (await org.get(f"/v1/members/{leaver['id']}")).json()["status"] == "departing"

    await run_jobs(ahead=timedelta(days=2))
    member = (await org.get(f"/v1/members/{leaver['id']}")).json()
    assert member["status"] == "departed"
    got = (await org.get(f"/v1/departures/{departure['id']}")).json()
    assert [s["status"] for s in got["steps"]] == ["done", "done", "done", "pending"]
    transfer = got["steps"][2]
    assert transfer["done"] == transfer["total"] == 59
    assert await statuses(owner_conn, leaver["id"]) == {
        "pending_deletion": 20,
        "archived": 5,
        "access_ended": 4,
    }
    assert await statuses(owner_conn, boss["id"]) == {"active": 30}

    await run_jobs(ahead=PAST_RETENTION)
    got = (await org.get(f"/v1/departures/{departure['id']}")).json()
    assert got["status"] == "completed"
    assert await statuses(owner_conn, leaver["id"]) == {"archived": 5}
    member = (await org.get(f"/v1/members/{leaver['id']}")).json()
    assert member["status"] == "purged"
    assert member["name"] == "erased member" and member["email"].endswith("@invalid")

    actions = [
        r["action"]
        for r in await owner_conn.fetch(
            "SELECT action FROM audit_events WHERE target_id = $1 ORDER BY id", departure["id"]
        )
    ]
    assert actions == [
        "departure.started",
        "departure.suspend.done",
        "departure.transfer.done",
        "departure.purge.done",
    ]


async def test_starting_a_departure_for_a_member_who_is_not_active_is_a_conflict(
    org: OrgHandle,
) -> None:
    invited = await make_member(org, status="invited")
    response = await org.post(
        "/v1/departures",
        {"member_id": invited["id"], "last_day": datetime.now(UTC).date().isoformat()},
    )
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert "begin_departure" not in response.json()["allowed_actions"]


async def test_an_unknown_member_or_a_past_last_day_is_refused_naming_the_field(
    org: OrgHandle,
) -> None:
    response = await org.post(
        "/v1/departures",
        {
            "member_id": "00000000-0000-4000-8000-000000000000",
            "last_day": datetime.now(UTC).date().isoformat(),
        },
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "member_id"
    member = await make_member(org)
    response = await org.post(
        "/v1/departures", {"member_id": member["id"], "last_day": "2020-01-01"}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "last_day"
    assert (await org.get(f"/v1/members/{member['id']}")).json()["status"] == "active"


async def test_a_last_day_beyond_ten_years_is_refused_naming_the_field_in_preview_and_start(
    org: OrgHandle,
) -> None:
    """9999-12-31 once reached the planner, whose schedule (the day after, plus the
    retention) is not a representable date: a 500 instead of the field's error."""
    member = await make_member(org)
    today = datetime.now(UTC).date()
    latest = today + timedelta(days=3650)
    for last_day in ("9999-12-31", "9999-12-30", (latest + timedelta(days=1)).isoformat()):
        preview = await org.post(
            f"/v1/members/{member['id']}/departure-preview", {"last_day": last_day}
        )
        assert preview.status_code == 422, preview.text
        assert preview.json()["errors"] == [
            {"field": "last_day", "reason": f"must be {latest.isoformat()} or earlier"}
        ]
        started = await org.post(
            "/v1/departures", {"member_id": member["id"], "last_day": last_day}
        )
        assert started.status_code == 422, started.text
        assert started.json()["errors"][0]["field"] == "last_day"
    assert (await org.get(f"/v1/members/{member['id']}")).json()["status"] == "active"
    assert (await org.get("/v1/departures")).json()["items"] == []
    # The latest day allowed previews (a past one too: a preview only shows the plan).
    for last_day in (latest, today - timedelta(days=1)):
        preview = await org.post(
            f"/v1/members/{member['id']}/departure-preview", {"last_day": last_day.isoformat()}
        )
        assert preview.status_code == 200, preview.text


async def test_reinstatement_before_purge_returns_the_items_and_cancels_the_rest(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    boss = await make_member(org)
    leaver = await make_member(org, manager_id=boss["id"])
    drive = await make_product(org)
    await make_items(org, leaver["id"], drive["id"], 12)
    await make_items(org, leaver["id"], drive["id"], 3, kind="personal")
    departure = await start(org, leaver["id"])
    await run_jobs(ahead=timedelta(days=2))
    assert await statuses(owner_conn, boss["id"]) == {"active": 12}

    response = await org.post(f"/v1/departures/{departure['id']}/reinstate", {"reason": "stays"})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert [s["status"] for s in response.json()["steps"]][-1] == "skipped"
    assert (await org.get(f"/v1/members/{leaver['id']}")).json()["status"] == "active"
    assert await statuses(owner_conn, leaver["id"]) == {"active": 15}
    assert await statuses(owner_conn, boss["id"]) == {}
    await run_jobs(ahead=PAST_RETENTION)
    assert await statuses(owner_conn, leaver["id"]) == {"active": 15}
    again = await org.post(f"/v1/departures/{departure['id']}/reinstate", {})
    assert again.status_code == 409


async def test_a_departure_policy_naming_an_unknown_product_is_refused(org: OrgHandle) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    response = await org.put("/v1/departure-policy", json={"product_actions": {unknown: "delete"}})
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": f"product_actions.{unknown}", "reason": "no such product"}
    ]
    assert (await org.get("/v1/departure-policy")).json()["product_actions"] == {}


async def test_a_departure_policy_naming_an_unknown_fallback_successor_is_refused(
    org: OrgHandle,
) -> None:
    response = await org.put(
        "/v1/departure-policy",
        json={
            "fallback_successor_id": "00000000-0000-4000-8000-000000000001",
        },
    )
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"fallback_successor_id"}
    assert (await org.get("/v1/departure-policy")).json()["fallback_successor_id"] is None


async def test_a_departure_policy_with_a_negative_retention_is_refused(org: OrgHandle) -> None:
    response = await org.put("/v1/departure-policy", json={"retention_days": -1})
    assert response.status_code == 422
    assert (await org.get("/v1/departure-policy")).json()["retention_days"] == 30


async def test_a_departure_cannot_be_begun_without_its_plan_and_reinstating_cancels_it(
    org: OrgHandle,
) -> None:
    member = await make_member(org)
    response = await org.post(
        f"/v1/members/{member['id']}/transitions", {"action": "begin_departure"}
    )
    assert response.status_code == 409
    assert "/v1/departures" in response.json()["detail"]
    assert (await org.get(f"/v1/members/{member['id']}")).json()["status"] == "active"

    departure = await start(org, member["id"])
    response = await org.post(f"/v1/members/{member['id']}/transitions", {"action": "reinstate"})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "active"
    got = (await org.get(f"/v1/departures/{departure['id']}")).json()
    assert got["status"] == "cancelled"
