"""The members CSV rules without a database: bad lines named by number, formula cells
neutralised on export (OWASP CSV injection), and the last-owner rule."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenants.csvcells import FORMULA_STARTS, csv_line, safe_cell
from tenants.errors import ConflictError
from tenants.members.csvio import parse_import
from tenants.members.roles import check_keeps_owner


def test_good_lines_are_read_and_bad_ones_named_by_their_line_number() -> None:
    parsed = parse_import(
        "\ufeffEmail,Name,roles\n"
        "A@Example.org,Ann,admin;auditor\n"
        "\n"
        "broken,Bob,\n"
        "a@example.org,Ann again,\n"
        "c@example.org,,\n"
        "d@example.org,Dee,wizard\n"
        "e@example.org,Eve\n"
    )
    assert [(line.number, line.email, line.roles) for line in parsed.lines] == [
        (2, "a@example.org", ("admin", "auditor"))
    ]
    assert [(p.number, p.reason) for p in parsed.problems] == [
        (4, "email 'broken' is not an email address"),
        (5, "email a@example.org is also on line 2"),
        (6, "name is empty"),
        (
            7,
            "unknown role 'wizard' (roles: admin, auditor, helpdesk, member, owner, privacy_officer)",
        ),
        (8, "has 2 cells; the header has 3"),
    ]


def test_every_cell_meets_the_text_policy_and_addresses_take_the_api_s_normal_form() -> None:
    """An import writes what the API would write: the same text rules (a NUL made a 500,
    a bidi override or a bell was stored), and addresses in the same normal form (a
    decomposed é made a second member for the same address)."""
    parsed = parse_import(
        "email,name,unit,manager_email\n"
        "re\u0301x@Acme.Example,Re\u0301x,Cafe\u0301,Boss@Acme.Example\n"
        "nul@acme.example,N\x00One,,\n"
        "bidi@acme.example,N\u202eFive,,\n"
        "bell\x07@acme.example,Bell,,\n"
        "unit@acme.example,Unit,UNI\x00QUE,\n"
        "boss@acme.example,Own boss,,BOSS@acme.example\n"
        "x@acme.example,X,,not-an-address\n"
    )
    [line] = parsed.lines
    assert (line.email, line.name, line.unit, line.manager_email) == (
        "r\xe9x@acme.example", "R\xe9x", "Caf\xe9", "boss@acme.example"
    )
    assert [(p.number, p.reason) for p in parsed.problems] == [
        (3, "name contains a NUL character (U+0000), which cannot be stored"),
        (4, "name contains the bidirectional control character U+202E"),
        (5, "email contains the control character U+0007"),
        (6, "unit contains a NUL character (U+0000), which cannot be stored"),
        (7, "a member cannot be their own manager"),
        (8, "manager_email 'not-an-address' is not an email address"),
    ]
    assert parsed.problems[0].email == "nul@acme.example"
    assert parsed.problems[2].email == "bell\x07@acme.example"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "the file is empty; expected a header line"),
        (
            "name\nAnn\n",
            "missing column email (columns: email, name, unit, manager_email, roles, status)",
        ),
        (
            "email,name,shoe\n",
            "unknown column 'shoe' (columns: email, name, unit, manager_email, roles, status)",
        ),
        (
            "email,name,Unit,unit ,email\nann@x.example,Ann,A,B,bob@x.example\n",
            "column email is named more than once; column unit is named more than once"
            " (columns: email, name, unit, manager_email, roles, status)",
        ),
    ],
)
def test_a_bad_header_is_a_problem_of_line_one(text: str, reason: str) -> None:
    parsed = parse_import(text)
    assert parsed.lines == []
    assert [(p.number, p.reason) for p in parsed.problems] == [(1, reason)]


@pytest.mark.parametrize("start", FORMULA_STARTS)
def test_cells_starting_like_a_formula_get_a_leading_quote(start: str) -> None:
    assert safe_cell(f"{start}SUM(A1)") == f"'{start}SUM(A1)"


def test_ordinary_cells_are_kept_as_they_are() -> None:
    assert safe_cell("Ann O'Neil") == "Ann O'Neil"
    assert safe_cell(None) == ""
    assert safe_cell(3) == "3"


@given(st.lists(st.text(max_size=30), min_size=1, max_size=6))
def test_no_exported_cell_can_start_a_formula(cells: list[str]) -> None:
    row = next(csv.reader(io.StringIO(csv_line(list(cells)))))
    assert len(row) == len(cells)
    for written, original in zip(row, cells, strict=True):
        assert not written.startswith(FORMULA_STARTS)
        assert written.removeprefix("'") == original or written == original


def test_the_last_owner_keeps_the_role() -> None:
    with pytest.raises(ConflictError) as refused:
        check_keeps_owner(["owner"], ["admin"], other_owners=0)
    assert refused.value.fields[0].field == "roles"
    check_keeps_owner(["owner"], ["admin"], other_owners=1)
    check_keeps_owner(["admin"], ["member"], other_owners=0)
    check_keeps_owner(["owner"], ["owner", "admin"], other_owners=0)
