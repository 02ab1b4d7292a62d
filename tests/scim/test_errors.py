"""Every error under ``/scim/v2`` is a SCIM error (RFC 7644 §3.12): ``application/scim+json``,
the Error schema, ``status`` as a string, ``scimType`` where the RFC has one; the router's
404 and 405, the size and media-type refusals and the last-resort 500 included. And the
dialects accepted for Entra ID and Okta leave everything else as strict as before."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
import httpx

from tenants.scim.validation import MAX_DEPTH
from tests.conftest import row_counts
from tests.scim.conftest import PATCH_URN, SCIM_JSON, USER_URN, Scim
from tests.scim.test_users import assert_scim_error


async def test_unknown_routes_and_the_root_answer_scim_404(scim: Scim) -> None:
    for path in ("/scim/v2/", "/scim/v2/Nothing", "/scim/v2/Users/x/y", "/scim/v2/Schemas/urn:x"):
        response = await scim.client.get(path, headers=scim.headers)
        assert_scim_error(response, 404)
    root = await scim.client.get("/scim/v2", headers=scim.headers, follow_redirects=True)
    assert_scim_error(root, 404)
    assert_scim_error(await scim.get(f"/Groups/{uuid.uuid4()}"), 404)


async def test_methods_the_route_does_not_take_answer_scim_405(scim: Scim) -> None:
    assert_scim_error(await scim.request("PUT", "/Users"), 405)
    assert_scim_error(await scim.request("PATCH", "/Groups"), 405)
    # Every 405 names what the route takes (RFC 9110 §15.5.6), for methods the router
    # knows nothing of too; TRACE used to be refused by the router with no Allow at all.
    for method, path, allowed in (
        ("TRACE", "/scim/v2/Users", "GET, POST, HEAD"),
        ("PROPFIND", "/scim/v2/Users/x", "GET, PUT, PATCH, DELETE, HEAD"),
        ("OPTIONS", "/scim/v2/Bulk", "POST"),
    ):
        refused = await scim.client.request(method, path, headers=scim.headers)
        assert_scim_error(refused, 405)
        assert refused.headers["allow"] == allowed
    assert_scim_error(await scim.client.request("DELETE", "/scim/v2/Schemas"), 405)


async def test_discovery_refuses_a_filter_it_would_ignore(scim: Scim) -> None:
    """RFC 7644 §4: a filter on a discovery endpoint is answered 403, so that a client does
    not take the whole list for the documents matching its filter."""
    for path in ("/ServiceProviderConfig", "/ResourceTypes", "/Schemas", "/Schemas/x"):
        error = assert_scim_error(
            await scim.client.get(f"/scim/v2{path}", params={"filter": 'id eq "User"'}), 403
        )
        assert "filter" in error["detail"]
    listed = await scim.client.get("/scim/v2/Schemas")
    assert listed.status_code == 200 and listed.json()["totalResults"] >= 2


async def test_me_is_not_implemented(scim: Scim) -> None:
    """RFC 7644 §3.11: a provider without /Me SHOULD answer 501 (it used to be a 404,
    which reads as a wrong base URL)."""
    for method, path in (("GET", "/Me"), ("POST", "/Me"), ("PATCH", "/Me/x")):
        error = assert_scim_error(await scim.request(method, path, {}), 501)
        assert "/Me" in error["detail"]


async def test_head_of_a_resource_is_its_get_without_a_body(scim: Scim) -> None:
    user = await scim.create_user("head@x.example")
    head = await scim.client.head(f"/scim/v2/Users/{user['id']}", headers=scim.headers)
    assert head.status_code == 200
    assert head.headers["etag"] == user["meta"]["version"]
    assert head.content == b""
    assert (await scim.client.head("/scim/v2/Users", headers=scim.headers)).status_code == 200


async def test_a_body_over_the_limit_answers_scim_413(scim: Scim) -> None:
    huge = {"schemas": [USER_URN], "userName": "big@x.example", "title": "x" * 2_000_000}
    assert_scim_error(await scim.post("/Users", huge), 413)


async def test_a_body_that_is_not_json_answers_scim_415(scim: Scim) -> None:
    response = await scim.client.post(
        "/scim/v2/Users",
        content=b"userName=a",
        headers={**scim.headers, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_scim_error(response, 415)
    json_is_fine = await scim.client.post(
        "/scim/v2/Users",
        json={"schemas": [USER_URN], "userName": "j@x.example"},
        headers={**scim.headers, "Content-Type": "application/json"},
    )
    assert json_is_fine.status_code == 201


async def test_an_unexpected_failure_answers_scim_500_with_a_reference(
    scim: Scim, owner_conn: asyncpg.Connection
) -> None:
    """A real failure: the runtime role loses its right to read the SCIM settings, so the
    database refuses the query creating a User needs (nothing is faked)."""
    await owner_conn.execute("REVOKE SELECT ON scim_settings FROM tenantry_runtime")
    try:
        response = await scim.post("/Users", {"schemas": [USER_URN], "userName": "f@x.example"})
    finally:
        await owner_conn.execute("GRANT SELECT ON scim_settings TO tenantry_runtime")
    body = assert_scim_error(response, 500)
    assert response.headers["x-request-id"] in body["detail"]
    assert "scim_settings" not in body["detail"]


async def test_without_a_token_the_answer_is_scim_401(scim: Scim) -> None:
    response = await scim.client.get("/scim/v2/Users")
    assert_scim_error(response, 401)
    assert response.headers["content-type"].startswith(SCIM_JSON)


async def test_strictness_outside_the_dialects_is_kept(scim: Scim) -> None:
    user = await scim.create_user(
        "strict@x.example", emails=[{"value": "s@x.example", "type": "work"}]
    )
    path = f"/Users/{user['id']}"
    refused = [
        ({"op": "Frobnicate", "path": "title", "value": "x"}, "invalidValue"),
        ({"op": "Replace", "path": "active", "value": "yes"}, "invalidValue"),
        ({"op": "Replace", "path": "active", "value": "0"}, "invalidValue"),
        ({"op": "Add", "path": "nothing", "value": "x"}, "invalidPath"),
        ({"op": "Add", "path": 'phoneNumbers[type ne "mobile"].value', "value": "1"}, "noTarget"),
        (
            {"op": "Add", "path": 'phoneNumbers[type eq "mobile"].nothing', "value": "1"},
            "invalidPath",
        ),
        (
            {"op": "Replace", "path": 'emails[type eq "home"].value', "value": "h@x.example"},
            "noTarget",
        ),
        (
            {"op": "Replace", "path": f"{ENTERPRISE}:manager", "value": {"value": "not-an-id"}},
            "invalidValue",
        ),
        ({"op": "Replace", "path": f"{ENTERPRISE}:manager", "value": 5}, "invalidValue"),
    ]
    for operation, scim_type in refused:
        response = await scim.patch(path, operation)
        assert response.status_code == 400, (operation, response.text)
        assert response.json().get("scimType") == scim_type, (operation, response.text)
    group = (await scim.post("/Groups", {"displayName": "Strict"})).json()
    malformed = await scim.request(
        "PATCH",
        f"/Groups/{group['id']}",
        {
            "schemas": [PATCH_URN],
            "Operations": [{"op": "Remove", "path": "members", "value": [{"display": "x"}]}],
        },
    )
    assert malformed.status_code == 400, malformed.text
    other_id = await scim.request(
        "PATCH",
        f"/Groups/{group['id']}",
        {
            "schemas": [PATCH_URN],
            "Operations": [{"op": "replace", "value": {"id": str(uuid.uuid4())}}],
        },
    )
    assert other_id.status_code == 400, other_id.text
    unknown_schema = await scim.post(
        "/Groups",
        {
            "schemas": ["urn:example:Group", "urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "S",
        },
    )
    assert_scim_error(unknown_schema, 400, "invalidSyntax")


ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


async def test_a_body_may_give_booleans_as_true_or_false_text(scim: Scim) -> None:
    user = await scim.create_user(
        "b@x.example", active="False", emails=[{"value": "b@x.example", "primary": "True"}]
    )
    assert user["active"] is False
    assert user["emails"][0]["primary"] is True


def nested(depth: int, *, in_objects: bool = False) -> str:
    """JSON text of a string inside ``depth`` arrays (or objects); text, because json.dumps
    itself recurses once per level."""
    if in_objects:
        return '{"a":' * depth + '"bulkId:x"' + "}" * depth
    return "[" * depth + '"bulkId:x"' + "]" * depth


async def test_a_body_nested_deeper_than_the_limit_is_invalid_syntax_on_every_route(
    scim: Scim, owner_conn: asyncpg.Connection
) -> None:
    """Every body is measured once, as it is read, so no walker of SCIM data (bulkIds,
    dialects, schema checks, scim2-models' PATCH) ever meets more than MAX_DEPTH levels;
    Python's JSON parser stops near a thousand, and answers the same."""
    user = await scim.create_user("deep@x.example")
    group = (await scim.post("/Groups", {"displayName": "Deep"})).json()
    before = await row_counts(owner_conn)
    routes: dict[str, dict[str, Any]] = {
        "POST /Users": {"schemas": [USER_URN], "userName": "d@x.example", "x": "DEEP"},
        f"PUT /Users/{user['id']}": {"schemas": [USER_URN], "emails": "DEEP"},
        f"PATCH /Users/{user['id']}": {
            "schemas": [PATCH_URN],
            "Operations": [{"op": "add", "path": "emails", "value": "DEEP"}],
        },
        f"PATCH /Groups/{group['id']}": {
            "schemas": [PATCH_URN],
            "Operations": [{"op": "add", "value": {"members": "DEEP"}}],
        },
        "POST /Groups": {"displayName": "G", "members": "DEEP"},
        "POST /Users/.search": {"filter": "DEEP"},
        "POST /.search": {"attributes": "DEEP"},
    }
    for route, body in routes.items():
        method, path = route.split(" ")
        for depth in (MAX_DEPTH, 950, 10_000):
            for in_objects in (False, True):
                content = json.dumps(body).replace('"DEEP"', nested(depth, in_objects=in_objects))
                response = await scim.client.request(
                    method, f"/scim/v2{path}", content=content, headers=scim.headers
                )
                detail = assert_scim_error(response, 400, "invalidSyntax")["detail"]
                assert f"deeper than {MAX_DEPTH}" in detail, (route, depth, detail)
    assert await row_counts(owner_conn) == before
    for route, body in routes.items():
        # Within the limit, each answer is the route's own: a 2xx or a SCIM 4xx.
        method, path = route.split(" ")
        content = json.dumps(body).replace('"DEEP"', nested(MAX_DEPTH - 6))
        response = await scim.client.request(
            method, f"/scim/v2{path}", content=content, headers=scim.headers
        )
        assert response.status_code < 500, (route, response.text)


_ = httpx
