"""Bulk (RFC 7644 §3.7): bulkId references, per-operation errors, failOnErrors, and the
set-based initial sync."""

from __future__ import annotations

import json
from typing import Any

from tenants.scim.bulk_plan import MAX_OPERATIONS
from tenants.scim.validation import MAX_DEPTH
from tests.conftest import OrgHandle, row_counts
from tests.scim.conftest import BULK_URN, ENTERPRISE_URN, GROUP_URN, USER_URN, Scim
from tests.scim.test_users import assert_scim_error


def user_op(bulk_id: str, user_name: str, **attributes: Any) -> dict[str, Any]:
    return {
        "method": "POST",
        "path": "/Users",
        "bulkId": bulk_id,
        "data": {"schemas": [USER_URN], "userName": user_name, **attributes},
    }


async def bulk(
    scim: Scim, *operations: dict[str, Any], fail_on: int | None = None
) -> list[dict[str, Any]]:
    body: dict[str, Any] = {"schemas": [BULK_URN], "Operations": list(operations)}
    if fail_on is not None:
        body["failOnErrors"] = fail_on
    response = await scim.post("/Bulk", body)
    assert response.status_code == 200, response.text
    assert response.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:BulkResponse"]
    return list(response.json()["Operations"])


async def test_bulk_ids_link_managers_and_group_members_even_when_referenced_first(
    scim: Scim,
) -> None:
    results = await bulk(
        scim,
        {
            "method": "POST",
            "path": "/Groups",
            "bulkId": "team",
            "data": {
                "schemas": [GROUP_URN],
                "displayName": "Team",
                "members": [{"value": "bulkId:boss"}, {"value": "bulkId:worker"}],
            },
        },
        user_op(
            "worker", "worker@x.example", **{ENTERPRISE_URN: {"manager": {"value": "bulkId:boss"}}}
        ),
        user_op("boss", "boss@x.example"),
        {
            "method": "PATCH",
            "path": "/Users/bulkId:worker",
            "data": {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "title", "value": "Builder"}],
            },
        },
    )
    assert [r["status"] for r in results] == ["201", "201", "201", "200"]
    ids = {r["bulkId"]: r["location"].rsplit("/", 1)[1] for r in results if "bulkId" in r}
    worker = (await scim.get(f"/Users/{ids['worker']}")).json()
    assert worker[ENTERPRISE_URN]["manager"]["value"] == ids["boss"]
    assert worker["title"] == "Builder"
    assert worker["meta"]["version"] == results[3]["version"]
    group = (await scim.get(f"/Groups/{ids['team']}")).json()
    assert {m["value"] for m in group["members"]} == {ids["boss"], ids["worker"]}


async def test_each_failed_operation_reports_its_error_and_the_others_stand(
    scim: Scim, org: OrgHandle
) -> None:
    await scim.create_user("taken@x.example")
    results = await bulk(
        scim,
        user_op("a", "a@x.example"),
        user_op("dup", "TAKEN@x.example"),
        user_op("bad", "bad@x.example", emails="nope"),
        user_op("twin1", "twin@x.example"),
        user_op("twin2", "Twin@x.example"),
        user_op("orphan", "o@x.example", **{ENTERPRISE_URN: {"manager": {"value": "bulkId:bad"}}}),
        {"method": "DELETE", "path": "/Users/00000000-0000-0000-0000-000000000000"},
        {"method": "GET", "path": "/Users"},
    )
    statuses = {r.get("bulkId", r["method"]): r["status"] for r in results}
    assert statuses == {
        "a": "201",
        "dup": "409",
        "bad": "400",
        "twin1": "201",
        "twin2": "409",
        "orphan": "400",
        "DELETE": "404",
        "GET": "400",
    }
    dup = next(r for r in results if r.get("bulkId") == "dup")
    assert dup["response"]["scimType"] == "uniqueness"
    # RFC 7644 §3.7.3: a failed operation on a resource names it; a failed POST does not.
    missing = next(r for r in results if r["method"] == "DELETE")
    assert missing["location"].endswith("/scim/v2/Users/00000000-0000-0000-0000-000000000000")
    assert "location" not in dup
    names = sorted(u["userName"] for u in (await scim.get("/Users")).json()["Resources"])
    assert names == ["a@x.example", "taken@x.example", "twin@x.example"]


async def test_fail_on_errors_stops_after_that_many_errors(scim: Scim) -> None:
    results = await bulk(
        scim,
        user_op("1", "one@x.example"),
        user_op("2", "bad", emails="x"),
        {"method": "PATCH", "path": "/Users/00000000-0000-0000-0000-000000000000", "data": {}},
        user_op("4", "four@x.example"),
        {"method": "POST", "path": "/Groups", "bulkId": "g", "data": {"displayName": "Never"}},
        fail_on=2,
    )
    assert [r["status"] for r in results] == ["201", "400", "404"]
    listed = (await scim.get("/Users")).json()
    assert [u["userName"] for u in listed["Resources"]] == ["one@x.example"]
    assert (await scim.get("/Groups")).json()["totalResults"] == 0


async def test_a_thousand_users_are_created_with_their_audit_events(
    scim: Scim, owner_conn: Any
) -> None:
    before = await row_counts(owner_conn)
    operations = [
        user_op(
            str(i),
            f"user{i}@x.example",
            externalId=f"e{i}",
            name={"givenName": f"G{i}", "familyName": "F"},
        )
        for i in range(1000)
    ]
    results = await bulk(scim, *operations)
    assert {r["status"] for r in results} == {"201"}
    after = await row_counts(owner_conn)
    assert after["members"] - before["members"] == 1000
    assert after["scim_users"] - before["scim_users"] == 1000
    assert after["audit_events"] - before["audit_events"] == 1000
    found = (await scim.get("/Users", filter='externalId eq "e999"')).json()["Resources"]
    assert found[0]["name"] == {"givenName": "G999", "familyName": "F"}
    member = (await scim.org.get(f"/v1/members/{found[0]['id']}")).json()
    assert (member["email"], member["name"], member["status"]) == (
        "user999@x.example",
        "G999 F",
        "active",
    )


