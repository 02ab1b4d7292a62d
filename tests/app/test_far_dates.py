"""Dates at the edges of what Python and PostgreSQL can hold (year 1, year 9999, offsets
that carry them past either end in UTC) are refused by name where a date is taken, never
answered with a 500: a scheduled rule's ``effective_from`` and a campaign's dates."""

from __future__ import annotations

import pytest

from tests.conftest import OrgHandle, make_member
from tests.support.api_schema import assert_problem, error_fields

EDGES = [
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+14:00",
    "1969-12-31T23:59:59Z",
]


@pytest.mark.parametrize("at", EDGES)
async def test_a_rule_dated_at_an_edge_is_refused_naming_effective_from(
    org: OrgHandle, at: str
) -> None:
    rule = {
        "target_kind": "unit", "target_id": str(org.root_unit_id), "setting": "sharing.obtain_from_third_parties",
        "value": True, "enforced": True, "effective_from": at,
    }  # fmt: skip
    refused = assert_problem(await org.put("/v1/policy/rules", json=rule), 422)
    assert set(error_fields(refused)) == {"effective_from"}
    assert (await org.get("/v1/policy/rules")).json()["items"] == []


@pytest.mark.parametrize(
    ("starts_on", "due_on", "field"),
    [
        ("9999-12-31", "9999-12-31", "starts_on"),
        ("2026-12-06", "9999-12-31", "due_on"),
        ("0001-01-01", "0001-01-02", "starts_on"),
    ],
)
async def test_a_campaign_dated_at_an_edge_is_refused_naming_the_date(
    org: OrgHandle, starts_on: str, due_on: str, field: str
) -> None:
    from datetime import UTC, datetime

    owner = await make_member(org, roles=["owner"])
    if starts_on == "2026-12-06":
        starts_on = datetime.now(UTC).date().isoformat()
    body = {
        "name": "Edges", "scopes": ["admin_roles"], "reviewer_rule": "named",
        "named_reviewer_ids": [owner["id"]], "starts_on": starts_on, "due_on": due_on,
        "default_on_due": "keep", "recurrence": {"every": 24, "unit": "months"},
    }  # fmt: skip
    refused = assert_problem(await org.post("/v1/access-reviews", body), 422)
    assert field in error_fields(refused)
    assert (await org.get("/v1/access-reviews")).json()["items"] == []


@pytest.mark.parametrize("at", ["1765000000", "1765000000.5", "0"])
async def test_a_moment_written_as_a_unix_timestamp_is_refused_naming_its_field(
    org: OrgHandle, at: str
) -> None:
    """The API takes RFC 3339 date-times with a zone; pydantic would read digits as a Unix
    timestamp, in a JSON body as in a query string."""
    rule = {
        "target_kind": "unit", "target_id": str(org.root_unit_id), "setting": "sharing.obtain_from_third_parties",
        "value": True, "enforced": True, "effective_from": at,
    }  # fmt: skip
    refused = assert_problem(await org.put("/v1/policy/rules", json=rule), 422)
    assert error_fields(refused) == {
        "effective_from": "expected an RFC 3339 date-time such as 2024-01-31T09:00:00Z"
    }
    assert (await org.get("/v1/policy/rules")).json()["items"] == []
    listed = assert_problem(await org.get("/v1/audit-events", params={"since": at}), 422)
    assert "query.since" in error_fields(listed)
