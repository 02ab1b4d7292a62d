"""What the served OpenAPI document declares, beyond what each resource's tests check."""

from __future__ import annotations

import httpx

from tests.conftest import OrgHandle
from tests.support.api_schema import assert_problem, operations, served_document


async def test_not_modified_is_declared_without_a_body(client: httpx.AsyncClient) -> None:
    """304 has no body (RFC 9110 15.4.5); the document once gave it a problem+json one."""
    document = await served_document(client)
    declared = [
        o.spec["responses"]["304"] for o in operations(document) if "304" in o.spec["responses"]
    ]
    assert len(declared) >= 2  # a member's settings and the effective settings
    assert [r for r in declared if "content" in r] == []


async def test_every_declared_sort_is_served_and_nothing_else(org: OrgHandle) -> None:
    """A list's ``sort`` states its choices (an enum), so clients generating requests from
    the document send one: each answers a page, and a value outside them is refused
    naming ``sort``, as the document promises."""
    document = await served_document(org.client)
    sorted_lists = [
        (o, p) for o in operations(document) for p in o.query_params if p["name"] == "sort"
    ]
    assert len(sorted_lists) >= 7  # members, units, groups, products, departures, jobs, requests
    for operation, param in sorted_lists:
        choices = param["schema"]["enum"]
        assert param["schema"]["default"] in choices, operation.key
        assert {c.removeprefix("-") for c in choices} == {
            c for c in choices if not c.startswith("-")
        }, f"{operation.key}: every field both ways"
        for choice in choices:
            response = await org.get(operation.path, params={"sort": choice, "limit": 1})
            assert response.status_code == 200, (operation.key, choice, response.text)
        refused = await org.get(operation.path, params={"sort": "-" + choices[0] + "x"})
        problem = assert_problem(refused, 422)
        assert [e["field"] for e in problem["errors"]] == ["sort"], (operation.key, problem)


async def test_an_unknown_query_parameter_is_a_declared_422_on_every_operation(
    org: OrgHandle,
) -> None:
    """Every operation refuses a query parameter it does not know, also those that take
    none (``GET /v1/organisation?zz=1``); 49 of them did not declare the 422."""
    document = await served_document(org.client)
    undeclared = [o.key for o in operations(document) if "422" not in o.spec["responses"]]
    assert undeclared == []
    refused = await org.get("/v1/organisation", params={"zz": "1"})
    problem = assert_problem(refused, 422)
    assert [e["field"] for e in problem["errors"]] == ["query.zz"]
