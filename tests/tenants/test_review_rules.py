"""The rules of access reviews without a server: who reviews, what the due date does, when
the next campaign runs, the campaign's status over time, and who may decide."""

from __future__ import annotations

import calendar
import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from tenants.reviews import rules
from tenants.reviews.rules import (
    CampaignDraft,
    CampaignStatus,
    DueDefault,
    ItemState,
    Recurrence,
    RecurrenceUnit,
    ReviewerRule,
    ScopeKind,
    Subject,
)

ROOT, LAB, TEAM = (uuid.uuid4() for _ in range(3))
ME, BOSS, NAMED, OWNER, ROOT_ADMIN, LAB_ADMIN = (uuid.uuid4() for _ in range(6))

UTC_ZONE = ZoneInfo("UTC")


def subject(manager: uuid.UUID | None = BOSS, path: tuple[uuid.UUID, ...] = (ROOT, LAB, TEAM)) -> Subject:
    return Subject(ME, manager, path)


def reviewers(rule: ReviewerRule, who: Subject | None, **kw: object) -> tuple[uuid.UUID, ...]:
    options: dict[str, object] = {
        "admins_by_unit": {ROOT: [ROOT_ADMIN], LAB: [LAB_ADMIN]},
        "named": [NAMED],
        "owner_id": OWNER,
        **kw,
    }
    return rules.reviewers_for(rule, who, **options)  # type: ignore[arg-type]


def test_the_manager_reviews_their_reports_access() -> None:
    assert reviewers(ReviewerRule.MANAGER, subject()) == (BOSS,)


def test_without_a_manager_the_named_reviewers_then_the_owner_take_over() -> None:
    assert reviewers(ReviewerRule.MANAGER, subject(manager=None)) == (NAMED,)
    assert reviewers(ReviewerRule.MANAGER, subject(manager=None), named=[]) == (OWNER,)


def test_unit_admins_are_the_nearest_units_admins_up_the_tree() -> None:
    assert reviewers(ReviewerRule.UNIT_ADMINS, subject()) == (LAB_ADMIN,)
    assert reviewers(ReviewerRule.UNIT_ADMINS, subject(path=(ROOT,))) == (ROOT_ADMIN,)


def test_a_units_only_admin_is_reviewed_by_the_admins_above() -> None:
    me_admin = {ROOT: [ROOT_ADMIN], LAB: [ME]}
    assert reviewers(ReviewerRule.UNIT_ADMINS, subject(), admins_by_unit=me_admin) == (ROOT_ADMIN,)


def test_named_reviewers_review_and_a_product_client_goes_to_them() -> None:
    assert reviewers(ReviewerRule.NAMED, subject()) == (NAMED,)
    assert reviewers(ReviewerRule.MANAGER, None) == (NAMED,)
    assert reviewers(ReviewerRule.UNIT_ADMINS, None, named=[]) == (OWNER,)


def test_an_owner_reviewing_only_their_own_access_leaves_the_item_without_reviewer() -> None:
    assert reviewers(ReviewerRule.NAMED, subject(), named=[ME], owner_id=ME) == ()


@given(
    rule=st.sampled_from(list(ReviewerRule)),
    manager=st.sampled_from([None, BOSS, ME]),
    named=st.lists(st.sampled_from([ME, NAMED, BOSS]), max_size=3),
    owner=st.sampled_from([None, OWNER, ME]),
    lab=st.lists(st.sampled_from([ME, LAB_ADMIN]), max_size=2),
)
def test_nobody_ever_reviews_their_own_access(
    rule: ReviewerRule,
    manager: uuid.UUID | None,
    named: list[uuid.UUID],
    owner: uuid.UUID | None,
    lab: list[uuid.UUID],
) -> None:
    found = reviewers(
        rule, subject(manager=manager), named=named, owner_id=owner,
        admins_by_unit={LAB: lab, ROOT: [ME]},
    )
    assert ME not in found
    assert len(found) == len(set(found))
    # Somebody other than the subject is always found when one was offered.
    if owner == OWNER or NAMED in named or BOSS in named:
        assert found


def test_the_due_date_applies_the_campaigns_rule() -> None:
    assert rules.state_on_due(DueDefault.KEEP) is ItemState.KEPT_ON_DUE
    assert rules.state_on_due(DueDefault.REVOKE) is ItemState.REVOKED_ON_DUE
    assert rules.revokes(ItemState.REVOKED_ON_DUE) and rules.revokes(ItemState.REVOKED)
    assert not rules.revokes(ItemState.KEPT_ON_DUE) and not rules.revokes(ItemState.APPROVED)


def test_a_campaign_is_scheduled_then_open_then_completed_after_its_due_day() -> None:
    start, due = date(2026, 3, 2), date(2026, 3, 16)
    at = lambda d, h=0: datetime(d.year, d.month, d.day, h, tzinfo=UTC)  # noqa: E731
    s = CampaignStatus.SCHEDULED
    assert rules.status_at(s, start, due, at(start) - timedelta(seconds=1), UTC_ZONE) is s
    assert rules.status_at(s, start, due, at(start), UTC_ZONE) is CampaignStatus.OPEN
    assert rules.status_at(s, start, due, at(due, 23), UTC_ZONE) is CampaignStatus.OPEN
    assert (
        rules.status_at(s, start, due, at(due + timedelta(days=1)), UTC_ZONE)
        is CampaignStatus.COMPLETED
    )
    assert (
        rules.status_at(CampaignStatus.COMPLETED, start, due, at(start), UTC_ZONE)
        is CampaignStatus.COMPLETED
    )


