"""SCIM Users on the real database: mapping onto members, uniqueness, versions, errors."""

from __future__ import annotations

import uuid

from tests.conftest import OrgHandle, make_member, make_unit
from tests.scim.conftest import ENTERPRISE_URN, PATCH_URN, SCIM_JSON, USER_URN, Scim


def assert_scim_error(response: object, status: int, scim_type: str | None = None) -> dict:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"].startswith(SCIM_JSON)  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert body["status"] == str(status)
    assert body.get("scimType") == scim_type
    return dict(body)


async def test_a_created_user_is_a_member_with_email_name_unit_and_manager(scim: Scim) -> None:
    sales = await make_unit(scim.org, "Sales")
    boss = await scim.create_user("boss@corp.example")
    user = await scim.create_user(
        "bjensen@corp.example",
        name={"givenName": "Barbara", "familyName": "Jensen"},
        emails=[{"value": "Babs@Corp.Example", "type": "work", "primary": True}],
        externalId="ext-1",
        title="Tour guide",
        **{
            ENTERPRISE_URN: {
                "department": "sales",
                "employeeNumber": "42",
                "manager": {"value": boss["id"]},
            }
        },
    )
    member = (await scim.org.get(f"/v1/members/{user['id']}")).json()
    assert member["email"] == "babs@corp.example"
    assert member["name"] == "Barbara Jensen"
    assert member["unit_id"] == sales["id"]
    assert member["manager_id"] == boss["id"]
    assert member["external_id"] == "ext-1"
    assert member["status"] == "active"
    fetched = (await scim.get(f"/Users/{user['id']}")).json()
    assert fetched["title"] == "Tour guide"
    assert fetched["emails"] == [{"value": "Babs@Corp.Example", "type": "work", "primary": True}]
    assert fetched[ENTERPRISE_URN]["manager"]["value"] == boss["id"]
    assert fetched[ENTERPRISE_URN]["employeeNumber"] == "42"
    assert fetched["active"] is True
    assert fetched["meta"]["location"].endswith(f"/scim/v2/Users/{user['id']}")


async def test_a_department_naming_no_unit_puts_the_member_in_the_default_unit(scim: Scim) -> None:
    user = await scim.create_user("x@corp.example", **{ENTERPRISE_URN: {"department": "Nowhere"}})
    member = (await scim.org.get(f"/v1/members/{user['id']}")).json()
    assert member["unit_id"] == str(scim.org.root_unit_id)


async def test_a_unit_path_picks_the_unit_among_namesakes(scim: Scim) -> None:
    eu = await make_unit(scim.org, "Europe")
    us = await make_unit(scim.org, "America")
    await make_unit(scim.org, "Sales", parent=eu["id"])
    us_sales = await make_unit(scim.org, "Sales", parent=us["id"])
    ambiguous = await scim.create_user(
        "a@corp.example", **{ENTERPRISE_URN: {"department": "Sales"}}
    )
    exact = await scim.create_user(
        "b@corp.example", **{ENTERPRISE_URN: {"department": "america/sales"}}
    )
    assert (await scim.org.get(f"/v1/members/{ambiguous['id']}")).json()["unit_id"] == str(
        scim.org.root_unit_id
    )
    assert (await scim.org.get(f"/v1/members/{exact['id']}")).json()["unit_id"] == us_sales["id"]


async def test_a_user_without_an_address_gets_an_undeliverable_placeholder_email(
    scim: Scim,
) -> None:
    user = await scim.create_user("jdoe")
    member = (await scim.org.get(f"/v1/members/{user['id']}")).json()
    assert member["email"].endswith("@scim.invalid")
    assert "emails" not in user
    assert user["userName"] == "jdoe"


async def test_user_name_is_unique_case_insensitively(scim: Scim) -> None:
    await scim.create_user("Same@corp.example")
    response = await scim.post("/Users", {"schemas": [USER_URN], "userName": "same@CORP.example"})
    assert_scim_error(response, 409, "uniqueness")


