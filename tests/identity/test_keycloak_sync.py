"""The Keycloak adapter, driven by the identity jobs, against the Admin REST API contract
fake over real HTTP: what members and groups become in the realm."""

from __future__ import annotations

import uuid
from typing import Any

from app.settings import Settings
from tenants import db
from tenants.actors import system_actor
from tenants.jobs.worker import Worker
from tenants.privacy.erasure import erase_member
from tenants.sessions.models import Session
from tests.conftest import OrgHandle, make_group, make_member
from tests.identity.conftest import job_rows, point_at, run_jobs
from tests.support.keycloak_fake import KeycloakFakeServer
from tests.support.lifecycle import apply_as_workflow


def kc_user(keycloak: KeycloakFakeServer, member: dict[str, Any]) -> dict[str, Any]:
    user = keycloak.fake.user_by_username(member["id"])
    assert user is not None, f"{member['email']} is not mirrored"
    return user


async def transition(org: OrgHandle, member: dict[str, Any], action: str) -> None:
    response = await org.post(f"/v1/members/{member['id']}/transitions", {"action": action})
    assert response.status_code == 200, response.text


async def test_configuring_keycloak_mirrors_the_organisation_with_its_domains(
    mirrored: OrgHandle, keycloak: KeycloakFakeServer
) -> None:
    (organization,) = keycloak.fake.organizations.values()
    assert organization["alias"] == mirrored.slug
    assert organization["name"] == mirrored.slug.title()
    assert organization["domains"] == [{"name": f"{mirrored.slug}.example", "verified": True}]
    assert organization["attributes"] == {"tenantry_org_id": [str(mirrored.id)]}


async def test_a_new_member_becomes_an_enabled_user_and_organisation_member(
    mirrored: OrgHandle, keycloak: KeycloakFakeServer
) -> None:
    member = await make_member(mirrored, name="Ada Lovelace")
    await run_jobs()
    user = kc_user(keycloak, member)
    assert user["email"] == member["email"]
    assert (user["firstName"], user["lastName"]) == ("Ada", "Lovelace")
    assert user["enabled"] is True
    assert user["attributes"]["tenantry_member_id"] == [member["id"]]
    (org_id,) = keycloak.fake.organizations
    assert keycloak.fake.organization_members[org_id] == [user["id"]]


async def test_an_update_changes_the_user_once_and_a_repeat_writes_nothing(
    mirrored: OrgHandle, keycloak: KeycloakFakeServer
) -> None:
    member = await make_member(mirrored, name="Ada Lovelace")
    await run_jobs()
    email = f"ada-{member['id'][:6]}@{mirrored.slug}.example"
    response = await mirrored.patch(
        f"/v1/members/{member['id']}", {"name": "Ada King", "email": email}
    )
    assert response.status_code == 200, response.text
    before = len(keycloak.fake.writes())
    await run_jobs()
    user = kc_user(keycloak, member)
    assert (user["email"], user["lastName"]) == (email, "King")
    puts = [w for w in keycloak.fake.writes()[before:] if w.method == "PUT"]
    assert len(puts) == 1
    # Another sync of the same state reads and writes nothing.
    async with db.tenant_transaction(mirrored.id):
        from tenants.identity import changes

        await changes.member_changed(member["id"], "updated")
    before = len(keycloak.fake.writes())
    await run_jobs()
    assert keycloak.fake.writes()[before:] == []


async def test_suspension_disables_the_user_and_ends_their_keycloak_sessions(
    mirrored: OrgHandle, keycloak: KeycloakFakeServer
) -> None:
    member = await make_member(mirrored)
    await run_jobs()
    user = kc_user(keycloak, member)
    keycloak.fake.add_session(user["id"])
    keycloak.fake.add_session(user["id"])
    await transition(mirrored, member, "suspend")
    await run_jobs()
    assert kc_user(keycloak, member)["enabled"] is False
    assert keycloak.fake.sessions.get(user["id"], []) == []
    logouts = [w for w in keycloak.fake.writes() if w.path == f"/users/{user['id']}/logout"]
    assert len(logouts) == 1
    async with db.tenant_transaction(mirrored.id):
        assert not await Session.filter(member_id=member["id"], revoked_at=None).exists()


async def test_reinstatement_enables_the_user_again(
    mirrored: OrgHandle, keycloak: KeycloakFakeServer
) -> None:
    member = await make_member(mirrored)
    await transition(mirrored, member, "suspend")
    await run_jobs()
    assert kc_user(keycloak, member)["enabled"] is False
    await transition(mirrored, member, "reinstate")
    await run_jobs()
    assert kc_user(keycloak, member)["enabled"] is True


