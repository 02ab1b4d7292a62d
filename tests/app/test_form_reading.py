"""The pure parts of reading what a browser sends: whole numbers (``app.web.numbers``), a
urlencoded body (``app.web.forms``) and a download's name (``app.downloads``)."""

from __future__ import annotations

import pytest

from app.downloads import attachment
from app.web.forms import MAX_FIELDS, parse_urlencoded
from app.web.numbers import INT32, INT64, whole_number
from tenants.errors import InvalidInputError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("42", 42),
        (" 7 ", 7),
        ("007", 7),
        (str(INT32[1]), INT32[1]),
        (str(INT32[1] + 1), None),
        ("-1", None),  # below the default low of 0
        ("", None),
        (None, None),
        ("\u00b2", None),  # str.isdigit() says yes, int() fails
        ("\u0663", None),  # int() reads Arabic-Indic three as 3
        ("\uff11", None),  # and a full-width one as 1
        ("1_000", None),
        ("+1", None),
        ("1.0", None),
        ("1e3", None),
        ("0x10", None),
        ("9" * 40, None),
    ],
)
def test_a_whole_number_is_ascii_digits_within_its_range(
    text: str | None, expected: int | None
) -> None:
    assert whole_number(text) == expected


def test_the_range_is_the_callers() -> None:
    assert whole_number("-1000", low=-1000, high=1000) == -1000
    assert whole_number("-1001", low=-1000, high=1000) is None
    assert whole_number("1001", low=-1000, high=1000) is None
    assert whole_number("90", high=90) == 90 and whole_number("91", high=90) is None
    assert whole_number(str(INT64[1]), high=INT64[1]) == INT64[1]
    assert whole_number(str(INT64[0]), low=INT64[0], high=INT64[1]) == INT64[0]
    assert whole_number(str(INT64[1] + 1), low=INT64[0], high=INT64[1]) is None


def test_a_urlencoded_body_reads_as_a_browser_writes_it() -> None:
    pairs, problems = parse_urlencoded(b"a=1&b=two+words&c=%C3%A9t%C3%A9&c=second&empty=&flag&&")
    assert pairs == [
        ("a", "1"),
        ("b", "two words"),
        ("c", "\u00e9t\u00e9"),
        ("c", "second"),
        ("empty", ""),
        ("flag", ""),
    ]
    assert problems == []
    assert parse_urlencoded(b"") == ([], [])
    assert parse_urlencoded(b"q=a%2Bb%26c%3Dd") == ([("q", "a+b&c=d")], [])


def test_text_that_is_not_utf8_is_named_and_kept_as_nothing() -> None:
    pairs, problems = parse_urlencoded(b"name=%FF&ok=yes&lone=%ED%A0%80&raw=\xff&%FE=x")
    assert pairs == [("name", ""), ("ok", "yes"), ("lone", ""), ("raw", "")]
    assert [(p.field, p.reason) for p in problems] == [
        ("name", "is not UTF-8 text"),
        ("lone", "is not UTF-8 text"),
        ("raw", "is not UTF-8 text"),
        ("form", "has a field name that is not UTF-8 text"),
    ]


def test_more_fields_than_any_form_has_are_refused_naming_the_form() -> None:
    pairs, _ = parse_urlencoded(b"&".join(b"f=1" for _ in range(MAX_FIELDS)))
    assert len(pairs) == MAX_FIELDS
    with pytest.raises(InvalidInputError) as refused:
        parse_urlencoded(b"&".join(b"f=1" for _ in range(MAX_FIELDS + 1)))
    assert [(p.field, p.reason) for p in refused.value.fields] == [
        ("form", f"has more than {MAX_FIELDS} fields")
    ]


@pytest.mark.parametrize(
    ("name", "header"),
    [
        ("sign-ins.csv", 'attachment; filename="sign-ins.csv"'),
        ('a"b\\c/d.csv', 'attachment; filename="a_b_c_d.csv"'),
        ("line\r\nX-Evil: 1.csv", 'attachment; filename="line__X-Evil: 1.csv"'),
        (
            "members-\u03a9mega.csv",
            "attachment; filename=\"members-_mega.csv\"; filename*=UTF-8''members-%CE%A9mega.csv",
        ),
        (
            "\U0001f600 \u00e9.csv",
            "attachment; filename=\"_ _.csv\"; filename*=UTF-8''%F0%9F%98%80%20%C3%A9.csv",
        ),
    ],
)
def test_a_download_name_is_ascii_on_the_wire_and_utf8_where_it_holds_more(
    name: str, header: str
) -> None:
    assert attachment(name) == header
    header.encode("latin-1")  # what a header value must be
