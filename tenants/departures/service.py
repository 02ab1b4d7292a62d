"""Departures: the policy, previews, starting, reinstating, and erasing a member's content.

Every function runs in the caller's tenant transaction. The run itself (suspension,
moving content, purge) happens in job handlers (``tenants.departures.steps``), each step
queued in the same transaction that finishes the one before it.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tenants import db, text
from tenants.actors import Actor
from tenants.audit import service as audit
from tenants.content.models import ContentItem, ContentKind
from tenants.departures import planner
from tenants.departures.models import (
    ContentAction,
    Departure,
    DeparturePolicy,
    DepartureStatus,
    DepartureStep,
    PersonalOutcome,
    StepStatus,
)
from tenants.departures.planner import Person, Plan, PolicyView
from tenants.errors import (
    ConflictError,
    FieldProblem,
    IllegalTransitionError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from tenants.jobs import service as jobs
from tenants.mail import service as mail
from tenants.members import lifecycle
from tenants.members.lifecycle import LifecycleAction, MemberStatus
from tenants.members.models import Member
from tenants.members.roles import check_may_act_for
from tenants.members.service import get_member, other_owners, transition_member
from tenants.models_base import get_by_id, get_referenced
from tenants.organisations import days
from tenants.organisations import service as organisations
from tenants.permissions import Permission, Role
from tenants.products.models import Product
from tenants.webhooks import service as webhooks

#: The steps of every departure, in order; each is one job kind ``departure.<name>``.
STEPS: tuple[str, ...] = ("notify", "suspend", "transfer", "purge")

MAX_RETENTION_DAYS = 3650
MAX_EXPORT_WINDOW_DAYS = 365
#: The reason a departure starts or is reinstated for (the audit log keeps it), at most.
REASON_MAX_LENGTH = 2000


def check_reason(reason: str) -> None:
    """InvalidInputError naming ``reason`` when it is past ``REASON_MAX_LENGTH``."""
    text.check_length(reason, REASON_MAX_LENGTH, field="reason", what="reason")


# --- policy ---------------------------------------------------------------------------


async def get_policy() -> PolicyView:
    """The organisation's departure policy; the defaults when it never set one."""
    row = await DeparturePolicy.filter().first()
    return planner.DEFAULT_POLICY if row is None else _policy_view(row)


def _policy_view(row: DeparturePolicy) -> PolicyView:
    return PolicyView(
        fallback_successor_id=row.fallback_successor_id,
        default_action=ContentAction(row.default_action),
        product_actions={uuid.UUID(k): ContentAction(v) for k, v in row.product_actions.items()},
        retention_days=row.retention_days,
        export_window_days=row.export_window_days,
        personal_outcome=PersonalOutcome(row.personal_outcome),
        reinstatement_returns_items=row.reinstatement_returns_items,
    )


async def set_policy(new: PolicyView, *, actor: Actor) -> PolicyView:
    """Replace the policy; departures already under way keep the policy they started with."""
    problems: list[FieldProblem] = []
    if not 0 <= new.retention_days <= MAX_RETENTION_DAYS:
        problems.append(FieldProblem("retention_days", f"must be 0 to {MAX_RETENTION_DAYS}"))
    if not 0 <= new.export_window_days <= MAX_EXPORT_WINDOW_DAYS:
        problems.append(
            FieldProblem("export_window_days", f"must be 0 to {MAX_EXPORT_WINDOW_DAYS}")
        )
    if problems:
        raise InvalidInputError("the departure policy is not valid", fields=problems)
    if new.fallback_successor_id is not None:
        fallback = await get_referenced(
            Member, new.fallback_successor_id, "member", field="fallback_successor_id"
        )
        if fallback.status != MemberStatus.ACTIVE:
            raise InvalidInputError(
                "the fallback successor must be an active member",
                fields=[FieldProblem("fallback_successor_id", f"member is {fallback.status}")],
            )
    if new.product_actions:
        known = set(
            await Product.filter(id__in=list(new.product_actions)).values_list("id", flat=True)
        )
        unknown = [str(p) for p in new.product_actions if p not in known]
        if unknown:
            raise InvalidInputError(
                "the policy names products that do not exist",
                fields=[FieldProblem(f"product_actions.{p}", "no such product") for p in unknown],
            )
    before = await get_policy()
    if before == new:
        return before
    values: dict[str, Any] = {
        "fallback_successor_id": new.fallback_successor_id,
        "default_action": new.default_action,
        "product_actions": {str(k): v.value for k, v in new.product_actions.items()},
        "retention_days": new.retention_days,
        "export_window_days": new.export_window_days,
        "personal_outcome": new.personal_outcome,
        "reinstatement_returns_items": new.reinstatement_returns_items,
    }
    updated = await DeparturePolicy.filter().update(**values)
    if not updated:
        await DeparturePolicy.create(tenant_id=db.current_org(), **values)
    await audit.record(
        "departure_policy.changed",
        "departure_policy",
        db.current_org(),
        actor=actor,
        before=before.to_json(),
        after=new.to_json(),
    )
    return new


