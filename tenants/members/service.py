"""Writes and reads of members, in the caller's tenant transaction."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise.expressions import Q, Subquery
from tortoise.filters import escape_like
from tortoise.queryset import QuerySet

from tenants import db
from tenants.actors import Actor
from tenants.audit import service as audit
from tenants.errors import ConflictError, FieldProblem, InvalidInputError
from tenants.groups.models import GroupMembership
from tenants.identity import changes as identity
from tenants.members import lifecycle, roles
from tenants.members.lifecycle import LifecycleAction, MemberStatus, check_changeable
from tenants.members.models import Member
from tenants.models_base import get_by_id, get_referenced
from tenants.pagination import Page, Sort, paginate
from tenants.permissions import Permission, Role
from tenants.policy import moves
from tenants.policy import service as policy
from tenants.units.models import Unit
from tenants.units.service import get_unit, name_prefix_pattern, subtree

SORTABLE = ("email", "name", "created_at", "status")
UPDATABLE = ("email", "name", "manager_id", "roles", "idp_subject", "external_id")


def snapshot(member: Member) -> dict[str, Any]:
    return {
        "email": member.email,
        "name": member.name,
        "unit_id": member.unit_id,
        "manager_id": member.manager_id,
        "roles": sorted(member.roles),
        "idp_subject": member.idp_subject,
        "external_id": member.external_id,
        "status": member.status,
    }


async def get_member(member_id: uuid.UUID, *, for_update: bool = False) -> Member:
    return await get_by_id(Member, member_id, "member", for_update=for_update)


async def find_member(*, email: str | None = None, idp_subject: str | None = None) -> Member | None:
    if email is not None:
        return await Member.filter(email=email.strip().lower()).first()
    if idp_subject is not None:
        return await Member.filter(idp_subject=idp_subject).first()
    return None


async def _check_manager(member_id: uuid.UUID | None, manager_id: uuid.UUID) -> None:
    """The manager must exist and the reporting line must not loop back to the member."""
    if member_id is not None and manager_id == member_id:
        raise InvalidInputError(
            "a member cannot be their own manager",
            fields=[FieldProblem("manager_id", "is the member themselves")],
        )
    if not await Member.filter(id=manager_id).exists():
        raise InvalidInputError(
            "the manager does not exist",
            fields=[FieldProblem("manager_id", f"no member with id {manager_id}")],
        )
    if member_id is None:
        return
    row = await db.fetch_one(
        """
        WITH RECURSIVE line(id, depth) AS (
          SELECT manager_id, 1 FROM members WHERE tenant_id = $1 AND id = $2
          UNION ALL
          SELECT m.manager_id, line.depth + 1 FROM members m JOIN line ON m.id = line.id
           WHERE m.tenant_id = $1 AND line.depth < 1000
        )
        SELECT 1 AS loops FROM line WHERE id = $3 LIMIT 1
        """,
        db.current_org(),
        manager_id,
        member_id,
    )
    if row is not None:
        raise InvalidInputError(
            "the reporting line would loop back to the member",
            fields=[FieldProblem("manager_id", "reports (directly or not) to this member")],
        )


async def _check_unique(field: str, value: str | None, exclude: uuid.UUID | None) -> None:
    if value is None:
        return
    query = Member.filter(**{field: value})
    if exclude is not None:
        query = query.exclude(id=exclude)
    if await query.exists():
        raise ConflictError(
            f"another member already has this {field.replace('_', ' ')}",
            fields=[FieldProblem(field, "is already used by another member")],
        )


async def other_owners(member_id: uuid.UUID) -> int:
    """Owners besides ``member_id`` who can still act (invited or active)."""
    row = await db.fetch_one(
        "SELECT count(*) AS n FROM members WHERE tenant_id = $1 AND id <> $2 "  # noqa: S608 (STAFF is a constant)
        f"AND {roles.STAFF} AND roles @> '[\"owner\"]'::jsonb AND status IN ('invited', 'active')",
        db.current_org(),
        member_id,
    )
    return int(row["n"]) if row else 0


@dataclass(frozen=True, slots=True)
class NewMember:
    email: str
    name: str
    unit_id: uuid.UUID
    manager_id: uuid.UUID | None = None
    roles: tuple[Role, ...] = (Role.MEMBER,)
    status: MemberStatus = MemberStatus.INVITED
    idp_subject: str | None = None
    external_id: str | None = None


def _check_assigner(
    assigner: frozenset[Permission] | None, before: list[str], after: list[str]
) -> None:
    """Refuse roles the assigner may not give or take away. A change of roles without an
    assigner is a caller's bug (an edge that forgot to say who gives them), never allowed."""
    if set(before) == set(after):
        return
    if assigner is None:
        raise RuntimeError("a change of roles needs the assigner's permissions")
    roles.check_may_assign(assigner, before, after)


