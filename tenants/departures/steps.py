"""The departure workflow's steps, as durable job handlers.

``notify`` happens when the departure starts (``service.start_departure``). Then:

- ``departure.suspend`` (at the end of the last day): the member is suspended (sign-in
  disabled, sessions ended), product accounts suspended, products told;
- ``departure.transfer`` (right after): content moves in batches, each batch one
  transaction with its checkpoint and its ``content.transferred`` event, so a killed
  worker resumes at the first batch that did not commit and no item moves twice; then the
  member is ``departed``;
- ``departure.purge`` (when retention ends): items pending deletion go (never those under
  legal hold), the member record is anonymised, the audit trail stays.

Each step finishes by queueing the next in the same transaction, with a key that makes a
repeat a no-op. Every step re-reads the departure and stops if it was cancelled.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from tenants import db
from tenants.actors import Actor, system_actor
from tenants.audit import service as audit
from tenants.departures import planner
from tenants.departures.models import Departure, DepartureStatus, DepartureStep, StepStatus
from tenants.departures.planner import DELETED_AT_PURGE, Plan, PolicyView
from tenants.departures.service import (
    _person,
    _person_or_none,
    item_groups,
    step_key,
)
from tenants.jobs import service as jobs
from tenants.jobs.registry import PermanentJobError, RunningJob, handler
from tenants.members.lifecycle import LifecycleAction, MemberStatus
from tenants.members.models import Member
from tenants.members.service import transition_member
from tenants.privacy import erasure
from tenants.webhooks import service as webhooks

#: Items moved per transaction: big enough to amortise the statement and the event, small
#: enough that locks are short and a killed worker repeats little.
BATCH = 5000

ACTOR: Actor = system_actor("departure-worker")


async def _running(job: RunningJob) -> Departure | None:
    """The job's departure, locked, if it is still running (None: cancelled or finished).

    The lock orders each step's transaction with a reinstatement (which locks it too): a
    step never acts on a departure that was cancelled while it ran.
    """
    departure = (
        await Departure.filter(id=uuid.UUID(job.payload["departure_id"]))
        .select_for_update()
        .first()
    )
    if departure is None:
        raise PermanentJobError("the departure no longer exists")
    return departure if departure.status == DepartureStatus.RUNNING else None


async def _step(departure: Departure, name: str) -> DepartureStep:
    return await DepartureStep.get(departure_id=departure.id, name=name)


async def _start_step(step: DepartureStep) -> None:
    if step.status == StepStatus.PENDING:
        step.status = StepStatus.RUNNING
        step.started_at = datetime.now(UTC)
        await step.save(update_fields=["status", "started_at", "updated_at"])


async def _finish_step(step: DepartureStep, departure: Departure, **details: Any) -> None:
    step.status = StepStatus.DONE
    step.finished_at = datetime.now(UTC)
    step.done = max(step.done, step.total) if step.name != "transfer" else step.done
    await step.save(update_fields=["status", "finished_at", "done", "updated_at"])
    await audit.record(
        f"departure.{step.name}.done", "departure", departure.id, actor=ACTOR,
        after={"step": step.name, **details},
    )


@handler("departure.suspend")
async def suspend(job: RunningJob) -> None:
    async with db.tenant_transaction(job.org_id):
        departure = await _running(job)
        if departure is None:
            return
        step = await _step(departure, "suspend")
        if step.status == StepStatus.DONE:
            return
        await _start_step(step)
        member = await Member.get(id=departure.member_id)
        if member.status in (MemberStatus.ACTIVE, MemberStatus.DEPARTING, MemberStatus.INVITED):
            await transition_member(
                member.id, LifecycleAction.SUSPEND, reason="last day of departure", actor=ACTOR
            )
        accounts = await db.connection().execute_query(
            "UPDATE product_accounts SET status = 'suspended', updated_at = now() "
            "WHERE tenant_id = $1 AND member_id = $2 AND status = 'assigned'",
            [job.org_id, member.id],
        )
        await webhooks.publish(
            "member.suspended",
            {"member_id": str(member.id), "departure_id": str(departure.id)},
            key=step_key(departure.id, "suspend"),
        )
        await _finish_step(step, departure, product_accounts_suspended=accounts[0])
        await jobs.enqueue(
            "departure.transfer", {"departure_id": str(departure.id)},
            key=step_key(departure.id, "transfer"),
        )


async def plan_for_run(departure: Departure) -> Plan:
    """The plan over the member's items as they are now, with the policy and successor the
    departure started with (a successor who is no longer active is replaced as the
    planner chooses)."""
    policy = PolicyView.from_json(departure.policy)
    member = await Member.get(id=departure.member_id)
    leaver = _person(member)
    successor, source = planner.choose_successor(
        policy,
        leaver,
        chosen=await _person_or_none(departure.successor_id),
        manager=await _person_or_none(member.manager_id),
        fallback=await _person_or_none(policy.fallback_successor_id),
    )
    return planner.plan_departure(
        policy,
        leaver,
        await item_groups(member.id),
        # The instants it was started with (the organisation's zone may have changed since).
        schedule=planner.Schedule(
            departure.last_day, departure.suspend_at, departure.export_until, departure.purge_at
        ),
        successor=successor,
        successor_source=source,
        now=datetime.now(UTC),
    )


#: One batch: take the next ``$8`` of the leaver's active items in id order after ``$10``
#: (an index range on (tenant_id, member_id, status, id)), apply each
#: one's planned action, and return what changed. The plan arrives as arrays.
MOVE_SQL = """
WITH plan (product_id, kind, legal_hold, action) AS (
  SELECT * FROM unnest($4::uuid[], $5::text[], $6::bool[], $7::text[])
), batch AS (
  SELECT c.id, p.action
    FROM content_items c
    JOIN plan p ON p.product_id = c.product_id AND p.kind = c.kind
               AND p.legal_hold = c.legal_hold
   WHERE c.tenant_id = $1 AND c.member_id = $2 AND c.status = 'active'
     AND ($10::uuid IS NULL OR c.id > $10::uuid)
   ORDER BY c.id
   LIMIT $8
   FOR UPDATE OF c
)
UPDATE content_items c
   SET member_id = CASE WHEN b.action = 'transfer' THEN $3 ELSE c.member_id END,
       previous_member_id = CASE WHEN b.action = 'transfer' THEN c.member_id
                                 ELSE c.previous_member_id END,
       status = CASE b.action
                  WHEN 'transfer' THEN 'active'
                  WHEN 'delete_after_retention' THEN 'pending_deletion'
                  WHEN 'export_then_delete' THEN 'access_ended'
                  ELSE 'archived' END,
       transfer_count = c.transfer_count + (b.action = 'transfer')::int,
       departure_id = $9,
       updated_at = now()
  FROM batch b
 WHERE c.tenant_id = $1 AND c.id = b.id
