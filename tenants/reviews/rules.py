"""The rules of access reviews (recertification campaigns), as plain functions over plain data.

A campaign reviews three kinds of standing access: admin roles on members, data-access
grants that are approved and not yet ended, and product clients that are not revoked. At
its start every such access becomes an item; each item has reviewers, who approve (keep)
or revoke it with a reason. At the end of the due day the undecided items follow the
campaign's rule (keep or revoke) and the campaign is completed; a recurring campaign then
has a successor of the same length starting one period after it started.

Nobody reviews their own access: a reviewer rule that lands on the subject falls back to
the named reviewers, then to the campaign's owner, and an item whose only candidate is its
own subject has no reviewer (only someone with ``reviews:write`` may then decide it).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from tenants.errors import FieldProblem
from tenants.organisations import days
from tenants.organisations.days import add_months
from tenants.permissions import Role


class ScopeKind(StrEnum):
    """What a campaign reviews."""

    ADMIN_ROLES = "admin_roles"
    DATA_ACCESS = "data_access"
    PRODUCT_CLIENTS = "product_clients"


class ItemKind(StrEnum):
    ADMIN_ROLE = "admin_role"
    ACCESS_GRANT = "access_grant"
    PRODUCT_CLIENT = "product_client"


ITEM_KIND_OF_SCOPE: dict[ScopeKind, ItemKind] = {
    ScopeKind.ADMIN_ROLES: ItemKind.ADMIN_ROLE,
    ScopeKind.DATA_ACCESS: ItemKind.ACCESS_GRANT,
    ScopeKind.PRODUCT_CLIENTS: ItemKind.PRODUCT_CLIENT,
}


class ReviewerRule(StrEnum):
    """Who reviews an item: the subject's manager, the admins of the subject's unit (the
    nearest unit on the path up to the root that has any), or the named people."""

    MANAGER = "manager"
    UNIT_ADMINS = "unit_admins"
    NAMED = "named"


class DueDefault(StrEnum):
    """What happens to items nobody decided by the end of the due day."""

    KEEP = "keep"
    REVOKE = "revoke"


class CampaignStatus(StrEnum):
    SCHEDULED = "scheduled"
    OPEN = "open"
    COMPLETED = "completed"


class ItemState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REVOKED = "revoked"
    #: Decided by the campaign's rule at the due date, not by a person.
    KEPT_ON_DUE = "kept_on_due"
    REVOKED_ON_DUE = "revoked_on_due"


class RecurrenceUnit(StrEnum):
    DAYS = "days"
    MONTHS = "months"


#: Roles that give administrative power (reviewed as admin roles); ``member`` gives none.
ADMIN_ROLES: tuple[Role, ...] = tuple(r for r in Role if r is not Role.MEMBER)
#: Roles whose holders count as a unit's admins.
UNIT_ADMIN_ROLES = frozenset({Role.OWNER.value, Role.ADMIN.value})

#: The reminder goes this long before the campaign closes.
REMINDER_BEFORE = timedelta(days=3)
#: Limits of a campaign's length and of its recurrence.
MAX_LENGTH_DAYS = 366
#: How far ahead a campaign may be scheduled to start.
MAX_LEAD_DAYS = 366
MAX_EVERY = {RecurrenceUnit.DAYS: 366 * 2, RecurrenceUnit.MONTHS: 24}
MAX_NAMED = 50
#: A campaign's name, at most (the column's length).
NAME_MAX_LENGTH = 200


@dataclass(frozen=True, slots=True)
class Recurrence:
    every: int
    unit: RecurrenceUnit


@dataclass(frozen=True, slots=True)
class Subject:
    """The person whose access an item is about (None for a product client), as the
    reviewer rule sees them: their manager and their unit path (root first, own unit last)."""

    member_id: uuid.UUID
    manager_id: uuid.UUID | None
    unit_path: tuple[uuid.UUID, ...]


def reviewers_for(
    rule: ReviewerRule,
    subject: Subject | None,
    *,
    admins_by_unit: Mapping[uuid.UUID, Sequence[uuid.UUID]],
    named: Sequence[uuid.UUID],
    owner_id: uuid.UUID | None,
) -> tuple[uuid.UUID, ...]:
    """The reviewers of one item, in a stable order, never including its subject.

    Falls back, when the rule finds nobody but the subject, to the named reviewers and then
    to the campaign's owner; an empty tuple means nobody may review it but holders of
    ``reviews:write`` (who still may not decide on their own access). Items without a
    subject person (product clients) go to the named reviewers, else the owner.
    """
    me = subject.member_id if subject is not None else None
    found: list[uuid.UUID] = []
    if subject is not None and rule is ReviewerRule.MANAGER and subject.manager_id:
        found = [subject.manager_id]
    elif subject is not None and rule is ReviewerRule.UNIT_ADMINS:
        for unit_id in reversed(subject.unit_path):
            admins = [a for a in admins_by_unit.get(unit_id, ()) if a != me]
            if admins:
                found = sorted(admins)
                break
    elif rule is ReviewerRule.NAMED:
        found = list(named)
    chosen = _unique(r for r in found if r != me)
    if not chosen:
        chosen = _unique(r for r in named if r != me)
    if not chosen and owner_id is not None and owner_id != me:
        chosen = (owner_id,)
    return chosen


def _unique(ids: Iterable[uuid.UUID]) -> tuple[uuid.UUID, ...]:
    return tuple(dict.fromkeys(ids))


def state_on_due(default: DueDefault) -> ItemState:
    """What an undecided item becomes when the campaign closes."""
    return ItemState.REVOKED_ON_DUE if default is DueDefault.REVOKE else ItemState.KEPT_ON_DUE


def revokes(state: ItemState) -> bool:
    """Whether reaching ``state`` ends the access under review."""
    return state in (ItemState.REVOKED, ItemState.REVOKED_ON_DUE)


def opens_at(starts_on: date, zone: ZoneInfo) -> datetime:
    """A campaign opens at the start of its first day in ``zone`` (the organisation's when
    the campaign was made)."""
    return days.start_of(starts_on, zone)


def closes_at(due_on: date, zone: ZoneInfo) -> datetime:
    """A campaign closes at the end of its due day in ``zone``: the due day is the last day
    on which reviewers decide (read as a UTC day, Los Angeles reviewers lost the afternoon
    of it)."""
    return days.end_of(due_on, zone)


def reminder_at(starts_on: date, due_on: date, zone: ZoneInfo) -> datetime | None:
    """When reviewers are reminded: ``REMINDER_BEFORE`` before the close; None when that is
    not after the opening (a campaign too short for a reminder)."""
    moment = closes_at(due_on, zone) - REMINDER_BEFORE
    return moment if moment > opens_at(starts_on, zone) else None


def occurrence(first: tuple[date, date], recurrence: Recurrence, n: int) -> tuple[date, date]:
    """The start and due dates of the ``n``-th campaign of a series whose first campaign
    ran ``first`` (start, due), the first being the 0th: each date is ``n`` periods after
    the first's own, so a monthly series from 31 January starts 28 February, 31 March,
    30 April (never drifting to the 28th), and its due dates keep their day likewise."""
    first_start, first_due = first
    if recurrence.unit is RecurrenceUnit.MONTHS:
        return (
            add_months(first_start, n * recurrence.every),
            add_months(first_due, n * recurrence.every),
        )
    step = timedelta(days=n * recurrence.every)
    return first_start + step, first_due + step


def next_dates(
    starts_on: date,
    due_on: date,
    recurrence: Recurrence,
    first: tuple[date, date] | None = None,
) -> tuple[date, date]:
    """The successor's start and due dates: the series' first occurrence (``occurrence``,
    counted from ``first``, the series' first campaign; this one when None) that starts
    after ``starts_on``. Not chained from this campaign's own dates, whose day a short
    month clamped or a late worker moved (``successor_dates``)."""
    first = first or (starts_on, due_on)
    every = recurrence.every
    if recurrence.unit is RecurrenceUnit.MONTHS:
        months = (starts_on.year - first[0].year) * 12 + starts_on.month - first[0].month
        n = max(months // every, 0)
    else:
        n = max((starts_on - first[0]).days // every, 0)
    start, due = occurrence(first, recurrence, n)
    while start <= starts_on:
        n += 1
        start, due = occurrence(first, recurrence, n)
    return start, due


def successor_dates(
    starts_on: date,
    due_on: date,
    recurrence: Recurrence,
    today: date,
    first: tuple[date, date] | None = None,
) -> tuple[date, date]:
    """The dates of the campaign that follows one closed ``today``: ``next_dates`` (from the
    series' ``first`` campaign), moved to start today when that start has already passed
    (a worker that was down for a whole period), so reviewers always get the campaign's
    full length to decide."""
    start, due = next_dates(starts_on, due_on, recurrence, first)
    if start < today:
        return today, today + (due - start)
    return start, due


def status_at(
    status: CampaignStatus, starts_on: date, due_on: date, now: datetime, zone: ZoneInfo
) -> CampaignStatus:
    """The status the campaign should have at ``now`` (what the worker moves it to):
    completed stays completed; otherwise open from its first day, completed after its due
    day."""
    if status is CampaignStatus.COMPLETED or now >= closes_at(due_on, zone):
        return CampaignStatus.COMPLETED
    if now >= opens_at(starts_on, zone):
        return CampaignStatus.OPEN
    return CampaignStatus.SCHEDULED


@dataclass(frozen=True, slots=True)
class CampaignDraft:
    """A campaign as asked for, before it is stored."""

    name: str
    scopes: tuple[ScopeKind, ...]
    reviewer_rule: ReviewerRule
    named_reviewers: tuple[uuid.UUID, ...]
    starts_on: date
    due_on: date
    recurrence: Recurrence | None
    default_on_due: DueDefault


def campaign_problems(draft: CampaignDraft, today: date) -> list[FieldProblem]:
    """Everything wrong with a campaign as asked for; empty when it may be created."""
    problems: list[FieldProblem] = []
    if not draft.name.strip():
        problems.append(FieldProblem("name", "is required"))
    elif len(draft.name.strip()) > NAME_MAX_LENGTH:
        problems.append(FieldProblem("name", f"has more than {NAME_MAX_LENGTH} characters"))
    if not draft.scopes:
        problems.append(FieldProblem("scopes", "choose at least one kind of access to review"))
    if draft.reviewer_rule is ReviewerRule.NAMED and not draft.named_reviewers:
        problems.append(
            FieldProblem("named_reviewer_ids", "name at least one reviewer for this rule")
        )
    if len(draft.named_reviewers) > MAX_NAMED:
        problems.append(FieldProblem("named_reviewer_ids", f"at most {MAX_NAMED} people"))
    if draft.starts_on < today:
        problems.append(FieldProblem("starts_on", "cannot be in the past"))
    elif (draft.starts_on - today).days > MAX_LEAD_DAYS:
        problems.append(
            FieldProblem("starts_on", f"must be within {MAX_LEAD_DAYS} days from today")
        )
    if draft.due_on < draft.starts_on:
        problems.append(FieldProblem("due_on", "must be on or after the start date"))
    elif (draft.due_on - draft.starts_on).days > MAX_LENGTH_DAYS:
        problems.append(
            FieldProblem("due_on", f"must be within {MAX_LENGTH_DAYS} days of the start")
        )
    # The successor's dates are worked out only from dates in range (no overflow).
    dates_fit = not any(p.field in ("starts_on", "due_on") for p in problems)
    if draft.recurrence is not None:
        every, unit = draft.recurrence.every, draft.recurrence.unit
        if not 1 <= every <= MAX_EVERY[unit]:
            problems.append(
                FieldProblem("recurrence_every", f"must be 1 to {MAX_EVERY[unit]} {unit.value}")
            )
        elif dates_fit and (
            next_dates(draft.starts_on, draft.due_on, draft.recurrence)[0] <= draft.due_on
        ):
            problems.append(
                FieldProblem(
                    "recurrence_every", "the next campaign would start before this one is due"
                )
            )
    return problems


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    reason: str = ""


YES = Verdict(True)


def can_decide(
    *,
    state: ItemState,
    campaign: CampaignStatus,
    subject_id: uuid.UUID | None,
    reviewers: Sequence[uuid.UUID],
    person: uuid.UUID | None,
    may_decide_any: bool,
) -> Verdict:
    """Whether ``person`` (a member; None for a credential acting for nobody) may decide an
    item now: the campaign is open, the item undecided, the person is not its subject, and
    is one of its reviewers or holds ``reviews:write`` (``may_decide_any``)."""
    if campaign is not CampaignStatus.OPEN:
        return Verdict(False, f"the campaign is {campaign.value}, not open")
    if state is not ItemState.PENDING:
        return Verdict(False, f"this item is already decided ({state.value})")
    if person is not None and person == subject_id:
        return Verdict(False, "nobody reviews their own access")
    if may_decide_any or (person is not None and person in reviewers):
        return YES
    return Verdict(False, "you are not a reviewer of this item")