# --- plans ----------------------------------------------------------------------------


def _person(member: Member) -> Person:
    return Person(
        id=member.id,
        name=member.name,
        email=member.email,
        manager_id=member.manager_id,
        is_active=member.status == MemberStatus.ACTIVE,
    )


async def _person_or_none(member_id: uuid.UUID | None) -> Person | None:
    if member_id is None:
        return None
    found = await Member.filter(id=member_id).first()
    return None if found is None else _person(found)


GROUPS_SQL = """
SELECT product_id, kind, legal_hold, count(*) AS count, coalesce(sum(size), 0) AS bytes
  FROM content_items
 WHERE tenant_id = $1 AND member_id = $2 AND status = 'active'
 GROUP BY product_id, kind, legal_hold
"""


async def item_groups(member_id: uuid.UUID) -> list[planner.ItemGroup]:
    """The member's active items grouped by what decides their fate: one index range."""
    rows = await db.fetch(GROUPS_SQL, db.current_org(), member_id)
    return [
        planner.ItemGroup(
            r["product_id"], ContentKind(r["kind"]), r["legal_hold"], r["count"], int(r["bytes"])
        )
        for r in rows
    ]


async def preview_departure(
    member_id: uuid.UUID,
    *,
    last_day: date,
    successor_id: uuid.UUID | None = None,
    policy: PolicyView | None = None,
) -> Plan:
    """The plan a departure would follow if started now; changes nothing.
    InvalidInputError when the last day is further ahead than a departure may start."""
    zone = await organisations.time_zone()
    check_last_day(last_day, zone, past_allowed=True)
    member = await get_member(member_id)
    policy = policy or await get_policy()
    chosen = None
    if successor_id is not None:
        found = await get_referenced(Member, successor_id, "member", field="successor_id")
        chosen = _person(found)
        if not chosen.is_active or chosen.id == member.id:
            why = (
                "is the member who is leaving"
                if chosen.id == member.id
                else f"is {found.status.value}, not active"
            )
            raise InvalidInputError(
                "the successor must be another, active member",
                fields=[FieldProblem("successor_id", why)],
            )
    leaver = _person(member)
    successor, source = planner.choose_successor(
        policy,
        leaver,
        chosen=chosen,
        manager=await _person_or_none(member.manager_id),
        fallback=await _person_or_none(policy.fallback_successor_id),
    )
    return planner.plan_departure(
        policy,
        leaver,
        await item_groups(member.id),
        schedule=planner.schedule_for(last_day, policy, zone),
        successor=successor,
        successor_source=source,
        now=datetime.now(UTC),
    )


# --- running --------------------------------------------------------------------------


def step_key(departure_id: uuid.UUID, step: str) -> str:
    return f"departure:{departure_id}:{step}"


#: How far ahead a last day may be: ten years covers any notice period or fixed term, and
#: a date beyond is a typo (9999-12-31), whose schedule would not even be representable.
MAX_NOTICE_DAYS = 3650


def check_last_day(last_day: date, zone: ZoneInfo, *, past_allowed: bool = False) -> None:
    """InvalidInputError naming ``last_day`` when it is before today (in ``zone``, the
    organisation's), unless ``past_allowed`` (a preview), or more than MAX_NOTICE_DAYS
    ahead: a departure cannot start in the past (the console's preview says so before
    anyone confirms)."""
    today = days.today(zone)
    if last_day < today and not past_allowed:
        raise InvalidInputError(
            "the last day cannot be in the past",
            fields=[FieldProblem("last_day", f"must be {today.isoformat()} or later")],
        )
    latest = today + timedelta(days=MAX_NOTICE_DAYS)
    if last_day > latest:
        raise InvalidInputError(
            "the last day is too far ahead",
            fields=[FieldProblem("last_day", f"must be {latest.isoformat()} or earlier")],
        )


