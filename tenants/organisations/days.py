"""An organisation's calendar: the days its admins name (a member's last day, the day a
policy takes effect, the last day to decide a review) begin and end at midnight in the
organisation's time zone, not in UTC. A last day read as a UTC day ended a Los Angeles
member's sign-in at 4 pm on that day, and let an Auckland member in for 13 hours of the
next.

Plain functions of a zone and a date (or an instant), so rules and tests need no server.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

#: Where an organisation has not said otherwise (and every organisation before migration
#: 0047, whose days were UTC days).
DEFAULT_ZONE = "UTC"


def start_of(day: date, zone: ZoneInfo) -> datetime:
    """The instant (UTC) at which ``day`` begins in ``zone``. Where the clocks skip
    midnight (a change of time at 00:00), the day begins at the first time that exists:
    a local time that does not exist is read with the offset before the change (PEP 495,
    ``fold=0``), which lands on it."""
    try:
        return datetime.combine(day, time(0, 0), tzinfo=zone).astimezone(UTC)
    except OverflowError:  # 0001-01-01 east of UTC began in year 0
        raise ValueError(f"{day.isoformat()} is outside the days this service keeps") from None


def end_of(day: date, zone: ZoneInfo) -> datetime:
    """The instant (UTC) at which ``day`` is over in ``zone``: when the next one begins."""
    try:
        following = day + timedelta(days=1)
    except OverflowError:
        raise ValueError(f"{day.isoformat()} is outside the days this service keeps") from None
    return start_of(following, zone)


def add_months(day: date, months: int) -> date:
    """``day`` moved by ``months`` calendar months, clamped to the end of a shorter month
    (31 Jan + 1 → 28/29 Feb; 29 Feb + 12 → 28 Feb): a privacy request's deadline, a review
    series' dates, a kept record's review in years."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def today(zone: ZoneInfo, now: datetime | None = None) -> date:
    """The date it is in ``zone`` at ``now`` (default: now)."""
    return (now or datetime.now(UTC)).astimezone(zone).date()


def shown(instant: datetime, zone: ZoneInfo) -> str:
    """``instant`` as an email says it to people of ``zone``, with the UTC date and time
    beside it when the zone is another: ``2026-12-11 00:00 PST (2026-12-11 08:00 UTC)``
    (the date too: east of UTC it is often the day before)."""
    here = instant.astimezone(zone)
    text = f"{here:%Y-%m-%d %H:%M} {here.tzname()}"
    if here.utcoffset():
        text += f" ({instant.astimezone(UTC):%Y-%m-%d %H:%M} UTC)"
    return text
