"""Preview of a member's move (another unit, other groups): what changes for them.

The member is resolved as they are and as they would be with the organisation's compiled
policy (the same resolution the decision API answers), and ``policies.moves`` lists the
difference; unit data-access grants the move takes the member out of (or into) come from
the unit paths. Admin roles and product accounts are not scoped to units or groups in
this model, so a move changes neither. Nothing is written.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from policies.moves import (
    SettingChange,
    UnitGrant,
    describe_changes,
    grants_crossed,
    setting_changes,
)
from policies.resolve import SourceKind
from tenants import db
from tenants.audit.models import AuditEvent
from tenants.errors import FieldProblem, InvalidInputError
from tenants.mail import service as mail
from tenants.members.lifecycle import MemberStatus
from tenants.members.models import Member
from tenants.models_base import get_by_id, get_referenced
from tenants.policy import service as policy
from tenants.privacy.shredding import reveal_rows
from tenants.units.models import Unit
from tenants.units.rules import ancestor_ids


@dataclass(frozen=True, slots=True)
class GrantCrossed:
    grant_id: uuid.UUID
    unit_id: uuid.UUID
    admin_id: uuid.UUID
    ends_at: datetime | None


@dataclass(frozen=True, slots=True)
class MovePreview:
    member_id: uuid.UUID
    unit_before: uuid.UUID
    unit_after: uuid.UUID
    groups_before: list[uuid.UUID]
    groups_after: list[uuid.UUID]
    settings: list[SettingChange]
    #: Active grants on a unit that cover the member now and would not after the move.
    grants_lost: list[GrantCrossed]
    #: Active grants on a unit that would cover the member after the move.
    grants_gained: list[GrantCrossed]


async def _check_groups(group_ids: list[uuid.UUID]) -> None:
    found = {
        r["id"]
        for r in await db.fetch("SELECT id FROM groups WHERE id = ANY($1::uuid[])", group_ids)
    }
    missing = [g for g in group_ids if g not in found]
    if missing:
        raise InvalidInputError(
            "a group does not exist",
            fields=[FieldProblem("group_ids", f"no group with id {g}") for g in missing],
        )


async def _active_unit_grants(now: datetime) -> list[dict[str, object]]:
    """Approved, started, unrevoked, unexpired grants on a unit (standing access)."""
    rows = await db.fetch(
        """
        SELECT id, unit_id, admin_id, ends_at FROM access_grants
         WHERE unit_id IS NOT NULL AND status = 'approved' AND starts_at IS NOT NULL
           AND revoked_at IS NULL AND ends_at > $1
        """,
        now,
    )
    return [dict(r) for r in rows]


async def preview_move(
    member_id: uuid.UUID,
    *,
    unit_id: uuid.UUID | None = None,
    group_ids: list[uuid.UUID] | None = None,
    snapshot: policy.PolicySnapshot | None = None,
) -> MovePreview:
    """What moving ``member_id`` to ``unit_id`` and/or into exactly ``group_ids`` (None:
    unchanged) would change. NotFoundError for an unknown member; InvalidInputError naming
    ``unit_id`` or ``group_ids`` for ones that do not exist. ``snapshot``: the compiled
    policy, when previewing many members in one transaction."""
    member = await get_by_id(Member, member_id, "member")
    target = unit_id if unit_id is not None else member.unit_id
    new_unit = await get_referenced(Unit, target, "unit", field="unit_id")
    old_unit = new_unit if target == member.unit_id else await Unit.get(id=member.unit_id)
    if group_ids is not None:
        group_ids = list(dict.fromkeys(group_ids))
        await _check_groups(group_ids)
    facts = (await policy.member_facts([member.id]))[member.id]
    groups_after = tuple(str(g) for g in group_ids) if group_ids is not None else facts.group_ids
    if snapshot is None:
        snapshot = await policy.compiled_policy(policy.shared_cache(), store=False)
    compiled = snapshot.compiled
    before = compiled.resolve(str(member.unit_id), facts.group_ids, facts.choices)
    after = compiled.resolve(str(target), groups_after, facts.choices)
    grants = await _active_unit_grants(datetime.now(UTC))
    by_id = {str(g["id"]): g for g in grants}
    crossed = grants_crossed(
        [UnitGrant(str(g["id"]), str(g["unit_id"])) for g in grants],
        ancestor_ids(old_unit.path),
        ancestor_ids(new_unit.path),
    )

    def view(grant_id: str) -> GrantCrossed:
        g = by_id[grant_id]
        return GrantCrossed(g["id"], g["unit_id"], g["admin_id"], g["ends_at"])  # type: ignore[arg-type]

    return MovePreview(
        member_id=member.id,
        unit_before=member.unit_id,
        unit_after=target,
        groups_before=sorted(uuid.UUID(g) for g in facts.group_ids),
        groups_after=sorted(uuid.UUID(g) for g in groups_after),
        settings=setting_changes(before, after),
        grants_lost=[view(g) for g in crossed.lost],
        grants_gained=[view(g) for g in crossed.gained],
    )


async def group_change_settings(
    member_ids: list[uuid.UUID], group_id: uuid.UUID, *, joining: bool
) -> dict[uuid.UUID, list[SettingChange]]:
    """What adding the members to (``joining``) or removing them from ``group_id`` changes
    in their settings, for those it changes, read before the change is written. One
    compiled policy and one query for any number of members; none at all for a group
    without rules (its members' settings cannot depend on it)."""
    compiled = (await policy.compiled_policy(policy.shared_cache(), store=False)).compiled
    group = str(group_id)
    if not member_ids or group not in compiled.ruled_groups:
        return {}
    found: dict[uuid.UUID, list[SettingChange]] = {}
    for member_id, facts in (await policy.member_facts(member_ids)).items():
        others = tuple(g for g in facts.group_ids if g != group)
        before = facts.group_ids
        after = (*others, group) if joining else others
        changes = setting_changes(
            compiled.resolve(str(facts.unit_id), before, facts.choices),
            compiled.resolve(str(facts.unit_id), after, facts.choices),
        )
        if changes:
            found[member_id] = changes
    return found


async def unit_move_settings(
    moves: dict[uuid.UUID, uuid.UUID],
) -> dict[uuid.UUID, list[SettingChange]]:
    """What moving each member (key) to a unit (value) changes in their settings, for
    those it changes: one compiled policy and one query for any number of members (a CSV
    import's dry run)."""
    if not moves:
        return {}
    compiled = (await policy.compiled_policy(policy.shared_cache(), store=False)).compiled
    found: dict[uuid.UUID, list[SettingChange]] = {}
    for member_id, facts in (await policy.member_facts(list(moves))).items():
        target = str(moves[member_id])
        if target not in compiled.units:
            continue  # a unit made in the same import: nothing compiled for it yet
        changes = setting_changes(
            compiled.resolve(str(facts.unit_id), facts.group_ids, facts.choices),
            compiled.resolve(target, facts.group_ids, facts.choices),
        )
        if changes:
            found[member_id] = changes
    return found


async def describe_for_admin(changes: list[SettingChange]) -> str:
    """The changes on one line, as a dry run lists them."""
    cat = await policy.catalogue()
    titles = {c.setting: cat[c.setting].title for c in changes if c.setting in cat}
    return "; ".join(describe_changes(changes, titles))


async def tell_members_of_group_change(
    changes: dict[uuid.UUID, list[SettingChange]], told: str
) -> None:
    """Email each active member whose settings a change of their groups changed (``told``
    completes "<organisation> ...", e.g. "added you to the group Lab")."""
    if not changes:
        return
    for member in await Member.filter(id__in=list(changes), status=MemberStatus.ACTIVE):
        await _tell(member, changes[member.id], "member_groups_changed", {"change": told})


async def tell_member(member: Member, preview: MovePreview) -> None:
    """Queue the email telling an active member which of their settings a move changed (in
    the move's transaction, so a move rolled back sends nothing; nothing when no setting
    changes). Grants are not named: some are under delayed disclosure."""
    if not preview.settings or member.status != MemberStatus.ACTIVE:
        return
    unit = await Unit.get(id=preview.unit_after)
    await _tell(member, preview.settings, "member_moved", {"unit_name": unit.name})


async def _tell(
    member: Member, changes: list[SettingChange], template: str, context: dict[str, str]
) -> None:
    cat = await policy.catalogue()
    titles = {c.setting: cat[c.setting].title for c in changes if c.setting in cat}
    await mail.send_later(
        template,
        to=[member.email],
        context={
            "member_name": member.name,
            "changes": "\n".join(describe_changes(changes, titles)),
            "link_path": "/account",
            **context,
        },
        key=f"{template}:{member.id}:{uuid.uuid4()}",
    )


@dataclass(frozen=True, slots=True)
class BulkMovePreview:
    #: Members whose settings would change, by name (sorted), and how many per setting.
    changed: list[str]
    by_setting: dict[str, int]


async def preview_bulk_move(member_ids: list[uuid.UUID], unit_id: uuid.UUID) -> BulkMovePreview:
    """The totals of moving each of ``member_ids`` to ``unit_id``: who has a setting change
    and how many members each setting changes for (one compiled policy for all)."""
    snapshot = await policy.compiled_policy(policy.shared_cache(), store=False)
    changed: list[str] = []
    by_setting: dict[str, int] = {}
    names = {m.id: m.name for m in await Member.filter(id__in=member_ids)}
    for member_id in member_ids:
        if member_id not in names:
            continue
        preview = await preview_move(member_id, unit_id=unit_id, snapshot=snapshot)
        if preview.settings:
            changed.append(names[member_id])
        for c in preview.settings:
            by_setting[c.setting] = by_setting.get(c.setting, 0) + 1
    return BulkMovePreview(sorted(changed), by_setting)


def recorded(changes: list[SettingChange]) -> list[dict[str, Any]]:
    """A move's setting changes as its audit event keeps them (JSON)."""
    return [{**asdict(c), "source_after": c.source_after.value} for c in changes]


@dataclass(frozen=True, slots=True)
class PastMove:
    """A move that changed some of the member's settings, as their account page shows it."""

    at: datetime
    unit_name: str
    lines: list[str]


#: How long the account page keeps showing what a move changed.
PAST_MOVES_SHOWN_FOR = timedelta(days=90)


async def past_moves(member_id: uuid.UUID, *, limit: int = 3) -> list[PastMove]:
    """The member's recent moves that changed their settings, newest first, read from the
    moves' audit events (the record of what they were told; after an erasure the values
    read as erased and the move is not shown)."""
    since = datetime.now(UTC) - PAST_MOVES_SHOWN_FOR
    events = (
        await AuditEvent.filter(
            target_type="member",
            target_id=str(member_id),
            action="member.moved",
            occurred_at__gte=since,
        )
        .order_by("-id")
        .limit(limit)
        .values("occurred_at", "after")
    )
    if not events:
        return []
    events = await reveal_rows([dict(e) for e in events], ("after",))
    cat = await policy.catalogue()
    units = {
        str(u.id): u.name
        for u in await Unit.filter(
            id__in=[e["after"].get("unit_id") for e in events if isinstance(e["after"], dict)]
        )
    }
    shown = []
    for event in events:
        after = event["after"] if isinstance(event["after"], dict) else {}
        read = [_change(c) for c in after.get("settings") or [] if isinstance(c, dict)]
        changes = [c for c in read if c is not None]
        if not changes:
            continue
        titles = {c.setting: cat[c.setting].title for c in changes if c.setting in cat}
        shown.append(
            PastMove(
                event["occurred_at"],
                units.get(str(after.get("unit_id")), "another unit"),
                describe_changes(changes, titles),
            )
        )
    return shown


def _change(kept: dict[str, Any]) -> SettingChange | None:
    """A recorded change back; None for one an erasure made unreadable."""
    try:
        return SettingChange(**{**kept, "source_after": SourceKind(kept["source_after"])})
    except (TypeError, ValueError, KeyError):
        return None
