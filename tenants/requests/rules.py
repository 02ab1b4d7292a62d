"""The rules of privacy requests as plain Python: deadlines, extensions, statuses, badges.

Deadlines follow GDPR article 12(3) as supervisory authorities read it: one month from
the day the request was received, to the same date of the next month, or the last day of
that month when it has no such date (received 31 January: due 28 or 29 February);
extendable by at most two further months, counted from the same day of receipt, with the
reason told to the member. Dates are UTC days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from tenants.errors import FieldProblem, IllegalTransitionError, InvalidInputError
from tenants.organisations.days import add_months


class RequestKind(StrEnum):
    """What the member asks for: an inquiry, or one of the rights of GDPR articles 15-21."""

    INQUIRY = "inquiry"
    ACCESS = "access"
    PORTABILITY = "portability"
    RECTIFICATION = "rectification"
    ERASURE = "erasure"
    RESTRICTION = "restriction"
    OBJECTION = "objection"
    WITHDRAW_CONSENT = "withdraw_consent"


class RequestStatus(StrEnum):
    RECEIVED = "received"
    IN_PROGRESS = "in_progress"
    ANSWERED = "answered"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class RequestSource(StrEnum):
    #: Sent by the member from the account page.
    ACCOUNT = "account"
    #: Received by a product and forwarded through the API.
    PRODUCT = "product"
    #: Entered through the API with an organisation's token (a request that came by post or
    #: email, recorded by the privacy team).
    API = "api"


class ExportStatus(StrEnum):
    #: Waiting for products to upload their parts.
    COLLECTING = "collecting"
    READY = "ready"
    #: The bundle was deleted after its link expired.
    EXPIRED = "expired"


#: The deadline without extension, and the most it may be extended by, in months.
BASE_MONTHS = 1
MAX_EXTENSION_MONTHS = 2
#: When, on its day, a reminder goes out (UTC): the start of a European working day.
REMINDER_TIME = time(7, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class RequestPolicyView:
    """An organisation's settings for privacy requests (``PrivacyRequestPolicy``)."""

    reminder_days: int = 7
    export_link_days: int = 7
    export_collect_hours: int = 72


DEFAULT_POLICY = RequestPolicyView()

#: Limits of the policy (the same as the database's CHECK constraint).
REMINDER_DAYS_RANGE = (0, 27)
EXPORT_LINK_DAYS_RANGE = (1, 90)
EXPORT_COLLECT_HOURS_RANGE = (0, 720)


def due_date(received_on: date, extension_months: int = 0) -> date:
    """The last day to answer a request received on ``received_on``.

    Counted from the day of receipt for the whole period (not month after month from an
    earlier due date), so 31 Jan extended by one month is due 31 Mar, not 28 Mar.
    """
    if not 0 <= extension_months <= MAX_EXTENSION_MONTHS:
        raise ValueError(f"extension of {extension_months} months is out of range")
    return add_months(received_on, BASE_MONTHS + extension_months)


def extension_deadline(received_on: date) -> date:
    """The last day a deadline may still be extended: the original due day.

    GDPR art. 12(3) lets the controller extend the period only if it tells the member
    within one month of receipt; past that day (the request is then overdue, or was
    already extended once and the first month is over) an extension would be a late
    excuse, not a lawful one.
    """
    return due_date(received_on)