async def start_departure(
    member_id: uuid.UUID,
    *,
    last_day: date,
    successor_id: uuid.UUID | None,
    reason: str,
    actor: Actor,
) -> Departure:
    """Start a departure: the member becomes ``departing`` at once, is told, and the steps
    are scheduled. IllegalTransitionError (409) unless the member is active;
    InvalidInputError when the last day is in the past, the successor cannot receive or
    the reason is past ``REASON_MAX_LENGTH``."""
    check_reason(reason)
    check_last_day(last_day, await organisations.time_zone())
    await get_referenced(Member, member_id, "member", field="member_id")
    member = await get_member(member_id, for_update=True)
    # Refuse before planning, with the lifecycle's own message and allowed actions.
    lifecycle.next_status(MemberStatus(member.status), LifecycleAction.BEGIN_DEPARTURE)
    policy = await get_policy()
    plan = await preview_departure(
        member_id, last_day=last_day, successor_id=successor_id, policy=policy
    )
    schedule = plan.schedule
    departure = await Departure.create(
        tenant_id=db.current_org(),
        member_id=member.id,
        successor_id=plan.successor.id if plan.successor else None,
        last_day=last_day,
        suspend_at=schedule.suspend_at,
        export_until=schedule.export_until,
        purge_at=schedule.purge_at,
        reason=reason,
        policy=policy.to_json(),
        plan_totals=plan.to_json(),
        started_by=actor.ref,
    )
    now = datetime.now(UTC)
    due = {
        "notify": now,
        "suspend": schedule.suspend_at,
        "transfer": schedule.suspend_at,
        "purge": schedule.purge_at,
    }
    totals = {"notify": 1, "suspend": 1, "transfer": plan.total.count, "purge": 1}
    await DepartureStep.bulk_create(
        [
            DepartureStep(
                tenant_id=db.current_org(),
                departure_id=departure.id,
                name=name,
                position=i,
                due_at=due[name],
                total=totals[name],
                status=StepStatus.DONE if name == "notify" else StepStatus.PENDING,
                done=1 if name == "notify" else 0,
                started_at=now if name == "notify" else None,
                finished_at=now if name == "notify" else None,
            )
            for i, name in enumerate(STEPS)
        ]
    )
    await transition_member(member.id, LifecycleAction.BEGIN_DEPARTURE, reason=reason, actor=actor)
    await audit.record(
        "departure.started",
        "departure",
        departure.id,
        actor=actor,
        after={
            "member_id": member.id,
            "successor_id": departure.successor_id,
            "successor_source": plan.successor_source.value,
            "last_day": last_day.isoformat(),
            "purge_at": schedule.purge_at.isoformat(),
            "plan": plan.to_json(),
        },
    )
    await webhooks.publish(
        "member.departing",
        {
            "member_id": str(member.id),
            "email": member.email,
            "departure_id": str(departure.id),
            "last_day": last_day.isoformat(),
            "export_until": schedule.export_until.isoformat(),
        },
        key=step_key(departure.id, "notify"),
    )
    await _notify_member_by_email(member, departure)
    await jobs.enqueue(
        "departure.suspend",
        {"departure_id": str(departure.id)},
        key=step_key(departure.id, "suspend"),
        run_at=schedule.suspend_at,
    )
    return departure


async def _notify_member_by_email(member: Member, departure: Departure) -> None:
    """The departure notice, queued with the departure (sent only if it commits)."""
    await mail.send_later(
        "departure_notice",
        to=[member.email],
        context={
            "member_name": member.name,
            "last_day": departure.last_day.isoformat(),
            # In the member's own zone when known, else the organisation's.
            "export_until": days.shown(
                departure.export_until,
                ZoneInfo(member.time_zone) if member.time_zone else await organisations.time_zone(),
            ),
            "link_path": "/account",
        },
        key=f"departure:{departure.id}:notice-email",
    )


async def get_departure(departure_id: uuid.UUID, *, for_update: bool = False) -> Departure:
    return await get_by_id(Departure, departure_id, "departure", for_update=for_update)


async def steps_of(departure_id: uuid.UUID) -> list[DepartureStep]:
    return await DepartureStep.filter(departure_id=departure_id).order_by("position")


async def current_departure(member_id: uuid.UUID) -> Departure | None:
    """The member's departure under way (running), if any."""
    return (
        await Departure.filter(member_id=member_id, status=DepartureStatus.RUNNING)
        .order_by("-created_at")
        .first()
    )


