"""Scheduled policy changes: advance notice to the members they affect, the announcement
to products when they come into force, and telling those notified when one is called off.

A scheduled change takes effect by itself: resolution uses the time
(``policies.schedule``) and compiled policies expire at the next effective time. What
needs a worker is what must happen once: the notice emails and the ``policy.changed``
webhook. Both are recorded (``PolicyChangeNotice`` rows, ``noticed_for`` and
``announced_at`` on the rule), and the worker's sweep (``keep_policy_schedule``) picks up
whatever is due and not recorded, so a worker that was down catches up when it is back
and nothing is sent twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from tortoise.expressions import Q

from policies.schedule import UpcomingChange, describe_upcoming, when
from tenants import db
from tenants.actors import Actor, system_actor
from tenants.audit import service as audit
from tenants.ids import OrgId
from tenants.mail import service as mail
from tenants.members.lifecycle import MemberStatus
from tenants.members.models import Member
from tenants.organisations.models import Organisation
from tenants.outages import run_periodically
from tenants.policy import service as policy
from tenants.policy.models import PolicyChangeNotice, PolicyRule

log = logging.getLogger(__name__)

#: How often the worker looks for due notices and announcements (seconds).
SWEEP_EVERY = 60.0
#: Members resolved per query while computing notices.
MEMBER_BATCH = 1000


async def upcoming_for(
    member_ids: list[uuid.UUID],
    snapshot: policy.PolicySnapshot | None = None,
    facts: dict[uuid.UUID, policy.MemberFactsRow] | None = None,
) -> dict[uuid.UUID, dict[str, list[UpcomingChange]]]:
    """Each member's coming changes per setting (members that do not exist are absent),
    from ``snapshot`` (default: the organisation's compiled policy now) and ``facts``
    (default: read now)."""
    if snapshot is None:
        snapshot = await policy.compiled_policy(policy.shared_cache())
    if facts is None:
        facts = await policy.member_facts(member_ids)
    result = {}
    for member_id, f in facts.items():
        current = snapshot.compiled.resolve(str(f.unit_id), f.group_ids, f.choices)
        result[member_id] = snapshot.schedule.upcoming(
            current, str(f.unit_id), f.group_ids, f.choices
        )
    return result


# --- advance notice --------------------------------------------------------------------


async def send_notices(*, now: datetime, actor: Actor) -> int:
    """Email every active member affected by a scheduled rule that is within the
    organisation's notice window of ``now`` (or came into force unannounced while the
    worker was down) and not yet noticed for its date, listing exactly what changes for
    them (their own resolution before and at each effective time). Each member is told
    once per rule and date (``PolicyChangeNotice``); the rules are marked noticed for
    their date. Returns how many members were emailed."""
    org = await Organisation.get(id=db.current_org())
    horizon = now + timedelta(days=org.policy_notice_days)
    pending = [
        r
        for r in await PolicyRule.filter(
            Q(effective_from__gt=now) | Q(announced_at__isnull=True),
            effective_from__isnull=False,
            effective_from__lte=horizon,
        ).select_for_update()
        if r.effective_from is not None and r.noticed_for != r.effective_from
    ]
    if not pending:
        return 0
    causes = {str(r.id): r for r in pending}
    #: (setting, effective time) -> the pending rules that change it then.
    by_step: dict[tuple[str, datetime], list[PolicyRule]] = {}
    for r in pending:
        assert r.effective_from is not None
        by_step.setdefault((r.setting, r.effective_from), []).append(r)
    parents, _ = await policy.structure()
    # Compiled just before the earliest pending time, the schedule's steps include every
    # pending time, past ones (a late sweep) too.
    earliest = min(r.effective_from for r in pending if r.effective_from is not None)
    snapshot = await policy.compiled_policy(now=earliest - timedelta(microseconds=1))
    cat = snapshot.compiled.catalogue
    titles = {s.key: s.title for s in cat}
    told = 0
    active = [
        row["id"]
        for row in await db.fetch(
            "SELECT id FROM members WHERE tenant_id = $1 AND status = $2 ORDER BY id",
            db.current_org(),
            MemberStatus.ACTIVE.value,
        )
    ]
    for start in range(0, len(active), MEMBER_BATCH):
        batch = active[start : start + MEMBER_BATCH]
        members = {m.id: m for m in await Member.filter(id__in=batch)}
        facts = await policy.member_facts(batch)
        for member_id, per_setting in (await upcoming_for(batch, snapshot, facts)).items():
            # A change of a setting at a time is caused by the rules effective from then
            # for that setting on the member's units or groups (the answer after it may
            # come from another rule or their own choice: a lock lifted, say).
            f = facts[member_id]
            reach = {*_path(parents, str(f.unit_id)), *f.group_ids}
            changes: list[tuple[UpcomingChange, list[PolicyRule]]] = []
            for c in (c for cs in per_setting.values() for c in cs):
                rules = [
                    r for r in by_step.get((c.setting, c.effective_at), [])
                    if str(r.unit_id or r.group_id) in reach
                ]
                if rules:
                    # A lock lifted has no reason of its own: the rule's is the reason.
                    changes.append((c if c.reason else replace(c, reason=rules[0].reason), rules))
            if not changes:
                continue
            await _tell(members[member_id], changes, titles)
            told += 1
    for rule in pending:
        rule.noticed_for = rule.effective_from
        await rule.save(update_fields=["noticed_for", "updated_at"])
    await audit.record(
        "policy.change_noticed",
        "organisation",
        db.current_org(),
        actor=actor,
        after={
            "rules": sorted(causes),
            "members_told": told,
            "notice_days": org.policy_notice_days,
        },
    )
    return told


def _path(parents: dict[str, str | None], unit: str) -> list[str]:
    """The unit and its ancestors up to the root."""
    path: list[str] = []
    current: str | None = unit
    while current is not None and current not in path:
        path.append(current)
        current = parents.get(current)
    return path


async def _tell(
    member: Member,
    changes: list[tuple[UpcomingChange, list[PolicyRule]]],
    titles: dict[str, str],
) -> None:
    """Queue the notice email and record who was told about which rule and date."""
    for c, rules in changes:
        for rule in rules:
            await db.connection().execute_query(
                "INSERT INTO policy_change_notices (id, tenant_id, rule_id, member_id, setting, "
                "effective_at, created_at, updated_at) "
                "VALUES ($1, $2, $3, $4, $5, $6, now(), now()) "
                "ON CONFLICT (tenant_id, rule_id, member_id, effective_at) "
                "DO UPDATE SET cancelled_at = NULL, updated_at = now()",
                [uuid.uuid4(), db.current_org(), rule.id, member.id, c.setting, c.effective_at],
            )
    what = sorted(
        f"{rule.id}@{c.effective_at.isoformat()}" for c, rules in changes for rule in rules
    )
    digest = hashlib.sha256("|".join(what).encode()).hexdigest()[:24]
    await mail.send_later(
        "policy_change_notice",
        to=[member.email],
        context={
            "member_name": member.name,
            "changes": "\n".join(describe_upcoming([c for c, _ in changes], titles)),
            "link_path": "/account#coming-changes",
        },
        key=f"policy_notice:{member.id}:{digest}",
    )


async def cancel_notices(
    rule: PolicyRule, *, now: datetime, actor: Actor, moved_to: datetime | None = None
) -> int:
    """The scheduled ``rule`` (as stored, before the change) is deleted, moved or changed
    before its time: email the members already told about it that it will not happen as
    announced, mark their notices cancelled, and audit it. Returns how many were told.
    Nothing for a rule already in force or nobody told."""
    if rule.effective_from is None or rule.effective_from <= now:
        return 0
    notices = await PolicyChangeNotice.filter(
        rule_id=rule.id, effective_at=rule.effective_from, cancelled_at__isnull=True
    ).select_for_update()
    if not notices:
        return 0
    cat = await policy.catalogue()
    title = cat[rule.setting].title if rule.setting in cat else rule.setting
    line = f"{title}: the change announced for {when(rule.effective_from)} will not happen"
    line += f"; it now takes effect from {when(moved_to)}." if moved_to else "."
    members = await Member.filter(
        id__in=sorted({n.member_id for n in notices}), status=MemberStatus.ACTIVE
    )
    for member in members:
        await mail.send_later(
            "policy_change_cancelled",
            to=[member.email],
            context={"member_name": member.name, "changes": line, "link_path": "/account"},
            key=f"policy_cancel:{member.id}:{rule.id}:{rule.effective_from.isoformat()}",
        )
    await PolicyChangeNotice.filter(id__in=[n.id for n in notices]).update(cancelled_at=now)
    await audit.record(
        "policy.change_cancelled",
        "policy_rule",
        rule.id,
        actor=actor,
        before={"effective_from": rule.effective_from.isoformat(), "setting": rule.setting},
        after={
            "members_told": len(members),
            "moved_to": moved_to.isoformat() if moved_to else None,
        },
    )
    return len(members)


# --- coming into force -----------------------------------------------------------------


async def announce_in_force(*, now: datetime, actor: Actor) -> int:
    """Publish ``policy.changed`` (as a new policy version) once for the scheduled rules
    that have come into force by ``now`` and were not announced; returns how many."""
    due = list(
        await PolicyRule.filter(announced_at__isnull=True, effective_from__lte=now)
        .select_for_update()
        .order_by("effective_from", "setting")
    )
    if not due:
        return 0
    # In force now: what they replaced until their time is history.
    await PolicyRule.filter(id__in=[r.id for r in due]).update(announced_at=now, replaces=None)
    for rule in due:
        await audit.record(
            "policy.rule_in_force",
            "policy_rule",
            rule.id,
            actor=actor,
            after={
                "setting": rule.setting,
                "effective_from": rule.effective_from.isoformat() if rule.effective_from else None,
            },
        )
    settings = ", ".join(sorted({r.setting for r in due}))
    await policy.changed(actor, summary=f"scheduled change in force: {settings}")
    return len(due)


# --- the worker's sweep ----------------------------------------------------------------


async def run_schedule(org_id: OrgId, *, now: datetime | None = None) -> tuple[int, int]:
    """One organisation's due notices, then its due announcements, each in its own
    transaction; returns (members told, rules announced)."""
    at = now or datetime.now(UTC)
    actor = system_actor("policy-schedule")
    async with db.tenant_transaction(org_id):
        told = await send_notices(now=at, actor=actor)
    async with db.tenant_transaction(org_id):
        announced = await announce_in_force(now=at, actor=actor)
    return told, announced


async def due_organisations(now: datetime) -> list[OrgId]:
    """The organisations with a notice or an announcement due at ``now`` (ids only)."""
    from tortoise import connections

    _, rows = await connections.get("default").execute_query(
        "SELECT policy_schedule_due($1) AS id", [now]
    )
    return [OrgId(r["id"]) for r in rows]


async def sweep_policy_schedule(*, now: datetime | None = None) -> int:
    """Run every due organisation's schedule; returns how many were visited. One
    organisation failing is logged and does not hold up the others (it is due again at
    the next sweep)."""
    at = now or datetime.now(UTC)
    orgs = await due_organisations(at)
    for org_id in orgs:
        try:
            await run_schedule(org_id, now=at)
        except Exception:
            log.exception("policy schedule of organisation %s failed", org_id)
    return len(orgs)


async def keep_policy_schedule(stop: asyncio.Event, *, every: float = SWEEP_EVERY) -> None:
    """Sweep every ``every`` seconds until ``stop`` is set (the worker runs this beside its
    jobs); the first sweep runs at once, catching up on whatever came due while no worker
    was running."""
    await run_periodically("sweeping the policy schedule", sweep_policy_schedule, stop, every=every)