async def create_member(
    new: NewMember, *, actor: Actor, assigner: frozenset[Permission] | None = None
) -> Member:
    """Create a member (invited or active); the email is stored lower-cased.

    ``assigner``: the permissions of whoever gives the roles, needed for any role but
    ``member`` (``roles.check_may_assign``; ``roles.ANY_ASSIGNER`` for the CLI and seed)."""
    _check_assigner(assigner, [Role.MEMBER.value], [r.value for r in new.roles])
    if new.status not in (MemberStatus.INVITED, MemberStatus.ACTIVE):
        raise InvalidInputError(
            "a new member starts invited or active",
            fields=[FieldProblem("status", "expected invited or active")],
        )
    email = new.email.strip().lower()
    await get_referenced(Unit, new.unit_id, "unit", field="unit_id")
    if new.manager_id is not None:
        await _check_manager(None, new.manager_id)
    await _check_unique("email", email, None)
    await _check_unique("idp_subject", new.idp_subject, None)
    await _check_unique("external_id", new.external_id, None)
    member = await Member.create(
        tenant_id=db.current_org(),
        email=email,
        name=new.name,
        unit_id=new.unit_id,
        manager_id=new.manager_id,
        roles=sorted({r.value for r in new.roles}),
        status=new.status,
        status_changed_at=datetime.now(UTC),
        idp_subject=new.idp_subject,
        external_id=new.external_id,
    )
    await audit.record("member.created", "member", member.id, actor=actor, after=snapshot(member))
    await identity.member_changed(member.id, "created")
    return member


def check_may_edit(editor: frozenset[Permission], member: Member, changes: dict[str, Any]) -> None:
    """Refuse ``changes`` to ``member``'s details (roles aside: they have their own rule)
    unless ``editor`` holds all the member's powers (``roles.check_may_act_for``): a
    helpdesk renamed the owner, and pointed the owner's address at its own mailbox. The
    address and subject are named first, being what sign-in rests on."""
    doing = {"email": "change the email address of", "idp_subject": "relink the sign-in of"}
    changed = [f for f in changes if f != "roles" and changes[f] != getattr(member, f)]
    for field in sorted(changed, key=lambda f: f not in doing)[:1]:
        roles.check_may_act_for(
            editor, member.roles, doing=doing.get(field, "change the details of"), field=field
        )


