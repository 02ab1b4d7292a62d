"""SCIM tokens: only ``scim:provision`` opens /scim/v2, and only to its own organisation."""

from __future__ import annotations

import asyncio

from tenants import db
from tenants.permissions import Permission
from tenants.scim import service
from tests.conftest import ACTOR, OrgHandle, make_member
from tests.scim.conftest import USER_URN, Scim, scim_for


async def test_a_token_without_scim_provision_is_refused(scim: Scim) -> None:
    other = await scim.org.token_with(Permission.MEMBERS_READ, Permission.MEMBERS_WRITE)
    response = await scim.client.get("/scim/v2/Users", headers={"Authorization": f"Bearer {other}"})
    assert response.status_code == 403
    assert response.json()["status"] == "403"


async def test_no_or_a_bad_token_gets_401(scim: Scim) -> None:
    assert (await scim.client.get("/scim/v2/Users")).status_code == 401
    response = await scim.client.get(
        "/scim/v2/Users", headers={"Authorization": "Bearer tnt_nonsense"}
    )
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith(
        'Bearer realm="scim", error="invalid_token", error_description="'
    )
    bare = await scim.client.get("/scim/v2/Users")
    assert bare.headers["WWW-Authenticate"] == 'Bearer realm="scim"'
    assert bare.headers["Cache-Control"] == "no-store"


async def test_discovery_needs_no_token(scim: Scim) -> None:
    for path in ("/ServiceProviderConfig", "/ResourceTypes", "/Schemas", "/ResourceTypes/User"):
        response = await scim.client.get(f"/scim/v2{path}")
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("application/scim+json")


async def test_another_organisations_token_sees_nothing_of_this_one(
    scim: Scim, other_org: OrgHandle
) -> None:
    mine = await scim.create_user("mine@x.example")
    member = await make_member(scim.org)
    group = (await scim.post("/Groups", {"displayName": "Mine"})).json()
    theirs = await scim_for(other_org)
    assert (await theirs.get("/Users")).json()["totalResults"] == 0
    assert (await theirs.get("/Groups")).json()["totalResults"] == 0
    for path in (f"/Users/{mine['id']}", f"/Users/{member['id']}", f"/Groups/{group['id']}"):
        assert (await theirs.get(path)).status_code == 404
        assert (
            await theirs.patch(path, {"op": "replace", "path": "displayName", "value": "x"})
        ).status_code == 404
        assert (await theirs.delete(path)).status_code == 404
    # Their own user with the same userName does not clash across organisations.
    created = await theirs.post("/Users", {"schemas": [USER_URN], "userName": "mine@x.example"})
    assert created.status_code == 201
    added = await theirs.patch(
        f"/Groups/{(await theirs.post('/Groups', {'displayName': 'T'})).json()['id']}",
        {"op": "add", "path": "members", "value": [{"value": mine["id"]}]},
    )
    assert added.status_code == 400
    assert added.json()["scimType"] == "invalidValue"
    assert (await scim.get(f"/Users/{mine['id']}")).json()["userName"] == "mine@x.example"


async def refused_within(org: OrgHandle, headers: dict[str, str], seconds: float = 2.0) -> int:
    """The status of ``GET /Users`` once it is no longer 200, or 200 after ``seconds``.

    The service's own transaction revokes here, not a request of the app, so the app hears
    of it as every other process does: by the revocation notice, which clears its verified
    credentials (app/notifications.py) a moment after the commit."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        status = (await org.client.get("/scim/v2/Users", headers=headers)).status_code
        if status != 200 or asyncio.get_running_loop().time() > deadline:
            return status
        await asyncio.sleep(0.05)


async def test_a_revoked_or_rotated_token_stops_working(org: OrgHandle) -> None:
    async with db.tenant_transaction(org.id):
        token, text = await service.create_token("IdP", actor=ACTOR)
    headers = {"Authorization": f"Bearer {text}"}
    assert (await org.client.get("/scim/v2/Users", headers=headers)).status_code == 200
    async with db.tenant_transaction(org.id):
        _, rotated = await service.rotate_token(token.id, actor=ACTOR)
    assert await refused_within(org, headers) == 401
    fresh = {"Authorization": f"Bearer {rotated}"}
    assert (await org.client.get("/scim/v2/Users", headers=fresh)).status_code == 200
    async with db.tenant_transaction(org.id):
        listed = await service.list_tokens()
        await service.revoke_token(listed[0].id, actor=ACTOR)
    assert await refused_within(org, fresh) == 401
    assert len(listed) == 2