async def test_a_member_created_elsewhere_is_a_user_known_by_email(scim: Scim) -> None:
    member = await make_member(scim.org, email="pre@corp.example", name="Pre Existing")
    found = (await scim.get("/Users", filter='userName eq "PRE@corp.example"')).json()
    assert found["totalResults"] == 1
    user = found["Resources"][0]
    assert user["id"] == member["id"]
    assert user["displayName"] == "Pre Existing"
    response = await scim.post("/Users", {"schemas": [USER_URN], "userName": "pre@corp.example"})
    assert_scim_error(response, 409, "uniqueness")


async def test_put_replaces_every_attribute(scim: Scim) -> None:
    user = await scim.create_user("p@corp.example", title="Boss", nickName="P")
    response = await scim.put(
        f"/Users/{user['id']}",
        {"schemas": [USER_URN], "userName": "p@corp.example", "title": "Clerk"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["title"] == "Clerk"
    assert "nickName" not in body


async def test_if_match_with_a_stale_version_is_refused_and_changes_nothing(scim: Scim) -> None:
    user = await scim.create_user("e@corp.example", title="One")
    version = user["meta"]["version"]
    assert version.startswith('W/"')
    first = await scim.patch(
        f"/Users/{user['id']}",
        {"op": "replace", "path": "title", "value": "Two"},
        **{"If-Match": version},
    )
    assert first.status_code == 200, first.text
    assert first.headers["ETag"] == first.json()["meta"]["version"] != version
    stale = await scim.patch(
        f"/Users/{user['id']}",
        {"op": "replace", "path": "title", "value": "Three"},
        **{"If-Match": version},
    )
    assert_scim_error(stale, 412)
    assert_scim_error(await scim.delete(f"/Users/{user['id']}", **{"If-Match": version}), 412)
    assert (await scim.get(f"/Users/{user['id']}")).json()["title"] == "Two"


async def test_if_none_match_with_the_current_version_answers_304(scim: Scim) -> None:
    user = await scim.create_user("n@corp.example")
    response = await scim.client.get(
        f"/scim/v2/Users/{user['id']}",
        headers={**scim.headers, "If-None-Match": user["meta"]["version"]},
    )
    assert response.status_code == 304


async def test_bad_bodies_get_scim_errors_and_write_nothing(scim: Scim) -> None:
    bad = [
        (b"{not json", 400, "invalidSyntax"),
        (
            b'{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "u@x.example", "bogus": 1}',
            400,
            "invalidSyntax",
        ),
        (
            b'{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": 5}',
            400,
            "invalidValue",
        ),
        (b'{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"]}', 400, "invalidValue"),
        (
            b'{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "u@x.example", "emails": "x"}',
            400,
            "invalidValue",
        ),
        (
            b'{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "u@x.example", "active": "yes"}',
            400,
            "invalidValue",
        ),
        (b'{"schemas": ["urn:x"], "userName": "u@x.example"}', 400, "invalidSyntax"),
        (b"[1, 2]", 400, "invalidSyntax"),
        (
            b'{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "u\\u0000@x.example"}',
            400,
            "invalidValue",
        ),
        (
            b'{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "u@x.example", '
            b'"emails": [{"value": "a@x.example", "primary": true}, {"value": "b@x.example", "primary": true}]}',
            400,
            "invalidValue",
        ),
        (
            b'{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "u@x.example", '
            b'"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "not-an-id"}}}',
            400,
            "invalidValue",
        ),
    ]
    for raw, status, scim_type in bad:
        response = await scim.client.post("/scim/v2/Users", content=raw, headers=scim.headers)
        assert_scim_error(response, status, scim_type)
    listed = (await scim.get("/Users")).json()
    assert listed["totalResults"] == 0


async def test_an_unknown_manager_is_an_invalid_value(scim: Scim) -> None:
    response = await scim.post(
        "/Users",
        {
            "schemas": [USER_URN],
            "userName": "m@x.example",
            ENTERPRISE_URN: {"manager": {"value": str(uuid.uuid4())}},
        },
    )
    assert_scim_error(response, 400, "invalidValue")


async def test_unknown_ids_and_paths_answer_scim_404_and_wrong_methods_405(scim: Scim) -> None:
    assert_scim_error(await scim.get(f"/Users/{uuid.uuid4()}"), 404)
    assert_scim_error(await scim.get("/Users/not-an-id"), 404)
    assert_scim_error(await scim.get("/Nothing/here"), 404)
    assert_scim_error(await scim.request("DELETE", "/Users"), 405)
    assert_scim_error(await scim.request("POST", "/ServiceProviderConfig", {}), 405)


async def test_writes_answer_with_the_attributes_asked_for_and_the_whole_etag(
    scim: Scim,
) -> None:
    """RFC 7644 §3.9: attributes and excludedAttributes apply to every answer that returns
    a resource, creation, replacement and PATCH included; the ETag and Location headers
    come from the whole resource whatever the projection drops."""
    created = await scim.client.post(
        "/scim/v2/Users",
        params={"attributes": "userName"},
        json={"schemas": [USER_URN], "userName": "proj@x.example", "title": "T"},
        headers=scim.headers,
    )
    assert created.status_code == 201, created.text
    assert set(created.json()) == {"schemas", "id", "userName"}
    user_id = created.json()["id"]
    assert created.headers["location"].endswith(f"/scim/v2/Users/{user_id}")
    path = f"/scim/v2/Users/{user_id}"
    patched = await scim.client.request(
        "PATCH",
        path,
        params={"excludedAttributes": "name,meta"},
        json={
            "schemas": [PATCH_URN],
            "Operations": [{"op": "replace", "path": "title", "value": "U"}],
        },
        headers=scim.headers,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["title"] == "U"
    assert "meta" not in patched.json()
    assert "name" not in patched.json()
    fetched = await scim.client.get(path, params={"attributes": "title"}, headers=scim.headers)
    assert set(fetched.json()) == {"schemas", "id", "title"}
    whole = (await scim.get(f"/Users/{user_id}")).json()
    assert patched.headers["etag"] == fetched.headers["etag"] == whole["meta"]["version"]
    replaced = await scim.client.put(
        path,
        params={"attributes": "title"},
        json={"schemas": [USER_URN], "userName": "proj@x.example", "title": "V"},
        headers=scim.headers,
    )
    assert replaced.json() == {"schemas": [USER_URN], "id": user_id, "title": "V"}


async def test_password_is_accepted_but_never_kept_or_shown(scim: Scim) -> None:
    user = await scim.create_user("pw@x.example", password="hunter2")
    assert "password" not in user
    stored = (await scim.get(f"/Users/{user['id']}")).text
    assert "hunter2" not in stored


async def test_a_user_deleted_then_created_again_is_the_same_member_restored(scim: Scim) -> None:
    user = await scim.create_user("back@x.example")
    assert (await scim.delete(f"/Users/{user['id']}")).status_code == 204
    again = await scim.create_user("back@x.example", title="Returned")
    assert again["id"] == user["id"]
    assert again["active"] is True
    member = (await scim.org.get(f"/v1/members/{user['id']}")).json()
    assert member["status"] == "active"


async def test_removing_active_leaves_the_status_and_reads_as_unassigned(
    scim: Scim, org: OrgHandle
) -> None:
    user = await scim.create_user("a@x.example")
    response = await scim.patch(f"/Users/{user['id']}", {"op": "remove", "path": "active"})
    assert response.status_code == 200, response.text
    assert "active" not in response.json()
    assert (await org.get(f"/v1/members/{user['id']}")).json()["status"] == "active"
    found = (await scim.get("/Users", filter="active pr")).json()
    assert found["totalResults"] == 0