async def test_purge_removes_the_user_from_keycloak(
    mirrored: OrgHandle, keycloak: KeycloakFakeServer
) -> None:
    member = await make_member(mirrored)
    keep = await make_member(mirrored)
    await run_jobs()
    gone = kc_user(keycloak, member)
    await transition(mirrored, member, "suspend")
    await apply_as_workflow(mirrored.id, member["id"], "depart")
    # The purge is an erasure (the departure's last step and erasure requests alike).
    async with db.tenant_transaction(mirrored.id):
        await erase_member(uuid.UUID(member["id"]), why="test", actor=system_actor("test"))
    await run_jobs()
    assert keycloak.fake.user_by_username(member["id"]) is None
    assert gone["id"] not in keycloak.fake.users
    (org_id,) = keycloak.fake.organizations
    assert keycloak.fake.organization_members[org_id] == [kc_user(keycloak, keep)["id"]]


async def test_groups_are_mirrored_under_the_organisations_own_group(
    mirrored: OrgHandle, keycloak: KeycloakFakeServer
) -> None:
    group = await make_group(mirrored, name="Teachers")
    member = await make_member(mirrored)
    response = await mirrored.put(f"/v1/groups/{group['id']}/members/{member['id']}")
    assert response.status_code == 204, response.text
    await run_jobs()
    user = kc_user(keycloak, member)
    assert keycloak.fake.user_groups(user["id"]) == ["Teachers"]
    teachers = next(g for g in keycloak.fake.groups.values() if g["name"] == "Teachers")
    assert teachers["path"] == f"/{mirrored.slug}/Teachers"
    assert teachers["attributes"] == {"tenantry_group_id": [group["id"]]}

    response = await mirrored.patch(f"/v1/groups/{group['id']}", {"name": "Staff"})
    assert response.status_code == 200, response.text
    response = await mirrored.delete(f"/v1/groups/{group['id']}/members/{member['id']}")
    assert response.status_code == 204, response.text
    await run_jobs()
    assert teachers["name"] == "Staff"
    assert keycloak.fake.user_groups(user["id"]) == []

    response = await mirrored.delete(f"/v1/groups/{group['id']}")
    assert response.status_code == 204, response.text
    await run_jobs()
    assert teachers["id"] not in keycloak.fake.groups


async def test_a_local_organisation_queues_nothing(org: OrgHandle) -> None:
    await make_member(org)
    assert await job_rows(org) == []


async def test_every_request_the_adapter_sent_was_accepted(
    mirrored: OrgHandle, keycloak: KeycloakFakeServer, settings: Settings
) -> None:
    member = await make_member(mirrored)
    group = await make_group(mirrored)
    await mirrored.put(f"/v1/groups/{group['id']}/members/{member['id']}")
    await transition(mirrored, member, "suspend")
    await run_jobs()
    refused = [r for r in keycloak.fake.requests if r.status >= 400 and r.method != "GET"]
    # Workers run the group's job and the member's at once; either may create the group
    # first, and the other's 409 is expected and handled.
    assert [r for r in refused if not (r.status == 409 and r.path.endswith("/children"))] == []
    assert all(row["status"] == "done" for row in await job_rows(mirrored))
    # Pointing the backend at the same realm again reconciles and finds nothing to do.
    before = len(keycloak.fake.writes())
    await point_at(mirrored, keycloak, settings)
    await run_jobs()
    assert keycloak.fake.writes()[before:] == []


