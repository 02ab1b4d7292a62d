"""Writes and reads of groups and group membership, in the caller's tenant transaction."""

from __future__ import annotations

import uuid
from contextlib import nullcontext
from typing import Any

from policies.moves import SettingChange
from policies.resolve import TargetKind
from tenants import db, names, text
from tenants.actors import Actor
from tenants.audit import service as audit
from tenants.groups.models import Group, GroupMembership
from tenants.identity import changes as identity
from tenants.members.lifecycle import check_changeable
from tenants.members.models import Member
from tenants.members.roles import check_may_act_for
from tenants.members.service import get_member
from tenants.models_base import get_by_id
from tenants.permissions import Permission
from tenants.policy import moves
from tenants.policy import service as policy
from tenants.units.service import name_prefix_pattern

SORTABLE = ("name", "priority", "created_at")
#: A group's name, at most (the column's length).
NAME_MAX_LENGTH = 200
#: A group's description, at most: what the API has always accepted (the column is text;
#: the console used to cut at 1,000, so a longer one saved through the API was cut when
#: the group was next saved in the console).
DESCRIPTION_MAX_LENGTH = 5000


def snapshot(group: Group) -> dict[str, Any]:
    return {"name": group.name, "description": group.description, "priority": group.priority}


async def get_group(group_id: uuid.UUID, *, for_update: bool = False) -> Group:
    return await get_by_id(Group, group_id, "group", for_update=for_update)


#: Group names: unique in the organisation whatever their capitals (migration 0035).
NAMES = names.UniqueName(
    table="groups",
    index="groups_tenant_lower_name_key",
    scope=None,
    clash_message="a group named {!r} already exists",
    taken="is already taken",
)
NAME_INDEX = NAMES.index


async def _check_name(name: str, exclude: uuid.UUID | None) -> None:
    """ConflictError naming ``name`` and the existing name when another group has the name,
    whatever its capitals."""
    await NAMES.check(name, exclude)


def _check_lengths(changes: dict[str, Any]) -> None:
    """InvalidInputError naming the first field past its limit (nothing is shortened)."""
    text.check_length(changes.get("name"), NAME_MAX_LENGTH, field="name", what="group's name")
    text.check_length(
        changes.get("description"),
        DESCRIPTION_MAX_LENGTH,
        field="description",
        what="group's description",
    )


async def create_group(name: str, description: str, priority: int, *, actor: Actor) -> Group:
    """A new group; InvalidInputError naming a field past its limit, ConflictError naming
    ``name`` when another group has the name in any capitals."""
    _check_lengths({"name": name, "description": description})
    await _check_name(name, None)
    async with NAMES.claimed(name, None):
        group = await Group.create(
            tenant_id=db.current_org(), name=name, description=description, priority=priority
        )
    await audit.record("group.created", "group", group.id, actor=actor, after=snapshot(group))
    await identity.group_changed(group.id, "created")
    return group


async def update_group(group_id: uuid.UUID, changes: dict[str, Any], *, actor: Actor) -> Group:
    """The group with ``changes`` (name, description, priority) applied, as
    ``create_group`` checks them; a new name that differs from the old only in capitals
    is the group's own, not a clash."""
    _check_lengths(changes)
    group = await get_group(group_id, for_update=True)
    if "name" in changes and changes["name"] != group.name:
        await _check_name(changes["name"], group.id)
    before = snapshot(group)
    for field, value in changes.items():
        setattr(group, field, value)
    old, new = audit.changed_fields(before, snapshot(group))
    if not new:
        return group
    async with NAMES.claimed(group.name, group.id) if "name" in new else nullcontext():
        await group.save(update_fields=[*new.keys(), "updated_at"])
    await audit.record("group.updated", "group", group.id, actor=actor, before=old, after=new)
    await identity.group_changed(group.id, "updated")
    if "priority" in new:
        await policy.structure_changed()
    return group


