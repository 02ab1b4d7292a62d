"""A change of a member's groups that changes their settings is shown before (console) and
told after (email, audit event), whichever way it comes: the API, SCIM or the console. A
change of a group without rules, or of a member who is not active, tells no one."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg

from tests.conftest import OrgHandle, make_group, make_member, row_counts
from tests.web.flows import PASSWORD, asgi_client, set_local_sign_in, set_password, text_of

ADS = "improvement.use_data"


async def lock_ads_on(org: OrgHandle, group: dict[str, Any]) -> None:
    response = await org.put(
        "/v1/policy/rules",
        json={"target_kind": "group", "target_id": group["id"], "setting": ADS, "value": True,
              "enforced": True, "reason": "the pilot group tries ads"},
    )  # fmt: skip
    assert response.status_code == 200, response.text


async def notices(conn: asyncpg.Connection, org: OrgHandle) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            "SELECT recipients, subject, text FROM mail_messages WHERE tenant_id = $1 "
            "AND template = 'member_groups_changed' ORDER BY created_at",
            org.id,
        )
    )


async def test_joining_and_leaving_a_ruled_group_through_the_api_tells_the_member(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    pilot = await make_group(org, name="Pilot")
    plain = await make_group(org, name="Plain")
    await lock_ads_on(org, pilot)
    mia = await make_member(org, name="Mia Member")
    invited = await make_member(org, name="Ivo Invited", status="invited")
    for group in (pilot, plain):
        for who in (mia, invited):
            added = await org.put(f"/v1/groups/{group['id']}/members/{who['id']}")
            assert added.status_code in (200, 204), added.text
    told = await notices(owner_conn, org)
    assert len(told) == 1  # the plain group changes nothing; the invited member is not told
    assert json.loads(told[0]["recipients"]) == [mia["email"]]
    assert "added you to the group Pilot" in told[0]["text"]
    assert "Use of data to improve products: off -> on, locked (the pilot group tries ads)" in told[0]["text"]
    event = await owner_conn.fetchrow(
        "SELECT after FROM audit_events WHERE tenant_id = $1 AND action = 'group.member_added' "
        "AND target_id = $2 AND after->>'member_id' = $3",
        org.id, pilot["id"], mia["id"],
    )  # fmt: skip
    [recorded] = json.loads(event["after"])["settings"]
    assert (recorded["setting"], recorded["value_after"], recorded["locked_after"]) == (ADS, True, True)

    removed = await org.delete(f"/v1/groups/{pilot['id']}/members/{mia['id']}")
    assert removed.status_code in (200, 204), removed.text
    told = await notices(owner_conn, org)
    assert len(told) == 2
    assert "removed you from the group Pilot" in told[1]["text"]
    assert "Use of data to improve products: on, locked -> off" in told[1]["text"]


async def test_the_console_asks_before_a_group_change_that_changes_settings(
    app: Any, org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    await set_local_sign_in(org.id, True)
    admin = await make_member(org, name="Ada Admin", roles=["admin"])
    await set_password(org.id, admin["id"], PASSWORD)
    pilot = await make_group(org, name="Pilot")
    plain = await make_group(org, name="Plain")
    await lock_ads_on(org, pilot)
    mia = await make_member(org, name="Mia Member")
    async with asgi_client(app) as browser:
        assert (await browser.password_sign_in(org.slug, admin["email"], PASSWORD)).status_code == 303
        csrf = await browser.csrf_of(f"/console/groups/{pilot['id']}")
        before = await row_counts(owner_conn)
        asked = await browser.post(
            f"/console/groups/{pilot['id']}/members", {"csrf": csrf, "member_id": mia["id"]}
        )
        assert asked.status_code == 200, asked.text[:2000]
        shown = text_of(asked.text)
        assert "Add Mia Member?" in shown
        assert "Mia Member joins the group Pilot." in shown
        assert (
            "Use of data to improve products: Off becomes On (locked)."
            " The rule's reason: “the pilot group tries ads”."
        ) in shown
        assert "Mia Member is emailed what changed for them." in shown
        assert await row_counts(owner_conn) == before  # nothing written until confirmed
        done = await browser.post(
            f"/console/groups/{pilot['id']}/members",
            {"csrf": csrf, "member_id": mia["id"], "confirmed": "1"},
        )
        assert done.status_code == 303
        assert await owner_conn.fetchval(
            "SELECT count(*) FROM group_memberships WHERE group_id = $1 AND member_id = $2",
            uuid.UUID(pilot["id"]), uuid.UUID(mia["id"]),
        ) == 1  # fmt: skip
        # A group without rules is added at once, from the member's page too.
        direct = await browser.post(
            f"/console/members/{mia['id']}/groups", {"csrf": csrf, "group_id": plain["id"]}
        )
        assert direct.status_code == 303
        # Leaving the ruled group from the member's page asks first.
        leave = await browser.post(
            f"/console/members/{mia['id']}/groups",
            {"csrf": csrf, "group_id": pilot["id"], "op": "remove"},
        )
        assert leave.status_code == 200 and "Mia Member leaves the group Pilot." in text_of(leave.text)


async def test_a_csv_dry_run_names_the_settings_a_move_changes(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    from tests.conftest import make_unit

    lab = await make_unit(org, "Lab")
    await make_unit(org, "Calm")
    ruled = await org.put(
        "/v1/policy/rules",
        json={"target_kind": "unit", "target_id": lab["id"], "setting": ADS, "value": True,
              "enforced": True, "reason": "the lab tries ads"},
    )  # fmt: skip
    assert ruled.status_code == 200, ruled.text
    mover = await make_member(org, name="Mo Mover")
    calm = await make_member(org, name="Cal Calm")
    before = await row_counts(owner_conn)
    dry = await org.client.post(
        "/v1/members/import",
        content=(
            "email,name,unit,manager_email,roles,status\n"
            f"{mover['email']},Mo Mover,Lab,,,\n"
            f"{calm['email']},Cal Calm,Calm,,,\n"
        ).encode(),
        headers={"content-type": "text/csv", "authorization": f"Bearer {org.token}"},
    )
    assert dry.status_code == 200, dry.text
    details = {line["email"]: line["detail"] for line in dry.json()["lines"]}
    assert details[mover["email"]] == (
        "unit; their settings change: Use of data to improve products: off -> on, locked (the lab tries ads)"
    )
    assert details[calm["email"]] == "unit"  # a unit without rules changes nothing
    assert await row_counts(owner_conn) == before
