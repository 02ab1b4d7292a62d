"""SCIM Groups (RFC 7643 §4.2) over Tenantry groups, in the caller's tenant transaction.

A Group is a group: creating one creates a group (or, if the organisation allows it,
adopts the existing group of that name not yet provisioned), renaming goes through
``update_group``, deleting through ``delete_group``. Membership is written set-based
(one INSERT and one DELETE whatever the number of members) with the same audit events
and hooks as ``tenants.groups.service.add_member``/``remove_member``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError
from scim2_models import SCIMException

from tenants import db
from tenants.actors import Actor
from tenants.groups import service as groups
from tenants.identity import changes as identity
from tenants.policy import moves
from tenants.policy import service as policy
from tenants.scim import dialects, service
from tenants.scim.columns import GROUP_COLUMNS, GROUP_SELECT, GROUP_VISIBLE
from tenants.scim.documents import (
    GroupDocument,
    GroupRecord,
    dump,
    group_document,
    group_model,
    group_version,
    render_group,
)
from tenants.scim.errors import InvalidValueError, ResourceNotFoundError, UniquenessError
from tenants.scim.listing import ListQuery, run
from tenants.scim.patching import apply_group_simple, first_error, parse_patch, scim_error
from tenants.scim.schemas import GROUPS
from tenants.scim.users import check_version

#: Above this many members changed at once, caches are told the organisation changed
#: rather than each member.
_NOTIFY_EACH_UP_TO = 50


def _record(row: Mapping[str, Any]) -> GroupRecord:
    member_ids = row["members"]
    if isinstance(member_ids, str):
        member_ids = json.loads(member_ids)
    return GroupRecord(
        id=row["id"],
        name=row["name"],
        external_id=row["external_id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        member_ids=tuple(uuid.UUID(str(m)) for m in member_ids or ()),
    )


async def get_group(group_id: uuid.UUID, *, for_update: bool = False) -> GroupRecord:
    lock = " FOR UPDATE OF g" if for_update else ""
    row = await db.fetch_one(
        f"{GROUP_SELECT} WHERE {GROUP_VISIBLE} AND g.id = $2{lock}", db.current_org(), group_id
    )
    if row is None:
        raise ResourceNotFoundError(f"there is no Group with id {group_id}")
    return _record(row)


async def list_groups(query: ListQuery) -> tuple[int, list[GroupRecord]]:
    total, rows = await run(
        GROUP_COLUMNS, GROUP_SELECT, GROUP_VISIBLE, query, "g.created_at ASC, g.id"
    )
    return total, [_record(r) for r in rows]


async def create_group(payload: Any, *, actor: Actor) -> GroupRecord:
    """POST /Groups (RFC 7644 §3.3). A displayName another group has, in any capitals, is
    refused as ``uniqueness`` (409), unless the organisation adopts groups not yet
    provisioned and that one is: it becomes the Group, named as the client spells it."""
    document = group_document(payload)
    await _check_external_id(document.external_id, None)
    rules = await service.get_rules()
    adoptable = None
    if rules.adopt_groups:
        adoptable = await db.fetch_one(
            "SELECT g.id, g.name FROM groups g WHERE g.tenant_id = $1 AND lower(g.name) = lower($2) "
            "AND NOT EXISTS (SELECT 1 FROM scim_groups sg WHERE sg.tenant_id = g.tenant_id AND sg.id = g.id) "
            "FOR UPDATE",
            db.current_org(),
            document.display_name,
        )
    if adoptable is not None:
        group_id = uuid.UUID(str(adoptable["id"]))
        if adoptable["name"] != document.display_name:
            # The same name in other capitals: the identity provider's spelling, as its
            # next PUT would write it.
            await groups.update_group(group_id, {"name": document.display_name}, actor=actor)
    else:
        group_id = (await groups.create_group(document.display_name, "", 0, actor=actor)).id
    await _store_external_id(group_id, document.external_id, exists=False)
    await set_members(group_id, document.member_ids or (), (), actor=actor)
    return await get_group(group_id)


async def replace_group(
    group_id: uuid.UUID, payload: Any, *, if_match: str | None, actor: Actor
) -> GroupRecord:
    """PUT /Groups/{id} (RFC 7644 §3.5.1); a document without ``members`` empties the group."""
    before = await get_group(group_id, for_update=True)
    check_version(group_version(before), if_match, kind="Group")
    return await _write(before, group_document(payload), actor=actor)


async def patch_group(
    group_id: uuid.UUID, payload: Any, *, base: str, if_match: str | None, actor: Actor
) -> GroupRecord:
    """PATCH /Groups/{id} (RFC 7644 §3.5.2), all operations or none, once the identity
    providers' dialects are read (``tenants.scim.dialects``)."""
    before = await get_group(group_id, for_update=True)
    check_version(group_version(before), if_match, kind="Group")
    current = render_group(before, base)
    current.pop("meta")
    rewritten = dialects.patch_message(GROUPS, payload, current)
    if dialects.changes_nothing(payload, rewritten):
        return before
    patched = apply_group_simple(current, rewritten)
    if patched is None:
        model = group_model()
        patch = parse_patch(model, rewritten)
        resource = model.model_validate(current)
        try:
            patch.patch(resource)
        except SCIMException as exc:
            raise scim_error(exc) from None
        except ValidationError as exc:
            raise InvalidValueError(first_error(exc)) from None
        patched = dump(resource)
    return await _write(before, group_document(patched), actor=actor)