def test_a_campaign_s_days_are_its_organisation_s_days() -> None:
    """Read as UTC days, a Los Angeles campaign closed at 4 pm on its due day, revoking
    what reviewers meant to decide that evening."""
    la = ZoneInfo("America/Los_Angeles")
    start, due = date(2026, 12, 1), date(2026, 12, 21)
    assert rules.opens_at(start, la) == datetime(2026, 12, 1, 8, tzinfo=UTC)
    assert rules.closes_at(due, la) == datetime(2026, 12, 22, 8, tzinfo=UTC)
    evening = datetime(2026, 12, 22, 3, tzinfo=UTC)  # 19:00 on the due day there
    assert rules.status_at(CampaignStatus.OPEN, start, due, evening, la) is CampaignStatus.OPEN
    assert rules.status_at(CampaignStatus.OPEN, start, due, evening, UTC_ZONE) is (
        CampaignStatus.COMPLETED
    )
    assert rules.reminder_at(start, due, la) == datetime(2026, 12, 19, 8, tzinfo=UTC)


def test_the_reminder_comes_three_days_before_the_close_unless_the_campaign_is_too_short() -> None:
    assert rules.reminder_at(date(2026, 3, 1), date(2026, 3, 10), UTC_ZONE) == datetime(
        2026, 3, 8, tzinfo=UTC
    )
    assert rules.reminder_at(date(2026, 3, 1), date(2026, 3, 2), UTC_ZONE) is None


def test_monthly_recurrence_keeps_the_length_and_clamps_the_day() -> None:
    months = Recurrence(1, RecurrenceUnit.MONTHS)
    assert rules.next_dates(date(2026, 1, 31), date(2026, 2, 14), months) == (
        date(2026, 2, 28), date(2026, 3, 14)
    )
    assert rules.next_dates(date(2026, 11, 5), date(2026, 11, 20), Recurrence(3, RecurrenceUnit.MONTHS)) == (
        date(2027, 2, 5), date(2027, 2, 20)
    )
    assert rules.next_dates(date(2026, 1, 1), date(2026, 1, 3), Recurrence(10, RecurrenceUnit.DAYS)) == (
        date(2026, 1, 11), date(2026, 1, 13)
    )


def test_a_successor_whose_start_passed_while_nobody_ran_starts_today_with_its_full_length() -> None:
    weekly = Recurrence(7, RecurrenceUnit.DAYS)
    assert rules.successor_dates(date(2026, 1, 1), date(2026, 1, 3), weekly, date(2026, 2, 1)) == (
        date(2026, 2, 1), date(2026, 2, 3)
    )
    assert rules.successor_dates(date(2026, 1, 1), date(2026, 1, 3), weekly, date(2026, 1, 4)) == (
        date(2026, 1, 8), date(2026, 1, 10)
    )


@given(
    start=st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 1, 1)),
    length=st.integers(0, 60),
    every=st.integers(1, 24),
    unit=st.sampled_from(list(RecurrenceUnit)),
)
def test_the_next_campaign_is_as_long_and_starts_after_this_one_started(
    start: date, length: int, every: int, unit: RecurrenceUnit
) -> None:
    due = start + timedelta(days=length)
    nxt, nxt_due = rules.next_dates(start, due, Recurrence(every, unit))
    assert nxt > start and nxt_due >= nxt
    if unit is RecurrenceUnit.DAYS:
        assert nxt_due - nxt == due - start
    else:
        # Each date is its own month later, its day clamped to the month's end.
        assert (nxt, nxt_due) == (rules.add_months(start, every), rules.add_months(due, every))


def test_a_monthly_series_from_a_months_end_keeps_to_months_ends() -> None:
    """From 2027-01-31 the campaigns started 02-28, 03-28, 04-28: each was chained from the
    one before, whose day February had clamped. Counted from the first, they keep the 31st
    where a month has it, and their due dates keep theirs."""
    monthly = Recurrence(1, RecurrenceUnit.MONTHS)
    first = (date(2027, 1, 31), date(2027, 2, 14))
    series = [first]
    for _ in range(5):
        series.append(rules.next_dates(*series[-1], monthly, first))
    assert [s for s, _ in series] == [
        date(2027, 1, 31), date(2027, 2, 28), date(2027, 3, 31), date(2027, 4, 30),
        date(2027, 5, 31), date(2027, 6, 30),
    ]  # fmt: skip
    assert [d for _, d in series][1:3] == [date(2027, 3, 14), date(2027, 4, 14)]
    ends = (date(2027, 1, 1), date(2027, 1, 31))
    assert rules.next_dates(date(2027, 2, 1), date(2027, 2, 28), monthly, ends) == (
        date(2027, 3, 1), date(2027, 3, 31)
    )