async def test_changes_made_while_keycloak_is_down_arrive_once_and_in_order_when_it_is_back(
    mirrored: OrgHandle, keycloak: KeycloakFakeServer
) -> None:
    group = await make_group(mirrored, name="Night shift")
    ann = await make_member(mirrored, name="Ann Early")
    bob = await make_member(mirrored, name="Bob Early")
    await run_jobs()
    bob_user = kc_user(keycloak, bob)
    keycloak.fake.add_session(bob_user["id"])

    keycloak.stop()
    seen = len(keycloak.fake.requests)
    cat = await make_member(mirrored, name="Cat New")
    await mirrored.patch(f"/v1/members/{ann['id']}", {"name": "Ann Late"})
    await mirrored.put(f"/v1/groups/{group['id']}/members/{ann['id']}")
    await transition(mirrored, bob, "suspend")
    await mirrored.patch(f"/v1/members/{cat['id']}", {"name": "Cat Renamed"})
    # The worker tries once: the oldest job of each member fails and waits for a retry;
    # the member's later jobs wait behind it, untried.
    await Worker(name="during-outage").run_until_idle()
    rows = [r for r in await job_rows(mirrored) if r["status"] != "done"]
    assert {r["status"] for r in rows} == {"queued"}
    by_queue: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_queue.setdefault(row["queue"], []).append(row)
    assert set(by_queue) == {f"identity:{m['id']}" for m in (ann, bob, cat)}
    for queue in by_queue.values():
        assert queue[0]["attempts"] == 1 and "cannot be reached" in queue[0]["last_error"]
        assert all(r["attempts"] == 0 for r in queue[1:])
    assert len(keycloak.fake.requests) == seen  # nothing reached Keycloak

    keycloak.start()
    await run_jobs()
    assert {r["status"] for r in await job_rows(mirrored)} == {"done"}
    after = keycloak.fake.requests[seen:]
    assert [r for r in after if r.status >= 400 and r.method != "GET"] == []
    writes = [w for w in after if w.is_write]
    ann_user, cat_user = kc_user(keycloak, ann), kc_user(keycloak, cat)

    def to(user: dict[str, Any]) -> list[str]:
        return [f"{w.method} {w.path}" for w in writes if f"/users/{user['id']}" in w.path]

    created = [w for w in writes if w.method == "POST" and w.path == "/users"]
    assert [w.body["username"] for w in created] == [cat["id"]]
    assert (created[0].body["firstName"], created[0].body["lastName"]) == ("Cat", "Renamed")
    night_shift = next(g for g in keycloak.fake.groups.values() if g["name"] == "Night shift")
    assert to(ann_user) == [
        f"PUT /users/{ann_user['id']}",
        f"PUT /users/{ann_user['id']}/groups/{night_shift['id']}",
    ]
    assert to(bob_user) == [f"PUT /users/{bob_user['id']}", f"POST /users/{bob_user['id']}/logout"]
    assert to(cat_user) == []  # created with its final name in one request, then joined
    (org_id,) = keycloak.fake.organizations
    assert cat_user["id"] in keycloak.fake.organization_members[org_id]
    assert (ann_user["lastName"], keycloak.fake.user_groups(ann_user["id"])) == (
        "Late",
        ["Night shift"],
    )
    assert bob_user["enabled"] is False and keycloak.fake.sessions.get(bob_user["id"]) is None


async def test_the_organisations_identity_provider_and_name_changes_are_mirrored(
    mirrored: OrgHandle, keycloak: KeycloakFakeServer
) -> None:
    from tests.support.hostile_idp import run_hostile_idp

    with run_hostile_idp() as idp:
        response = await mirrored.put(
            "/v1/sso-connection",
            json={"issuer": idp.issuer, "client_id": "acme-kc", "client_secret": "s3cret-value"},
        )
        assert response.status_code == 200, response.text
        response = await mirrored.patch("/v1/organisation", {"name": "Acme Renamed"})
        assert response.status_code == 200, response.text
        await run_jobs()
    alias = f"{mirrored.slug}-oidc"
    provider = keycloak.fake.idps[alias]
    assert provider["providerId"] == "oidc"
    assert provider["config"]["issuer"] == idp.issuer
    assert provider["config"]["clientId"] == "acme-kc"
    assert provider["config"]["clientSecret"] == "s3cret-value"
    assert provider["config"]["tokenUrl"].startswith(idp.issuer)
    ((org_id, organization),) = keycloak.fake.organizations.items()
    assert organization["name"] == "Acme Renamed"
    assert keycloak.fake.organization_idps[org_id] == [alias]
    # A second sync of the same state leaves the identity provider alone.
    before = len(keycloak.fake.writes())
    async with db.tenant_transaction(mirrored.id):
        from tenants.identity import changes

        await changes.organisation_changed("probe")
    with run_hostile_idp() as other:
        await mirrored.put(
            "/v1/sso-connection", json={"issuer": other.issuer, "client_id": "acme-kc"}
        )
        await run_jobs()
    updates = [
        w
        for w in keycloak.fake.writes()[before:]
        if w.path == f"/identity-provider/instances/{alias}"
    ]
    assert len(updates) == 1  # only the issuer change, once
    assert keycloak.fake.idps[alias]["config"]["clientSecret"] == "s3cret-value"