RETURNING c.id, c.product_id, c.external_id, b.action
"""


@handler("departure.transfer")
async def transfer(job: RunningJob) -> None:
    """Move the leaver's content in batches until none is left, then mark them departed.

    Batches walk the leaver's active items in id order from a cursor kept in the
    checkpoint, so each batch starts where the last one ended instead of stepping over
    everything already moved (which made a million-item transfer quadratic). At the end
    of the id range one more sweep from the start, with a fresh plan, picks up items
    registered meanwhile; the step ends when a sweep from the start finds nothing.
    """
    plan: Plan | None = None
    replanned = False
    while True:
        async with db.tenant_transaction(job.org_id):
            departure = await _running(job)
            if departure is None:
                return
            step = await _step(departure, "transfer")
            if step.status == StepStatus.DONE:
                return
            if step.status == StepStatus.PENDING:
                await _start_step(step)
            if plan is None:
                plan = await plan_for_run(departure)
            after = job.state.get("after")
            batch_no = int(job.state.get("batch", 0))
            moved, last = await _move_batch(
                job, departure, plan, batch_no, None if after is None else uuid.UUID(after)
            )
            if moved:
                step.done += moved
                step.total = max(step.total, step.done)
                await step.save(update_fields=["done", "total", "updated_at"])
                await job.checkpoint(
                    {"batch": batch_no + 1, "moved": step.done, "after": str(last)}
                )
                continue
            if after is not None:
                await job.checkpoint({**job.state, "after": None})
                plan, replanned = None, False
                continue
            fresh = await plan_for_run(departure)
            if fresh.total.count and not replanned:
                plan, replanned = fresh, True
                continue
            await _finish_transfer(job, departure, step, fresh)
            return


async def _move_batch(
    job: RunningJob, departure: Departure, plan: Plan, batch_no: int, after: uuid.UUID | None
) -> tuple[int, uuid.UUID | None]:
    """Apply the plan to the next batch after ``after``; (items moved, last id)."""
    table = planner.decision_table(plan)
    successor_id = plan.successor.id if plan.successor else None
    _, rows = await db.connection().execute_query(
        MOVE_SQL,
        [
            job.org_id,
            departure.member_id,
            successor_id,
            [r[0] for r in table],
            [r[1].value for r in table],
            [r[2] for r in table],
            [r[3].value for r in table],
            BATCH,
            departure.id,
            after,
        ],
    )
    by_product: dict[uuid.UUID, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        by_product[row["product_id"]][row["action"]].append(row["external_id"])
    for product_id, actions in by_product.items():
        await webhooks.publish(
            "content.transferred",
            {
                "departure_id": str(departure.id),
                "member_id": str(departure.member_id),
                "successor_id": None if successor_id is None else str(successor_id),
                "batch": batch_no,
                "items": {action: ids for action, ids in actions.items()},
            },
            key=f"departure:{departure.id}:items:{batch_no}:{product_id}",
            product_ids=[product_id],
        )
    return len(rows), max((row["id"] for row in rows), default=None)


async def _finish_transfer(
    job: RunningJob, departure: Departure, step: DepartureStep, plan: Plan
) -> None:
    member = await Member.get(id=departure.member_id)
    if member.status == MemberStatus.SUSPENDED:
        await transition_member(
            member.id, LifecycleAction.DEPART, reason="content handed over", actor=ACTOR
        )
    counts = await db.fetch(
        "SELECT status, count(*) AS n, sum(transfer_count) AS transfers FROM content_items "
        "WHERE tenant_id = $1 AND departure_id = $2 GROUP BY status",
        job.org_id, departure.id,
    )
    await _finish_step(
        step, departure, items=step.done,
        outcome={r["status"]: r["n"] for r in counts},
        successor_id=None if plan.successor is None else plan.successor.id,
    )
    await jobs.enqueue(
        "departure.purge", {"departure_id": str(departure.id)},
        key=step_key(departure.id, "purge"), run_at=departure.purge_at,
    )


PURGE_SQL = """
WITH batch AS (
  SELECT id FROM content_items
   WHERE tenant_id = $1 AND departure_id = $2 AND status = ANY($3::text[]) AND NOT legal_hold
     AND ($5::uuid IS NULL OR id > $5::uuid)
   ORDER BY id LIMIT $4 FOR UPDATE
)
DELETE FROM content_items c USING batch b WHERE c.tenant_id = $1 AND c.id = b.id
RETURNING c.id, c.product_id, c.external_id
"""


@handler("departure.purge")
async def purge(job: RunningJob) -> None:
    """Delete what retention no longer keeps, then anonymise the member; audit stays."""
    while True:
        async with db.tenant_transaction(job.org_id):
            departure = await _running(job)
            if departure is None:
                return
            step = await _step(departure, "purge")
            if step.status == StepStatus.DONE:
                return
            await _start_step(step)
            batch_no = int(job.state.get("batch", 0))
            after = job.state.get("after")
            _, rows = await db.connection().execute_query(
                PURGE_SQL,
                [job.org_id, departure.id, [s.value for s in DELETED_AT_PURGE], BATCH,
                 None if after is None else uuid.UUID(after)],
            )
            if rows:
                by_product: dict[uuid.UUID, list[str]] = defaultdict(list)
                for row in rows:
                    by_product[row["product_id"]].append(row["external_id"])
                for product_id, ids in by_product.items():
                    await webhooks.publish(
                        "content.deleted",
                        {"departure_id": str(departure.id),
                         "member_id": str(departure.member_id), "external_ids": ids},
                        key=f"departure:{departure.id}:deleted:{batch_no}:{product_id}",
                        product_ids=[product_id],
                    )
                deleted = int(job.state.get("deleted", 0)) + len(rows)
                await job.checkpoint({"batch": batch_no + 1, "deleted": deleted,
                                      "after": str(max(row["id"] for row in rows))})
                continue
            erased = await _anonymise(departure)
            await _finish_step(step, departure, items_deleted=int(job.state.get("deleted", 0)),
                               kept=erased["kept"], erased=erased["deleted"])
            departure.status = DepartureStatus.COMPLETED
            departure.finished_at = datetime.now(UTC)
            await departure.save(update_fields=["status", "finished_at", "updated_at"])
            await webhooks.publish(
                "member.purged",
                {"member_id": str(departure.member_id), "departure_id": str(departure.id)},
                key=step_key(departure.id, "purge"),
            )
            return


async def _anonymise(departure: Departure) -> dict[str, Any]:
    """Erase the member as the personal-data map says (the same erasure as a privacy
    request's): the record keeps its id (the audit trail points at it) and nothing else
    that identifies the person; returns the erasure's evidence."""
    member = await Member.get(id=departure.member_id)
    if member.status == MemberStatus.DEPARTED:
        await transition_member(member.id, LifecycleAction.PURGE, reason="retention ended",
                                actor=ACTOR)
    evidence = await erasure.erase_member(
        member.id, why=f"departure {departure.id}: retention ended", actor=ACTOR
    )
    return evidence.to_json()
