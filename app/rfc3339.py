"""The one reader of dates and date-times the service takes from outside: the /v1 API's
bodies and query strings and the console's forms.

RFC 3339 §5.6 and nothing wider. ``date.fromisoformat`` and ``datetime.fromisoformat``
take all of ISO 8601's other spellings (``2027-W10-1``, ``20270301T000000Z``, ``T09Z``,
offsets with seconds, a comma before the fraction) and refuse some of RFC 3339's own
(a lower-case ``t`` or ``z``, a leap second); pydantic would also read digits as a Unix
timestamp. Choices where RFC 3339 leaves one open:

- A date is ``YYYY-MM-DD`` (``full-date``), which is also what an HTML date input sends.
- A date-time is ``full-date "T" full-time``; ``T`` and ``Z`` may be lower case (§5.6,
  note). A single space instead of ``T`` is taken too (the note allows it "for
  readability", and PostgreSQL and many loggers write it so); the seconds and the offset
  are always required.
- The offset is ``Z`` or ``±HH:MM``; ``-00:00`` (unknown local offset, §4.3) is UTC.
- A fraction of a second has any number of digits after a ``.``; past six it is cut to
  microseconds (truncated, not rounded: what Python and PostgreSQL hold).
- A leap second (``:60``, §5.7) is taken as the last microsecond of the second before
  (``23:59:60Z`` is ``23:59:59.999999Z``): PostgreSQL cannot hold it either, and refusing a
  valid time a clock wrote would be worse than an instant off by under a second.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

#: How a refused date is explained, and a refused date-time (the API's field reasons).
DATE_EXPECTED = "expected a date as YYYY-MM-DD, such as 2024-01-31"
DATETIME_EXPECTED = "expected an RFC 3339 date-time such as 2024-01-31T09:00:00Z"

_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)
_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))",
    re.ASCII,
)


def parse_date(text: str) -> date:
    """The date ``YYYY-MM-DD`` names; ValueError (DATE_EXPECTED, or why the date does not
    exist) for anything else, surrounding spaces included."""
    match = _DATE.fullmatch(text)
    if match is None:
        raise ValueError(DATE_EXPECTED)
    year, month, day = (int(g) for g in match.groups())
    try:
        return date(year, month, day)
    except ValueError:
        raise ValueError(f"{text} is not a day of the calendar") from None


def parse_datetime(text: str) -> datetime:
    """The instant an RFC 3339 date-time names, aware, in the offset it was written with
    (see the module's notes for the choices); ValueError (DATETIME_EXPECTED, or what is
    out of range) for anything else. The instant may still be outside what PostgreSQL
    holds once in UTC: callers that store it check that."""
    match = _DATETIME.fullmatch(text)
    if match is None:
        raise ValueError(DATETIME_EXPECTED)
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, zulu, sign, off_hours, off_minutes = match.groups()[6:]
    micro = int((fraction or "").ljust(6, "0")[:6])
    leap = second == 60
    if leap:
        second, micro = 59, 999_999
    try:
        day_ = date(year, month, day)
    except ValueError:
        raise ValueError(f"{text[:10]} is not a day of the calendar") from None
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError(f"{text[11:19]} is not a time of day")
    if zulu:
        zone = UTC
    else:
        hours, minutes = int(off_hours), int(off_minutes)
        if hours > 23 or minutes > 59:
            raise ValueError(f"{sign}{off_hours}:{off_minutes} is not an offset from UTC")
        offset = timedelta(hours=hours, minutes=minutes)
        zone = UTC if not offset else timezone(-offset if sign == "-" else offset)
    return datetime(
        day_.year, day_.month, day_.day, hour, minute, second, micro, tzinfo=zone
    )