async def update_member(
    member_id: uuid.UUID,
    changes: dict[str, Any],
    *,
    actor: Actor,
    assigner: frozenset[Permission] | None = None,
) -> Member:
    """Apply ``changes`` (a subset of UPDATABLE); returns early when nothing differs.
    ``assigner``: the permissions of whoever makes the change, needed when the roles change
    (``roles.check_may_assign``), and checked when the address or subject the member signs
    in with changes (``roles.check_may_act_for``). Without one (SCIM, where the identity
    provider is the source of both) those are not checked."""
    unknown = set(changes) - set(UPDATABLE)
    if unknown:
        raise InvalidInputError(
            "these fields cannot be changed here",
            fields=[
                FieldProblem(f, "cannot be changed with this operation") for f in sorted(unknown)
            ],
        )
    member = await get_member(member_id, for_update=True)
    check_changeable(member.status)
    before = snapshot(member)
    if "email" in changes:
        changes["email"] = changes["email"].strip().lower()
        await _check_unique("email", changes["email"], member.id)
    if assigner is not None:
        check_may_edit(assigner, member, changes)
    for field in ("idp_subject", "external_id"):
        if changes.get(field) is not None:
            await _check_unique(field, changes[field], member.id)
    if changes.get("manager_id") is not None and changes["manager_id"] != member.manager_id:
        await _check_manager(member.id, changes["manager_id"])
    if "roles" in changes:
        changes["roles"] = sorted({Role(r).value for r in changes["roles"]})
        _check_assigner(assigner, member.roles, changes["roles"])
        if roles.drops_owner(member.roles, changes["roles"]):
            roles.check_keeps_owner(member.roles, changes["roles"], await other_owners(member.id))
    for field, value in changes.items():
        setattr(member, field, value)
    old, new = audit.changed_fields(before, snapshot(member))
    if not new:
        return member
    # The update and its audit event in one statement (one round trip, see record_change);
    # columns are the UPDATABLE names, values parameters.
    member.updated_at = datetime.now(UTC)
    first = audit.EVENT_PARAMS + 1
    values = [_column_value(member, field) for field in new]
    assignments = ", ".join(
        f"{field} = ${first + 2 + i}{'::jsonb' if field == 'roles' else ''}"
        for i, field in enumerate(new)
    )
    await audit.record_change(
        f"UPDATE members SET {assignments}, updated_at = ${first + 2 + len(new)} "  # noqa: S608
        f"WHERE tenant_id = ${first} AND id = ${first + 1} RETURNING id",
        [db.current_org(), member.id, *values, member.updated_at],
        "member.updated",
        "member",
        member.id,
        actor=actor,
        before=old,
        after=new,
    )
    await identity.member_changed(member.id, "updated")
    return member


def _column_value(member: Member, field: str) -> Any:
    """A member field's value as its column takes it (roles: JSON text for ``::jsonb``)."""
    value = getattr(member, field)
    return json.dumps(value) if field == "roles" else value


async def move_member(
    member_id: uuid.UUID,
    unit_id: uuid.UUID,
    *,
    actor: Actor,
    by: frozenset[Permission] | None,
) -> Member:
    """Move a member to another unit, which changes the settings its rules give them.
    ``by``: the permissions of whoever asks, who may move only members whose permissions
    they hold all of (a helpdesk moved an owner out from under the owner's locks); None
    for the identity provider and the service's own work, whose moves nobody asked of a
    person."""
    member = await get_member(member_id, for_update=True)
    if by is not None:
        roles.check_may_act_for(by, member.roles, doing="move", field="unit_id")
    check_changeable(member.status)
    if member.unit_id == unit_id:
        return member
    await get_referenced(Unit, unit_id, "unit", field="unit_id")
    # Only an active member is told what the move changed for them: no preview otherwise.
    preview = (
        await moves.preview_move(member.id, unit_id=unit_id)
        if member.status == MemberStatus.ACTIVE
        else None
    )
    before = member.unit_id
    member.unit_id = unit_id
    await member.save(update_fields=["unit_id", "updated_at"])
    await audit.record(
        "member.moved",
        "member",
        member.id,
        actor=actor,
        before={"unit_id": before},
        after={
            "unit_id": unit_id,
            # What the move changed for the member, as they are told (email, account page).
            **({"settings": moves.recorded(preview.settings)} if preview is not None else {}),
        },
    )
    await policy.member_changed(member.id)
    if preview is not None:
        await moves.tell_member(member, preview)
    return member


