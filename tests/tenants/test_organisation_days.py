"""An organisation's days begin and end at midnight in its zone, across changes of time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenants.organisations import days

ZONES = ["UTC", "Europe/London", "America/New_York", "Pacific/Auckland", "Asia/Kolkata",
         "America/Havana", "Australia/Lord_Howe", "Pacific/Kiritimati"]


def test_a_day_begins_at_local_midnight() -> None:
    assert days.start_of(date(2027, 3, 14), ZoneInfo("America/New_York")) == datetime(
        2027, 3, 14, 5, tzinfo=UTC
    )
    # The day of the spring change is 23 hours long, the autumn one 25.
    ny = ZoneInfo("America/New_York")
    assert days.end_of(date(2027, 3, 14), ny) - days.start_of(
        date(2027, 3, 14), ny
    ) == timedelta(hours=23)
    assert days.end_of(date(2027, 11, 7), ny) - days.start_of(
        date(2027, 11, 7), ny
    ) == timedelta(hours=25)


def test_where_midnight_is_skipped_the_day_begins_at_the_first_hour_that_exists() -> None:
    # Havana moves its clocks at midnight: 2027-03-14 00:00 does not exist there.
    havana = ZoneInfo("America/Havana")
    start = days.start_of(date(2027, 3, 14), havana)
    assert start.astimezone(havana).date() == date(2027, 3, 14)
    assert start.astimezone(havana).hour == 1
    assert days.end_of(date(2027, 3, 13), havana) == start


@given(
    day=st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 30)),
    zone=st.sampled_from(ZONES),
)
def test_days_follow_each_other_and_each_is_that_date_in_its_zone(day: date, zone: str) -> None:
    here = ZoneInfo(zone)
    start, end = days.start_of(day, here), days.end_of(day, here)
    assert start.tzinfo is not None and start.utcoffset() == timedelta(0)
    assert days.today(here, start) == day
    assert days.today(here, end - timedelta(microseconds=1)) == day
    assert days.today(here, end) == day + timedelta(days=1)
    assert timedelta(hours=22) <= end - start <= timedelta(hours=26)


@pytest.mark.parametrize(
    ("zone", "date_there"),
    [("Pacific/Auckland", date(2026, 12, 8)), ("America/Los_Angeles", date(2026, 12, 7))],
)
def test_today_is_the_zone_s_date(zone: str, date_there: date) -> None:
    at = datetime(2026, 12, 7, 23, 3, tzinfo=UTC)
    assert days.today(ZoneInfo(zone), at) == date_there


def test_an_instant_is_shown_in_the_zone_with_utc_beside_it_when_they_differ() -> None:
    end = datetime(2026, 12, 11, 8, tzinfo=UTC)
    assert calendar_shown(end, "America/Los_Angeles") == (
        "2026-12-11 00:00 PST (2026-12-11 08:00 UTC)"
    )
    # East of UTC the UTC date is often the day before: said.
    assert calendar_shown(datetime(2026, 12, 20, 10, tzinfo=UTC), "Pacific/Kiritimati") == (
        "2026-12-21 00:00 +14 (2026-12-20 10:00 UTC)"
    )
    assert calendar_shown(end, "UTC") == "2026-12-11 08:00 UTC"
    assert calendar_shown(end, "Europe/London") == "2026-12-11 08:00 GMT"


def calendar_shown(instant: datetime, zone: str) -> str:
    return days.shown(instant, ZoneInfo(zone))


def test_a_day_beyond_the_calendar_is_refused_as_a_value() -> None:
    """0001-01-01 began in year 0 in UTC east of Greenwich: a 500 in the policy form."""
    with pytest.raises(ValueError, match="outside the days"):
        days.start_of(date(1, 1, 1), ZoneInfo("Asia/Kolkata"))
    with pytest.raises(ValueError, match="outside the days"):
        days.end_of(date(9999, 12, 31), ZoneInfo("UTC"))
