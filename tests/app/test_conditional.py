"""If-None-Match as RFC 9110 §13.1.2 reads it: any current version for ``*``, and a list
of entity tags compared weakly."""

from __future__ import annotations

import pytest

from app.conditional import none_match


@pytest.mark.parametrize(
    ("header", "etag", "matches"),
    [
        ('"abc"', '"abc"', True),
        ('W/"abc"', '"abc"', True),
        ('"abc"', 'W/"abc"', True),
        ('"x", "abc"', '"abc"', True),
        (' "x" ,W/"abc" ', '"abc"', True),
        ("*", '"abc"', True),
        (" * ", 'W/"abc"', True),
        ('"abd"', '"abc"', False),
        ('"abc', '"abc"', False),
        ("abc", '"abc"', False),
        ("", '"abc"', False),
        (None, '"abc"', False),
        ('"*"', '"abc"', False),
    ],
)
def test_if_none_match(header: str | None, etag: str, matches: bool) -> None:
    assert none_match(header, etag) is matches
