"""The impact preview resolves classes of members (``tenants.policy.service._impact``):
on random organisations, on the real database, it must say exactly what resolving every
member in the scope before and after the change says, whether counted in one pass or in
parts as a preview job counts it (``tenants.policy.previews``) (the reference below, which is what
the preview did before classes: every member through the compiled policy)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies.catalogue import Catalogue
from policies.resolve import Rule, SourceKind, TargetKind, compile_policy
from tenants import db
from tenants.policy import previews
from tenants.policy import service as policy
from tenants.policy.models import PolicyRule
from tests.conftest import OrgHandle, make_org

#: (setting, values it may take): a boolean, a member-choosable enum, and a setting
#: members may not choose (so a choice of it is a hidden one).
SETTINGS = {
    "personalisation.recommendations": [True, False],
    "social.activity_visibility": ["nobody", "network", "organisation"],
    "cookies.necessary": [True, False],
}


@dataclass(frozen=True)
class OrgSpec:
    parents: list[int]  # unit i+1's parent index (unit 0 is the root)
    group_priorities: list[int]
    members: list[tuple[int, frozenset[int], dict[str, Any]]]  # unit, groups, choices
    rules: list[tuple[str, int, str, Any, bool]]  # kind, target index, setting, value, enforced
    change: tuple[str, int, str, Any, bool, bool]  # kind, target, setting, value, enforced, remove


@st.composite
def org_specs(draw: st.DrawFn) -> OrgSpec:
    units = draw(st.integers(1, 7))
    parents = [draw(st.integers(0, i)) for i in range(units - 1)]
    groups = draw(st.lists(st.integers(-3, 3), min_size=0, max_size=4))
    choice = st.sampled_from(list(SETTINGS)).flatmap(
        lambda key: st.tuples(st.just(key), st.sampled_from(SETTINGS[key]))
    )
    members = draw(
        st.lists(
            st.tuples(
                st.integers(0, units - 1),
                st.frozensets(st.integers(0, len(groups) - 1), max_size=len(groups))
                if groups
                else st.just(frozenset()),
                st.lists(choice, max_size=3).map(dict),
            ),
            min_size=0,
            max_size=25,
        )
    )

    def target() -> st.SearchStrategy[tuple[str, int]]:
        kinds = [st.tuples(st.just("unit"), st.integers(0, units - 1))]
        if groups:
            kinds.append(st.tuples(st.just("group"), st.integers(0, len(groups) - 1)))
        return st.one_of(*kinds)

    def rule() -> st.SearchStrategy[tuple[str, int, str, Any, bool]]:
        return st.tuples(target(), choice, st.booleans()).map(
            lambda t: (t[0][0], t[0][1], t[1][0], t[1][1], t[2])
        )

    rules = draw(st.lists(rule(), max_size=8))
    kind, index, key, value, enforced = draw(rule())
    return OrgSpec(parents, groups, members, rules, (kind, index, key, value, enforced, draw(st.booleans())))


async def build(org: OrgHandle, spec: OrgSpec) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """Write the organisation of ``spec`` under ``org``'s root; returns unit and group ids."""
    conn = db.connection()
    tenant = db.current_org()
    root_path = (await db.fetch_one("SELECT path FROM units WHERE id = $1", org.root_unit_id) or {})["path"]
    units, paths = [org.root_unit_id], [root_path]
    for i, parent in enumerate(spec.parents):
        unit_id = uuid.uuid4()
        units.append(unit_id)
        paths.append(f"{paths[parent]}/{unit_id}")
        await conn.execute_query(
            "INSERT INTO units (id, tenant_id, parent_id, path, depth, name, created_at, updated_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, now(), now())",
            [unit_id, tenant, units[parent], paths[-1], paths[-1].count("/"), f"unit {i}"],
        )
    groups = []
    for i, priority in enumerate(spec.group_priorities):
        group_id = uuid.uuid4()
        groups.append(group_id)
        await conn.execute_query(
            "INSERT INTO groups (id, tenant_id, name, description, priority, created_at, updated_at) "
            "VALUES ($1, $2, $3, '', $4, now(), now())",
            [group_id, tenant, f"group {i}", priority],
        )
    for i, (unit, member_groups, choices) in enumerate(spec.members):
        member_id = uuid.uuid4()
        await conn.execute_query(
            "INSERT INTO members (id, tenant_id, email, name, unit_id, roles, status, created_at, updated_at) "
            "VALUES ($1, $2, $3, $3, $4, '[]', 'active', now(), now())",
            [member_id, tenant, f"m{i}@x.example", units[unit]],
        )
        for g in member_groups:
            await conn.execute_query(
                "INSERT INTO group_memberships (id, tenant_id, group_id, member_id, created_at, updated_at) "
                "VALUES ($1, $2, $3, $4, now(), now())",
                [uuid.uuid4(), tenant, groups[g], member_id],
            )
        for key, value in choices.items():
            await conn.execute_query(
                "INSERT INTO member_choices (id, tenant_id, member_id, setting, value, created_at, updated_at) "
                "VALUES ($1, $2, $3, $4, $5::jsonb, now(), now())",
                [uuid.uuid4(), tenant, member_id, key, policy.json.dumps(value)],
            )
    seen = set()
    for kind, index, key, value, enforced in spec.rules:
        target = units[index] if kind == "unit" else groups[index]
        if (target, key) in seen:
            continue
        seen.add((target, key))
        await conn.execute_query(
            "INSERT INTO policy_rules (id, tenant_id, unit_id, group_id, setting, value, enforced, "
            "reason, created_at, updated_at) "
            "VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, '', now(), now())",
            [uuid.uuid4(), tenant, target if kind == "unit" else None,
             target if kind == "group" else None, key, policy.json.dumps(value), enforced],
        )
    await policy.structure_changed()
    return units, groups


