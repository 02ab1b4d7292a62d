"""The departure plan: what happens to each of a leaving member's content items, and when.

Plain Python over plain data, no I/O. The same plan is the console's preview before an
admin confirms, the member's "what leaving would mean for you", and the run itself: the
workflow executes ``decision_table(plan)`` in SQL, so the rows a run changes are decided
here and nowhere else.

Decisions depend only on (product, kind, legal hold), so a plan is computed over groups of
items with those three equal (``ItemGroup``), which keeps a million-item departure as cheap
to plan as a ten-item one; single items (``decide``) get the same answer as their group.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from tenants.content.models import ContentKind, ContentStatus
from tenants.departures.models import ContentAction, PersonalOutcome
from tenants.organisations import days
from tenants.text import counted


class ItemAction(StrEnum):
    """What the run does with one item."""

    #: Handed to the successor, who holds it from then on.
    TRANSFER = "transfer"
    #: Kept by the organisation; nobody holds it.
    ARCHIVE = "archive"
    #: Kept until retention ends, then deleted.
    DELETE_AFTER_RETENTION = "delete_after_retention"
    #: Personal: the member may export it until the window closes; then it is deleted.
    EXPORT_THEN_DELETE = "export_then_delete"
    #: Personal: the member may export it until the window closes; then the organisation
    #: keeps it (its policy says so, or a legal hold blocks deletion).
    EXPORT_THEN_ARCHIVE = "export_then_archive"


#: The item status each action leaves behind (``content_items.status``).
RESULTING_STATUS: Mapping[ItemAction, ContentStatus] = {
    ItemAction.TRANSFER: ContentStatus.ACTIVE,
    ItemAction.ARCHIVE: ContentStatus.ARCHIVED,
    ItemAction.DELETE_AFTER_RETENTION: ContentStatus.PENDING_DELETION,
    ItemAction.EXPORT_THEN_DELETE: ContentStatus.ACCESS_ENDED,
    ItemAction.EXPORT_THEN_ARCHIVE: ContentStatus.ARCHIVED,
}

#: Statuses that purge deletes (unless the item is under legal hold by then).
DELETED_AT_PURGE: frozenset[ContentStatus] = frozenset(
    {ContentStatus.PENDING_DELETION, ContentStatus.ACCESS_ENDED}
)


@dataclass(frozen=True, slots=True)
class PolicyView:
    """An organisation's departure policy as plain data (also stored on each departure)."""

    fallback_successor_id: uuid.UUID | None = None
    default_action: ContentAction = ContentAction.TRANSFER
    product_actions: Mapping[uuid.UUID, ContentAction] = field(default_factory=dict)
    retention_days: int = 30
    export_window_days: int = 14
    personal_outcome: PersonalOutcome = PersonalOutcome.DELETE
    reinstatement_returns_items: bool = True

    def action_for(self, product_id: uuid.UUID) -> ContentAction:
        return self.product_actions.get(product_id, self.default_action)

    def to_json(self) -> dict[str, Any]:
        return {
            "fallback_successor_id": _str_or_none(self.fallback_successor_id),
            "default_action": self.default_action.value,
            "product_actions": {str(k): v.value for k, v in self.product_actions.items()},
            "retention_days": self.retention_days,
            "export_window_days": self.export_window_days,
            "personal_outcome": self.personal_outcome.value,
            "reinstatement_returns_items": self.reinstatement_returns_items,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PolicyView:
        fallback = data.get("fallback_successor_id")
        return cls(
            fallback_successor_id=uuid.UUID(fallback) if fallback else None,
            default_action=ContentAction(data.get("default_action", ContentAction.TRANSFER)),
            product_actions={
                uuid.UUID(k): ContentAction(v) for k, v in data.get("product_actions", {}).items()
            },
            retention_days=int(data.get("retention_days", 30)),
            export_window_days=int(data.get("export_window_days", 14)),
            personal_outcome=PersonalOutcome(data.get("personal_outcome", PersonalOutcome.DELETE)),
            reinstatement_returns_items=bool(data.get("reinstatement_returns_items", True)),
        )


DEFAULT_POLICY = PolicyView()


@dataclass(frozen=True, slots=True)
class Person:
    """A member as the planner needs them: who, and whether they can receive content."""

    id: uuid.UUID
    name: str
    email: str
    manager_id: uuid.UUID | None = None
    #: Only an active member can be a successor.
    is_active: bool = True


@dataclass(frozen=True, slots=True)
class ItemGroup:
    """Items of one member sharing product, kind and legal hold: they share a decision."""

    product_id: uuid.UUID
    kind: ContentKind
    legal_hold: bool
    count: int
    bytes: int


@dataclass(frozen=True, slots=True)
class Item:
    id: uuid.UUID
    product_id: uuid.UUID
    kind: ContentKind
    legal_hold: bool
    title: str = ""
    size: int = 0
    export_url: str | None = None


class SuccessorSource(StrEnum):
    CHOSEN = "chosen"
    MANAGER = "manager"
    FALLBACK = "fallback"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Decision:
    action: ItemAction
    #: Why, in words a member or admin reads in the preview.
    reason: str
    #: A legal hold changed the outcome (it would otherwise be deleted).
    held: bool = False


def decide(
    policy: PolicyView,
    product_id: uuid.UUID,
    kind: ContentKind,
    legal_hold: bool,
    *,
    has_successor: bool,
) -> Decision:
    """The one decision rule. Invariants (property-tested): a personal item is never
    transferred; an item under legal hold is never deleted; every item gets one action."""
    if kind is ContentKind.PERSONAL:
        if legal_hold:
            return Decision(
                ItemAction.EXPORT_THEN_ARCHIVE,
                "personal; under legal hold, so the organisation keeps it after the export window",
                held=policy.personal_outcome is PersonalOutcome.DELETE,
            )
        if policy.personal_outcome is PersonalOutcome.ARCHIVE:
            return Decision(
                ItemAction.EXPORT_THEN_ARCHIVE,
                "personal; export it before your access ends, the organisation keeps a copy",
            )
        return Decision(
            ItemAction.EXPORT_THEN_DELETE,
            "personal; export it before your access ends, it is deleted after retention",
        )
    action = policy.action_for(product_id)
    if action is ContentAction.TRANSFER:
        if has_successor:
            return Decision(ItemAction.TRANSFER, "work content; handed to the successor")
        return Decision(ItemAction.ARCHIVE, "work content; no successor, kept in the archive")
    if action is ContentAction.DELETE:
        if legal_hold:
            return Decision(
                ItemAction.ARCHIVE, "work content under legal hold; kept instead of deleted",
                held=True,
            )
        return Decision(
            ItemAction.DELETE_AFTER_RETENTION, "work content; deleted when retention ends"
        )
    return Decision(ItemAction.ARCHIVE, "work content; kept in the organisation archive")


@dataclass(frozen=True, slots=True)
class Warning:
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class PlanRow:
    """One group's decision, with its target and deadline."""

    product_id: uuid.UUID
    kind: ContentKind
    legal_hold: bool
    action: ItemAction
    reason: str
    held: bool
    #: The successor for transfers, else None.
    target_id: uuid.UUID | None
    #: When the action takes effect for the member (access ends / deletion).
    deadline: datetime
    count: int
    bytes: int


@dataclass(frozen=True, slots=True)
class Totals:
    count: int = 0
    bytes: int = 0

    def add(self, count: int, size: int) -> Totals:
        return Totals(self.count + count, self.bytes + size)


@dataclass(frozen=True, slots=True)
class Schedule:
    """The departure's instants (UTC), from its last day in the organisation's zone."""

    last_day: date
    #: Sign-in ends, sessions end, product accounts are suspended, content moves.
    suspend_at: datetime
    #: Personal items can be exported until then (the end of the last day).
    export_until: datetime
    #: Items pending deletion are deleted and the member record anonymised.
    purge_at: datetime


def schedule_for(last_day: date, policy: PolicyView, zone: ZoneInfo) -> Schedule:
    """The last day ends at midnight in ``zone``, the organisation's (read as a UTC day,
    a Los Angeles member lost sign-in at 4 pm on it)."""
    suspend_at = days.end_of(last_day, zone)
    return Schedule(
        last_day=last_day,
        suspend_at=suspend_at,
        export_until=suspend_at,
        purge_at=suspend_at + timedelta(days=policy.retention_days),
    )


def choose_successor(
    policy: PolicyView,
    member: Person,
    *,
    chosen: Person | None,
    manager: Person | None,
    fallback: Person | None,
) -> tuple[Person | None, SuccessorSource]:
    """The successor: the one chosen for this departure, else the member's manager, else
    the policy's fallback; only an active member other than the leaver qualifies."""

    def usable(person: Person | None) -> bool:
        return person is not None and person.is_active and person.id != member.id

    if usable(chosen):
        return chosen, SuccessorSource.CHOSEN
    if usable(manager):
        return manager, SuccessorSource.MANAGER
    if usable(fallback):
        return fallback, SuccessorSource.FALLBACK
    return None, SuccessorSource.NONE


@dataclass(frozen=True, slots=True)
class Plan:
    member: Person
    successor: Person | None
    successor_source: SuccessorSource
    schedule: Schedule
    rows: tuple[PlanRow, ...]
    warnings: tuple[Warning, ...]

    @property
    def total(self) -> Totals:
        return _sum(self.rows)

    def totals_by(self, key: str) -> dict[str, Totals]:
        """Totals per ``product`` (id), ``kind`` or ``action``."""
        out: dict[str, Totals] = {}
        for row in self.rows:
            k = {"product": str(row.product_id), "kind": row.kind.value, "action": row.action.value}[key]
            out[k] = out.get(k, Totals()).add(row.count, row.bytes)
        return out

    @property
    def held(self) -> Totals:
        """Items that a legal hold keeps from deletion."""
        return _sum(r for r in self.rows if r.held)

    def decision_for(self, item: Item) -> PlanRow:
        """The row deciding ``item``; KeyError if the plan did not see its group."""
        for row in self.rows:
            if (row.product_id, row.kind, row.legal_hold) == (
                item.product_id, item.kind, item.legal_hold,
            ):
                return row
        raise KeyError(item.id)

    def to_json(self) -> dict[str, Any]:
        return {
            "member_id": str(self.member.id),
            "successor_id": _str_or_none(self.successor.id if self.successor else None),
            "successor_source": self.successor_source.value,
            "total": _totals_json(self.total),
            "held": _totals_json(self.held),
            "by_product": {k: _totals_json(v) for k, v in self.totals_by("product").items()},
            "by_kind": {k: _totals_json(v) for k, v in self.totals_by("kind").items()},
            "by_action": {k: _totals_json(v) for k, v in self.totals_by("action").items()},
            "warnings": [{"code": w.code, "message": w.message} for w in self.warnings],
        }


def plan_departure(
    policy: PolicyView,
    member: Person,
    groups: Iterable[ItemGroup],
    *,
    schedule: Schedule,
    successor: Person | None,
    successor_source: SuccessorSource,
    now: datetime,
) -> Plan:
    """The plan for ``member`` leaving on ``schedule.last_day`` with ``successor``."""
    rows: list[PlanRow] = []
    warnings: list[Warning] = []
    has_successor = successor is not None
    for group in sorted(groups, key=lambda g: (str(g.product_id), g.kind.value, g.legal_hold)):
        decision = decide(
            policy, group.product_id, group.kind, group.legal_hold, has_successor=has_successor
        )
        deadline = (
            schedule.export_until
            if group.kind is ContentKind.PERSONAL
            else schedule.purge_at
            if decision.action is ItemAction.DELETE_AFTER_RETENTION
            else schedule.suspend_at
        )
        rows.append(
            PlanRow(
                product_id=group.product_id,
                kind=group.kind,
                legal_hold=group.legal_hold,
                action=decision.action,
                reason=decision.reason,
                held=decision.held,
                target_id=successor.id if decision.action is ItemAction.TRANSFER and successor
                else None,
                deadline=deadline,
                count=group.count,
                bytes=group.bytes,
            )
        )
    wants_transfer = any(
        r.kind is ContentKind.ORGANISATION
        and policy.action_for(r.product_id) is ContentAction.TRANSFER
        for r in rows
    )
    if not has_successor and wants_transfer:
        warnings.append(
            Warning(
                "no_successor",
                "nobody can receive this member's work content (no manager, no fallback "
                "successor): it is kept in the organisation archive instead",
            )
        )
    notice = schedule.export_until - now
    if any(r.kind is ContentKind.PERSONAL for r in rows) and notice < timedelta(
        days=policy.export_window_days
    ):
        days = max(0, notice.days)
        warnings.append(
            Warning(
                "short_export_window",
                f"the member has {counted(days, 'day')} to export personal items; "
                f"the policy asks for {policy.export_window_days}",
            )
        )
    if any(r.held for r in rows):
        warnings.append(
            Warning("legal_hold", "some items are under legal hold and will not be deleted")
        )
    return Plan(member, successor, successor_source, schedule, tuple(rows), tuple(warnings))


def decision_table(plan: Plan) -> list[tuple[uuid.UUID, ContentKind, bool, ItemAction]]:
    """The plan as rows for the run's SQL: (product, kind, legal hold) → action."""
    return [(r.product_id, r.kind, r.legal_hold, r.action) for r in plan.rows]


def _sum(rows: Iterable[PlanRow]) -> Totals:
    total = Totals()
    for row in rows:
        total = total.add(row.count, row.bytes)
    return total


def _totals_json(totals: Totals) -> dict[str, int]:
    return {"count": totals.count, "bytes": totals.bytes}


def _str_or_none(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


def groups_of(items: Sequence[Item]) -> list[ItemGroup]:
    """Group single items (tests and small previews)."""
    found: dict[tuple[uuid.UUID, ContentKind, bool], tuple[int, int]] = {}
    for item in items:
        key = (item.product_id, item.kind, item.legal_hold)
        count, size = found.get(key, (0, 0))
        found[key] = (count + 1, size + item.size)
    return [ItemGroup(p, k, h, c, b) for (p, k, h), (c, b) in found.items()]
