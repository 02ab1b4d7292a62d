"""Importing members from CSV: a dry run says, per line, what would be created, changed
or refused; applying does exactly that in the caller's one transaction through the same
service functions as the API (so each change has its audit event), and writes nothing
when any line is refused."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from tenants import db
from tenants.actors import Actor
from tenants.errors import FieldProblem, InvalidInputError
from tenants.members import roles, service
from tenants.members.csvio import ImportLine, parse_import
from tenants.members.lifecycle import MemberStatus
from tenants.members.models import Member
from tenants.permissions import Permission, Role
from tenants.policy import moves
from tenants.text import counted
from tenants.units.models import Unit


@dataclass(frozen=True, slots=True)
class LineOutcome:
    number: int
    email: str
    #: created, changed, unchanged or refused
    outcome: str
    detail: str


@dataclass(slots=True)
class ImportReport:
    lines: list[LineOutcome] = field(default_factory=list)
    applied: bool = False

    def count(self, outcome: str) -> int:
        return sum(1 for line in self.lines if line.outcome == outcome)

    @property
    def refused(self) -> list[LineOutcome]:
        return [line for line in self.lines if line.outcome == "refused"]


@dataclass(frozen=True, slots=True)
class _Planned:
    line: ImportLine
    unit_id: uuid.UUID | None
    existing: Member | None
    changes: dict[str, Any]


async def _units_by_ref(refs: set[str]) -> dict[str, uuid.UUID | str]:
    """Each unit reference (id or unique name) to its id, or to why it does not resolve."""
    resolved: dict[str, uuid.UUID | str] = {}
    ids: dict[str, uuid.UUID] = {}
    names = set()
    for ref in refs:
        try:
            ids[ref] = uuid.UUID(ref)
        except ValueError:
            names.add(ref)
    found_ids = {u.id for u in await Unit.filter(id__in=list(ids.values()))}
    for ref, unit_id in ids.items():
        resolved[ref] = unit_id if unit_id in found_ids else f"no unit with id {ref}"
    # Capitals do not make unit names differ (migration 0035), so none make a reference
    # miss: "berlin" finds "Berlin". Siblings cannot clash, units under different parents
    # may, and then the line is asked for an id. PostgreSQL's lower() on both sides, as
    # the uniqueness rule compares.
    by_name: dict[str, list[uuid.UUID]] = {}
    for row in await db.fetch(
        "SELECT r.ref, u.id FROM unnest($2::text[]) AS r (ref) "
        "JOIN units u ON u.tenant_id = $1 AND lower(u.name) = lower(r.ref)",
        db.current_org(),
        sorted(names),
    ):
        by_name.setdefault(row["ref"], []).append(row["id"])
    for name in names:
        matches = by_name.get(name, [])
        if len(matches) == 1:
            resolved[name] = matches[0]
        elif matches:
            resolved[name] = f"{len(matches)} units are named {name!r}; use the unit's id"
        else:
            resolved[name] = f"no unit named {name!r}"
    return resolved


#: What a line changes of a member, in the words of the file's columns.
CHANGED_WORDS = {"name": "name", "manager_id": "manager", "roles": "roles", "unit_id": "unit"}


async def _plan(
    text: str, default_unit: uuid.UUID, assigner: frozenset[Permission], field: str
) -> tuple[ImportReport, list[_Planned]]:
    parsed = parse_import(text)
    if parsed.header_problem is not None:
        # No line can be read without its header: the file is refused as a whole (a
        # report of one refused "line" answered 200 to a body that was no CSV file at all).
        raise InvalidInputError(
            f"the file cannot be imported: {parsed.header_problem}",
            fields=[FieldProblem(field, f"line 1: {parsed.header_problem}")],
        )
    report = ImportReport()
    # Every problem of a line, so that one round of fixes is enough.
    refused: dict[int, list[str]] = {}
    for problem in parsed.problems:
        refused.setdefault(problem.number, []).append(problem.reason)
    emails_of = {p.number: p.email for p in parsed.problems} | {
        ln.number: ln.email for ln in parsed.lines
    }
    lines = parsed.lines
    emails = {line.email for line in lines} | {
        line.manager_email for line in lines if line.manager_email
    }
    existing = {m.email: m for m in await Member.filter(email__in=list(emails))}
    units = await _units_by_ref({line.unit for line in lines if line.unit})
    planned: list[_Planned] = []
    new_emails = {line.email for line in lines if line.email not in existing}
    for line in lines:
        problems: list[str] = []
        unit_ref = units.get(line.unit) if line.unit else None
        if isinstance(unit_ref, str):
            problems.append(unit_ref)
        if line.manager_email and line.manager_email not in existing:
            if line.manager_email in new_emails:
                problems.append(
                    f"manager {line.manager_email} is new in this file; add them first, then set the manager"
                )
            else:
                problems.append(f"no member with email {line.manager_email} (manager)")
        member = existing.get(line.email)
        beyond = sorted(
            r
            for r in set(line.roles) ^ set(member.roles if member else [Role.MEMBER.value])
            if line.roles and not roles.may_assign(assigner, Role(r))
        )
        if beyond:
            problems.append(
                f"roles: {', '.join(beyond)} is beyond your own permissions; ask an owner"
            )
        if problems or isinstance(unit_ref, str):  # the second for the type checker
            refused.setdefault(line.number, []).extend(problems)
            continue
        manager_id = existing[line.manager_email].id if line.manager_email else None
        if member is None:
            planned.append(
                _Planned(line, unit_ref or default_unit, None, {"manager_id": manager_id})
            )
            continue
        changes: dict[str, Any] = {}
        if line.name != member.name:
            changes["name"] = line.name
        if line.manager_email and manager_id != member.manager_id:
            changes["manager_id"] = manager_id
        if line.roles and sorted(set(line.roles)) != sorted(member.roles):
            changes["roles"] = sorted(set(line.roles))
        if unit_ref is not None and unit_ref != member.unit_id:
            changes["unit_id"] = unit_ref
        if set(changes) - {"roles"} and not roles.may_act_for(assigner, member.roles):
            # As a single change by them would be (a helpdesk moved and renamed owners
            # through the file).
            above = (r for r in member.roles if r in set(Role))
            named = roles.role_names(r for r in above if not roles.may_assign(assigner, Role(r)))
            refused.setdefault(line.number, []).append(
                f"{line.email} holds the role {named}, beyond your own permissions: you "
                "cannot change their details or unit; ask an owner"
            )
            continue
        planned.append(_Planned(line, unit_ref, member, changes))
    by_number = {p.line.number: p for p in planned}
    # What each move changes in the member's settings, shown before anything is applied.
    settings = await moves.unit_move_settings(
        {
            p.existing.id: p.changes["unit_id"]
            for p in planned
            if p.existing is not None and "unit_id" in p.changes
        }
    )
    for number in sorted(set(refused) | set(by_number)):
        if number in refused:
            report.lines.append(
                LineOutcome(
                    number, emails_of.get(number, ""), "refused", "; ".join(refused[number])
                )
            )
            continue
        p = by_number[number]
        if p.existing is None:
            given = [r for r in p.line.roles if r != Role.MEMBER.value]
            report.lines.append(
                LineOutcome(
                    number,
                    p.line.email,
                    "created",
                    f"new {p.line.status} member {p.line.name}"
                    + (f", given the role {roles.role_names(given)}" if given else ""),
                )
            )
        elif p.changes:
            # The roles by name (a dry run said "roles" for a line that made someone Owner).
            detail = ", ".join(
                f"roles: {roles.role_names(p.changes['roles']) or 'Member'}"
                if c == "roles"
                else CHANGED_WORDS.get(c, c)
                for c in sorted(p.changes)
            )
            if p.existing.id in settings:
                changed = await moves.describe_for_admin(settings[p.existing.id])
                detail += f"; their settings change: {changed}"
            report.lines.append(LineOutcome(number, p.line.email, "changed", detail))
        else:
            report.lines.append(LineOutcome(number, p.line.email, "unchanged", ""))
    return report, [p for p in planned if p.line.number not in refused]


async def import_members(
    text: str,
    *,
    default_unit: uuid.UUID,
    apply: bool,
    actor: Actor,
    assigner: frozenset[Permission],
    field: str = "body",
) -> ImportReport:
    """Plan the import (``apply=False``: nothing is written) or apply it; a line giving or
    taking away a role ``assigner`` may not is refused. Applying with any
    refused line raises InvalidInputError naming each line (``line 3: ...``) before
    anything is written; a line failing while applied (a race) raises and the caller's
    transaction rolls back every line. A file whose header cannot be read is refused as a
    whole, naming ``field`` (the request's body, the console's text area)."""
    report, planned = await _plan(text, default_unit, assigner, field)
    if not apply:
        return report
    if report.refused:
        raise InvalidInputError(
            f"{counted(len(report.refused), 'line')} refused; nothing was imported",
            fields=[FieldProblem(f"line {r.number}", r.detail) for r in report.refused],
        )
    for p in planned:
        if p.existing is None:
            await service.create_member(
                service.NewMember(
                    email=p.line.email,
                    name=p.line.name,
                    unit_id=p.unit_id or default_unit,
                    manager_id=p.changes.get("manager_id"),
                    roles=tuple(Role(r) for r in p.line.roles) or (Role.MEMBER,),
                    status=MemberStatus(p.line.status),
                ),
                actor=actor,
                assigner=assigner,
            )
            continue
        changes = dict(p.changes)
        unit_id = changes.pop("unit_id", None)
        if changes:
            await service.update_member(p.existing.id, changes, actor=actor, assigner=assigner)
        if unit_id is not None:
            await service.move_member(p.existing.id, unit_id, actor=actor, by=assigner)
    report.applied = True
    return report
