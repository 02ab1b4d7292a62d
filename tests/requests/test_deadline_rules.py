"""Deadline arithmetic of privacy requests (GDPR art. 12(3)), statuses and badges: pure,
no database."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenants.errors import IllegalTransitionError, InvalidInputError
from tenants.requests import rules
from tenants.requests.rules import RequestStatus

days = st.dates(min_value=date(2000, 1, 1), max_value=date(2200, 12, 31))


def check_extension(current: int, more: int, reason: str) -> int:
    """``rules.check_extension`` of a request received 1 October and extended ten days
    later, well within its first month."""
    return rules.check_extension(
        current, more, reason, received_on=date(2026, 10, 1), today=date(2026, 10, 10)
    )



@pytest.mark.parametrize(
    ("received", "extension", "due"),
    [
        (date(2025, 1, 15), 0, date(2025, 2, 15)),
        (date(2025, 1, 31), 0, date(2025, 2, 28)),
        (date(2024, 1, 31), 0, date(2024, 2, 29)),
        (date(2025, 3, 31), 0, date(2025, 4, 30)),
        (date(2025, 12, 31), 0, date(2026, 1, 31)),
        (date(2025, 1, 31), 1, date(2025, 3, 31)),
        (date(2025, 1, 31), 2, date(2025, 4, 30)),
        (date(2024, 12, 30), 2, date(2025, 3, 30)),
        (date(2025, 11, 30), 2, date(2026, 2, 28)),
    ],
)
def test_a_request_is_due_on_the_same_date_a_month_later_or_that_months_last_day(
    received: date, extension: int, due: date
) -> None:
    assert rules.due_date(received, extension) == due


def test_an_extension_counts_from_the_day_of_receipt_not_from_the_earlier_due_date() -> None:
    received = date(2025, 1, 31)
    stepwise = rules.add_months(rules.due_date(received), 1)
    assert stepwise == date(2025, 3, 28)
    assert rules.due_date(received, 1) == date(2025, 3, 31)


@given(days, st.integers(min_value=0, max_value=2))
def test_the_due_date_is_in_the_right_month_and_never_past_the_same_day(
    received: date, extension: int
) -> None:
    due = rules.due_date(received, extension)
    months = (due.year - received.year) * 12 + due.month - received.month
    assert months == 1 + extension
    assert due.day <= received.day
    if due.day != received.day:
        assert due.day == calendar.monthrange(due.year, due.month)[1]
    assert timedelta(days=28) <= due - received <= timedelta(days=92)


@given(days)
def test_extensions_only_ever_move_the_deadline_later(received: date) -> None:
    dues = [rules.due_date(received, n) for n in range(3)]
    assert dues == sorted(dues) and len(set(dues)) == 3


def test_a_deadline_cannot_be_extended_past_two_months_in_total() -> None:
    assert check_extension(0, 2, "complex request") == 2
    assert check_extension(1, 1, "many products") == 2
    with pytest.raises(InvalidInputError) as refused:
        check_extension(1, 2, "still more")
    assert [f.field for f in refused.value.fields] == ["months"]
    assert "1 left" in refused.value.fields[0].reason
    with pytest.raises(InvalidInputError) as again:
        check_extension(2, 1, "once more")
    assert "it already is" in again.value.fields[0].reason


def test_an_overdue_request_cannot_be_extended_and_the_refusal_says_until_when_it_could() -> None:
    """GDPR art. 12(3): the member is told of an extension within one month of receipt.
    Received 2026-10-01, due 2026-11-01: on 2026-12-07 (36 days overdue) it is too late."""
    with pytest.raises(InvalidInputError) as refused:
        rules.check_extension(
            0, 2, "complex request", received_on=date(2026, 10, 1), today=date(2026, 12, 7)
        )
    assert [(f.field, f.reason) for f in refused.value.fields] == [
        ("months", "too late to extend: the member must be told of an extension within one "
                   "month of receipt (by 2026-11-01, GDPR art. 12(3))")
    ]


def test_an_extension_is_possible_up_to_the_original_due_day_and_not_after_a_first_one() -> None:
    received = date(2025, 1, 31)
    assert rules.extension_deadline(received) == date(2025, 2, 28)
    assert rules.check_extension(0, 1, "busy", received_on=received, today=date(2025, 2, 28)) == 1
    # Extended once in time (due 31 March), a second month asked in March is too late.
    with pytest.raises(InvalidInputError) as refused:
        rules.check_extension(1, 1, "busy", received_on=received, today=date(2025, 3, 1))
    assert "by 2025-02-28" in refused.value.fields[0].reason


@given(days, st.integers(min_value=0, max_value=120), st.integers(0, 2), st.integers(1, 2))
def test_an_extension_is_allowed_exactly_until_the_first_month_is_over(
    received: date, after: int, current: int, more: int
) -> None:
    today = received + timedelta(days=after)
    allowed = today <= rules.due_date(received) and current + more <= 2
    if allowed:
        total = rules.check_extension(current, more, "busy", received_on=received, today=today)
        assert total == current + more
    else:
        with pytest.raises(InvalidInputError) as refused:
            rules.check_extension(current, more, "busy", received_on=received, today=today)
        assert [f.field for f in refused.value.fields] == ["months"]


def test_an_extension_needs_a_reason_and_a_positive_number_of_months() -> None:
    with pytest.raises(InvalidInputError) as refused:
        check_extension(0, 0, "   ")
    assert {f.field for f in refused.value.fields} == {"months", "reason"}


@pytest.mark.parametrize(
    ("due", "status", "text", "tone"),
    [
        (date(2025, 3, 20), RequestStatus.RECEIVED, "due in 10 days", "ok"),
        (date(2025, 3, 17), RequestStatus.IN_PROGRESS, "due in 7 days", "soon"),
        (date(2025, 3, 11), RequestStatus.RECEIVED, "due in 1 day", "soon"),
        (date(2025, 3, 10), RequestStatus.RECEIVED, "due today", "today"),
        (date(2025, 3, 9), RequestStatus.IN_PROGRESS, "overdue by 1 day", "overdue"),
        (date(2025, 3, 1), RequestStatus.RECEIVED, "overdue by 9 days", "overdue"),
        (date(2025, 3, 1), RequestStatus.ANSWERED, "answered", "closed"),
    ],
)
def test_the_deadline_badge_says_how_long_is_left_or_how_late_it_is(
    due: date, status: RequestStatus, text: str, tone: str
) -> None:
    badge = rules.deadline_badge(due, date(2025, 3, 10), status)
    assert (badge.text, badge.tone) == (text, tone)


def test_a_closed_request_shows_whether_it_was_answered_in_time() -> None:
    due = date(2025, 3, 10)
    assert rules.closed_badge(due, date(2025, 3, 10), RequestStatus.ANSWERED) == (
        rules.DeadlineBadge("answered on time", "ontime")
    )
    assert rules.closed_badge(due, date(2025, 3, 12), RequestStatus.REJECTED) == (
        rules.DeadlineBadge("rejected 2 days late", "overdue")
    )
    assert rules.closed_badge(due, date(2025, 4, 1), RequestStatus.WITHDRAWN).tone == "closed"


def test_the_reminder_goes_out_the_configured_days_before_the_due_day_in_the_morning() -> None:
    now = datetime(2025, 1, 31, 15, tzinfo=UTC)
    assert rules.reminder_at(date(2025, 2, 28), 7, now) == datetime(2025, 2, 21, 7, tzinfo=UTC)
    # Already past the reminder day but not the due day: at once.
    late = datetime(2025, 2, 25, 9, tzinfo=UTC)
    assert rules.reminder_at(date(2025, 2, 28), 7, late) == late
    assert rules.reminder_at(date(2025, 2, 28), 0, now) is None
    assert rules.reminder_at(date(2025, 2, 28), 7, datetime(2025, 3, 1, tzinfo=UTC)) is None


def test_closed_requests_stay_closed_and_open_ones_move_forward_only() -> None:
    rules.check_transition(RequestStatus.RECEIVED, RequestStatus.IN_PROGRESS)
    rules.check_transition(RequestStatus.IN_PROGRESS, RequestStatus.ANSWERED)
    for closed in (RequestStatus.ANSWERED, RequestStatus.REJECTED, RequestStatus.WITHDRAWN):
        for target in RequestStatus:
            with pytest.raises(IllegalTransitionError):
                rules.check_transition(closed, target)
    with pytest.raises(IllegalTransitionError):
        rules.check_transition(RequestStatus.IN_PROGRESS, RequestStatus.RECEIVED)


# --- each refusal and each badge in the words people read ------------------------------------


def problems_of(current: int, more: int, reason: str) -> list[tuple[str, str]]:
    with pytest.raises(InvalidInputError) as refused:
        check_extension(current, more, reason)
    assert refused.value.message == "the deadline cannot be extended so"
    return [(p.field, p.reason) for p in refused.value.fields]


def test_an_extension_of_nothing_is_refused_naming_months() -> None:
    assert problems_of(0, 0, "busy") == [("months", "must be 1 or 2")]


def test_an_extension_past_two_months_says_how_much_is_left() -> None:
    assert problems_of(1, 2, "busy") == [
        ("months", "the deadline may be extended by 2 months in total; 1 left")
    ]


def test_an_extension_when_none_is_left_says_it_already_is() -> None:
    assert problems_of(2, 1, "busy") == [
        ("months", "the deadline may be extended by 2 months in total; it already is")
    ]


def test_an_extension_without_a_reason_is_refused_naming_reason() -> None:
    assert problems_of(0, 1, "  ") == [("reason", "the member is told why; give a reason")]


def test_extensions_add_up_to_two_months() -> None:
    assert check_extension(0, 2, "busy") == 2
    assert check_extension(1, 1, "busy") == 2
    assert check_extension(0, 1, "busy") == 1


def test_a_closed_request_cannot_change_and_the_refusal_says_from_what_to_what() -> None:
    with pytest.raises(IllegalTransitionError) as refused:
        rules.check_transition(RequestStatus.IN_PROGRESS, RequestStatus.RECEIVED)
    assert refused.value.message == "this request is in progress: it cannot go back to received"
    assert refused.value.extra == {"status": "in_progress", "requested_status": "received"}
    for closed in (RequestStatus.ANSWERED, RequestStatus.REJECTED, RequestStatus.WITHDRAWN):
        for target in RequestStatus:
            with pytest.raises(IllegalTransitionError):
                rules.check_transition(closed, target)
    rules.check_transition(RequestStatus.RECEIVED, RequestStatus.WITHDRAWN)


@pytest.mark.parametrize(
    ("closed_on", "status", "text", "tone"),
    [
        (date(2026, 3, 1), RequestStatus.ANSWERED, "answered on time", "ontime"),
        (date(2026, 3, 2), RequestStatus.ANSWERED, "answered 1 day late", "overdue"),
        (date(2026, 3, 4), RequestStatus.REJECTED, "rejected 3 days late", "overdue"),
        (date(2026, 3, 9), RequestStatus.WITHDRAWN, "withdrawn", "closed"),
    ],
)
def test_a_closed_request_shows_whether_it_was_answered_in_time_or_how_late(
    closed_on: date, status: RequestStatus, text: str, tone: str
) -> None:
    assert rules.closed_badge(date(2026, 3, 1), closed_on, status) == rules.DeadlineBadge(
        text, tone
    )


def test_the_reminder_goes_out_before_the_due_day_at_once_when_late_and_never_after() -> None:
    due = date(2026, 3, 10)
    early = datetime(2026, 3, 1, tzinfo=UTC)
    at = rules.reminder_at(due, 3, early)
    assert at == datetime.combine(date(2026, 3, 7), rules.REMINDER_TIME)
    late = datetime(2026, 3, 9, 12, tzinfo=UTC)
    assert rules.reminder_at(due, 3, late) == late
    assert rules.reminder_at(due, 3, datetime(2026, 3, 10, 23, tzinfo=UTC)) is not None
    assert rules.reminder_at(due, 3, datetime(2026, 3, 11, tzinfo=UTC)) is None
    assert rules.reminder_at(due, 0, early) is None


def test_only_access_and_portability_are_exports_and_only_erasure_erases() -> None:
    kinds = list(rules.RequestKind)
    assert {k for k in kinds if rules.can_export(k)} == {
        rules.RequestKind.ACCESS, rules.RequestKind.PORTABILITY
    }
    assert {k for k in kinds if rules.can_erase(k)} == {rules.RequestKind.ERASURE}


def test_a_request_cannot_go_back_to_in_progress_and_the_refusal_reads_in_words() -> None:
    with pytest.raises(IllegalTransitionError) as refused:
        rules.check_transition(RequestStatus.IN_PROGRESS, RequestStatus.IN_PROGRESS)
    assert refused.value.message == "this request is already in progress"


def test_a_deadline_eight_days_away_is_not_yet_soon() -> None:
    assert rules.deadline_badge(date(2025, 3, 18), date(2025, 3, 10), RequestStatus.RECEIVED) == (
        rules.DeadlineBadge("due in 8 days", "ok")
    )


def test_a_reminder_one_day_before_is_sent() -> None:
    due = date(2026, 3, 10)
    at = rules.reminder_at(due, 1, datetime(2026, 3, 1, tzinfo=UTC))
    assert at == datetime.combine(date(2026, 3, 9), rules.REMINDER_TIME)


def test_an_extension_out_of_range_is_refused_saying_so() -> None:
    with pytest.raises(ValueError, match="out of range") as refused:
        rules.due_date(date(2026, 1, 1), 3)
    assert str(refused.value) == "extension of 3 months is out of range"


def test_a_refused_change_of_a_closed_request_says_it_is_closed_in_plain_words() -> None:
    with pytest.raises(IllegalTransitionError) as refused:
        rules.check_transition(RequestStatus.ANSWERED, RequestStatus.REJECTED)
    assert refused.value.message == (
        "this request is answered, which closed it: it can no longer be rejected"
    )
    with pytest.raises(IllegalTransitionError) as again:
        rules.check_transition(RequestStatus.WITHDRAWN, RequestStatus.WITHDRAWN)
    assert again.value.message == "this request is already withdrawn"


def test_a_day_of_receipt_is_not_in_the_future_nor_more_than_a_year_ago() -> None:
    today = date(2026, 12, 7)
    assert rules.check_received_on(today, today) == today
    assert rules.check_received_on(date(2025, 12, 7), today) == date(2025, 12, 7)
    with pytest.raises(InvalidInputError) as future:
        rules.check_received_on(date(2026, 12, 8), today)
    assert [(f.field, f.reason) for f in future.value.fields] == [
        ("received_on", "cannot be in the future (today is 2026-12-07 UTC)")
    ]
    with pytest.raises(InvalidInputError) as old:
        rules.check_received_on(date(2025, 12, 6), today)
    assert [(f.field, f.reason) for f in old.value.fields] == [
        ("received_on", "must be 2025-12-07 or later (at most a year ago)")
    ]
