"""``tenantry identity setup`` and the adapter against a realm with Keycloak's defaults (the
contract fake: Organizations off, a user profile that drops undeclared attributes, roles
checked per route, expiring tokens, organization domains required on 26.0-26.3): the realm
is detected, prepared, then mirrored without drift; what setup cannot fix stops the sync
with a setup error that goes straight to the dead letter."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from app.cli_identity import setup_table
from app.settings import Settings
from tenants import db
from tenants.identity import changes, sync
from tenants.identity.setup import (
    CheckName,
    UnmanagedPolicy,
    missing_roles,
    parse_version,
    prepared_profile,
    requires_organization_domain,
    token_roles,
    undeclared_attributes,
)
from tests.conftest import ACTOR, OrgHandle, make_member
from tests.identity.conftest import job_rows, point_at, run_jobs, set_up
from tests.support.keycloak_fake import KeycloakFakeServer
from tests.support.keycloak_fake_profile import default_user_profile

# --- the rules, without Keycloak ----------------------------------------------------------


def test_versions_26_0_to_26_3_need_an_organization_domain_and_unknown_is_taken_as_needing_one() -> (
    None
):
    assert parse_version("26.3.2") == (26, 3, 2)
    assert parse_version("26.4.0-SNAPSHOT") == (26, 4, 0)
    assert parse_version("nightly") is None
    assert requires_organization_domain((26, 0, 0)) and requires_organization_domain((26, 3, 9))
    assert not requires_organization_domain((26, 4, 0))
    assert not requires_organization_domain((27, 0))
    assert requires_organization_domain(None)


def test_the_default_user_profile_drops_both_attributes_until_declared_or_admin_edit() -> None:
    default = default_user_profile()
    assert undeclared_attributes(default) == ["tenantry_member_id", "tenantry_org_id"]
    declared = prepared_profile(default, UnmanagedPolicy.DECLARE)
    assert undeclared_attributes(declared) == []
    added = [a for a in declared["attributes"] if a["name"].startswith("tenantry_")]
    assert all(a["permissions"] == {"view": ["admin"], "edit": ["admin"]} for a in added)
    # Everything already there is kept as it was.
    assert declared["attributes"][:4] == default["attributes"]
    assert prepared_profile(declared, UnmanagedPolicy.DECLARE) == declared
    admin_edit = prepared_profile(default, UnmanagedPolicy.ADMIN_EDIT)
    assert admin_edit["unmanagedAttributePolicy"] == "ADMIN_EDIT"
    assert undeclared_attributes(admin_edit) == []
    assert undeclared_attributes({**default, "unmanagedAttributePolicy": "ADMIN_VIEW"}) == [
        "tenantry_member_id",
        "tenantry_org_id",
    ]


def test_roles_are_read_from_the_access_token_and_the_missing_ones_named() -> None:
    assert token_roles("not-a-jwt") is None
    assert missing_roles(frozenset({"manage-users", "view-realm", "view-users"})) == [
        "manage-realm",
        "manage-identity-providers",
    ]
    assert (
        missing_roles(frozenset({"manage-users", "manage-realm", "manage-identity-providers"}))
        == []
    )


# --- setup against a realm with Keycloak's defaults ----------------------------------------


def by_name(checks: list[Any]) -> dict[CheckName, Any]:
    return {c.name: c for c in checks}


async def test_setup_detects_a_default_realm_names_each_fix_then_prepares_it_once(
    org: OrgHandle, keycloak: KeycloakFakeServer, settings: Settings
) -> None:
    await point_at(org, keycloak, settings)
    before = len(keycloak.fake.writes())
    checks = await set_up(org, prepare=False)
    assert [c.name for c in checks] == list(CheckName)
    found = by_name(checks)
    assert not found[CheckName.ORGANIZATIONS].ok
    assert "Organizations: On" in found[CheckName.ORGANIZATIONS].fix
    assert not found[CheckName.USER_PROFILE].ok
    assert "tenantry_member_id" in found[CheckName.USER_PROFILE].detail
    assert "Admin only" in found[CheckName.USER_PROFILE].fix
    assert found[CheckName.ROLES].ok and found[CheckName.CREDENTIALS].ok
    assert "26.3.2" in found[CheckName.SERVER_VERSION].detail
    assert found[CheckName.ORGANISATION_DOMAIN].ok
    assert keycloak.fake.writes()[before:] == []  # --check changes nothing

    checks = await set_up(org)
    assert all(c.ok for c in checks)
    assert {c.name for c in checks if c.changed} == {
        CheckName.ORGANIZATIONS,
        CheckName.USER_PROFILE,
    }
    assert keycloak.fake.organizations_enabled
    assert keycloak.fake.user_profile.unmanaged_policy == "DISABLED"
    console = Console(record=True, width=250)
    console.print(setup_table(checks))
    text = console.export_text()
    assert "user_profile_attributes" in text and "fixed" in text

    # A second run finds the realm ready and writes nothing.
    before = len(keycloak.fake.writes())
    assert all(c.ok and not c.changed for c in await set_up(org))
    assert keycloak.fake.writes()[before:] == []


async def test_after_setup_the_mirror_settles_and_reconcile_finds_no_drift(
    org: OrgHandle, keycloak: KeycloakFakeServer, settings: Settings
) -> None:
    await point_at(org, keycloak, settings)
    members = [await make_member(org, name=f"Member Number{i}") for i in range(3)]
    await run_jobs()
    # Before setup every job died at once with the setup error; nothing was retried.
    rows = await job_rows(org)
    assert {r["status"] for r in rows} == {"dead"} and {r["attempts"] for r in rows} == {1}
    assert all("Organizations are not enabled" in r["last_error"] for r in rows)
    await set_up(org)
    await run_jobs()
    assert {(r["status"], r["last_error"]) for r in await job_rows(org)} == {("done", None)}
    for member in members:
        user = keycloak.fake.user_by_username(member["id"])
        assert user is not None
        assert user["attributes"]["tenantry_member_id"] == [member["id"]]
        assert user["attributes"]["tenantry_org_id"] == [str(org.id)]
    assert (await sync.reconcile(org.id, fix=False, actor=ACTOR)).drift == []
    # A second sync of everyone writes nothing.
    before = len(keycloak.fake.writes())
    async with db.tenant_transaction(org.id):
        for member in members:
            await changes.member_changed(member["id"], "probe")
        await changes.organisation_changed("probe")
    await run_jobs()
    assert keycloak.fake.writes()[before:] == []


async def test_unmanaged_admin_edit_keeps_the_attributes_too(
    org: OrgHandle, keycloak: KeycloakFakeServer, settings: Settings
) -> None:
    await point_at(org, keycloak, settings)
    checks = await set_up(org, policy=UnmanagedPolicy.ADMIN_EDIT)
    assert all(c.ok for c in checks)
    assert keycloak.fake.user_profile.unmanaged_policy == "ADMIN_EDIT"
    member = await make_member(org)
    await run_jobs()
    user = keycloak.fake.user_by_username(member["id"])
    assert user is not None and user["attributes"]["tenantry_member_id"] == [member["id"]]
    assert (await sync.reconcile(org.id, fix=False, actor=ACTOR)).drift == []


async def test_a_discarded_attribute_stops_with_the_setup_error_instead_of_rewriting(
    org: OrgHandle, keycloak: KeycloakFakeServer, settings: Settings
) -> None:
    keycloak.fake.organizations_enabled = True  # an admin did half the setup by hand
    await point_at(org, keycloak, settings)
    member = await make_member(org)
    await run_jobs()
    user = keycloak.fake.user_by_username(member["id"])
    assert user is not None and user["attributes"] == {}  # Keycloak answered 201, kept none
    member_jobs = [r for r in await job_rows(org) if r["kind"] == "identity.sync_member"]
    assert [(r["status"], r["attempts"]) for r in member_jobs] == [("dead", 1)]
    assert (
        "discarded the user attributes tenantry_member_id, tenantry_org_id"
        in (member_jobs[0]["last_error"])
    )
    view = (await org.get("/v1/identity-backend")).json()
    assert "tenantry identity setup" in view["last_error"]
    # No endless rewrite: the worker tries nothing more until someone fixes the realm.
    before = len(keycloak.fake.writes())
    await run_jobs()
    assert keycloak.fake.writes()[before:] == []
    # Setup fixes the profile and revives the dead jobs; the mirror then settles.
    await set_up(org)
    await run_jobs()
    assert {r["status"] for r in await job_rows(org)} == {"done"}
    assert user["attributes"]["tenantry_member_id"] == [member["id"]]
    assert (await sync.reconcile(org.id, fix=False, actor=ACTOR)).drift == []


async def test_a_403_goes_straight_to_the_dead_letter_with_its_message(
    mirrored: OrgHandle, keycloak: KeycloakFakeServer
) -> None:
    keycloak.fake.service_account_roles.discard("manage-users")
    keycloak.fake.expire_tokens()  # the next token carries the roles as they are now
    member = await make_member(mirrored)
    await run_jobs()
    (row,) = [r for r in await job_rows(mirrored) if r["kind"] == "identity.sync_member"]
    assert (row["status"], row["attempts"]) == ("dead", 1)
    assert "HTTP 403" in row["last_error"] and "manage-users" in row["last_error"]
    assert any(r.status == 403 for r in keycloak.fake.requests)
    view = (await mirrored.get("/v1/identity-backend")).json()
    assert "HTTP 403" in view["last_error"]
    roles = by_name(await set_up(mirrored, prepare=False))[CheckName.ROLES]
    assert not roles.ok and roles.detail.startswith("missing manage-users")
    assert "realm-management: manage-users" in roles.fix
    keycloak.fake.service_account_roles.add("manage-users")
    keycloak.fake.expire_tokens()
    await set_up(mirrored)
    await run_jobs()
    assert keycloak.fake.user_by_username(member["id"]) is not None


async def test_wrong_credentials_are_a_setup_error_and_setup_says_so(
    org: OrgHandle, keycloak: KeycloakFakeServer, settings: Settings
) -> None:
    keycloak.fake.prepared()
    await point_at(org, keycloak, settings)
    keycloak.fake.client_secret = "rotated-at-keycloak"
    await run_jobs()
    (row,) = await job_rows(org)
    assert (row["status"], row["attempts"]) == ("dead", 1) and "HTTP 401" in row["last_error"]
    (address, check) = await set_up(org)
    assert address.name is CheckName.SERVER_ADDRESS and address.ok
    assert check.name is CheckName.CREDENTIALS and not check.ok
    assert "Service accounts roles" in check.fix


async def test_5xx_keeps_retrying_and_the_change_arrives_when_keycloak_recovers(
    mirrored: OrgHandle, keycloak: KeycloakFakeServer
) -> None:
    keycloak.fake.failing_with = 503
    member = await make_member(mirrored)
    from tenants.jobs.worker import Worker

    await Worker(name="during-503").run_until_idle()
    (row,) = [r for r in await job_rows(mirrored) if r["kind"] == "identity.sync_member"]
    assert (row["status"], row["attempts"]) == ("queued", 1)
    assert "HTTP 503" in row["last_error"]
    keycloak.fake.failing_with = None
    await run_jobs()
    assert keycloak.fake.user_by_username(member["id"]) is not None


async def test_an_expired_access_token_is_replaced_and_the_sync_goes_on(
    mirrored: OrgHandle, keycloak: KeycloakFakeServer
) -> None:
    first = await make_member(mirrored)
    await run_jobs()
    keycloak.fake.expire_tokens()
    tokens_before = sum(1 for r in keycloak.fake.requests if r.path.endswith("/token"))
    second = await make_member(mirrored)
    await run_jobs()
    assert keycloak.fake.user_by_username(first["id"]) is not None
    assert keycloak.fake.user_by_username(second["id"]) is not None
    assert sum(1 for r in keycloak.fake.requests if r.path.endswith("/token")) > tokens_before
    assert {r["status"] for r in await job_rows(mirrored)} == {"done"}


async def drop_domains(org: OrgHandle) -> None:
    from tenants.domains.models import Domain

    async with db.tenant_transaction(org.id):
        await Domain.all().delete()


async def test_an_organisation_without_a_domain_is_refused_on_26_3_and_mirrored_on_26_4(
    org: OrgHandle, keycloak: KeycloakFakeServer, settings: Settings
) -> None:
    await drop_domains(org)
    await point_at(org, keycloak, settings)
    checks = by_name(await set_up(org))
    domain = checks[CheckName.ORGANISATION_DOMAIN]
    assert not domain.ok and "26.3.2" in domain.detail
    assert "verify a domain" in domain.fix and "26.4" in domain.fix
    await run_jobs()
    (row,) = await job_rows(org)
    assert row["status"] == "dead" and "refuses an organization without one" in row["last_error"]
    assert keycloak.fake.organizations == {}
    # The adapter refused before Keycloak could: no request was refused there.
    assert [r for r in keycloak.fake.requests if r.status == 400] == []

    keycloak.fake.version = "26.4.1"
    assert all(c.ok for c in await set_up(org))
    await run_jobs()
    ((_, organization),) = keycloak.fake.organizations.items()
    assert organization["domains"] == []


async def test_the_fake_validates_users_as_keycloaks_default_profile(
    mirrored: OrgHandle, keycloak: KeycloakFakeServer
) -> None:
    member = await make_member(mirrored, name="Ann <script>")
    await run_jobs()
    (row,) = [r for r in await job_rows(mirrored) if r["kind"] == "identity.sync_member"]
    assert row["status"] == "dead" and "error-person-name-invalid-character" in row["last_error"]
    assert keycloak.fake.user_by_username(member["id"]) is None