async def transition_member(
    member_id: uuid.UUID, action: LifecycleAction, *, reason: str | None, actor: Actor
) -> Member:
    """Apply a lifecycle action; IllegalTransitionError names the allowed ones.

    Entering a status that may not sign in ends all of the member's sessions in the same
    transaction.
    """
    from tenants.sessions.service import end_member_sessions

    member = await get_member(member_id, for_update=True)
    before = member.status
    member.status = lifecycle.next_status(member.status, action)
    member.status_changed_at = datetime.now(UTC)
    await member.save(update_fields=["status", "status_changed_at", "updated_at"])
    await audit.record(
        f"member.{action.value}",
        "member",
        member.id,
        actor=actor,
        before={"status": before},
        after={"status": member.status, "reason": reason},
    )
    if not lifecycle.can_sign_in(member.status):
        await end_member_sessions(member.id, reason=f"member {member.status.value}", actor=actor)
    await identity.member_changed(member.id, action.value)
    return member


@dataclass(frozen=True, slots=True)
class MemberFilter:
    status: MemberStatus | None = None
    unit_id: uuid.UUID | None = None
    include_subunits: bool = True
    group_id: uuid.UUID | None = None
    q: str | None = None
    manager_id: uuid.UUID | None = None


async def _filtered(filters: MemberFilter) -> QuerySet[Member]:
    query = Member.all()
    if filters.status is not None:
        query = query.filter(status=filters.status)
    if filters.unit_id is not None:
        unit = await get_unit(filters.unit_id)
        if filters.include_subunits:
            query = query.filter(unit_id__in=Subquery(subtree(unit.path).values("id")))
        else:
            query = query.filter(unit_id=unit.id)
    if filters.group_id is not None:
        # A semi-join on the group's memberships (one range of their index), as the subtree
        # filter is written: the join the relation filter made had PostgreSQL read and sort
        # every member of the group for each page (48 ms at 100k members, x4 from 10k).
        in_group = GroupMembership.filter(group_id=filters.group_id).values("member_id")
        query = query.filter(id__in=Subquery(in_group))
    if filters.manager_id is not None:
        query = query.filter(manager_id=filters.manager_id)
    if filters.q:
        text = filters.q.strip()
        matching = await _matching_ids(text)
        if matching is not None:
            query = query.filter(id__in=matching)
        else:
            query = query.filter(Q(email__icontains=text) | Q(name__icontains=text))
    return query


#: Past this many matches a search is broad: the page is then found by walking the sort
#: order and testing each member, which stops early because matches are dense.
SEARCH_MATCHES_CAP = 2000


async def _matching_ids(text: str) -> list[uuid.UUID] | None:
    """The ids of the members whose email or name contains ``text`` (any case), from the
    trigram indexes; None when ``text`` is too short for trigrams (under three
    characters) or matches more than SEARCH_MATCHES_CAP members."""
    if len(text) < 3:
        return None
    rows = await db.fetch(
        "SELECT id FROM members_matching($1, $2) AS id",
        f"%{escape_like(text)}%",
        SEARCH_MATCHES_CAP + 1,
    )
    return None if len(rows) > SEARCH_MATCHES_CAP else [r["id"] for r in rows]


async def list_members(
    filters: MemberFilter, sort: Sort, *, cursor: str | None, limit: int
) -> Page[Member]:
    return await paginate(await _filtered(filters), sort, cursor=cursor, limit=limit)


#: ``find_members``: the start of a name, the start of an email, and (``later_word``,
#: from three characters) the start of a later word of the name.
_FIND_SQL = """
SELECT id FROM (
  (SELECT id, name FROM members WHERE tenant_id = $1 AND lower(name) LIKE $2
     AND id IS DISTINCT FROM $4 AND ($5 = false OR status = 'active')
   ORDER BY lower(name) LIMIT $3)
  UNION
  (SELECT id, name FROM members WHERE tenant_id = $1 AND lower(email) LIKE $2
     AND id IS DISTINCT FROM $4 AND ($5 = false OR status = 'active')
   ORDER BY lower(email) LIMIT $3){later_word}
) found ORDER BY lower(name), id LIMIT $3
"""
_FIND_LATER_WORD = """
  UNION
  (SELECT id, name FROM members WHERE tenant_id = $1
     AND id IN (SELECT m FROM members_matching($6, $7) AS m)
     AND id IS DISTINCT FROM $4 AND ($5 = false OR status = 'active'))"""