def check_extension(
    current_months: int, more_months: int, reason: str, *, received_on: date, today: date
) -> int:
    """The total extension after adding ``more_months`` to ``current_months``, for a
    request received on ``received_on`` and extended on ``today`` (UTC days).

    Raises InvalidInputError (naming ``months`` or ``reason``) when the total would pass
    two months, the addition is not positive, the first month after receipt is over
    (``extension_deadline``: the member must be told of an extension within it), or no
    reason is given: the member must be told why.
    """
    problems = []
    last_day = extension_deadline(received_on)
    if today > last_day:
        problems.append(
            FieldProblem(
                "months",
                "too late to extend: the member must be told of an extension within one "
                f"month of receipt (by {last_day.isoformat()}, GDPR art. 12(3))",
            )
        )
    elif more_months < 1:
        problems.append(FieldProblem("months", "must be 1 or 2"))
    elif current_months + more_months > MAX_EXTENSION_MONTHS:
        left = MAX_EXTENSION_MONTHS - current_months
        problems.append(
            FieldProblem(
                "months",
                f"the deadline may be extended by {MAX_EXTENSION_MONTHS} months in total; "
                + (f"{left} left" if left else "it already is"),
            )
        )
    if not reason.strip():
        problems.append(FieldProblem("reason", "the member is told why; give a reason"))
    if problems:
        raise InvalidInputError("the deadline cannot be extended so", fields=problems)
    return current_months + more_months


#: How long ago a request entered on a member's behalf may have been received, in months:
#: far past its longest deadline (three months), so a letter found late is still recorded
#: with its true date (and shows as overdue), while a mistyped year (2016 for 2026) is
#: refused.
RECEIVED_WITHIN_MONTHS = 12


def check_received_on(received_on: date, today: date) -> date:
    """``received_on``, the day a request came by post or email, when it may be recorded
    ``today`` (UTC): not in the future, nor more than RECEIVED_WITHIN_MONTHS ago.
    InvalidInputError naming ``received_on`` otherwise. The deadline runs from it."""
    earliest = add_months(today, -RECEIVED_WITHIN_MONTHS)
    if received_on > today:
        reason = f"cannot be in the future (today is {today.isoformat()} UTC)"
    elif received_on < earliest:
        reason = f"must be {earliest.isoformat()} or later (at most a year ago)"
    else:
        return received_on
    raise InvalidInputError(
        "the day of receipt is not possible", fields=[FieldProblem("received_on", reason)]
    )


def days_left(due_on: date, today: date) -> int:
    """Whole days until the due day: 0 on the day itself, negative once overdue."""
    return (due_on - today).days


@dataclass(frozen=True, slots=True)
class DeadlineBadge:
    text: str
    #: A CSS modifier: ``ok``, ``soon`` (a week or less), ``today``, ``overdue``, ``ontime``
    #: (closed in time), ``closed``.
    tone: str


def deadline_badge(due_on: date, today: date, status: RequestStatus) -> DeadlineBadge:
    """What the queue shows beside a request: how long is left, or that it is overdue."""
    if not is_open(status):
        # Not mutated: no closed status holds an underscore, so the replace is equivalent.
        return DeadlineBadge(status.value.replace("_", " "), "closed")  # pragma: no mutate
    left = days_left(due_on, today)
    if left < 0:
        n = -left
        return DeadlineBadge(f"overdue by {n} day{'s' if n != 1 else ''}", "overdue")
    if left == 0:
        return DeadlineBadge("due today", "today")
    return DeadlineBadge(f"due in {left} day{'s' if left != 1 else ''}", "soon" if left <= 7 else "ok")


def closed_badge(due_on: date, closed_on: date, status: RequestStatus) -> DeadlineBadge:
    """What a closed request shows: whether it was answered in time, or how late."""
    # Not mutated: no closed status holds an underscore, so the replace is equivalent.
    word = status.value.replace("_", " ")  # pragma: no mutate
    if status == RequestStatus.WITHDRAWN:
        return DeadlineBadge(word, "closed")
    late = (closed_on - due_on).days
    if late > 0:
        return DeadlineBadge(f"{word} {late} day{'s' if late != 1 else ''} late", "overdue")
    return DeadlineBadge(f"{word} on time", "ontime")


def reminder_at(due_on: date, reminder_days: int, now: datetime) -> datetime | None:
    """When the reminder for a request due on ``due_on`` goes out: ``reminder_days``
    before the due day, at REMINDER_TIME; at once when that moment has passed but the
    due day has not; None when there is nothing left to remind of (0 days, or past due)."""
    if reminder_days <= 0:
        return None
    moment = datetime.combine(due_on - timedelta(days=reminder_days), REMINDER_TIME)
    if moment > now:
        return moment
    if now.date() <= due_on:
        return now
    return None


