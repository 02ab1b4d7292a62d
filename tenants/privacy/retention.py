"""Retention of what piles up personal data, per organisation, applied daily by the worker.

What goes, once older than the organisation's period (defaults in ``DEFAULTS``, changed
with ``PUT /v1/retention-policy``):

- emails (``mail_messages``) no longer waiting to be sent;
- sessions that ended or expired, and sign-in attempts (the OIDC round trips);
- the payloads of notices to products (``outbox_events``) whose deliveries are all over:
  the event keeps its topic and key (its ``webhook-id`` stays unique), not what it said;
- finished webhook deliveries (delivered or dead) and their receivers' error texts;
- exports: products' parts and bundles of exports that expired, then the export record;
- access checks (``access_log``, 400 days) and the sign-in log (``sign_ins``, 400 days);
- jobs that finished (``done``, 14 days): a dead job waits for a person and stays.

The high-volume tables go in batches (``BATCH`` rows of each per transaction): a run is a
series of transactions of one organisation, each audited (``retention.applied``) when it
removed anything, until one removes less than a full batch; then the next run is queued a
day later. The partitions of the time-partitioned tables are dropped beside this, by
``tenants.privacy.partitions``, once no organisation keeps anything in them.
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
    access_log_days: int = 400
    sign_in_days: int = 400
    finished_job_days: int = 14


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


#: Rows of one high-volume table removed per statement (and per transaction).
BATCH = 5000


@dataclass(frozen=True, slots=True)
class Sweep:
    """One kind of residue: ``period`` names its retention field; ``sql`` removes what is
    older than it (``$1`` the organisation, ``$2`` the period in days, ``$3`` now, and for
    a ``batched`` sweep ``$4`` the most rows to remove) and reports how many rows it
    touched."""

    period: str
    sql: str
    batched: bool = False


def _batched(table: str, column: str, condition: str = "") -> str:
    """DELETE at most $4 rows of ``table`` older than the period by ``column`` (its
    primary key includes ``column`` when the table is partitioned by it)."""
    return f"""
DELETE FROM {table} WHERE (tenant_id, id) IN (
  SELECT tenant_id, id FROM {table} WHERE tenant_id = $1 {condition}
     AND {column} < $3::timestamptz - make_interval(days => $2) LIMIT $4)"""  # noqa: S608


SWEEPS: dict[str, Sweep] = {
    # A message to an erased member that never went out (its sending gave up while the
    # mail server refused) goes too, although still queued: it is the last place their
    # address is kept (``MailTemplate.forgotten_once_sent``).
    "mail_messages": Sweep("mail_days", """
DELETE FROM mail_messages WHERE tenant_id = $1
   AND (status <> 'queued' OR template = 'request_erased')
   AND created_at < $3::timestamptz - make_interval(days => $2)"""),
    "sessions": Sweep("session_days", """
DELETE FROM sessions WHERE tenant_id = $1
   AND coalesce(least(revoked_at, expires_at), expires_at)
       < $3::timestamptz - make_interval(days => $2)"""),
    "login_attempts": Sweep("sign_in_attempt_days", """
DELETE FROM login_attempts WHERE tenant_id = $1
   AND created_at < $3::timestamptz - make_interval(days => $2)"""),
    "webhook_deliveries": Sweep(
        "webhook_delivery_days",
        _batched("webhook_deliveries", "updated_at", "AND status <> 'pending'"),
        batched=True,
    ),
    "outbox_events": Sweep("outbox_payload_days", """
UPDATE outbox_events o SET payload = '{"expired": true}'::jsonb
 WHERE o.tenant_id = $1 AND o.created_at < $3::timestamptz - make_interval(days => $2)
   AND o.payload <> '{"expired": true}'::jsonb
   AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d
                    WHERE d.tenant_id = o.tenant_id AND d.event_id = o.id
                      AND d.status = 'pending')"""),
    "privacy_export_parts": Sweep("export_days", """
DELETE FROM privacy_export_parts p USING privacy_exports x
 WHERE p.tenant_id = $1 AND x.tenant_id = p.tenant_id AND x.id = p.export_id
   AND (x.status = 'expired' OR x.expires_at < $3::timestamptz)
   AND $2::int IS NOT NULL"""),
    "privacy_exports": Sweep("export_days", """
DELETE FROM privacy_exports x WHERE x.tenant_id = $1
   AND (x.status = 'expired' OR x.expires_at < $3::timestamptz)
   AND x.updated_at < $3::timestamptz - make_interval(days => $2)
   AND NOT EXISTS (SELECT 1 FROM privacy_export_parts p
                    WHERE p.tenant_id = x.tenant_id AND p.export_id = x.id)"""),
    "access_log": Sweep("access_log_days", _batched("access_log", "checked_at"), batched=True),
    "sign_ins": Sweep("sign_in_days", _batched("sign_ins", "at"), batched=True),
    # A job's run_at is never after its finished_at: the condition on run_at lets the
    # (tenant_id, status, run_at) index find them (the jobs table is not partitioned).
    "jobs": Sweep("finished_job_days", _batched(
        "jobs", "finished_at",
        "AND status = 'done' AND run_at < $3::timestamptz - make_interval(days => $2)",
    ), batched=True),
}


async def apply_retention(
    *, actor: Actor, now: datetime | None = None, batch: int = BATCH
) -> dict[str, int]:
    """Remove what the open organisation's periods no longer keep, as of ``now`` (default:
    the clock), at most ``batch`` rows of each batched table; the count per table (only
    tables where something went), also audited as ``retention.applied``. A batched table
    whose count is ``batch`` may hold more: ``is_partial`` says whether to run again."""
    policy = await get_retention()
    conn = db.connection()
    when = now or datetime.now(UTC)
    removed: dict[str, int] = {}
    for table, sweep in SWEEPS.items():
        args: list[Any] = [db.current_org(), getattr(policy, sweep.period), when]
        if sweep.batched:
            args.append(batch)
        count, _ = await conn.execute_query(sweep.sql, args)
        if count:
            removed[table] = count
    if removed:
        await audit.record("retention.applied", "organisation", db.current_org(), actor=actor,
                           after={"removed": removed, "policy": asdict(policy)})
    return removed


def is_partial(removed: dict[str, int], batch: int = BATCH) -> bool:
    """Whether a run that removed ``removed`` stopped at a full batch of some table."""
    return any(SWEEPS[table].batched and count >= batch for table, count in removed.items())


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
    """One transaction per batch, each with its audit event and checkpoint, until the
    organisation's expired rows are gone; then the next run, a day later."""
    actor = system_actor("retention")
    total: dict[str, int] = dict(job.state.get("removed", {}))
    while True:
        async with db.tenant_transaction(job.org_id):
            removed = await apply_retention(actor=actor)
            for table, count in removed.items():
                total[table] = total.get(table, 0) + count
            more = is_partial(removed)
            if not more:
                await schedule(datetime.now(UTC) + EVERY)
            await job.checkpoint({"removed": total})
        if not more:
            return
