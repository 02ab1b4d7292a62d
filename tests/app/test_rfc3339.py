"""The one reader of dates and date-times (app/rfc3339.py): RFC 3339 in both directions,
as pure functions, with properties over generated text."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.rfc3339 import DATE_EXPECTED, DATETIME_EXPECTED, parse_date, parse_datetime


@pytest.mark.parametrize(
    ("text", "instant"),
    [
        ("2027-01-01T00:00:00Z", datetime(2027, 1, 1, tzinfo=UTC)),
        # RFC 3339 §5.6 note: "T" and "Z" may be lower case.
        ("2027-01-01t00:00:00z", datetime(2027, 1, 1, tzinfo=UTC)),
        # The note's space, for readability, with seconds and an offset.
        ("2027-03-01 09:00:00Z", datetime(2027, 3, 1, 9, tzinfo=UTC)),
        ("2027-03-01T09:00:00+05:30", datetime(2027, 3, 1, 3, 30, tzinfo=UTC)),
        ("2027-03-01T09:00:00-00:00", datetime(2027, 3, 1, 9, tzinfo=UTC)),
        # A leap second (§5.7) is the last microsecond before the next second.
        ("2016-12-31T23:59:60Z", datetime(2016, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)),
        # More than six digits of fraction: cut to microseconds, not rounded.
        ("2027-03-01T09:00:00.123456789Z", datetime(2027, 3, 1, 9, 0, 0, 123_456, tzinfo=UTC)),
        ("2027-03-01T09:00:00.5Z", datetime(2027, 3, 1, 9, 0, 0, 500_000, tzinfo=UTC)),
    ],
)
def test_rfc_3339_date_times_are_read_as_the_instant_they_name(
    text: str, instant: datetime
) -> None:
    assert parse_datetime(text) == instant


@pytest.mark.parametrize(
    "text",
    [
        "2027-W10-1T00:00:00Z",  # ISO week date
        "20270301T000000Z",  # ISO basic format
        "2027-03-01 09:00Z",  # no seconds
        "2027-03-01T09Z",  # hour only
        "2027-03-01T09:00:00+05:30:15",  # offset with seconds
        "2027-03-01T09:00:00,5Z",  # comma fraction
        "2027-03-01T09:00:00",  # no offset
        "2027-03-01T09:00:00.Z",  # a dot with no digits
        "2027-03-01",  # a date alone
        "1796774400",  # a Unix timestamp
        " 2027-03-01T09:00:00Z",
        "2027-03-01T09:00:00Z\n",
        "\uff12\uff10\uff12\uff17-03-01T09:00:00Z",  # digits of another script
    ],
)
def test_what_rfc_3339_does_not_allow_is_refused_with_the_expected_format(text: str) -> None:
    with pytest.raises(ValueError, match="RFC 3339") as refused:
        parse_datetime(text)
    assert str(refused.value) == DATETIME_EXPECTED


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2027-02-29T00:00:00Z", "2027-02-29 is not a day of the calendar"),
        ("2027-03-01T24:00:00Z", "24:00:00 is not a time of day"),
        ("2027-03-01T09:00:00+24:00", "+24:00 is not an offset from UTC"),
        ("0000-01-01T00:00:00Z", "0000-01-01 is not a day of the calendar"),
    ],
)
def test_a_date_time_of_the_right_shape_but_out_of_range_says_which_part(
    text: str, reason: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        parse_datetime(text)


@pytest.mark.parametrize(
    "text", ["2026-W51-1", "20261214", "1796774400", "2026-12-1", "+2026-12-14", "2026-12-14 ",
             "2026-12-14T00:00:00Z", "\uff12\uff10\uff12\uff16-12-14"]
)
def test_a_date_is_yyyy_mm_dd_and_nothing_else(text: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM-DD") as refused:
        parse_date(text)
    assert str(refused.value) == DATE_EXPECTED


def test_a_date_that_is_not_on_the_calendar_says_so() -> None:
    assert parse_date("2028-02-29") == date(2028, 2, 29)
    with pytest.raises(ValueError, match="2026-12-32 is not a day of the calendar"):
        parse_date("2026-12-32")


offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda m: timezone(timedelta(minutes=m))
)
moments = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=offsets
)


def written(moment: datetime, separator: str, zulu: str, digits: int) -> str:
    """``moment`` as RFC 3339 text, in one of its spellings."""
    offset = moment.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign, size = ("-" if minutes < 0 else "+"), abs(minutes)
    zone = zulu if minutes == 0 else f"{sign}{size // 60:02}:{size % 60:02}"
    fraction = f".{moment.microsecond:06}{'0' * max(digits - 6, 0)}" if digits else ""
    m = moment
    return (
        f"{m.year:04}-{m.month:02}-{m.day:02}{separator}{m.hour:02}:{m.minute:02}:{m.second:02}"
        + fraction + zone
    )


@given(moments, st.sampled_from("Tt "), st.sampled_from("Zz"), st.sampled_from([0, 6, 9]))
def test_every_rfc_3339_spelling_of_an_instant_reads_as_that_instant(
    moment: datetime, separator: str, zulu: str, digits: int
) -> None:
    if not digits:
        moment = moment.replace(microsecond=0)
    assert parse_datetime(written(moment, separator, zulu, digits)) == moment


@given(st.one_of(st.text(max_size=40), st.from_regex(r"\A[0-9Tt zZ:.,+W-]{0,35}\Z")))
def test_any_text_is_refused_or_read_as_an_instant_that_its_own_rfc_3339_reads_back(
    text: str,
) -> None:
    try:
        moment = parse_datetime(text)
    except ValueError:
        return
    assert moment.tzinfo is not None
    assert parse_datetime(moment.isoformat()) == moment


@given(st.one_of(st.text(max_size=20), st.from_regex(r"\A[0-9W+-]{0,12}\Z"), st.dates()))
def test_any_text_is_refused_or_read_as_the_date_it_spells(text: str | date) -> None:
    if isinstance(text, date):
        text = text.isoformat()
    try:
        day = parse_date(text)
    except ValueError:
        return
    assert day.isoformat() == text
