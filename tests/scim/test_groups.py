"""SCIM Groups are Tenantry groups: names, external ids and membership."""

from __future__ import annotations

import json

import asyncpg

from tenants import db
from tenants.scim import service
from tests.app.test_group_change_notice import lock_ads_on, notices
from tests.conftest import ACTOR, OrgHandle, make_group
from tests.scim.conftest import GROUP_URN, Scim
from tests.scim.test_users import assert_scim_error


async def test_a_created_group_is_a_tenantry_group_with_its_members(scim: Scim) -> None:
    a = await scim.create_user("a@x.example")
    b = await scim.create_user("b@x.example")
    response = await scim.post(
        "/Groups",
        {
            "schemas": [GROUP_URN],
            "displayName": "Engineers",
            "externalId": "g-1",
            "members": [{"value": a["id"], "display": "A"}, {"value": b["id"]}],
        },
    )
    assert response.status_code == 201, response.text
    group = response.json()
    assert response.headers["Location"] == group["meta"]["location"]
    assert {m["value"] for m in group["members"]} == {a["id"], b["id"]}
    native = (await scim.org.get(f"/v1/groups/{group['id']}")).json()
    assert native["name"] == "Engineers"
    members = (await scim.org.get(f"/v1/groups/{group['id']}/members")).json()["items"]
    assert {m["id"] for m in members} == {a["id"], b["id"]}
    user = (await scim.get(f"/Users/{a['id']}")).json()
    assert user["groups"] == [
        {
            "value": group["id"],
            "$ref": group["meta"]["location"],
            "display": "Engineers",
            "type": "direct",
        }
    ]


async def test_membership_patches_add_and_remove_by_value_filter(scim: Scim) -> None:
    a = await scim.create_user("a@x.example")
    b = await scim.create_user("b@x.example")
    group = (await scim.post("/Groups", {"displayName": "G"})).json()
    path = f"/Groups/{group['id']}"
    added = await scim.patch(
        path, {"op": "add", "path": "members", "value": [{"value": a["id"]}, {"value": b["id"]}]}
    )
    assert {m["value"] for m in added.json()["members"]} == {a["id"], b["id"]}
    removed = await scim.patch(path, {"op": "remove", "path": f'members[value eq "{a["id"]}"]'})
    assert [m["value"] for m in removed.json()["members"]] == [b["id"]]
    cleared = await scim.patch(path, {"op": "remove", "path": "members"})
    assert "members" not in cleared.json()
    events = (await scim.org.get("/v1/audit-events", params={"target_id": group["id"]})).json()[
        "items"
    ]
    assert [e["action"] for e in events].count("group.member_added") == 2
    assert [e["action"] for e in events].count("group.member_removed") == 2


async def test_an_unknown_member_is_an_invalid_value_and_changes_nothing(scim: Scim) -> None:
    a = await scim.create_user("a@x.example")
    group = (
        await scim.post("/Groups", {"displayName": "G", "members": [{"value": a["id"]}]})
    ).json()
    response = await scim.patch(
        f"/Groups/{group['id']}",
        {"op": "replace", "path": "displayName", "value": "Renamed"},
        {
            "op": "add",
            "path": "members",
            "value": [{"value": "00000000-0000-0000-0000-000000000000"}],
        },
    )
    assert_scim_error(response, 400, "invalidValue")
    again = (await scim.get(f"/Groups/{group['id']}")).json()
    assert again["displayName"] == "G"
    assert [m["value"] for m in again["members"]] == [a["id"]]


async def test_group_names_are_unique_unless_an_existing_group_is_adopted(
    scim: Scim, org: OrgHandle
) -> None:
    existing = await make_group(org, name="Staff")
    adopted = await scim.post("/Groups", {"displayName": "Staff", "externalId": "idp-staff"})
    assert adopted.status_code == 201
    assert adopted.json()["id"] == existing["id"]
    assert_scim_error(await scim.post("/Groups", {"displayName": "Staff"}), 409, "uniqueness")
    async with db.tenant_transaction(org.id):
        await service.save_rules(service.Rules(adopt_groups=False), actor=ACTOR)
    await make_group(org, name="Faculty")
    assert_scim_error(await scim.post("/Groups", {"displayName": "Faculty"}), 409, "uniqueness")


