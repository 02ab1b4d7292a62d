"""Drift between what an identity backend should hold and what it holds: plain Python over
the port's data, no I/O (reconcile reads both sides, this says how they differ)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from tenants.identity.port import DirectoryMember, DirectoryState


class DriftKind(StrEnum):
    ORGANISATION_MISSING = "organisation_missing"
    ORGANISATION_DIFFERS = "organisation_differs"
    GROUP_MISSING = "group_missing"
    GROUP_DIFFERS = "group_differs"
    GROUP_EXTRA = "group_extra"
    MEMBER_MISSING = "member_missing"
    MEMBER_DIFFERS = "member_differs"
    MEMBER_OUTSIDE_ORGANISATION = "member_outside_organisation"
    MEMBER_EXTRA = "member_extra"


@dataclass(frozen=True, slots=True)
class Drift:
    kind: DriftKind
    #: The Tenantry id of what drifted (the organisation's, a group's, a member's).
    subject_id: str
    #: What people call it (an email, a group name, the slug).
    label: str
    detail: str


def _member_differences(want: DirectoryMember, have: DirectoryMember) -> list[str]:
    found = []
    for name in ("email", "first_name", "last_name", "enabled"):
        wanted, held = getattr(want, name), getattr(have, name)
        if wanted != held:
            found.append(f"{name}: {held!r} → {wanted!r}")
    wanted_groups = {g.group_id: g.name for g in want.groups}
    held_groups = {g.group_id: g.name for g in have.groups}
    for gid in sorted(set(wanted_groups) - set(held_groups)):
        found.append(f"not in group {wanted_groups[gid]}")
    for gid in sorted(set(held_groups) - set(wanted_groups)):
        found.append(f"in group {held_groups[gid]} it left")
    return found


def find_drift(desired: DirectoryState, actual: DirectoryState) -> list[Drift]:
    """Everything ``actual`` must change to equal ``desired``, organisation first, then
    groups, then members (the order in which fixing them works)."""
    drift: list[Drift] = []
    org = desired.organisation
    if org is not None:
        have = actual.organisation
        if have is None:
            drift.append(
                Drift(DriftKind.ORGANISATION_MISSING, org.org_id, org.alias, "not mirrored")
            )
        else:
            differs = [
                f"{name}: {getattr(have, name)!r} → {getattr(org, name)!r}"
                for name in ("name", "domains", "enabled")
                if getattr(have, name) != getattr(org, name)
            ]
            if differs:
                drift.append(
                    Drift(DriftKind.ORGANISATION_DIFFERS, org.org_id, org.alias, "; ".join(differs))
                )
    for gid, group in sorted(desired.groups.items(), key=lambda kv: kv[1].name):
        held = actual.groups.get(gid)
        if held is None:
            drift.append(Drift(DriftKind.GROUP_MISSING, gid, group.name, "not mirrored"))
        elif (held.name, held.description) != (group.name, group.description):
            drift.append(
                Drift(DriftKind.GROUP_DIFFERS, gid, group.name, f"named {held.name!r} there")
            )
    for gid in sorted(set(actual.groups) - set(desired.groups)):
        drift.append(Drift(DriftKind.GROUP_EXTRA, gid, actual.groups[gid].name, "deleted here"))
    for mid, member in sorted(desired.members.items(), key=lambda kv: kv[1].email):
        held_member = actual.members.get(mid)
        if held_member is None:
            drift.append(Drift(DriftKind.MEMBER_MISSING, mid, member.email, "not mirrored"))
            continue
        differences = _member_differences(member, held_member)
        if differences:
            drift.append(Drift(DriftKind.MEMBER_DIFFERS, mid, member.email, "; ".join(differences)))
        if mid in actual.outside_organisation:
            drift.append(
                Drift(
                    DriftKind.MEMBER_OUTSIDE_ORGANISATION,
                    mid,
                    member.email,
                    "not a member of the mirrored organisation",
                )
            )
    for mid in sorted(set(actual.members) - set(desired.members)):
        drift.append(
            Drift(DriftKind.MEMBER_EXTRA, mid, actual.members[mid].email, "purged or unknown here")
        )
    return drift
