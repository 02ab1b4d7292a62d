"""Every error under ``/scim/v2`` is a SCIM error (RFC 7644 §3.12): ``application/scim+json``,
the Error schema, ``status`` as a string, ``scimType`` where the RFC has one; the router's
404 and 405, the size and media-type refusals and the last-resort 500 included. And the
dialects accepted for Entra ID and Okta leave everything else as strict as before."""

from __future__ import annotations

import uuid

import asyncpg
import httpx

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
    assert_scim_error(
        await scim.client.request("TRACE", "/scim/v2/Users", headers=scim.headers), 405
    )
    assert_scim_error(await scim.client.request("DELETE", "/scim/v2/Schemas"), 405)


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


_ = httpx
