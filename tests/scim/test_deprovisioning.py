"""Deprovisioning follows the organisation's choice, both ways (``active: false`` and
DELETE), and never deletes the member."""

from __future__ import annotations

import pytest

from tenants import db
from tenants.scim import service
from tenants.scim.models import Deprovisioning
from tests.conftest import ACTOR, OrgHandle
from tests.scim.conftest import Scim


async def choose(org: OrgHandle, deprovisioning: Deprovisioning) -> None:
    async with db.tenant_transaction(org.id):
        await service.save_rules(service.Rules(deprovisioning=deprovisioning), actor=ACTOR)


async def status_of(org: OrgHandle, member_id: str) -> str:
    response = await org.get(f"/v1/members/{member_id}")
    assert response.status_code == 200, response.text
    return str(response.json()["status"])


async def departures_of(org: OrgHandle, member_id: str) -> list[dict]:
    async with db.tenant_transaction(org.id):
        return await db.fetch(
            "SELECT status, reason FROM departures WHERE member_id = $1", member_id
        )


@pytest.mark.parametrize("how", ["active_false", "delete"])
async def test_suspend_at_once_suspends_the_member_and_keeps_them(scim: Scim, how: str) -> None:
    user = await scim.create_user("leaver@x.example")
    if how == "delete":
        assert (await scim.delete(f"/Users/{user['id']}")).status_code == 204
        assert (await scim.get(f"/Users/{user['id']}")).status_code == 404
    else:
        response = await scim.patch(
            f"/Users/{user['id']}", {"op": "replace", "path": "active", "value": False}
        )
        assert response.json()["active"] is False
    assert await status_of(scim.org, user["id"]) == "suspended"
    assert await departures_of(scim.org, user["id"]) == []


@pytest.mark.parametrize("how", ["active_false", "delete"])
async def test_departure_mode_starts_a_departure_with_the_default_policy(
    scim: Scim, how: str
) -> None:
    await choose(scim.org, Deprovisioning.DEPARTURE)
    user = await scim.create_user("leaver@x.example")
    if how == "delete":
        assert (await scim.delete(f"/Users/{user['id']}")).status_code == 204
    else:
        response = await scim.patch(
            f"/Users/{user['id']}", {"op": "replace", "path": "active", "value": False}
        )
        assert response.status_code == 200, response.text
        assert response.json()["active"] is False
    assert await status_of(scim.org, user["id"]) == "departing"
    departures = await departures_of(scim.org, user["id"])
    assert [d["status"] for d in departures] == ["running"]
    assert "SCIM" in departures[0]["reason"]


async def test_reactivating_a_departing_user_reinstates_them(scim: Scim) -> None:
    await choose(scim.org, Deprovisioning.DEPARTURE)
    user = await scim.create_user("back@x.example")
    await scim.patch(f"/Users/{user['id']}", {"op": "replace", "path": "active", "value": False})
    response = await scim.patch(
        f"/Users/{user['id']}", {"op": "replace", "path": "active", "value": True}
    )
    assert response.json()["active"] is True
    assert await status_of(scim.org, user["id"]) == "active"
    assert [d["status"] for d in await departures_of(scim.org, user["id"])] != ["running"]


async def test_reactivating_a_suspended_user_reinstates_them(scim: Scim) -> None:
    user = await scim.create_user("s@x.example")
    await scim.patch(f"/Users/{user['id']}", {"op": "replace", "path": "active", "value": False})
    await scim.patch(f"/Users/{user['id']}", {"op": "replace", "path": "active", "value": True})
    assert await status_of(scim.org, user["id"]) == "active"


async def test_a_user_created_inactive_is_invited_and_activated_later(scim: Scim) -> None:
    user = await scim.create_user("later@x.example", active=False)
    assert user["active"] is False
    assert await status_of(scim.org, user["id"]) == "invited"
    await scim.patch(f"/Users/{user['id']}", {"op": "replace", "path": "active", "value": True})
    assert await status_of(scim.org, user["id"]) == "active"


async def test_a_deleted_user_keeps_groups_and_audit_but_leaves_scim(scim: Scim) -> None:
    user = await scim.create_user("g@x.example")
    group = (
        await scim.post("/Groups", {"displayName": "Team", "members": [{"value": user["id"]}]})
    ).json()
    assert (await scim.delete(f"/Users/{user['id']}")).status_code == 204
    assert "members" not in (await scim.get(f"/Groups/{group['id']}")).json()
    listed = (await scim.org.get(f"/v1/groups/{group['id']}/members")).json()
    assert [m["id"] for m in listed["items"]] == [user["id"]]
    events = (await scim.org.get("/v1/audit-events", params={"target_id": user["id"]})).json()
    actions = {e["action"] for e in events["items"]}
    assert {"member.created", "member.suspend", "member.scim_deleted"} <= actions
