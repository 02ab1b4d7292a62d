"""CSV written for spreadsheets (members and audit exports): RFC 4180 lines whose cells
cannot start a formula."""

from __future__ import annotations

import csv
import io

#: OWASP CSV injection: a cell starting with one of these is read as a formula by
#: spreadsheets, so exports prefix it with a single quote.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """A cell for an exported CSV: text starting with a formula character gets a leading
    single quote, so a spreadsheet shows it instead of running it."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_line(cells: list[object]) -> str:
    """One CSV line (CRLF-terminated, RFC 4180) of safe cells."""
    out = io.StringIO()
    csv.writer(out).writerow([safe_cell(c) for c in cells])
    return out.getvalue()
