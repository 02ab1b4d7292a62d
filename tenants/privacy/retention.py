"""Retention of what piles up personal data, per organisation, applied daily by the worker.

What goes, once older than the organisation's period (defaults in ``DEFAULTS``, changed
with ``PUT /v1/retention-policy``):

- emails (``mail_messages``) no longer waiting to be sent;
- sessions that ended or expired, and sign-in attempts (the OIDC round trips);
- the payloads of notices to products (``outbox_events``) whose deliveries are all over:
  the event keeps its topic and key (its ``webhook-id`` stays unique), not what it said;
- finished webhook deliveries (delivered or dead) and their receivers' error texts;
- exports: products' parts and bundles of exports that expired, then the export record.

Each run is one transaction per organisation, audited (``retention.applied``) when it
removed anything, and queues the next run a day later.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from tenants import db
from tenants.actors import Actor, system_actor
from tenants.audit import service as audit
from tenants.errors import FieldProblem, InvalidInputError
from tenants.ids import OrgId
from tenants.jobs import service as jobs
from tenants.jobs.registry import RunningJob, handler
from tenants.privacy.models import RetentionPolicy

JOB = "privacy.retention"
#: How far apart two runs of one organisation are.
EVERY = timedelta(days=1)
#: The bounds of every period (days).
DAYS_RANGE = (1, 3650)


@dataclass(frozen=True, slots=True)
class Retention:
    mail_days: int = 90
    session_days: int = 30
    sign_in_attempt_days: int = 1
    outbox_payload_days: int = 30
    webhook_delivery_days: int = 30
    export_days: int = 30


DEFAULTS = Retention()
NAMES = tuple(f.name for f in fields(Retention))


async def get_retention() -> Retention:
    row = await RetentionPolicy.filter().first()
    if row is None:
        return DEFAULTS
    return Retention(**{name: getattr(row, name) for name in NAMES})


def checked(changes: dict[str, Any]) -> dict[str, int]:
    """``changes`` as periods; InvalidInputError naming each bad field."""
    problems = [FieldProblem(k, "is not a retention period") for k in changes if k not in NAMES]
    low, high = DAYS_RANGE
    for key, value in changes.items():
        if key in NAMES and (not isinstance(value, int) or isinstance(value, bool)
                             or not low <= value <= high):
            problems.append(FieldProblem(key, f"expected whole days from {low} to {high}"))
    if problems:
        raise InvalidInputError("the retention policy was refused", fields=problems)
    return {k: int(v) for k, v in changes.items()}


async def set_retention(changes: dict[str, Any], *, actor: Actor) -> Retention:
    """Change some periods (audited); returns the policy now in force. Queues the next run
    so a shorter period applies within a day."""
    wanted = checked(changes)
    before = await get_retention()
    after = replace(before, **wanted)
    old, new = audit.changed_fields(asdict(before), asdict(after))
    if not new:
        return before
    row = await RetentionPolicy.filter().select_for_update().first()
    if row is None:
        await RetentionPolicy.create(tenant_id=db.current_org(), **asdict(after))
    else:
        await RetentionPolicy.filter(id=row.id).update(**wanted)
    await audit.record("retention.changed", "organisation", db.current_org(), actor=actor,
                       before=old, after=new)
    await schedule(datetime.now(UTC) + EVERY)
    return after


#: Each statement removes one kind of residue older than its period ($2, an interval in
#: days) and returns how many rows it touched.
SWEEPS: dict[str, tuple[str, str]] = {
    "mail_messages": ("mail_days", """
DELETE FROM mail_messages WHERE tenant_id = $1 AND status <> 'queued'
   AND created_at < now() - make_interval(days => $2)"""),
    "sessions": ("session_days", """
DELETE FROM sessions WHERE tenant_id = $1
   AND coalesce(least(revoked_at, expires_at), expires_at) < now() - make_interval(days => $2)"""),
    "login_attempts": ("sign_in_attempt_days", """
DELETE FROM login_attempts WHERE tenant_id = $1
   AND created_at < now() - make_interval(days => $2)"""),
    "webhook_deliveries": ("webhook_delivery_days", """
DELETE FROM webhook_deliveries WHERE tenant_id = $1 AND status <> 'pending'
   AND updated_at < now() - make_interval(days => $2)"""),
    "outbox_events": ("outbox_payload_days", """
UPDATE outbox_events o SET payload = '{"expired": true}'::jsonb
 WHERE o.tenant_id = $1 AND o.created_at < now() - make_interval(days => $2)
   AND o.payload <> '{"expired": true}'::jsonb
   AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d
                    WHERE d.tenant_id = o.tenant_id AND d.event_id = o.id
                      AND d.status = 'pending')"""),
    "privacy_export_parts": ("export_days", """
DELETE FROM privacy_export_parts p USING privacy_exports x
 WHERE p.tenant_id = $1 AND x.tenant_id = p.tenant_id AND x.id = p.export_id
   AND (x.status = 'expired' OR x.expires_at < now())
   AND $2::int IS NOT NULL"""),
    "privacy_exports": ("export_days", """
DELETE FROM privacy_exports x WHERE x.tenant_id = $1
   AND (x.status = 'expired' OR x.expires_at < now())
   AND x.updated_at < now() - make_interval(days => $2)
   AND NOT EXISTS (SELECT 1 FROM privacy_export_parts p
                    WHERE p.tenant_id = x.tenant_id AND p.export_id = x.id)"""),
}


async def apply_retention(*, actor: Actor) -> dict[str, int]:
    """Remove what the open organisation's periods no longer keep; the count per table
    (only tables where something went), also audited as ``retention.applied``."""
    policy = await get_retention()
    conn = db.connection()
    removed: dict[str, int] = {}
    for table, (period, sql) in SWEEPS.items():
        count, _ = await conn.execute_query(sql, [db.current_org(), getattr(policy, period)])
        if count:
            removed[table] = count
    if removed:
        await audit.record("retention.applied", "organisation", db.current_org(), actor=actor,
                           after={"removed": removed, "policy": asdict(policy)})
    return removed


async def schedule(run_at: datetime) -> None:
    """Queue the organisation's run at ``run_at`` (one per day: the key is the date)."""
    await jobs.enqueue(JOB, {}, key=f"{JOB}:{run_at.date().isoformat()}", run_at=run_at)


async def schedule_all() -> int:
    """Queue tomorrow's run of every organisation that has none (at worker start);
    returns how many organisations were visited."""
    from tortoise import connections

    _, orgs = await connections.get("default").execute_query(
        "SELECT id FROM organisation_ids() AS id"
    )
    tomorrow = datetime.now(UTC) + EVERY
    for row in orgs:
        async with db.tenant_transaction(OrgId(row["id"])):
            await schedule(tomorrow)
    return len(orgs)


@handler(JOB)
async def run(job: RunningJob) -> None:
    async with db.tenant_transaction(job.org_id):
        removed = await apply_retention(actor=system_actor("retention"))
        await schedule(datetime.now(UTC) + EVERY)
        await job.checkpoint({"removed": removed})