OPEN = frozenset({RequestStatus.RECEIVED, RequestStatus.IN_PROGRESS})

#: Which status may follow which; anything else is refused. Closed requests stay closed.
TRANSITIONS: dict[RequestStatus, frozenset[RequestStatus]] = {
    RequestStatus.RECEIVED: frozenset(
        {RequestStatus.IN_PROGRESS, RequestStatus.ANSWERED, RequestStatus.REJECTED,
         RequestStatus.WITHDRAWN}
    ),
    RequestStatus.IN_PROGRESS: frozenset(
        {RequestStatus.ANSWERED, RequestStatus.REJECTED, RequestStatus.WITHDRAWN}
    ),
    RequestStatus.ANSWERED: frozenset(),
    RequestStatus.REJECTED: frozenset(),
    RequestStatus.WITHDRAWN: frozenset(),
}


def is_open(status: RequestStatus) -> bool:
    return status in OPEN


def check_transition(current: RequestStatus, target: RequestStatus) -> None:
    """IllegalTransitionError unless ``target`` may follow ``current``."""
    if target not in TRANSITIONS[current]:
        now, asked = current.value.replace("_", " "), target.value.replace("_", " ")
        if current is target:
            said = f"this request is already {now}"
        elif not is_open(current):
            said = f"this request is {now}, which closed it: it can no longer be {asked}"
        else:
            said = f"this request is {now}: it cannot go back to {asked}"
        raise IllegalTransitionError(
            said,
            extra={"status": current.value, "requested_status": target.value},
        )


#: Requests usually fulfilled by an export of the member's data (GDPR articles 15 and
#: 20); any open request may be answered with one.
EXPORT_KINDS = frozenset({RequestKind.ACCESS, RequestKind.PORTABILITY})
#: Requests fulfilled by erasing the member's personal content (article 17).
ERASURE_KINDS = frozenset({RequestKind.ERASURE})


def can_export(kind: RequestKind) -> bool:
    return kind in EXPORT_KINDS


def can_erase(kind: RequestKind) -> bool:
    return kind in ERASURE_KINDS


#: How the kinds read for people (account page, console, emails).
KIND_LABELS: dict[RequestKind, str] = {
    RequestKind.INQUIRY: "Question about your data",
    RequestKind.ACCESS: "Access: a copy of your data",
    RequestKind.PORTABILITY: "Portability: your data in a machine-readable form",
    RequestKind.RECTIFICATION: "Rectification: correct your data",
    RequestKind.ERASURE: "Erasure: delete your data",
    RequestKind.RESTRICTION: "Restriction: limit how your data is used",
    RequestKind.OBJECTION: "Objection to how your data is used",
    RequestKind.WITHDRAW_CONSENT: "Withdraw consent",
}

#: The same kinds as the privacy team reads them (the console): about the member's data.
STAFF_KIND_LABELS: dict[RequestKind, str] = {
    RequestKind.INQUIRY: "Question about their data",
    RequestKind.ACCESS: "Access: a copy of their data",
    RequestKind.PORTABILITY: "Portability: their data in a machine-readable form",
    RequestKind.RECTIFICATION: "Rectification: correct their data",
    RequestKind.ERASURE: "Erasure: delete their data",
    RequestKind.RESTRICTION: "Restriction: limit how their data is used",
    RequestKind.OBJECTION: "Objection to how their data is used",
    RequestKind.WITHDRAW_CONSENT: "Withdraw consent",
}

STATUS_LABELS: dict[RequestStatus, str] = {
    RequestStatus.RECEIVED: "Received",
    RequestStatus.IN_PROGRESS: "In progress",
    RequestStatus.ANSWERED: "Answered",
    RequestStatus.REJECTED: "Rejected",
    RequestStatus.WITHDRAWN: "Withdrawn",
}