def test_after_a_late_start_the_series_goes_back_to_its_own_dates() -> None:
    """A campaign moved to start on the day it was created (a worker was down) is followed
    by the series' next occurrence, not by one a period after the late start."""
    monthly = Recurrence(1, RecurrenceUnit.MONTHS)
    first = (date(2027, 1, 31), date(2027, 2, 10))
    late = rules.successor_dates(*first, monthly, date(2027, 3, 5), first)
    assert late == (date(2027, 3, 5), date(2027, 3, 15))
    assert rules.next_dates(*late, monthly, first) == (date(2027, 3, 31), date(2027, 4, 10))


@given(
    start=st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 1, 1)),
    length=st.integers(0, 60),
    every=st.integers(1, 24),
    unit=st.sampled_from(list(RecurrenceUnit)),
    count=st.integers(1, 40),
)
def test_chaining_successors_lands_on_the_nth_occurrence_counted_from_the_first(
    start: date, length: int, every: int, unit: RecurrenceUnit, count: int
) -> None:
    recurrence = Recurrence(every, unit)
    first = (start, start + timedelta(days=length))
    dates = first
    for n in range(1, count + 1):
        dates = rules.next_dates(*dates, recurrence, first)
        assert dates == rules.occurrence(first, recurrence, n)
    if unit is RecurrenceUnit.MONTHS:
        month_end = calendar.monthrange(dates[0].year, dates[0].month)[1]
        assert dates[0].day == min(start.day, month_end)


def draft(**kw: object) -> CampaignDraft:
    values: dict[str, object] = {
        "name": "Quarterly",
        "scopes": (ScopeKind.ADMIN_ROLES,),
        "reviewer_rule": ReviewerRule.MANAGER,
        "named_reviewers": (),
        "starts_on": date(2026, 3, 1),
        "due_on": date(2026, 3, 15),
        "recurrence": None,
        "default_on_due": DueDefault.KEEP,
        **kw,
    }
    return CampaignDraft(**values)  # type: ignore[arg-type]


def fields_of(d: CampaignDraft, today: date = date(2026, 3, 1)) -> set[str]:
    return {p.field for p in rules.campaign_problems(d, today)}


def test_a_sound_campaign_has_no_problem() -> None:
    assert fields_of(draft()) == set()
    assert fields_of(draft(recurrence=Recurrence(3, RecurrenceUnit.MONTHS))) == set()


def test_each_problem_names_its_field() -> None:
    assert fields_of(draft(name=" ")) == {"name"}
    assert fields_of(draft(scopes=())) == {"scopes"}
    assert fields_of(draft(reviewer_rule=ReviewerRule.NAMED)) == {"named_reviewer_ids"}
    assert fields_of(draft(starts_on=date(2026, 2, 28))) == {"starts_on"}
    assert fields_of(draft(due_on=date(2026, 2, 28))) == {"due_on"}
    assert fields_of(draft(due_on=date(2027, 6, 1))) == {"due_on"}
    assert fields_of(draft(recurrence=Recurrence(0, RecurrenceUnit.DAYS))) == {"recurrence_every"}
    # Every 10 days but 14 days long: the next would start before this one is due.
    assert fields_of(draft(recurrence=Recurrence(10, RecurrenceUnit.DAYS))) == {"recurrence_every"}


def test_dates_far_ahead_are_refused_by_name_and_never_overflow() -> None:
    # A year ahead at most (366 days): the 367th day is refused, the 366th is not.
    assert fields_of(draft(starts_on=date(2027, 3, 2), due_on=date(2027, 3, 3))) == set()
    assert fields_of(draft(starts_on=date(2027, 3, 3), due_on=date(2027, 3, 4))) == {"starts_on"}
    quarterly = Recurrence(24, RecurrenceUnit.MONTHS)
    last = date.max
    assert fields_of(draft(starts_on=last, due_on=last, recurrence=quarterly)) == {"starts_on"}
    assert fields_of(draft(due_on=last, recurrence=quarterly)) == {"due_on"}


def test_reviewers_decide_open_undecided_items_but_never_their_own() -> None:
    base = {
        "state": ItemState.PENDING,
        "campaign": CampaignStatus.OPEN,
        "subject_id": ME,
        "reviewers": [BOSS],
        "may_decide_any": False,
    }
    assert rules.can_decide(person=BOSS, **base).allowed  # type: ignore[arg-type]
    assert not rules.can_decide(person=NAMED, **base).allowed  # type: ignore[arg-type]
    assert rules.can_decide(person=NAMED, **{**base, "may_decide_any": True}).allowed  # type: ignore[arg-type]
    own = {**base, "reviewers": [ME], "may_decide_any": True}
    assert not rules.can_decide(person=ME, **own).allowed  # type: ignore[arg-type]
    done = {**base, "state": ItemState.APPROVED}
    assert not rules.can_decide(person=BOSS, **done).allowed  # type: ignore[arg-type]
    closed = {**base, "campaign": CampaignStatus.COMPLETED}
    assert not rules.can_decide(person=BOSS, **closed).allowed  # type: ignore[arg-type]