async def find_members(
    text: str,
    *,
    limit: int = 10,
    excluding: uuid.UUID | None = None,
    active_only: bool = False,
) -> list[Member]:
    """Members whose name or email starts with ``text``, or one of whose names (a word of
    the name after the first) does, case-insensitively, by name, at most ``limit``: two
    ranges of the lower(name) / lower(email) indexes, and from three characters the
    trigram index for " text" inside the name (so "rahm" finds Ada Rahman), so a
    typeahead costs what it returns. ``excluding``: one member left out (a leaver choosing
    a successor); ``active_only``: only active members (those who can receive work)."""
    text = text.strip()
    args: list[Any] = [db.current_org(), name_prefix_pattern(text), limit, excluding, active_only]
    later_word = ""
    if len(text) >= 3:
        args += [f"% {escape_like(text)}%", limit * 5]
        later_word = _FIND_LATER_WORD
    sql = _FIND_SQL.format(later_word=later_word)
    rows = await db.fetch(sql, *args)
    ids = [r["id"] for r in rows]
    found = {m.id: m for m in await Member.filter(id__in=ids)}
    return [found[i] for i in ids if i in found]


async def count_members(filters: MemberFilter) -> int:
    """How many members match ``filters`` (the list's total). Unfiltered, or by status
    alone, from the counters kept by triggers (migration 0018_sized_by_page): the first
    page of the list costs the same at any size; otherwise a count of the matches."""
    if (
        filters.unit_id is None
        and filters.group_id is None
        and filters.manager_id is None
        and not filters.q
    ):
        name = "members" if filters.status is None else f"members.{filters.status.value}"
        row = await db.fetch_one(
            "SELECT n FROM tenant_counters WHERE tenant_id = $1 AND name = $2",
            db.current_org(),
            name,
        )
        return int(row["n"]) if row else 0
    return await (await _filtered(filters)).count()


async def iter_member_batches(
    filters: MemberFilter, *, batch: int = 500
) -> AsyncIterator[list[Member]]:
    """Every member matching ``filters``, by email, in keyset batches of ``batch``."""
    cursor: str | None = None
    sort = Sort("email")
    while True:
        page = await paginate(await _filtered(filters), sort, cursor=cursor, limit=batch)
        if page.items:
            yield page.items
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


async def names_of(member_ids: list[uuid.UUID]) -> list[str]:
    """The names of these members, by name (unknown ids are left out)."""
    return [m.name for m in await Member.filter(id__in=member_ids).order_by("name")]


async def move_unit_members(from_unit_id: uuid.UUID, to_unit_id: uuid.UUID, *, actor: Actor) -> int:
    """Move every member of one unit (not of its sub-units) to another, in one UPDATE, so
    the unit can then be deleted; one ``member.moved`` event per member, as a single move
    records. Returns how many moved (0 when the units are the same)."""
    if from_unit_id == to_unit_id:
        return 0
    await get_unit(from_unit_id)
    await get_referenced(Unit, to_unit_id, "unit", field="unit_id")
    rows = await db.fetch(
        # As a CTE so the driver hands back the RETURNING rows like a SELECT's.
        "WITH moved AS (UPDATE members SET unit_id = $3, updated_at = now() "
        "WHERE tenant_id = $1 AND unit_id = $2 RETURNING id) SELECT id FROM moved",
        db.current_org(),
        from_unit_id,
        to_unit_id,
    )
    for row in rows:
        await audit.record(
            "member.moved",
            "member",
            row["id"],
            actor=actor,
            before={"unit_id": from_unit_id},
            after={"unit_id": to_unit_id},
        )
    if rows:
        await policy.structure_changed()
    return len(rows)