async def reference_impact(
    target_kind: TargetKind, target_id: uuid.UUID, key: str, candidate: Rule | None
) -> policy.Impact:
    """Every member in the scope resolved before and after through the compiled policy."""
    cat = await policy.catalogue()
    before = (await policy.compiled_policy()).compiled
    current = [policy.as_rule(r) for r in await PolicyRule.all()]
    kept = [r for r in current if not (r.setting == key and r.target_id == str(target_id))]
    unit_parents, groups = await policy._structure()
    after = compile_policy(cat, unit_parents, [*kept, *([candidate] if candidate else [])], groups)
    facts = await policy.member_facts(await policy._members_in_scope(target_kind, target_id))
    names = {str(u["id"]): u["name"] for u in await db.fetch("SELECT id, name FROM units")}
    setting = cat[key]
    changed = overridden = locked = off = 0
    per_unit: dict[str, int] = defaultdict(int)
    for f in facts.values():
        old = before.resolve(str(f.unit_id), f.group_ids, f.choices)[key]
        new = after.resolve(str(f.unit_id), f.group_ids, f.choices)[key]
        if new.value != old.value:
            changed += 1
            per_unit[names[str(f.unit_id)]] += 1
            off += int(setting.is_off(new.value))
            if old.source.kind is SourceKind.MEMBER and new.source.kind is not SourceKind.MEMBER:
                overridden += 1
        locked += int(new.locked)
    if candidate is not None:
        stops = setting.off_effect if setting.is_off(candidate.value) else ""
    else:
        stops = setting.off_effect if off else ""
    return policy.Impact(key, len(facts), changed, overridden,
                         sorted(per_unit.items(), key=lambda kv: (-kv[1], kv[0])), stops, locked)


@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(spec=org_specs())
async def test_the_preview_by_classes_says_what_resolving_everyone_says(
    org: OrgHandle, owner_conn: asyncpg.Connection, spec: OrgSpec
) -> None:
    handle = await make_org(org.client)
    async with db.tenant_transaction(handle.id):
        units, groups = await build(handle, spec)
        kind, index, key, value, enforced, remove = spec.change
        target_kind = TargetKind.UNIT if kind == "unit" else TargetKind.GROUP
        target_id = units[index] if kind == "unit" else groups[index]
        if remove:
            got = await policy.preview_rule_removal(target_kind, target_id, key)
            expected = await reference_impact(target_kind, target_id, key, None)
        else:
            change = policy.RuleInput(target_kind, target_id, key, value, enforced)
            got = await policy.preview_rule_change(change)
            candidate = Rule("preview", target_kind, str(target_id), key, value, enforced, "")
            expected = await reference_impact(target_kind, target_id, key, candidate)
        in_parts = await impact_in_parts(target_kind, target_id, key, None if remove else candidate)
    assert got == expected
    assert in_parts == expected


async def impact_in_parts(
    target_kind: TargetKind, target_id: uuid.UUID, key: str, candidate: Rule | None
) -> policy.Impact:
    """The preview as a preview job counts it: the scope in parts of about one member."""
    plan = await policy.impact_plan(target_kind, target_id, key, candidate)
    tally = policy.ImpactTally()
    for part in await policy.scope_parts(target_kind, target_id, part_members=1):
        await previews.count_part(plan, part, tally)
    return await policy.impact_of(plan, tally)


def test_the_catalogue_has_the_settings_the_property_test_draws() -> None:
    from policies.catalogue import BUILTIN

    assert isinstance(BUILTIN, Catalogue)
    for key, values in SETTINGS.items():
        for value in values:
            BUILTIN.validate(key, value)
    assert not BUILTIN["cookies.necessary"].member_choosable
    assert datetime.now(UTC)
