"""SCIM Users (RFC 7643 §4.1) over members, in the caller's tenant transaction.

Every write goes through the members' own services (``create_member``, ``update_member``,
``move_member``, ``transition_member``), so their rules, audit events and hooks apply
to provisioning exactly as to the API; what SCIM adds (``userName`` and the attributes
members have no column for) is written beside them and audited as
``member.scim_updated``. DELETE never deletes the member: it deprovisions them as the
organisation chose and hides the User (RFC 7644 §3.6).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from scim2_models import SCIMException

from tenants import db
from tenants.actors import Actor
from tenants.audit import service as audit
from tenants.audit.sealer import request_sealing
from tenants.identity import changes as identity
from tenants.members import service as members
from tenants.members.lifecycle import MemberStatus
from tenants.permissions import Role
from tenants.privacy import shredding
from tenants.scim import dialects, service
from tenants.scim.columns import USER_COLUMNS, USER_SELECT, USER_VISIBLE
from tenants.scim.documents import (
    ACTIVE_UNASSIGNED,
    GroupRef,
    UserDocument,
    UserRecord,
    dump,
    member_email,
    member_name,
    parse_member_id,
    unit_value,
    user_document,
    user_for_patch,
    user_model,
    user_version,
)
from tenants.scim.errors import (
    InvalidValueError,
    PreconditionFailedError,
    ResourceNotFoundError,
    UniquenessError,
)
from tenants.scim.listing import ListQuery, run
from tenants.scim.patching import (
    apply_simple,
    first_error,
    parse_patch,
    scim_error,
)
from tenants.scim.schemas import ENTERPRISE_URN, USERS


def _record(row: Mapping[str, Any]) -> UserRecord:
    attributes = row["attributes"]
    if isinstance(attributes, str):
        attributes = json.loads(attributes)
    groups = row["groups"]
    if isinstance(groups, str):
        groups = json.loads(groups)
    return UserRecord(
        id=row["id"],
        email=row["email"],
        name=row["name"],
        status=str(row["status"]),
        external_id=row["external_id"],
        manager_id=row["manager_id"],
        unit_id=row["unit_id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        user_name=row["user_name"],
        attributes=attributes,
        groups=tuple(GroupRef(uuid.UUID(str(g[0])), str(g[1])) for g in groups or ()),
    )


async def get_user(member_id: uuid.UUID, *, for_update: bool = False) -> UserRecord:
    """The User; ResourceNotFoundError when the member is unknown, purged or deleted by SCIM."""
    lock = " FOR UPDATE OF m" if for_update else ""
    row = await db.fetch_one(
        f"{USER_SELECT} WHERE {USER_VISIBLE} AND m.id = $2{lock}", db.current_org(), member_id
    )
    if row is None:
        raise ResourceNotFoundError(f"there is no User with id {member_id}")
    return _record(row)


async def list_users(query: ListQuery) -> tuple[int, list[UserRecord]]:
    total, rows = await run(
        USER_COLUMNS, USER_SELECT, USER_VISIBLE, query, "m.created_at ASC, m.id"
    )
    return total, [_record(r) for r in rows]


def check_version(record_version: str, if_match: str | None, *, kind: str = "User") -> None:
    """RFC 7644 §3.14 / RFC 7232 §3.1: proceed only if ``If-Match`` names the current
    version (weak comparison) or is ``*``; PreconditionFailedError otherwise."""
    if if_match is None:
        return
    wanted = [tag.strip() for tag in if_match.split(",")]
    if "*" in wanted:
        return
    current = record_version.removeprefix("W/")
    if not any(tag.removeprefix("W/") == current for tag in wanted):
        raise PreconditionFailedError(
            f"the {kind} changed: its version is {record_version}, not {if_match}"
        )


# --- writes ----------------------------------------------------------------------------------


async def create_user(payload: Any, *, actor: Actor) -> UserRecord:
    """POST /Users (RFC 7644 §3.3). A User deleted earlier with the same ``userName`` is
    brought back (the same member, reactivated) rather than refused as a duplicate."""
    document = user_document(payload)
    deleted = await db.fetch_one(
        "SELECT id FROM scim_users WHERE tenant_id = $1 AND lower(user_name) = lower($2) "
        "AND deleted_at IS NOT NULL ORDER BY deleted_at DESC LIMIT 1",
        db.current_org(),
        document.user_name,
    )
    if deleted is not None:
        return await _revive(deleted["id"], document, actor=actor)
    await _check_user_name(document.user_name, None)
    rules = await service.get_rules()
    unit_id = (
        await service.units_for([unit_value(document.attributes, rules.unit_attribute)], rules)
    )[0]
    manager_id = parse_member_id(document.manager, "manager")
    email = member_email(document.user_name, document.attributes)
    member = await members.create_member(
        members.NewMember(
            email=email,
            name=member_name(document.user_name, document.attributes),
            unit_id=unit_id,
            manager_id=manager_id,
            roles=(Role.MEMBER,),
            status=MemberStatus.INVITED if document.active is False else MemberStatus.ACTIVE,
            external_id=document.external_id,
        ),
        actor=actor,
    )
    await _store(member.id, document, None, actor=actor)
    return await get_user(member.id)


async def _revive(member_id: uuid.UUID, document: UserDocument, *, actor: Actor) -> UserRecord:
    row = await db.fetch_one(
        f"{USER_SELECT} WHERE m.tenant_id = $1 AND m.id = $2 AND m.status <> 'purged' FOR UPDATE OF m",
        db.current_org(),
        member_id,
    )
    if row is None:
        raise UniquenessError("a deleted User with this userName can no longer be restored")
    before = _record(row)
    await db.connection().execute_query(
        "UPDATE scim_users SET deleted_at = NULL, updated_at = now() WHERE tenant_id = $1 AND id = $2",
        [db.current_org(), member_id],
    )
    await audit.record("member.scim_restored", "member", member_id, actor=actor)
    wanted = document if document.active is not None else replace(document, active=True)
    return await _write(before, wanted, actor=actor)


async def replace_user(
    member_id: uuid.UUID, payload: Any, *, if_match: str | None, actor: Actor
) -> UserRecord:
    """PUT /Users/{id} (RFC 7644 §3.5.1): the User becomes the document; attributes it
    leaves out are cleared."""
    before = await get_user(member_id, for_update=True)
    check_version(user_version(before), if_match)
    return await _write(before, user_document(payload), actor=actor)


async def patch_user(
    member_id: uuid.UUID, payload: Any, *, base: str, if_match: str | None, actor: Actor
) -> UserRecord:
    """PATCH /Users/{id} (RFC 7644 §3.5.2): the operations, once the identity providers'
    dialects are read (``tenants.scim.dialects``), apply in order to the current User, all
    or nothing (scim2-models ``PatchOp.patch``), then the result is written."""
    before = await get_user(member_id, for_update=True)
    check_version(user_version(before), if_match)
    current = user_for_patch(before, base)
    rewritten = dialects.patch_message(USERS, payload, current)
    if dialects.changes_nothing(payload, rewritten):
        return before
    payload = rewritten
    patched = apply_simple(USERS, current, payload)
    if patched is None:
        model = user_model()
        resource = model.model_validate(current)
        patch = parse_patch(model, payload)
        try:
            patch.patch(resource)
        except SCIMException as exc:
            raise scim_error(exc) from None
        except ValidationError as exc:
            raise InvalidValueError(first_error(exc)) from None
        patched = dump(resource)
    return await _write(before, user_document(patched), actor=actor)


async def delete_user(member_id: uuid.UUID, *, if_match: str | None, actor: Actor) -> None:
    """DELETE /Users/{id} (RFC 7644 §3.6): deprovision as the organisation chose, keep the
    member and everything they own, and answer 404 for the User from now on."""
    before = await get_user(member_id, for_update=True)
    check_version(user_version(before), if_match)
    await service.deprovision(before.id, before.status, await service.get_rules(), actor=actor)
    await db.connection().execute_query(
        """
        INSERT INTO scim_users (id, tenant_id, user_name, attributes, deleted_at, created_at, updated_at)
        VALUES ($2, $1, $3, $4::jsonb, now(), now(), now())
        ON CONFLICT (tenant_id, id) DO UPDATE SET deleted_at = now(), updated_at = now()
        """,
        [db.current_org(), before.id, before.user_name or before.email, json.dumps(before.stored)],
    )
    await audit.record(
        "member.scim_deleted",
        "member",
        before.id,
        actor=actor,
        after={"status_before": before.status},
    )


async def _check_user_name(user_name: str, member_id: uuid.UUID | None) -> None:
    """``userName`` is unique among Users, case-insensitively (RFC 7643 §4.1.1); a member
    SCIM never wrote is known by their email."""
    row = await db.fetch_one(
        """
        SELECT EXISTS (SELECT 1 FROM scim_users
                        WHERE tenant_id = $1 AND lower(user_name) = lower($2)
                          AND deleted_at IS NULL AND id IS DISTINCT FROM $3)
            OR EXISTS (SELECT 1 FROM members m
                        WHERE m.tenant_id = $1 AND m.email = lower($2) AND m.status <> 'purged'
                          AND m.id IS DISTINCT FROM $3
                          AND NOT EXISTS (SELECT 1 FROM scim_users s
                                           WHERE s.tenant_id = m.tenant_id AND s.id = m.id))
               AS taken
        """,
        db.current_org(),
        user_name,
        member_id,
    )
    if row is not None and row["taken"]:
        raise UniquenessError(f"another User has the userName {user_name!r}")


async def _write(before: UserRecord, document: UserDocument, *, actor: Actor) -> UserRecord:
    """Make the member and their SCIM row say what ``document`` says: member fields
    through the members' service, unit through ``move_member``, ``active`` through the
    lifecycle; returns the User as it now reads."""
    if (before.user_name or before.email).lower() != document.user_name.lower():
        await _check_user_name(document.user_name, before.id)
    manager_id = parse_member_id(document.manager, "manager")
    changes: dict[str, Any] = {}
    email = member_email(document.user_name, document.attributes)
    if email != before.email:
        changes["email"] = email
    name = member_name(document.user_name, document.attributes)
    if name != before.name:
        changes["name"] = name
    if document.external_id != before.external_id:
        changes["external_id"] = document.external_id
    if manager_id != before.manager_id:
        changes["manager_id"] = manager_id
    # A change of the name alone (the usual PATCH of displayName or name) is written with
    # the SCIM row and one audit event in one statement; anything else goes through
    # update_member and its rules (uniqueness, the reporting line).
    renamed = changes.pop("name") if set(changes) == {"name"} else None
    if changes:
        await members.update_member(before.id, changes, actor=actor)
    if renamed is not None:
        changes["name"] = renamed
    rules: service.Rules | None = None
    unit_id = before.unit_id
    if before.stored.get(ENTERPRISE_URN) != document.attributes.get(ENTERPRISE_URN):
        # Only a change of the unit attribute moves the member: a move made in the console
        # stays until the identity provider says otherwise. Removing the value moves nobody.
        rules = await service.get_rules()
        new_value = unit_value(document.attributes, rules.unit_attribute)
        if new_value is not None and new_value != unit_value(before.stored, rules.unit_attribute):
            unit_id = (await service.units_for([new_value], rules))[0]
            if unit_id != before.unit_id:
                await members.move_member(before.id, unit_id, actor=actor, by=None)
    if document.active is None:
        document = replace(document, attributes={**document.attributes, ACTIVE_UNASSIGNED: True})
    modified = await _store(before.id, document, before, actor=actor, rename=(before.name, renamed))
    status = before.status
    if document.active is not None and document.active != (before.status == MemberStatus.ACTIVE):
        if document.active:
            await service.reactivate(before.id, before.status, actor=actor)
        else:
            rules = await service.get_rules() if rules is None else rules
            await service.deprovision(before.id, before.status, rules, actor=actor)
        return await get_user(before.id)
    if not changes and modified is None and unit_id == before.unit_id:
        return before
    return replace(
        before,
        email=changes.get("email", before.email),
        name=changes.get("name", before.name),
        external_id=document.external_id,
        manager_id=manager_id,
        unit_id=unit_id,
        status=status,
        user_name=document.user_name,
        attributes=document.attributes,
        updated_at=modified or datetime.now(UTC),
    )


async def _store(
    member_id: uuid.UUID,
    document: UserDocument,
    before: UserRecord | None,
    *,
    actor: Actor,
    rename: tuple[str, str | None] = ("", None),
) -> datetime | None:
    """Write ``userName`` and the stored attributes if they differ from ``before`` (and
    the member's new name, ``rename[1]``, if given), audited as one event, in one
    statement. Returns when the row was written, None when nothing changed."""
    old = (
        {"user_name": before.user_name, **before.stored} if before and before.is_provisioned else {}
    )
    new = {"user_name": document.user_name, **document.attributes}
    was, now = audit.changed_fields(old, new)
    for key in old.keys() - new.keys():
        was[key], now[key] = audit.jsonable(old[key]), None
    old_name, new_name = rename
    if not now and new_name is None and before is not None and before.is_provisioned:
        return None
    if new_name is not None:
        action, was, now = (
            "member.updated",
            {"name": old_name, "scim": was},
            {"name": new_name, "scim": now},
        )
    else:
        action = "member.scim_updated"
    [sealed] = await shredding.seal_events(
        actor, action, "member", [(member_id, audit.jsonable(was), audit.jsonable(now))]
    )
    rows = await db.connection().execute_query_dict(
        STORE_SQL,
        [
            db.current_org(),
            member_id,
            document.user_name,
            json.dumps(document.attributes),
            new_name,
            datetime.now(UTC),
            actor.ref,
            sealed.actor_display,
            action,
            json.dumps(sealed.before),
            json.dumps(sealed.after),
            actor.request_id,
            sealed.client_addr,
        ],
    )
    request_sealing()
    if new_name is not None:
        await identity.member_changed(member_id, "updated")
    updated: datetime = rows[0]["updated_at"]
    return updated


#: The member's new name (if any), the SCIM row and the audit event with its place in the
#: sealing queue (as ``tenants.audit.service.record`` writes them), in one round trip.
STORE_SQL = """
WITH renamed AS (
  UPDATE members SET name = $5, updated_at = now()
   WHERE tenant_id = $1 AND id = $2 AND $5::text IS NOT NULL
  RETURNING id
), stored AS (
  INSERT INTO scim_users (id, tenant_id, user_name, attributes, created_at, updated_at)
  VALUES ($2, $1, $3, $4::jsonb, now(), now())
  ON CONFLICT (tenant_id, id) DO UPDATE
     SET user_name = EXCLUDED.user_name, attributes = EXCLUDED.attributes, updated_at = now()
  RETURNING updated_at
), recorded AS (
  INSERT INTO audit_events (tenant_id, occurred_at, actor, actor_display, action, target_type,
                            target_id, before, after, request_id, client_addr)
  VALUES ($1, $6, $7, $8, $9, 'member', $2::text, $10::jsonb, $11::jsonb, $12, $13)
  RETURNING tenant_id, id
), queued AS (
  INSERT INTO audit_pending (tenant_id, event_id) SELECT tenant_id, id FROM recorded
)
SELECT updated_at FROM stored
"""