async def test_malformed_bulk_requests_are_refused_whole(scim: Scim) -> None:
    assert_scim_error(await scim.post("/Bulk", {"Operations": []}), 400, "invalidSyntax")
    assert_scim_error(
        await scim.post("/Bulk", {"schemas": [BULK_URN], "Operations": []}), 400, "invalidSyntax"
    )
    too_many = {
        "schemas": [BULK_URN],
        "Operations": [user_op(str(i), f"u{i}") for i in range(1001)],
    }
    assert_scim_error(await scim.post("/Bulk", too_many), 413)
    bad_limit = {"schemas": [BULK_URN], "failOnErrors": 0, "Operations": [user_op("1", "u")]}
    assert_scim_error(await scim.post("/Bulk", bad_limit), 400, "invalidValue")


async def test_a_bulk_id_given_twice_refuses_the_request_whole(
    scim: Scim, owner_conn: Any
) -> None:
    """RFC 7644 §3.7: a bulkId is unique within a request; two operations sharing one
    (here with different users) used to share one new member id and end in a 409 for all."""
    before = await row_counts(owner_conn)
    twice = {
        "schemas": [BULK_URN],
        "Operations": [user_op("d", "first"), user_op("e", "other"), user_op("d", "second")],
    }
    error = assert_scim_error(await scim.post("/Bulk", twice), 400, "invalidValue")
    assert "Operations[2].bulkId 'd'" in error["detail"]
    assert "Operations[0]" in error["detail"]
    assert await row_counts(owner_conn) == before


async def test_a_deleted_user_created_again_in_bulk_is_restored(scim: Scim) -> None:
    user = await scim.create_user("again@x.example")
    assert (await scim.delete(f"/Users/{user['id']}")).status_code == 204
    results = await bulk(scim, user_op("1", "new@x.example"), user_op("2", "AGAIN@x.example"))
    assert [r["status"] for r in results] == ["201", "201"]
    assert results[1]["location"].endswith(user["id"])
    assert (await scim.get(f"/Users/{user['id']}")).json()["active"] is True


async def test_a_chain_of_managers_as_long_as_a_bulk_request_holds_is_created(
    scim: Scim, owner_conn: Any
) -> None:
    """Found by a fuzzer: op i names op i+1's User as its manager, a thousand deep (the
    published maxOperations); ordering them recursed once per link (a RecursionError)."""
    chain = MAX_OPERATIONS
    before = await row_counts(owner_conn)
    operations = [
        user_op(
            f"b{i}",
            f"chain{i}@northfield.example",
            **(
                {ENTERPRISE_URN: {"manager": {"value": f"bulkId:b{i + 1}"}}}
                if i < chain - 1
                else {}
            ),
        )
        for i in range(chain)
    ]
    results = await bulk(scim, *operations)
    assert [r["status"] for r in results] == ["201"] * chain
    ids = {r["bulkId"]: r["location"].rsplit("/", 1)[1] for r in results}
    for i in (0, chain // 2, chain - 2):
        user = (await scim.get(f"/Users/{ids[f'b{i}']}")).json()
        assert user[ENTERPRISE_URN]["manager"]["value"] == ids[f"b{i + 1}"]
    after = await row_counts(owner_conn)
    assert after["members"] - before["members"] == chain


async def test_a_chain_whose_last_manager_fails_fails_down_to_its_first_link(
    scim: Scim, owner_conn: Any
) -> None:
    await scim.create_user("taken@northfield.example")
    chain = MAX_OPERATIONS
    before = await row_counts(owner_conn)
    operations = [
        user_op(
            f"b{i}",
            f"chain{i}@northfield.example" if i < chain - 1 else "taken@northfield.example",
            **(
                {ENTERPRISE_URN: {"manager": {"value": f"bulkId:b{i + 1}"}}}
                if i < chain - 1
                else {}
            ),
        )
        for i in range(chain)
    ]
    results = await bulk(scim, *operations)
    assert results[-1]["status"] == "409"
    assert {r["status"] for r in results[:-1]} == {"400"}
    assert await row_counts(owner_conn) == before


async def test_a_bulk_nested_deeper_than_the_limit_is_refused_whole_and_writes_nothing(
    scim: Scim, owner_conn: Any
) -> None:
    """Found by a fuzzer: a ``bulkId:`` reference 950 arrays (or 800 objects) deep made the
    substitution of bulkIds recurse past Python's limit (a RecursionError). Sent as text:
    json.dumps itself recurses once per level."""
    before = await row_counts(owner_conn)
    for deep in (
        "[" * 950 + '"bulkId:z"' + "]" * 950,
        '{"a":' * 800 + '"bulkId:z"' + "}" * 800,
    ):
        body = {
            "schemas": [BULK_URN],
            "Operations": [
                user_op("z", "z@x.example"),
                {"method": "PATCH", "path": "/Users/bulkId:z", "data": "DEEP"},
            ],
        }
        response = await scim.client.post(
            "/scim/v2/Bulk",
            content=json.dumps(body).replace('"DEEP"', deep),
            headers=scim.headers,
        )
        detail = assert_scim_error(response, 400, "invalidSyntax")["detail"]
        assert f"deeper than {MAX_DEPTH}" in detail, detail
    assert await row_counts(owner_conn) == before