#: The departure action each given-back item had (what ``content.returned`` undoes).
UNDONE_ACTION = """
CASE WHEN c.previous_member_id = $2 AND c.member_id <> $2 THEN 'transfer'
     WHEN c.status = 'pending_deletion' THEN 'delete_after_retention'
     WHEN c.status = 'access_ended' THEN 'export_then_delete'
     ELSE 'archive' END
"""

#: Everything the departure took comes back to the member (the policy's
#: ``reinstatement_returns_items``): transferred items from their successor, archived or
#: ending ones to active. Returns each item with the action undone.
RETURN_ITEMS_SQL = f"""
WITH given AS (
  SELECT c.id, {UNDONE_ACTION} AS undone
    FROM content_items c
   WHERE c.tenant_id = $1 AND c.departure_id = $3
     AND (c.previous_member_id = $2 OR (c.member_id = $2 AND c.status <> 'active'))
   ORDER BY c.id
     FOR UPDATE
)
UPDATE content_items c
   SET member_id = CASE WHEN c.previous_member_id = $2 THEN $2 ELSE c.member_id END,
       previous_member_id = CASE WHEN c.previous_member_id = $2 THEN NULL
                                 ELSE c.previous_member_id END,
       status = 'active', departure_id = NULL, updated_at = now()
  FROM given g
 WHERE c.tenant_id = $1 AND c.id = g.id
RETURNING c.product_id, c.external_id, g.undone
"""  # noqa: S608 -- built from constants of this module

#: Transferred items stay with the successor; the member's own come back to active.
KEEP_ITEMS_SQL = f"""
WITH given AS (
  SELECT c.id, {UNDONE_ACTION} AS undone
    FROM content_items c
   WHERE c.tenant_id = $1 AND c.departure_id = $3 AND c.member_id = $2 AND c.status <> 'active'
   ORDER BY c.id
     FOR UPDATE
)
UPDATE content_items c SET status = 'active', departure_id = NULL, updated_at = now()
  FROM given g
 WHERE c.tenant_id = $1 AND c.id = g.id
RETURNING c.product_id, c.external_id, g.undone
"""  # noqa: S608 -- built from constants of this module

#: Items named per ``content.returned`` event, as ``content.transferred`` batches them.
RETURNED_BATCH = 5000


def returned_batches(
    rows: Sequence[Mapping[str, Any]], *, size: int = RETURNED_BATCH
) -> list[tuple[uuid.UUID, int, dict[str, list[str]]]]:
    """Given-back items as ``(product_id, batch number, {action undone: external ids})``,
    at most ``size`` items per batch, in external-id order within a product (pure)."""
    by_product: dict[uuid.UUID, list[tuple[str, str]]] = defaultdict(list)
    for row in rows:
        by_product[row["product_id"]].append((str(row["external_id"]), str(row["undone"])))
    batches: list[tuple[uuid.UUID, int, dict[str, list[str]]]] = []
    for product_id in sorted(by_product, key=str):
        items = sorted(by_product[product_id])
        for number, start in enumerate(range(0, len(items), size)):
            grouped: dict[str, list[str]] = defaultdict(list)
            for external_id, undone in items[start : start + size]:
                grouped[undone].append(external_id)
            batches.append((product_id, number, dict(grouped)))
    return batches


