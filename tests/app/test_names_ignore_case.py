"""Group names are unique in an organisation, unit names among siblings, whatever their
capitals: the API refuses a name taken in other capitals as it refuses an exact duplicate
(409 naming ``name`` and the name in the way), a rename to the same name in other capitals
is the thing's own, a race that reaches the unique index is the same refusal, and
upgrading a database renames the names that already collide (migration 0035)."""

from __future__ import annotations

import importlib
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from app import database
from tenants.groups import service as groups
from tenants.units import service as units
from tests.conftest import OrgHandle, make_group, make_unit
from tests.privacy.test_partitions import migrate_to


def refusal(response: httpx.Response) -> tuple[str, list[dict[str, str]]]:
    assert response.status_code == 409, response.text
    problem = response.json()
    return problem["detail"], problem["errors"]


async def names_of_groups(org: OrgHandle) -> list[str]:
    return sorted(g["name"] for g in (await org.get("/v1/groups")).json()["items"])


async def test_a_group_name_taken_in_other_capitals_is_refused_naming_the_field(
    org: OrgHandle,
) -> None:
    sales = await make_group(org, name="Sales")
    detail, errors = refusal(await org.post("/v1/groups", {"name": "sales"}))
    assert detail == "a group named 'Sales' already exists"
    assert errors == [
        {
            "field": "name",
            "reason": "is already taken ('Sales': capitals do not make a name differ)",
        }
    ]
    # Surrounding spaces do not make it differ either (the API strips them).
    detail, _ = refusal(await org.post("/v1/groups", {"name": "  SALES "}))
    assert detail == "a group named 'Sales' already exists"
    # The exact name is refused as it always was.
    detail, errors = refusal(await org.post("/v1/groups", {"name": "Sales"}))
    assert errors == [{"field": "name", "reason": "is already taken"}]
    other = await make_group(org, name="Support")
    detail, errors = refusal(await org.patch(f"/v1/groups/{other['id']}", {"name": "sALES"}))
    assert detail == "a group named 'Sales' already exists" and errors[0]["field"] == "name"
    assert await names_of_groups(org) == ["Sales", "Support"]
    # The group's own name in other capitals is a rename, not a clash.
    renamed = await org.patch(f"/v1/groups/{sales['id']}", {"name": "SALES"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "SALES"
    assert await names_of_groups(org) == ["SALES", "Support"]


async def test_two_organisations_may_each_have_the_group(
    two_orgs: tuple[OrgHandle, OrgHandle],
) -> None:
    a, b = two_orgs
    await make_group(a, name="Sales")
    await make_group(b, name="sales")


async def test_a_unit_name_is_unique_among_siblings_whatever_its_capitals(
    org: OrgHandle,
) -> None:
    europe = await make_unit(org, "Europe")
    germany = await make_unit(org, "Germany")
    berlin = await make_unit(org, "Berlin", europe["id"])
    detail, errors = refusal(
        await org.post("/v1/units", {"name": "berlin", "parent_id": europe["id"]})
    )
    assert detail == "a unit named 'Berlin' already exists there"
    assert errors == [
        {
            "field": "name",
            "reason": "is already used by a sibling unit "
            "('Berlin': capitals do not make a name differ)",
        }
    ]
    # Under another parent the name is free, in any capitals.
    other = await make_unit(org, "berlin", germany["id"])
    # Nor may a move bring two of them together.
    detail, errors = refusal(
        await org.post(f"/v1/units/{other['id']}/move", {"parent_id": europe["id"]})
    )
    # The place chosen is what is refused: the unit keeps its name.
    assert detail == "a unit named 'Berlin' already exists there"
    assert errors == [{"field": "parent_id", "reason": "already has a unit named 'Berlin'"}]
    sibling = await make_unit(org, "Paris", europe["id"])
    detail, _ = refusal(await org.patch(f"/v1/units/{sibling['id']}", {"name": "BERLIN"}))
    assert detail == "a unit named 'Berlin' already exists there"
    renamed = await org.patch(f"/v1/units/{berlin['id']}", {"name": "BERLIN"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "BERLIN"


async def test_a_race_that_reaches_the_unique_index_is_the_same_refusal(
    org: OrgHandle, monkeypatch: pytest.MonkeyPatch, owner_conn: asyncpg.Connection
) -> None:
    """Two requests that both passed the check before either wrote: the index refuses
    the second. Here the check is skipped, as if the first had committed after it."""
    await make_group(org, name="Sales")
    europe = await make_unit(org, "Europe")
    await make_unit(org, "Berlin", europe["id"])

    async def unchecked(*_: Any) -> None:
        return None

    monkeypatch.setattr(groups, "_check_name", unchecked)
    monkeypatch.setattr(units, "_check_sibling_name", unchecked)
    detail, errors = refusal(await org.post("/v1/groups", {"name": "sales"}))
    assert detail == "a group named 'Sales' already exists" and errors[0]["field"] == "name"
    support = await make_group(org, name="Support")
    detail, _ = refusal(await org.patch(f"/v1/groups/{support['id']}", {"name": "SALES"}))
    assert detail == "a group named 'Sales' already exists"
    detail, errors = refusal(
        await org.post("/v1/units", {"name": "BERLIN", "parent_id": europe["id"]})
    )
    assert detail == "a unit named 'Berlin' already exists there" and errors[0]["field"] == "name"
    assert await names_of_groups(org) == ["Sales", "Support"]
    assert (
        await owner_conn.fetchval(
            "SELECT count(*) FROM audit_events WHERE tenant_id = $1 AND action = 'group.created'",
            org.id,
        )
        == 2
    )


# --- upgrading a database whose names already collide ---------------------------------------

MIGRATION = importlib.import_module("migrations.tenants.0035_names_unique_ignoring_case")

ORGANISATION = """
INSERT INTO organisations (id, slug, name, kind, status, local_sign_in, created_at, updated_at,
                           policy_version, structure_version, policy_notice_days)
VALUES ($1, $2, $2, 'employer', 'active', false, now(), now(), 0, 0, 7)
"""
UNIT = """
INSERT INTO units (id, tenant_id, created_at, updated_at, parent_id, name, path, depth)
VALUES ($1, $2, now() + make_interval(secs => $6), now(), $3, $4, $5,
        length($5) - length(replace($5, '/', '')))
"""
GROUP = """
INSERT INTO groups (id, tenant_id, created_at, updated_at, name, description, priority)
VALUES ($1, $2, now() + make_interval(secs => $4), now(), $3, '', 0)
"""


async def test_upgrading_renames_the_later_of_names_that_collide_in_other_capitals(
    admin_server_url: str,
) -> None:
    app_label, before = MIGRATION.Migration.dependencies[0]
    name = f"tenantry_names_{uuid.uuid4().hex[:8]}"
    admin_url = database.with_database(admin_server_url, name)
    urls = await database.prepare_database(
        admin_url, app_role="tenantry_app", app_database_url=None
    )
    long = "x" * 200
    try:
        await migrate_to(urls.admin, f"{app_label}.{before}")
        conn = await asyncpg.connect(**database.connection_params(urls.admin))
        org, other = uuid.uuid4(), uuid.uuid4()
        try:
            await conn.execute(ORGANISATION, org, "upgraded")
            await conn.execute(ORGANISATION, other, "other")
            seq = iter(range(1000))
            gid: dict[str, uuid.UUID] = {}
            for tenant, group in [
                (org, "Sales"),  # the oldest keeps its name
                (org, "sales"),
                (org, "Sales (2)"),  # taken already: the next is (3)
                (org, "SALES"),
                (org, long.upper()),
                (org, long),
                (other, "sales"),  # another organisation's
            ]:
                gid[f"{tenant}:{group}"] = uuid.uuid4()
                await conn.execute(GROUP, gid[f"{tenant}:{group}"], tenant, group, next(seq))
            root, a, b = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
            await conn.execute(UNIT, root, org, None, "Root", str(root), next(seq))
            await conn.execute(UNIT, a, org, root, "A", f"{root}/{a}", next(seq))
            await conn.execute(UNIT, b, org, root, "B", f"{root}/{b}", next(seq))
            uid: dict[str, uuid.UUID] = {}
            for parent, unit in [(a, "Berlin"), (a, "berlin"), (b, "BERLIN"), (a, "berlin ")]:
                uid[f"{parent}:{unit}"] = unit_id = uuid.uuid4()
                path = f"{root}/{parent}/{unit_id}"
                await conn.execute(UNIT, unit_id, org, parent, unit, path, next(seq))
        finally:
            await conn.close()

        await migrate_to(urls.admin, "")

        conn = await asyncpg.connect(**database.connection_params(urls.admin))
        try:
            rows = await conn.fetch("SELECT id, name FROM groups")
            got = {r["id"]: r["name"] for r in rows}
            assert got[gid[f"{org}:Sales"]] == "Sales"
            assert got[gid[f"{org}:sales"]] == "sales (3)"
            assert got[gid[f"{org}:Sales (2)"]] == "Sales (2)"
            assert got[gid[f"{org}:SALES"]] == "SALES (4)"
            assert got[gid[f"{org}:{long.upper()}"]] == long.upper()
            assert got[gid[f"{org}:{long}"]] == "x" * 196 + " (2)"
            assert got[gid[f"{other}:sales"]] == "sales"
            units_ = {r["id"]: r["name"] for r in await conn.fetch("SELECT id, name FROM units")}
            assert units_[uid[f"{a}:Berlin"]] == "Berlin"
            assert units_[uid[f"{a}:berlin"]] == "berlin (2)"
            assert units_[uid[f"{b}:BERLIN"]] == "BERLIN"  # another parent's
            assert units_[uid[f"{a}:berlin "]] == "berlin "  # spaces make it differ here
            events = await conn.fetch(
                "SELECT e.tenant_id, e.actor, e.action, e.target_id, e.before, e.after "
                "FROM audit_events e JOIN audit_pending p "
                "ON p.tenant_id = e.tenant_id AND p.event_id = e.id ORDER BY e.id"
            )
            assert [(e["action"], e["target_id"]) for e in events] == [
                ("group.updated", str(gid[f"{org}:sales"])),
                ("group.updated", str(gid[f"{org}:SALES"])),
                ("group.updated", str(gid[f"{org}:{long}"])),
                ("unit.renamed", str(uid[f"{a}:berlin"])),
            ]
            assert {e["tenant_id"] for e in events} == {org}
            assert events[0]["actor"] == "system:migration 0035_names_unique_ignoring_case"
            assert (events[0]["before"], events[0]["after"]) == (
                '{"name": "sales"}',
                '{"name": "sales (3)"}',
            )
            assert '"name": "berlin (2)"' in events[3]["after"]
            assert f'"parent_id": "{a}"' in events[3]["after"]
            forced = await conn.fetch(
                "SELECT relname FROM pg_class WHERE relforcerowsecurity AND relname = ANY($1)",
                list(MIGRATION.LIFTED),
            )
            assert len(forced) == len(MIGRATION.LIFTED)
            with pytest.raises(asyncpg.UniqueViolationError) as raised:
                await conn.execute(GROUP, uuid.uuid4(), org, "sALES", 0)
            assert raised.value.constraint_name == groups.NAME_INDEX
            unit_id = uuid.uuid4()
            with pytest.raises(asyncpg.UniqueViolationError) as raised:
                await conn.execute(UNIT, unit_id, org, a, "BERLIN", f"{root}/{a}/{unit_id}", 0)
            assert raised.value.constraint_name == units.NAME_INDEX
        finally:
            await conn.close()
    finally:
        admin = await asyncpg.connect(
            **database.connection_params(database.with_database(admin_server_url, "postgres"))
        )
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
