"""Conditional requests on the API (RFC 9110 §13): a resource that can be changed in place
answers its reads with an ETag; If-None-Match on a read answers 304 while it is current;
If-Match on a write changes it only if nobody has since (412 otherwise, nothing written).
Two admins editing the same member no longer overwrite each other unawares."""

from __future__ import annotations

import asyncpg

from app.conditional import entity_tag, if_match, none_match
from tests.conftest import OrgHandle, make_member, row_counts
from tests.support.api_schema import assert_problem, error_fields


def test_if_match_compares_strongly_and_star_matches_any_version() -> None:
    tag = entity_tag(b'{"a":1}')
    assert tag.startswith('"') and tag.endswith('"') and len(tag) == 34
    assert entity_tag(b'{"a":1}') == tag != entity_tag(b'{"a":2}')
    assert if_match(tag, tag) and if_match("*", tag)
    assert if_match(f'"x", {tag}', tag)
    assert not if_match(f"W/{tag}", tag)  # §13.1.1: a weak tag never matches If-Match
    assert not if_match('"x"', tag)
    assert none_match(f"W/{tag}", tag)  # while If-None-Match compares weakly


async def test_a_write_naming_a_stale_version_is_refused_and_changes_nothing(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    member = await make_member(org, name="Mia Member")
    path = f"/v1/members/{member['id']}"
    read = await org.get(path)
    tag = read.headers["etag"]
    assert (
        await org.client.get(path, headers={**org.headers, "If-None-Match": tag})
    ).status_code == 304

    # Someone else renames her; the first admin's change, made on what they read, is
    # refused rather than overwriting it.
    assert (await org.patch(path, {"name": "Mia Renamed"})).status_code == 200
    before = await row_counts(owner_conn)
    stale = await org.client.patch(
        path, json={"name": "Mia Old View"}, headers={**org.headers, "If-Match": tag}
    )
    problem = assert_problem(stale, 412)
    assert problem["type"] == "/problems/precondition_failed"
    assert "If-Match" in error_fields(problem)
    assert await row_counts(owner_conn) == before
    assert (await org.get(path)).json()["name"] == "Mia Renamed"
    assert (
        await org.client.get(path, headers={**org.headers, "If-None-Match": tag})
    ).status_code == 200

    # With the current version it goes through; "*" needs only that it exists.
    fresh = (await org.get(path)).headers["etag"]
    done = await org.client.patch(
        path, json={"name": "Mia Agreed"}, headers={**org.headers, "If-Match": fresh}
    )
    assert done.status_code == 200 and done.json()["name"] == "Mia Agreed"
    assert (
        await org.client.patch(
            path, json={"name": "Mia Any"}, headers={**org.headers, "If-Match": "*"}
        )
    ).status_code == 200
    # Unconditional writes stay unconditional.
    assert (await org.patch(path, {"name": "Mia Plain"})).status_code == 200


async def test_the_document_declares_the_conditions_where_they_apply(org: OrgHandle) -> None:
    document = (await org.client.get("/openapi.json")).json()
    member = document["paths"]["/v1/members/{id}"]
    assert (
        "304" in member["get"]["responses"]
        and "ETag" in member["get"]["responses"]["200"]["headers"]
    )
    assert "If-None-Match" in {p["name"] for p in member["get"]["parameters"]}
    assert "412" in member["patch"]["responses"]
    assert "If-Match" in {p["name"] for p in member["patch"]["parameters"]}
    # A list is no resource changed in place: no conditions there.
    listed = document["paths"]["/v1/members"]["get"]
    assert "304" not in listed["responses"]