async def reinstate_departure(departure_id: uuid.UUID, *, reason: str, actor: Actor) -> Departure:
    """Stop a departure before purge and make the member active again.

    Steps not yet run are skipped and their jobs cancelled; a step running right now (its
    batches lock the departure, so none is half-applied) is cancelled where it stopped:
    its ``done`` count stays, and the audit event records it. Items the member still owns
    come back to them; transferred items come back too when the policy at the start said
    so. Products hear of every item given back (``content.returned``, in batches, before
    ``member.reinstated``: the member's events reach a product in order). ConflictError
    once the departure has finished; InvalidInputError naming ``reason`` past
    ``REASON_MAX_LENGTH``.
    """
    check_reason(reason)
    departure = await get_departure(departure_id, for_update=True)
    if departure.status != DepartureStatus.RUNNING:
        raise ConflictError(
            f"this departure is {departure.status}; only a running one can be reinstated",
            extra={"departure_status": departure.status},
        )
    await transition_member(
        departure.member_id, LifecycleAction.REINSTATE, reason=reason, actor=actor
    )
    policy = PolicyView.from_json(departure.policy)
    sql = RETURN_ITEMS_SQL if policy.reinstatement_returns_items else KEEP_ITEMS_SQL
    returned = await db.fetch(sql, db.current_org(), departure.member_id, departure.id)
    await db.connection().execute_query(
        "UPDATE product_accounts SET status = 'assigned', updated_at = now() "
        "WHERE tenant_id = $1 AND member_id = $2 AND status = 'suspended'",
        [db.current_org(), departure.member_id],
    )
    now = datetime.now(UTC)
    stopped = await DepartureStep.filter(departure_id=departure.id, status=StepStatus.RUNNING)
    for step in stopped:
        step.status = StepStatus.CANCELLED
        step.finished_at = now
        await step.save(update_fields=["status", "finished_at", "updated_at"])
    await DepartureStep.filter(
        departure_id=departure.id, status__in=[StepStatus.PENDING, StepStatus.FAILED]
    ).update(status=StepStatus.SKIPPED)
    await db.connection().execute_query(
        "UPDATE jobs SET status = 'done', finished_at = now(), last_error = 'cancelled: "
        "member reinstated', updated_at = now() WHERE tenant_id = $1 AND key LIKE $2 "
        "AND status IN ('queued', 'dead')",
        [db.current_org(), f"departure:{departure.id}:%"],
    )
    departure.status = DepartureStatus.CANCELLED
    departure.finished_at = now
    await departure.save(update_fields=["status", "finished_at", "updated_at"])
    await audit.record(
        "departure.cancelled",
        "departure",
        departure.id,
        actor=actor,
        before={"status": DepartureStatus.RUNNING},
        after={
            "status": departure.status,
            "reason": reason,
            "items_returned": len(returned),
            "stopped_steps": {s.name: {"done": s.done, "total": s.total} for s in stopped},
        },
    )
    for product_id, number, items in returned_batches(returned):
        await webhooks.publish(
            "content.returned",
            {
                "departure_id": str(departure.id),
                "member_id": str(departure.member_id),
                "batch": number,
                "items": items,
            },
            key=f"departure:{departure.id}:returned:{number}:{product_id}",
            product_ids=[product_id],
        )
    await webhooks.publish(
        "member.reinstated",
        {"member_id": str(departure.member_id), "departure_id": str(departure.id)},
        key=f"departure:{departure.id}:reinstated",
    )
    return departure


# --- the member taking out their personal items ------------------------------------------


async def export_personal_item(item_id: uuid.UUID, *, member_id: uuid.UUID, actor: Actor) -> str:
    """The product's export link for one of ``member_id``'s own personal items, recording
    that they took it out (``content.exported``).

    NotFoundError unless the item is a personal item held by that member: another member's
    item, or work content, answers exactly like an id that does not exist. ConflictError
    when the product registered no export link (the member must ask the product).
    """
    item = await ContentItem.filter(
        id=item_id, member_id=member_id, kind=ContentKind.PERSONAL
    ).first()
    if item is None:
        raise NotFoundError(
            f"you have no personal item with id {item_id}", extra={"resource": "content item"}
        )
    if not item.export_url:
        raise ConflictError(
            "the product has not given an export link for this item; ask the product to "
            "export it for you",
            extra={"export_url": None},
        )
    departure = await current_departure(member_id)
    await audit.record(
        "content.exported",
        "content_item",
        item.id,
        actor=actor,
        after={
            "member_id": member_id,
            "product_id": item.product_id,
            "external_id": item.external_id,
            "export_url": item.export_url,
            "departure_id": departure.id if departure else None,
        },
    )
    return item.export_url


