"""PATCH (RFC 7644 §3.5.2): add, replace and remove with paths and value filters; all
operations of a request apply or none."""

from __future__ import annotations

from tests.conftest import make_unit
from tests.scim.conftest import ENTERPRISE_URN, PATCH_URN, Scim
from tests.scim.test_users import assert_scim_error

EMAILS = [
    {"value": "w@corp.example", "type": "work", "primary": True},
    {"value": "h@home.example", "type": "home"},
]


async def test_add_appends_to_a_multi_valued_attribute_and_sets_a_single_one(scim: Scim) -> None:
    user = await scim.create_user("u@x.example", emails=EMAILS[:1])
    response = await scim.patch(
        f"/Users/{user['id']}",
        {"op": "add", "path": "emails", "value": [EMAILS[1]]},
        {"op": "add", "path": "nickName", "value": "Babs"},
        {"op": "add", "value": {"title": "Lead", "name": {"givenName": "Barbara"}}},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["emails"] == EMAILS
    assert body["nickName"] == "Babs"
    assert body["title"] == "Lead"
    assert body["name"] == {"givenName": "Barbara"}


async def test_adding_an_entry_already_there_changes_nothing(scim: Scim) -> None:
    """RFC 7644 §3.5.2.1: an add of a value already present is no change, and RFC 7643 §2.4
    a (type, value) pair appears once; a repeat sent as primary makes the entry primary."""
    home = {"value": "alt@home.example", "type": "home", "primary": True}
    user = await scim.create_user("dup@x.example", emails=[home])
    again = await scim.patch(
        f"/Users/{user['id']}",
        {"op": "add", "path": "emails", "value": [{"value": "ALT@home.example", "type": "home"}]},
    )
    assert again.status_code == 200, again.text
    assert again.json()["emails"] == [home]
    work = {"value": "w@x.example", "type": "work"}
    added = await scim.patch(
        f"/Users/{user['id']}",
        {"op": "add", "path": "emails", "value": [work, {**work, "primary": True}]},
    )
    # One primary (the new one, sent twice: once kept), the earlier primary cleared.
    assert added.json()["emails"] == [{**home, "primary": False}, {**work, "primary": True}]


async def test_an_entry_repeated_in_other_capitals_is_one_entry_on_every_write(
    scim: Scim,
) -> None:
    """RFC 7643 §8.7.1: ``type`` is not case-exact; an address neither. A create with the
    same address twice in other capitals, and an add of it typed "WORK", keep one."""
    user = await scim.create_user(
        "caps@x.example",
        emails=[
            {"value": "caps@x.example", "type": "work", "primary": True},
            {"value": "CAPS@x.example", "type": "Work"},
        ],
    )
    assert user["emails"] == [{"value": "caps@x.example", "type": "work", "primary": True}]
    again = await scim.patch(
        f"/Users/{user['id']}",
        {"op": "add", "path": "emails", "value": [{"value": "Caps@X.example", "type": "WORK"}]},
    )
    assert again.json()["emails"] == user["emails"]


def test_repeats_are_dropped_keeping_the_first_and_its_primary() -> None:
    from tenants.scim.documents import without_repeats

    doc = {
        "userName": "u",
        "emails": [
            {"value": "a@x.example", "type": "work"},
            {"value": "A@x.example", "type": "work", "primary": True},
            {"value": "a@x.example", "type": "home"},
        ],
        "phoneNumbers": [{"value": "1", "type": "work"}, {"value": "1", "type": "work"}],
        "addresses": [{"locality": "Oslo"}, {"locality": "Oslo"}],
        "groups": [],
    }
    assert without_repeats(doc) == {
        **doc,
        "emails": [
            {"value": "a@x.example", "type": "work", "primary": True},
            {"value": "a@x.example", "type": "home"},
        ],
        "phoneNumbers": [{"value": "1", "type": "work"}],
    }


async def test_replace_and_remove_through_value_filters(scim: Scim) -> None:
    user = await scim.create_user("u@x.example", emails=EMAILS)
    path = f"/Users/{user['id']}"
    replaced = await scim.patch(
        path, {"op": "replace", "path": 'emails[type eq "work"].value', "value": "new@corp.example"}
    )
    assert replaced.json()["emails"][0]["value"] == "new@corp.example"
    member = (await scim.org.get(f"/v1/members/{user['id']}")).json()
    assert member["email"] == "new@corp.example"
    removed = await scim.patch(path, {"op": "remove", "path": 'emails[type eq "home"]'})
    assert [e["type"] for e in removed.json()["emails"]] == ["work"]
    gone = await scim.patch(path, {"op": "remove", "path": "emails"})
    assert "emails" not in gone.json()
    member = (await scim.org.get(f"/v1/members/{user['id']}")).json()
    assert member["email"] == "u@x.example"


async def test_entra_style_operations_are_understood(scim: Scim) -> None:
    user = await scim.create_user("u@x.example")
    response = await scim.patch(
        f"/Users/{user['id']}",
        {"op": "Replace", "path": "displayName", "value": "Entra Person"},
        {"op": "Add", "path": f"{ENTERPRISE_URN}:employeeNumber", "value": "7"},
        {"op": "Replace", "path": "active", "value": False},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["displayName"] == "Entra Person"
    assert body[ENTERPRISE_URN]["employeeNumber"] == "7"
    assert body["active"] is False
    member = (await scim.org.get(f"/v1/members/{user['id']}")).json()
    assert (member["name"], member["status"]) == ("Entra Person", "suspended")


async def test_changing_the_department_moves_the_member(scim: Scim) -> None:
    sales = await make_unit(scim.org, "Sales")
    user = await scim.create_user("u@x.example")
    await scim.patch(
        f"/Users/{user['id']}",
        {"op": "add", "path": f"{ENTERPRISE_URN}:department", "value": "Sales"},
    )
    assert (await scim.org.get(f"/v1/members/{user['id']}")).json()["unit_id"] == sales["id"]


async def test_errors_carry_their_scim_type_and_nothing_is_half_applied(scim: Scim) -> None:
    user = await scim.create_user("u@x.example", title="Before", emails=EMAILS)
    path = f"/Users/{user['id']}"
    cases = [
        (
            [
                {"op": "replace", "path": "title", "value": "After"},
                {"op": "replace", "path": 'emails[type eq "fax"].value', "value": "x"},
            ],
            "noTarget",
        ),
        (
            [
                {"op": "replace", "path": "title", "value": "After"},
                {"op": "add", "path": "nothing", "value": 1},
            ],
            "invalidPath",
        ),
        ([{"op": "replace", "path": "title", "value": "After"}, {"op": "remove"}], "noTarget"),
        (
            [
                {"op": "replace", "path": "title", "value": "After"},
                {"op": "frobnicate", "path": "title"},
            ],
            "invalidValue",
        ),
        ([{"op": "replace", "path": "title", "value": 5}], "invalidValue"),
        ([{"op": "replace", "path": "userName", "value": None}], "mutability"),
        ([{"op": "replace", "path": "emails[type eq", "value": "x"}], "invalidPath"),
    ]
    found = []
    for operations, _ in cases:
        response = await scim.patch(path, *operations)
        found.append(
            assert_scim_error(response, 400, response.json().get("scimType")).get("scimType")
        )
    assert found == [scim_type for _, scim_type in cases]
    after = (await scim.get(path)).json()
    assert after["title"] == "Before"
    assert after["emails"] == EMAILS
    no_ops = await scim.request("PATCH", path, {"schemas": [PATCH_URN], "Operations": []})
    assert no_ops.status_code == 400


async def test_the_username_cannot_be_taken_by_patch(scim: Scim) -> None:
    await scim.create_user("taken@x.example")
    user = await scim.create_user("free@x.example")
    response = await scim.patch(
        f"/Users/{user['id']}", {"op": "replace", "path": "userName", "value": "TAKEN@x.example"}
    )
    assert_scim_error(response, 409, "uniqueness")


async def test_a_manager_loop_is_refused(scim: Scim) -> None:
    a = await scim.create_user("a@x.example")
    b = await scim.create_user("b@x.example", **{ENTERPRISE_URN: {"manager": {"value": a["id"]}}})
    response = await scim.patch(
        f"/Users/{a['id']}",
        {"op": "add", "path": f"{ENTERPRISE_URN}:manager", "value": {"value": b["id"]}},
    )
    assert_scim_error(response, 400, "invalidValue")