async def delete_group(group_id: uuid.UUID, *, if_match: str | None, actor: Actor) -> None:
    """DELETE /Groups/{id}: the group goes (its members stay; rules on it go with it, as a
    new policy version, exactly as when an admin deletes it)."""
    before = await get_group(group_id, for_update=True)
    check_version(group_version(before), if_match, kind="Group")
    await groups.delete_group(group_id, actor=actor)


async def _write(before: GroupRecord, document: GroupDocument, *, actor: Actor) -> GroupRecord:
    if document.display_name != before.name:
        await groups.update_group(before.id, {"name": document.display_name}, actor=actor)
    if document.external_id != before.external_id:
        await _check_external_id(document.external_id, before.id)
        await _store_external_id(before.id, document.external_id, exists=True)
    await set_members(before.id, document.member_ids or (), before.member_ids, actor=actor)
    return await get_group(before.id)


async def _check_external_id(external_id: str | None, group_id: uuid.UUID | None) -> None:
    if external_id is None:
        return
    row = await db.fetch_one(
        "SELECT 1 AS taken FROM scim_groups WHERE tenant_id = $1 AND external_id = $2 "
        "AND id IS DISTINCT FROM $3",
        db.current_org(),
        external_id,
        group_id,
    )
    if row is not None:
        raise UniquenessError(f"another Group has the externalId {external_id!r}")


async def _store_external_id(group_id: uuid.UUID, external_id: str | None, *, exists: bool) -> None:
    await db.connection().execute_query(
        """
        INSERT INTO scim_groups (id, tenant_id, external_id, created_at, updated_at)
        VALUES ($2, $1, $3, now(), now())
        ON CONFLICT (tenant_id, id) DO UPDATE SET external_id = EXCLUDED.external_id, updated_at = now()
        """,
        [db.current_org(), group_id, external_id],
    )


async def set_members(
    group_id: uuid.UUID, wanted: Sequence[uuid.UUID], current: Sequence[uuid.UUID], *, actor: Actor
) -> None:
    """Make the group's visible members ``wanted`` (``current`` is what they are now).

    InvalidValueError naming the first id that is not a User of this organisation. One
    INSERT and one DELETE; one ``group.member_added``/``group.member_removed`` event per
    member; the identity backend and the policy caches are told, as by ``add_member``.
    """
    current_set, wanted_set = set(current), set(wanted)
    added = [m for m in dict.fromkeys(wanted) if m not in current_set]
    removed = [m for m in current if m not in wanted_set]
    if not added and not removed:
        return
    # What the change does to the members' settings, read before it is written; they are
    # told (email) and the events record it, as for a change made in the console.
    joined = await moves.group_change_settings(added, group_id, joining=True)
    left = await moves.group_change_settings(removed, group_id, joining=False)
    if added:
        rows = await db.fetch(
            "SELECT m.id FROM members m "
            "LEFT JOIN scim_users s ON s.tenant_id = m.tenant_id AND s.id = m.id "
            "WHERE m.tenant_id = $1 AND m.id = ANY ($2::uuid[]) "
            "AND m.status <> 'purged' AND s.deleted_at IS NULL",
            db.current_org(),
            added,
        )
        found = {r["id"] for r in rows}
        missing = [m for m in added if m not in found]
        if missing:
            raise InvalidValueError(
                f"members.value {missing[0]} is not a User of this organisation"
            )
        await db.connection().execute_query(
            "INSERT INTO group_memberships (id, tenant_id, group_id, member_id, created_at, updated_at) "
            "SELECT gen_random_uuid(), $1, $2, m, now(), now() FROM unnest($3::uuid[]) AS m "
            "ON CONFLICT DO NOTHING",
            [db.current_org(), group_id, added],
        )
        await service.record_many(
            "group.member_added",
            "group",
            [(group_id, None, {"member_id": m, **groups.settings_of(joined, m)}) for m in added],
            actor=actor,
        )
    if removed:
        await db.connection().execute_query(
            "DELETE FROM group_memberships WHERE tenant_id = $1 AND group_id = $2 AND member_id = ANY ($3::uuid[])",
            [db.current_org(), group_id, removed],
        )
        await service.record_many(
            "group.member_removed",
            "group",
            [(group_id, {"member_id": m}, groups.settings_of(left, m) or None) for m in removed],
            actor=actor,
        )
    name = await db.fetch_one("SELECT name FROM groups WHERE id = $1", group_id)
    group_name = name["name"] if name else "a group"
    await moves.tell_members_of_group_change(joined, f"added you to the group {group_name}")
    await moves.tell_members_of_group_change(left, f"removed you from the group {group_name}")
    changed = added + removed
    if await identity.is_mirrored():
        for member_id in changed:
            await identity.member_changed(member_id, "groups")
    if len(changed) > _NOTIFY_EACH_UP_TO:
        await policy.notify_policy_changed(db.current_org())
    else:
        for member_id in changed:
            await policy.member_changed(member_id)