async def apply_member_action(
    member_id: uuid.UUID,
    action: LifecycleAction,
    *,
    reason: str | None,
    actor: Actor,
    by: frozenset[Permission] | None,
) -> Member:
    """A lifecycle action asked for directly (API, console), kept consistent with
    departures: a departure is begun only with its plan and steps (``start_departure``),
    and reinstating a member whose departure runs cancels that departure (which takes
    ``departures:write``). ``by``: the permissions of whoever asks, who may act only for
    members whose permissions they hold all of (``roles.check_may_act_for``: a helpdesk
    suspended the organisation's only owner); the last active owner is never suspended."""
    target = await get_member(member_id)
    if by is not None:
        check_may_act_for(
            by, target.roles, doing=f"{action.value.replace('_', ' ')}", field="action"
        )
        if (
            action is LifecycleAction.REINSTATE
            and Permission.DEPARTURES_WRITE not in by
            and await current_departure(member_id) is not None
        ):
            raise PermissionDeniedError(
                "reinstating a departing member cancels their departure, which needs the "
                "permission departures:write",
                fields=[FieldProblem("action", "cancels a departure: departures:write")],
            )
    if (
        action is LifecycleAction.SUSPEND
        and Role.OWNER.value in target.roles
        and not await other_owners(target.id)
    ):
        raise ConflictError(
            "the organisation's only owner cannot be suspended: make someone else owner first",
            fields=[FieldProblem("action", "the member is the only owner who can act")],
        )
    if action is LifecycleAction.BEGIN_DEPARTURE:
        raise IllegalTransitionError(
            "a departure starts with its plan and dates: use POST /v1/departures "
            "(console: the member's page, Start a departure)",
            extra={
                "member_status": target.status,
                "action": action.value,
                "allowed_actions": [a.value for a in lifecycle.offered_actions(target.status)],
                "use": "/v1/departures",
            },
        )
    if action not in lifecycle.DIRECT_ACTIONS:
        raise IllegalTransitionError(
            f"{action.value} is not applied directly: a member leaves through a departure "
            "(POST /v1/departures) and is erased through an erasure request "
            "(POST /v1/privacy-requests/{id}/erasure)",
            extra={
                "member_status": target.status,
                "action": action.value,
                "allowed_actions": [a.value for a in lifecycle.offered_actions(target.status)],
            },
        )
    lifecycle.next_status(target.status, action, direct=True)
    if action is LifecycleAction.REINSTATE:
        running = await current_departure(member_id)
        if running is not None:
            await reinstate_departure(running.id, reason=reason or "", actor=actor)
            return await get_member(member_id)
    return await transition_member(member_id, action, reason=reason, actor=actor)


# --- erasure --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ErasureEvidence:
    member_id: uuid.UUID
    erased_at: datetime
    #: ``{product_id: {"deleted": n, "held": m}}``.
    by_product: dict[str, dict[str, int]]

    def to_json(self) -> dict[str, Any]:
        return {
            "member_id": str(self.member_id),
            "erased_at": self.erased_at.isoformat(),
            "by_product": self.by_product,
        }


ERASE_SQL = """
WITH gone AS (
  DELETE FROM content_items
   WHERE tenant_id = $1 AND member_id = $2 AND kind = ANY($3::text[]) AND NOT legal_hold
  RETURNING product_id, external_id
)
SELECT product_id, array_agg(external_id ORDER BY external_id) AS external_ids
  FROM gone GROUP BY product_id
"""


async def erase_member_content(
    member_id: uuid.UUID, *, kinds: Collection[ContentKind], actor: Actor, reason: str
) -> dict[str, Any]:
    """Delete the member's content items of ``kinds`` except those under legal hold, tell
    each product which of its items went, and return the evidence (also audited)."""
    await get_member(member_id)
    rows = await db.fetch(ERASE_SQL, db.current_org(), member_id, [k.value for k in kinds])
    held = await db.fetch(
        "SELECT product_id, count(*) AS n FROM content_items WHERE tenant_id = $1 "
        "AND member_id = $2 AND kind = ANY($3::text[]) AND legal_hold GROUP BY product_id",
        db.current_org(),
        member_id,
        [k.value for k in kinds],
    )
    by_product: dict[str, dict[str, int]] = {}
    for row in rows:
        by_product.setdefault(str(row["product_id"]), {"deleted": 0, "held": 0})["deleted"] = len(
            row["external_ids"]
        )
    for row in held:
        by_product.setdefault(str(row["product_id"]), {"deleted": 0, "held": 0})["held"] = row["n"]
    evidence = ErasureEvidence(member_id, datetime.now(UTC), by_product)
    event_id = await audit.record(
        "content.erased",
        "member",
        member_id,
        actor=actor,
        after={"reason": reason, "kinds": sorted(k.value for k in kinds), **evidence.to_json()},
    )
    for row in rows:
        await webhooks.publish(
            "content.erased",
            {"member_id": str(member_id), "external_ids": list(row["external_ids"])},
            key=f"erasure:{event_id}:{row['product_id']}",
            product_ids=[row["product_id"]],
        )
    return {**evidence.to_json(), "audit_event_id": event_id}
