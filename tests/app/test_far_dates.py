"""Dates at the edges of what Python and PostgreSQL can hold (year 1, year 9999, offsets
that carry them past either end in UTC) are refused by name where a date is taken, never
answered with a 500: a scheduled rule's ``effective_from`` and a campaign's dates."""

from __future__ import annotations

import pytest

from tests.app.test_content_api import item
from tests.conftest import OrgHandle, make_member, make_product
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


@pytest.mark.parametrize("day", ["1796774400", "2026-W51-1", "20261214", "2026-12-09T00:00:00Z"])
async def test_a_date_not_written_yyyy_mm_dd_is_refused_naming_its_field(
    org: OrgHandle, day: str
) -> None:
    """Digits were read as a Unix timestamp ("1796774400" as 2026-12-09), and ISO 8601's
    week and basic forms were taken: a date is YYYY-MM-DD, in every body that takes one."""
    expected = "expected a date as YYYY-MM-DD, such as 2024-01-31"
    member, owner = await make_member(org), await make_member(org, roles=["owner"])
    preview = await org.post(f"/v1/members/{member['id']}/departure-preview", {"last_day": day})
    assert error_fields(assert_problem(preview, 422)) == {"last_day": expected}
    started = await org.post("/v1/departures", {"member_id": member["id"], "last_day": day})
    assert error_fields(assert_problem(started, 422)) == {"last_day": expected}
    campaign = {
        "name": "Digits", "scopes": ["admin_roles"], "reviewer_rule": "named",
        "named_reviewer_ids": [owner["id"]], "starts_on": day, "due_on": day,
        "default_on_due": "keep",
    }  # fmt: skip
    refused = assert_problem(await org.post("/v1/access-reviews", campaign), 422)
    assert error_fields(refused) == {"starts_on": expected, "due_on": expected}
    product = await make_product(org)
    registered = await org.post("/v1/content", item(member, product, 1, kind="personal"))
    held = await org.put(f"/v1/content/{registered.json()['id']}/legal-hold", json={
        "legal_hold": True, "reason": "Litigation", "member_text": "Kept.", "review_on": day,
    })  # fmt: skip
    assert error_fields(assert_problem(held, 422)) == {"review_on": expected}


async def test_a_number_for_a_date_in_a_json_body_is_refused_naming_it(org: OrgHandle) -> None:
    member = await make_member(org)
    preview = await org.post(
        f"/v1/members/{member['id']}/departure-preview", {"last_day": 1796774400}
    )
    assert "last_day" in error_fields(assert_problem(preview, 422))


@pytest.mark.parametrize(
    ("at", "status"),
    [
        ("2027-01-01t00:00:00z", 200),  # RFC 3339 §5.6 note: lower case t and z
        ("2016-12-31T23:59:60Z", 200),  # a leap second: its last microsecond before
        ("2027-03-01 09:00:00Z", 200),  # the note's space
        ("2027-03-01T09:00:00.123456789Z", 200),  # a fraction cut to microseconds
        ("2027-W10-1T00:00:00Z", 422),
        ("20270301T000000Z", 422),
        ("2027-03-01 09:00Z", 422),
        ("2027-03-01T09Z", 422),
        ("2027-03-01T09:00:00+05:30:15", 422),
        ("2027-03-01T09:00:00,5Z", 422),
    ],
)
async def test_a_moment_is_read_as_rfc_3339_and_nothing_else(
    org: OrgHandle, at: str, status: int
) -> None:
    response = await org.get("/v1/audit-events", params={"since": at})
    if status == 200:
        assert response.status_code == 200, response.text
    else:
        assert error_fields(assert_problem(response, 422)) == {
            "query.since": "expected an RFC 3339 date-time such as 2024-01-31T09:00:00Z"
        }
