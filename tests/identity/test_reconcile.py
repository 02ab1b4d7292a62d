"""Reconcile: drift between Tenantry and the Keycloak realm is reported, and fixed unless
it is a dry run; the drift rules themselves are plain Python."""

from __future__ import annotations

import uuid

import pytest
from rich.console import Console

from app.cli_identity import drift_table
from tenants.identity import sync
from tenants.identity.errors import BackendNotConfiguredError
from tenants.identity.port import (
    DirectoryGroup,
    DirectoryMember,
    DirectoryOrganisation,
    DirectoryState,
)
from tenants.identity.rules import DriftKind, find_drift
from tests.conftest import ACTOR, OrgHandle, make_group, make_member
from tests.identity.conftest import run_jobs
from tests.support.keycloak_fake import KeycloakFakeServer

ORG = DirectoryOrganisation("o1", "acme", "Acme", ("acme.example",))


def member(mid: str, **changes: object) -> DirectoryMember:
    fields: dict[str, object] = {
        "member_id": mid,
        "email": f"{mid}@acme.example",
        "first_name": "A",
        "last_name": "B",
        "enabled": True,
    }
    fields.update(changes)
    return DirectoryMember(**fields)  # type: ignore[arg-type]


def test_no_drift_between_equal_states() -> None:
    state = DirectoryState(ORG, {"m1": member("m1")}, {"g1": DirectoryGroup("g1", "G")})
    assert find_drift(state, state) == []


def test_drift_names_every_difference_in_fixing_order() -> None:
    staff = DirectoryGroup("g1", "Staff")
    desired = DirectoryState(
        ORG,
        {"m1": member("m1", groups=frozenset({staff})), "m2": member("m2")},
        {"g1": staff},
    )
    actual = DirectoryState(
        DirectoryOrganisation("o1", "acme", "Acme Ltd", ("acme.example",)),
        {"m1": member("m1", enabled=False), "m3": member("m3")},
        {"g9": DirectoryGroup("g9", "Old")},
        outside_organisation=frozenset({"m1"}),
    )
    kinds = [(d.kind, d.subject_id) for d in find_drift(desired, actual)]
    assert kinds == [
        (DriftKind.ORGANISATION_DIFFERS, "o1"),
        (DriftKind.GROUP_MISSING, "g1"),
        (DriftKind.GROUP_EXTRA, "g9"),
        (DriftKind.MEMBER_DIFFERS, "m1"),
        (DriftKind.MEMBER_OUTSIDE_ORGANISATION, "m1"),
        (DriftKind.MEMBER_MISSING, "m2"),
        (DriftKind.MEMBER_EXTRA, "m3"),
    ]
    differs = next(d for d in find_drift(desired, actual) if d.kind is DriftKind.MEMBER_DIFFERS)
    assert "enabled: False → True" in differs.detail and "not in group Staff" in differs.detail


async def test_reconcile_reports_drift_on_a_dry_run_and_fixes_it_otherwise(
    mirrored: OrgHandle, keycloak: KeycloakFakeServer
) -> None:
    group = await make_group(mirrored, name="Staff")
    kept = await make_member(mirrored, name="Kept Member")
    lost = await make_member(mirrored, name="Lost Member")
    await mirrored.put(f"/v1/groups/{group['id']}/members/{kept['id']}")
    await run_jobs()
    fake = keycloak.fake
    # Someone edits the realm by hand: a user deleted, a user disabled and taken out of
    # the group, the group renamed, and a user Tenantry does not know added.
    lost_user = fake.user_by_username(lost["id"])
    kept_user = fake.user_by_username(kept["id"])
    assert lost_user is not None and kept_user is not None
    del fake.users[lost_user["id"]]
    for members in [*fake.organization_members.values(), *fake.group_members.values()]:
        if lost_user["id"] in members:
            members.remove(lost_user["id"])
    kept_user["enabled"] = False
    staff = next(g for g in fake.groups.values() if g["name"] == "Staff")
    fake.group_members[staff["id"]].remove(kept_user["id"])
    staff["name"] = "Renamed by hand"
    stranger = str(uuid.uuid4())
    fake.users["x"] = {
        "id": "x",
        "username": stranger,
        "email": "stranger@example.org",
        "enabled": True,
        "attributes": {"tenantry_org_id": [str(mirrored.id)], "tenantry_member_id": [stranger]},
    }

    writes = len(fake.writes())
    report = await sync.reconcile(mirrored.id, fix=False, actor=ACTOR)
    assert report.dry_run and report.fixed == []
    assert len(fake.writes()) == writes  # a dry run changes nothing
    found = {(d.kind, d.label) for d in report.drift}
    assert found == {
        (DriftKind.GROUP_DIFFERS, "Staff"),
        (DriftKind.MEMBER_DIFFERS, kept["email"]),
        (DriftKind.MEMBER_MISSING, lost["email"]),
        (DriftKind.MEMBER_EXTRA, "stranger@example.org"),
    }
    console = Console(record=True, width=200)
    console.print(drift_table(report))
    text = console.export_text()
    assert "member_missing" in text and lost["email"] in text

    report = await sync.reconcile(mirrored.id, fix=True, actor=ACTOR)
    assert len(report.drift) == 4 and report.fixed
    assert (await sync.reconcile(mirrored.id, fix=False, actor=ACTOR)).drift == []
    assert fake.user_by_username(lost["id"]) is not None
    assert fake.user_by_username(stranger) is None
    assert kept_user["enabled"] is True
    assert staff["name"] == "Staff" and fake.user_groups(kept_user["id"]) == ["Staff"]


async def test_reconcile_of_a_local_organisation_is_refused(org: OrgHandle) -> None:
    with pytest.raises(BackendNotConfiguredError):
        await sync.reconcile(org.id, fix=False, actor=ACTOR)