async def delete_group(group_id: uuid.UUID, *, actor: Actor) -> None:
    """Delete a group and its memberships (members themselves are untouched)."""
    group = await get_group(group_id, for_update=True)
    before = snapshot(group)
    count = await GroupMembership.filter(group_id=group.id).count()
    await policy.rules_removed_with(TargetKind.GROUP, group.id, actor=actor)
    await group.delete()
    await audit.record(
        "group.deleted", "group", group.id, actor=actor, before={**before, "member_count": count}
    )
    await identity.group_changed(group.id, "deleted")
    await policy.structure_changed()


async def add_member(
    group_id: uuid.UUID,
    member_id: uuid.UUID,
    *,
    actor: Actor,
    by: frozenset[Permission] | None,
) -> bool:
    """Add a member to a group; False when they already were in it (nothing written).
    ``by``: the permissions of whoever asks, who may change the groups (and so the
    settings) only of members whose permissions they hold all of, as for a move; None for
    the identity provider's groups."""
    group = await get_group(group_id)
    member = await get_member(member_id)
    if by is not None:
        check_may_act_for(by, member.roles, doing="add to a group", field="member_id")
    check_changeable(member.status)
    if await GroupMembership.filter(group_id=group.id, member_id=member.id).exists():
        return False
    changes = await moves.group_change_settings([member.id], group.id, joining=True)
    # ON CONFLICT: the same addition sent twice at once (a retrying client, an IdP) is
    # one addition, and the second finds it made, as it would a moment later; a plain
    # insert made the second a unique violation, answered 409.
    added = await db.fetch_one(
        "INSERT INTO group_memberships (id, tenant_id, group_id, member_id, created_at, "
        "updated_at) VALUES ($1, $2, $3, $4, now(), now()) "
        "ON CONFLICT (tenant_id, group_id, member_id) DO NOTHING RETURNING id",
        uuid.uuid4(),
        db.current_org(),
        group.id,
        member.id,
    )
    if added is None:
        return False
    await audit.record(
        "group.member_added",
        "group",
        group.id,
        actor=actor,
        after={"member_id": member.id, **settings_of(changes, member.id)},
    )
    await _changed(member, changes, f"added you to the group {group.name}")
    return True


async def remove_member(
    group_id: uuid.UUID,
    member_id: uuid.UUID,
    *,
    actor: Actor,
    by: frozenset[Permission] | None,
) -> bool:
    """Remove a member from a group; False when they were not in it (nothing written).
    ``by`` as for ``add_member``.

    NotFoundError when the group or the member does not exist, as for ``add_member``.
    """
    group = await get_group(group_id)
    member = await get_member(member_id)
    if by is not None:
        check_may_act_for(by, member.roles, doing="remove from a group", field="member_id")
    changes = await moves.group_change_settings([member.id], group.id, joining=False)
    deleted = await GroupMembership.filter(group_id=group.id, member_id=member.id).delete()
    if not deleted:
        return False
    await audit.record(
        "group.member_removed",
        "group",
        group.id,
        actor=actor,
        before={"member_id": member_id},
        after=settings_of(changes, member.id) or None,
    )
    await _changed(member, changes, f"removed you from the group {group.name}")
    return True


def settings_of(
    changes: dict[uuid.UUID, list[SettingChange]], member_id: uuid.UUID
) -> dict[str, Any]:
    """The member's changed settings as the audit event records them (what they are told)."""
    return {"settings": moves.recorded(changes[member_id])} if member_id in changes else {}


async def _changed(
    member: Member, changes: dict[uuid.UUID, list[SettingChange]], told: str
) -> None:
    await identity.member_changed(member.id, "groups")
    await policy.member_changed(member.id)
    await moves.tell_members_of_group_change(changes, told)


async def find_groups(text: str, *, limit: int = 10) -> list[Group]:
    """Groups whose name starts with ``text`` (case-insensitive), by name, at most ``limit``;
    one range of the (tenant_id, lower(name)) index."""
    rows = await db.fetch(
        "SELECT id FROM groups WHERE tenant_id = $1 AND lower(name) LIKE $2 "
        "ORDER BY lower(name), id LIMIT $3",
        db.current_org(),
        name_prefix_pattern(text.strip()),
        limit,
    )
    ids = [r["id"] for r in rows]
    found = {g.id: g for g in await Group.filter(id__in=ids)}
    return [found[i] for i in ids if i in found]
