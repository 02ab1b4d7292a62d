"""The mover preview (``tenants.policy.moves``) on random small organisations, on the real
database: what it lists must be exactly what resolving the member before the move and
after it (really moved, then resolved again) says differs."""

from __future__ import annotations

import uuid

import asyncpg
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from policies.moves import UnitGrant, grants_crossed
from tenants import db
from tenants.policy import moves
from tenants.policy import service as policy
from tests.conftest import OrgHandle, make_org
from tests.tenants.test_policy_preview_classes import OrgSpec, build, org_specs


@settings(max_examples=30, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(spec=org_specs(), data=st.data())
async def test_the_move_preview_is_the_difference_of_resolving_before_and_after(
    org: OrgHandle, owner_conn: asyncpg.Connection, spec: OrgSpec, data: st.DataObject
) -> None:
    assume(spec.members)
    who = data.draw(st.integers(0, len(spec.members) - 1), label="member")
    new_unit = data.draw(st.none() | st.integers(0, len(spec.parents)), label="unit")
    new_groups = data.draw(
        st.none() | st.frozensets(st.integers(0, len(spec.group_priorities) - 1))
        if spec.group_priorities else st.none() | st.just(frozenset()),
        label="groups",
    )
    handle = await make_org(org.client)
    async with db.tenant_transaction(handle.id):
        units, groups = await build(handle, spec)
        member_id = (await db.fetch_one("SELECT id FROM members WHERE email = $1", f"m{who}@x.example") or {})["id"]
        unit_id = None if new_unit is None else units[new_unit]
        group_ids = None if new_groups is None else [groups[g] for g in sorted(new_groups)]
        preview = await moves.preview_move(member_id, unit_id=unit_id, group_ids=group_ids)
        before = (await policy.effective_settings([member_id]))[member_id]
        if unit_id is not None:
            await db.fetch("UPDATE members SET unit_id = $1 WHERE id = $2", unit_id, member_id)
        if group_ids is not None:
            await db.fetch("DELETE FROM group_memberships WHERE member_id = $1", member_id)
            for g in group_ids:
                await db.fetch(
                    "INSERT INTO group_memberships (id, tenant_id, group_id, member_id, created_at, updated_at) "
                    "VALUES ($1, $2, $3, $4, now(), now())",
                    uuid.uuid4(), handle.id, g, member_id,
                )
        after = (await policy.effective_settings([member_id]))[member_id]
    expected = {
        key: (old.value, after[key].value, old.locked, after[key].locked)
        for key, old in before.items()
        if (old.value, old.locked) != (after[key].value, after[key].locked)
    }
    got = {
        c.setting: (c.value_before, c.value_after, c.locked_before, c.locked_after)
        for c in preview.settings
    }
    assert got == expected


def test_unit_grants_on_the_old_path_only_are_lost_and_on_the_new_path_only_gained() -> None:
    grants = [UnitGrant("root", "r"), UnitGrant("old", "a"), UnitGrant("new", "b"),
              UnitGrant("below", "a2"), UnitGrant("elsewhere", "c")]
    crossed = grants_crossed(grants, ["r", "a"], ["r", "b"])
    assert crossed.lost == ["old"]
    assert crossed.gained == ["new"]
