"""Whole numbers typed into console forms and query strings.

``str.isdigit`` and ``int`` take more than a form's digits: ``"²".isdigit()`` is true and
``int("²")`` fails (a 500 on every paged list once), ``int`` reads Arabic-Indic and
full-width digits (U+0661, U+FF11), ``int("1_000")`` and ``int("+1")`` read what nobody
typed as a count, and ``int`` has no upper bound where the database's columns do. One
parser answers all of them the same way: ASCII digits, a range, or no number.
"""

from __future__ import annotations

import re

_WHOLE = re.compile(r"-?[0-9]{1,19}")

#: PostgreSQL's ``integer`` and ``bigint``: the columns a form's number ends in.
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)


def whole_number(text: str | None, *, low: int = 0, high: int = INT32[1]) -> int | None:
    """The whole number ``text`` holds, spaces around it allowed, when it is written in
    ASCII digits (a leading ``-`` for a negative one) and lies in ``low..high``; None
    otherwise (the caller names its field and the reason)."""
    raw = (text or "").strip()
    if not _WHOLE.fullmatch(raw):
        return None
    value = int(raw)
    return value if low <= value <= high else None
