"""Members as CSV, plain rules without I/O: reading an import file into lines (each bad line
named by its number) and writing export cells safely.

Columns: ``email`` (required), ``name`` (required), ``unit`` (a unit's id or its name when
that name is unique), ``manager_email``, ``roles`` (space- or semicolon-separated),
``status`` (``invited`` or ``active``, for new members).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from tenants.members.addresses import normal_email
from tenants.permissions import Role
from tenants.text import TextError, clean_name, is_storable

COLUMNS = ("email", "name", "unit", "manager_email", "roles", "status")
REQUIRED = ("email", "name")
#: The most lines one import may carry (an import is one transaction).
MAX_LINES = 5000


@dataclass(frozen=True, slots=True)
class ImportLine:
    """One data line of the file; ``number`` counts the header as line 1."""

    number: int
    email: str
    name: str
    unit: str
    manager_email: str
    roles: tuple[str, ...]
    status: str


@dataclass(frozen=True, slots=True)
class LineProblem:
    number: int
    reason: str
    #: The line's email cell as written, when it has one (to show beside the reason).
    email: str = ""


@dataclass(slots=True)
class ParsedFile:
    lines: list[ImportLine] = field(default_factory=list)
    problems: list[LineProblem] = field(default_factory=list)

    @property
    def header_problem(self) -> str | None:
        """Why the file as a whole is no import file (empty, not CSV, or a header without
        the columns it needs: a problem of line 1), or None."""
        return next((p.reason for p in self.problems if p.number == 1), None)


def parse_import(text: str) -> ParsedFile:
    """The file's lines and what is wrong with each bad one; a missing required column
    is a problem of line 1 (the header). Never raises on content."""
    parsed = ParsedFile()
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        parsed.problems.append(LineProblem(1, "the file is empty; expected a header line"))
        return parsed
    except csv.Error as exc:
        parsed.problems.append(LineProblem(1, f"not CSV: {exc}"))
        return parsed
    missing = [c for c in REQUIRED if c not in header]
    unknown = [h for h in header if h not in COLUMNS]
    # A column named twice has two values on every line and no rule for which counts.
    twice = sorted({h for h in header if header.count(h) > 1 and h in COLUMNS})
    if missing or unknown or twice:
        reason = "; ".join(
            [f"missing column {c}" for c in missing]
            + [f"unknown column {h!r}" for h in unknown]
            + [f"column {h} is named more than once" for h in twice]
        )
        parsed.problems.append(LineProblem(1, f"{reason} (columns: {', '.join(COLUMNS)})"))
        return parsed
    seen: dict[str, int] = {}
    number = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            parsed.problems.append(LineProblem(number + 1, f"not CSV: {exc}"))
            break
        number = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if number > MAX_LINES + 1:
            parsed.problems.append(LineProblem(number, f"more than {MAX_LINES} lines"))
            break
        if len(row) != len(header):
            parsed.problems.append(
                LineProblem(number, f"has {len(row)} cells; the header has {len(header)}")
            )
            continue
        cells = {h: c.strip() for h, c in zip(header, row, strict=True)}
        problem = _clean(cells) or _check(cells, seen, number)
        if problem:
            shown = cells["email"][:320] if is_storable(cells["email"]) else ""
            parsed.problems.append(LineProblem(number, problem, shown))
            continue
        email = cells["email"]
        seen[email] = number
        parsed.lines.append(
            ImportLine(
                number=number,
                email=email,
                name=cells["name"],
                unit=cells.get("unit", ""),
                manager_email=cells.get("manager_email", ""),
                roles=tuple(r for r in cells.get("roles", "").replace(";", " ").split() if r),
                status=cells.get("status", "") or "invited",
            )
        )
    return parsed


def _clean(cells: dict[str, str]) -> str | None:
    """Every cell under the one text policy (``tenants.text``: no NUL, surrogate, control
    or bidirectional control character; NFC), in place, and both addresses in their normal
    form: an import writes what the API would, and matches what the API wrote. Why the
    line is refused, or None."""
    for column, cell in cells.items():
        try:
            cells[column] = clean_name(cell)
        except TextError as error:
            return f"{column} {error}"
    for column in ("email", "manager_email"):
        if cells.get(column):
            address = normal_email(cells[column])
            if address is None:
                return f"{column} {cells[column]!r} is not an email address"
            cells[column] = address
    return None


def _check(cells: dict[str, str], seen: dict[str, int], number: int) -> str | None:
    """Why the line (its cells cleaned by ``_clean``) is refused, or None."""
    email = cells["email"]
    if not email:
        return "email is empty"
    if email in seen:
        return f"email {email} is also on line {seen[email]}"
    if not cells["name"]:
        return "name is empty"
    if len(cells["name"]) > 200:
        return "name is longer than 200 characters"
    roles = cells.get("roles", "").replace(";", " ").split()
    known = {r.value for r in Role}
    bad = [r for r in roles if r not in known]
    if bad:
        return f"unknown role {bad[0]!r} (roles: {', '.join(sorted(known))})"
    if cells.get("status", "") not in ("", "invited", "active"):
        return f"status {cells['status']!r} is not invited or active"
    if cells.get("manager_email", "") == email:
        return "a member cannot be their own manager"
    return None