async def test_a_display_name_taken_in_other_capitals_is_a_uniqueness_error(
    scim: Scim, org: OrgHandle
) -> None:
    staff = (await scim.post("/Groups", {"displayName": "Staff"})).json()
    response = await scim.post("/Groups", {"displayName": "STAFF"})
    assert_scim_error(response, 409, "uniqueness")
    assert "a group named 'Staff' already exists" in response.json()["detail"]
    other = (await scim.post("/Groups", {"displayName": "Faculty"})).json()
    renamed = await scim.patch(
        f"/Groups/{other['id']}", {"op": "replace", "path": "displayName", "value": "staff"}
    )
    assert_scim_error(renamed, 409, "uniqueness")
    replaced = await scim.put(f"/Groups/{other['id']}", {"displayName": " sTaFf "})
    assert_scim_error(replaced, 409, "uniqueness")
    # Its own name in other capitals is a rename.
    own = await scim.put(f"/Groups/{staff['id']}", {"displayName": "STAFF"})
    assert own.status_code == 200, own.text
    assert own.json()["displayName"] == "STAFF"
    # An admin's group not yet provisioned is adopted in any capitals, and takes the
    # identity provider's spelling.
    existing = await make_group(org, name="Alumni")
    adopted = await scim.post("/Groups", {"displayName": "ALUMNI"})
    assert adopted.status_code == 201, adopted.text
    assert adopted.json()["id"] == existing["id"]
    assert adopted.json()["displayName"] == "ALUMNI"
    assert (await org.get(f"/v1/groups/{existing['id']}")).json()["name"] == "ALUMNI"


async def test_deleting_a_group_keeps_its_members(scim: Scim) -> None:
    a = await scim.create_user("a@x.example")
    group = (
        await scim.post("/Groups", {"displayName": "G", "members": [{"value": a["id"]}]})
    ).json()
    assert (await scim.delete(f"/Groups/{group['id']}")).status_code == 204
    assert (await scim.get(f"/Groups/{group['id']}")).status_code == 404
    assert (await scim.get(f"/Users/{a['id']}")).status_code == 200
    assert (await scim.org.get(f"/v1/groups/{group['id']}")).status_code == 404


async def test_nested_groups_are_refused(scim: Scim) -> None:
    inner = (await scim.post("/Groups", {"displayName": "Inner"})).json()
    response = await scim.post(
        "/Groups", {"displayName": "Outer", "members": [{"value": inner["id"], "type": "Group"}]}
    )
    assert_scim_error(response, 400, "invalidValue")


async def test_a_scim_push_tells_each_member_whose_settings_it_changes(
    scim: Scim, owner_conn: asyncpg.Connection
) -> None:
    org = scim.org
    a = await scim.create_user("a@x.example")
    b = await scim.create_user("b@x.example")
    group = (await scim.post("/Groups", {"displayName": "Pilot"})).json()
    await lock_ads_on(org, {"id": group["id"]})
    pushed = await scim.patch(
        f"/Groups/{group['id']}",
        {"op": "add", "path": "members", "value": [{"value": a["id"]}, {"value": b["id"]}]},
    )
    assert pushed.status_code == 200, pushed.text
    told = await notices(owner_conn, org)
    assert sorted(json.loads(r["recipients"])[0] for r in told) == ["a@x.example", "b@x.example"]
    assert all("added you to the group Pilot" in r["text"] for r in told)
    # Pushing the same members again changes nothing and tells no one again.
    again = await scim.patch(
        f"/Groups/{group['id']}",
        {"op": "add", "path": "members", "value": [{"value": a["id"]}]},
    )
    assert again.status_code in (200, 204)
    assert len(await notices(owner_conn, org)) == 2


async def test_a_groups_last_modified_moves_with_its_members_whoever_changes_them(
    scim: Scim,
) -> None:
    """RFC 7643 §3.1: members are among a Group's details. ``meta.lastModified`` stayed at
    the group's creation through every membership change, and a client syncing by
    ``filter=meta.lastModified gt …`` missed them all."""
    a = await scim.create_user("a@x.example")
    created = await scim.post("/Groups", {"schemas": [GROUP_URN], "displayName": "Sync"})
    group = created.json()
    stamps = [group["meta"]["lastModified"]]

    async def changed_since(stamp: str) -> list[str]:
        found = await scim.get("/Groups", filter=f'meta.lastModified gt "{stamp}"')
        return [g["id"] for g in found.json()["Resources"]]

    added = await scim.patch(
        f"/Groups/{group['id']}", {"op": "add", "path": "members", "value": [{"value": a["id"]}]}
    )
    assert added.status_code == 200, added.text
    stamps.append(added.json()["meta"]["lastModified"])
    assert await changed_since(stamps[0]) == [group["id"]]

    # Through the API (the console's path) as through SCIM.
    assert (await scim.org.delete(f"/v1/groups/{group['id']}/members/{a['id']}")).status_code == 204
    stamps.append((await scim.get(f"/Groups/{group['id']}")).json()["meta"]["lastModified"])
    assert await changed_since(stamps[1]) == [group["id"]]
    assert (await scim.org.get(f"/v1/groups/{group['id']}")).json()["updated_at"] > stamps[0][:19]
    assert stamps == sorted(stamps) and len(set(stamps)) == 3
    # A change of nothing (adding a member already in) is not a change.
    await scim.org.put(f"/v1/groups/{group['id']}/members/{a['id']}")
    again = (await scim.get(f"/Groups/{group['id']}")).json()["meta"]["lastModified"]
    await scim.org.put(f"/v1/groups/{group['id']}/members/{a['id']}")
    assert (await scim.get(f"/Groups/{group['id']}")).json()["meta"]["lastModified"] == again
