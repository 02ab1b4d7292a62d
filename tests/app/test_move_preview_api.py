"""``POST /v1/members/{id}/move/preview`` on the real database: the settings a move changes
(value and lock), the unit data-access grants it takes the member out of and into, and
nothing written; 404 for a member of another organisation, 422 naming the field."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg

from tenants.permissions import Permission
from tests.conftest import OrgHandle, make_group, make_member, make_org, make_unit, row_counts
from tests.support.access import JUSTIFICATION, decide_as, make_people
from tests.support.api_schema import assert_problem, error_fields

ADS = "improvement.use_data"


async def set_rule(org: OrgHandle, kind: str, target: str, value: Any, enforced: bool) -> None:
    response = await org.put(
        "/v1/policy/rules",
        json={
            "target_kind": kind,
            "target_id": target,
            "setting": ADS,
            "value": value,
            "enforced": enforced,
            "reason": "ads policy",
        },
    )
    assert response.status_code == 200, response.text


async def unit_grant(org: OrgHandle, people: dict[str, Any], unit: dict[str, Any]) -> str:
    created = await org.post(
        "/v1/access/grants",
        {
            "admin_id": people["admin"]["id"],
            "unit_id": unit["id"],
            "categories": ["diagnostic"],
            "justification": JUSTIFICATION,
            "duration_hours": 4,
        },
    )
    assert created.status_code == 201, created.text
    await decide_as(org, people["officer"], uuid.UUID(created.json()["id"]))
    return str(created.json()["id"])


async def test_a_move_lists_the_changed_settings_and_the_unit_grants_crossed(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    people = await make_people(org)
    sales = await make_unit(org, "Sales")
    lab = await make_unit(org, "Lab")
    bench = await make_unit(org, "Bench", parent=uuid.UUID(lab["id"]))
    group = await make_group(org, priority=1)
    member = await make_member(org, unit=bench["id"])
    await set_rule(org, "unit", lab["id"], False, True)
    await set_rule(org, "group", group["id"], True, False)
    on_lab = await unit_grant(org, people, lab)
    on_sales = await unit_grant(org, people, sales)
    on_root = await unit_grant(org, people, {"id": str(org.root_unit_id)})
    before = await row_counts(owner_conn)

    response = await org.post(
        f"/v1/members/{member['id']}/move/preview",
        {"unit_id": sales["id"], "group_ids": [group["id"]]},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["unit_before"], body["unit_after"]) == (bench["id"], sales["id"])
    assert (body["groups_before"], body["groups_after"]) == ([], [group["id"]])
    assert body["settings"] == [
        {
            "setting": ADS,
            "value_before": False,
            "value_after": True,
            "locked_before": True,
            "locked_after": False,
            "source_after": "rule",
            "reason_after": "ads policy",
        }
    ]
    assert [g["grant_id"] for g in body["grants_lost"]] == [on_lab]
    assert [g["grant_id"] for g in body["grants_gained"]] == [on_sales]
    assert on_root not in {g["grant_id"] for g in body["grants_lost"] + body["grants_gained"]}
    assert body["grants_lost"][0]["admin_id"] == people["admin"]["id"]
    assert await row_counts(owner_conn) == before  # nothing written
    shown = (await org.get(f"/v1/members/{member['id']}")).json()
    assert shown["unit_id"] == bench["id"]

    # Grants (some may be under delayed disclosure) only for callers who may read access.
    text = await org.token_with(Permission.MEMBERS_READ)
    limited = await org.client.post(
        f"/v1/members/{member['id']}/move/preview",
        json={"unit_id": sales["id"]},
        headers={"Authorization": f"Bearer {text}"},
    )
    assert limited.status_code == 200, limited.text
    assert limited.json()["grants_lost"] is None and limited.json()["grants_gained"] is None
    assert limited.json()["settings"] != []

    # Staying in the lock's subtree changes nothing; an empty body previews no move.
    for move in ({"unit_id": lab["id"]}, {}):
        same = await org.post(f"/v1/members/{member['id']}/move/preview", move)
        assert same.status_code == 200, same.text
        assert same.json()["settings"] == [] and same.json()["grants_lost"] == []


async def test_unknown_and_foreign_members_are_404_and_bad_input_names_the_field(
    org: OrgHandle,
) -> None:
    member = await make_member(org)
    other = await make_org(org.client)
    foreign = await make_member(other)
    for who in (foreign["id"], str(uuid.uuid4())):
        assert_problem(await org.post(f"/v1/members/{who}/move/preview", {}), 404)
    foreign_unit = str(other.root_unit_id)
    bad = assert_problem(
        await org.post(f"/v1/members/{member['id']}/move/preview", {"unit_id": foreign_unit}), 422
    )
    assert set(error_fields(bad)) == {"unit_id"}
    bad = assert_problem(
        await org.post(
            f"/v1/members/{member['id']}/move/preview", {"group_ids": [str(uuid.uuid4())]}
        ),
        422,
    )
    assert set(error_fields(bad)) == {"group_ids"}
    bad = assert_problem(
        await org.post(f"/v1/members/{member['id']}/move/preview", {"unit_id": "nope"}), 422
    )
    assert "unit_id" in error_fields(bad)


async def test_after_a_move_the_member_is_emailed_what_changed_for_them(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    lab = await make_unit(org, "Lab")
    sales = await make_unit(org, "Sales")
    member = await make_member(org, unit=lab["id"], name="Mia Mover")
    await set_rule(org, "unit", sales["id"], True, True)
    quiet = await make_member(org, unit=lab["id"])
    moved = await org.post(f"/v1/members/{member['id']}/move", {"unit_id": sales["id"]})
    assert moved.status_code == 200, moved.text
    other = await make_unit(org, "Other")
    assert (
        await org.post(f"/v1/members/{quiet['id']}/move", {"unit_id": other["id"]})
    ).status_code == 200
    rows = await owner_conn.fetch(
        "SELECT recipients, subject, text FROM mail_messages WHERE tenant_id = $1 AND template = 'member_moved'",
        org.id,
    )
    assert len(rows) == 1  # the quiet move changed no setting: no email
    assert json.loads(rows[0]["recipients"]) == [member["email"]]
    assert "Your privacy settings at" in rows[0]["subject"]
    assert "moved you to Sales" in rows[0]["text"]
    assert "off -> on, locked (ads policy)" in rows[0]["text"]


async def test_the_account_page_shows_what_a_move_changed_and_only_moves_that_changed_something(
    app: Any, org: OrgHandle
) -> None:
    from tests.web.flows import PASSWORD, asgi_client, set_local_sign_in, set_password, text_of

    await set_local_sign_in(org.id, True)
    lab = await make_unit(org, "Lab")
    sales = await make_unit(org, "Sales")
    other = await make_unit(org, "Other")
    member = await make_member(org, unit=lab["id"], name="Mia Mover")
    await set_password(org.id, member["id"], PASSWORD)
    await set_rule(org, "unit", sales["id"], True, True)
    async with asgi_client(app) as browser:
        assert (
            await browser.password_sign_in(org.slug, member["email"], PASSWORD)
        ).status_code == 303
        assert "What changed when you were moved" not in text_of(
            (await browser.get("/account")).text
        )
        assert (
            await org.post(f"/v1/members/{member['id']}/move", {"unit_id": sales["id"]})
        ).status_code == 200
        text = text_of((await browser.get("/account")).text)
        assert "What changed when you were moved" in text
        assert "moved you to Sales . These settings changed for you:" in text
        assert "Use of data to improve products: off -> on, locked (ads policy)" in text
        # Back to a unit without rules: that move changes the lock back, and is shown first.
        assert (
            await org.post(f"/v1/members/{member['id']}/move", {"unit_id": other["id"]})
        ).status_code == 200
        text = text_of((await browser.get("/account")).text)
        assert text.index("moved you to Other") < text.index("moved you to Sales")
        assert "Use of data to improve products: on, locked -> off" in text
