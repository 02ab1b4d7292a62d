"""The dialect rewrites as plain functions (no database): what each accepts, and what it
leaves for the strict machinery to refuse."""

from __future__ import annotations

from typing import Any

from tenants.scim import dialects
from tenants.scim.schemas import ENTERPRISE_URN, GROUPS, PATCH_URN, USERS

MANAGER = f"{ENTERPRISE_URN}:manager"


def ops(kind: Any, *operations: dict[str, Any], current: dict[str, Any] | None = None) -> list:
    message = {"schemas": [PATCH_URN], "Operations": list(operations)}
    return list(dialects.patch_message(kind, message, current or {})["Operations"])


def test_op_names_are_read_in_any_case_and_unknown_ones_are_left_alone() -> None:
    assert ops(USERS, {"op": "REPLACE", "path": "title", "value": "x"})[0]["op"] == "replace"
    assert ops(USERS, {"op": "Frob", "path": "title"})[0]["op"] == "Frob"


def test_boolean_text_becomes_a_boolean_only_where_the_schema_says_boolean() -> None:
    assert ops(USERS, {"op": "Replace", "path": "active", "value": "fAlSe"})[0]["value"] is False
    assert ops(USERS, {"op": "Replace", "path": "title", "value": "True"})[0]["value"] == "True"
    assert ops(USERS, {"op": "Replace", "path": "active", "value": "yes"})[0]["value"] == "yes"
    pathless = ops(
        USERS, {"op": "replace", "value": {"active": "TRUE", "emails": [{"primary": "false"}]}}
    )
    assert pathless[0]["value"] == {"active": True, "emails": [{"primary": False}]}
    assert dialects.boolean_text("0") is None


def test_members_removed_by_value_become_one_filtered_remove_each() -> None:
    found = ops(
        GROUPS,
        {
            "op": "Remove",
            "path": "members",
            "value": [{"value": "a"}, {"$ref": None, "value": 'b"c'}],
        },
    )
    assert found == [
        {"op": "remove", "path": 'members[value eq "a"]'},
        {"op": "remove", "path": 'members[value eq "b\\"c"]'},
    ]
    okta = ops(
        GROUPS,
        {
            "op": "remove",
            "path": "members",
            "value": [{"value": "a", "display": "A", "type": "User"}],
        },
    )
    assert okta == [{"op": "remove", "path": 'members[value eq "a"]'}]
    assert ops(GROUPS, {"op": "Remove", "path": "members", "value": []}) == []
    assert ops(GROUPS, {"op": "remove", "path": "members"}) == [{"op": "remove", "path": "members"}]


def test_member_display_is_dropped_and_an_unchanged_group_id_too() -> None:
    added = ops(
        GROUPS,
        {"op": "add", "path": "members", "value": [{"value": "a", "display": "A", "type": "User"}]},
    )
    assert added[0]["value"] == [{"value": "a", "type": "User"}]
    renamed = ops(
        GROUPS, {"op": "replace", "value": {"id": "g", "displayName": "N"}}, current={"id": "g"}
    )
    assert renamed[0]["value"] == {"displayName": "N"}
    other = ops(GROUPS, {"op": "replace", "value": {"id": "h"}}, current={"id": "g"})
    assert other[0]["value"] == {"id": "h"}


def test_manager_shapes() -> None:
    for given in (
        "m1",
        {"value": "m1"},
        [{"$ref": "u", "value": "m1"}],
        {"value": "m1", "$ref": None},
    ):
        found = ops(USERS, {"op": "Add", "path": MANAGER, "value": given})
        assert found[0]["value"]["value"] == "m1"
        assert found[0]["path"] == MANAGER
    for empty in ("", None, {"value": ""}, [], [{"value": None}]):
        assert ops(USERS, {"op": "Replace", "path": MANAGER, "value": empty}) == [
            {"op": "remove", "path": MANAGER}
        ]
    current = {ENTERPRISE_URN: {"manager": {"value": "m1"}}}
    assert ops(USERS, {"op": "remove", "path": f'{MANAGER}[value eq "m1"]'}, current=current) == [
        {"op": "remove", "path": MANAGER}
    ]
    assert ops(USERS, {"op": "remove", "path": f'{MANAGER}[value eq "m2"]'}, current=current) == []
    assert dialects.user_body({ENTERPRISE_URN: {"manager": "123"}}) == {
        ENTERPRISE_URN: {"manager": {"value": "123"}}
    }


def test_add_on_a_filter_matching_nothing_creates_the_value_once() -> None:
    found = ops(
        USERS,
        {"op": "Add", "path": 'addresses[type eq "work"].streetAddress', "value": "1 Way"},
        {"op": "Add", "path": 'addresses[type eq "work"].postalCode', "value": "98052"},
        {"op": "Add", "path": 'emails[type eq "work"].value', "value": "e@x.example"},
        current={"emails": [{"type": "Work", "value": "old@x.example"}]},
    )
    assert found == [
        {"op": "add", "path": "addresses", "value": [{"type": "work", "streetAddress": "1 Way"}]},
        {"op": "add", "path": 'addresses[type eq "work"].postalCode', "value": "98052"},
        {"op": "add", "path": 'emails[type eq "work"].value', "value": "e@x.example"},
    ]
    replaced = ops(
        USERS, {"op": "Replace", "path": 'phoneNumbers[type eq "mobile"].value', "value": "1"}
    )
    assert replaced[0]["path"] == 'phoneNumbers[type eq "mobile"].value'


def test_password_operations_are_left_out_and_mean_no_change() -> None:
    message = {
        "schemas": [PATCH_URN],
        "Operations": [{"op": "replace", "value": {"password": "p"}}],
    }
    rewritten = dialects.patch_message(USERS, message, {})
    assert rewritten["Operations"] == [] and dialects.changes_nothing(message, rewritten)
    assert ops(USERS, {"op": "replace", "path": "password", "value": "p"}) == []
    mixed = ops(USERS, {"op": "replace", "value": {"password": "p", "title": "t"}})
    assert mixed == [{"op": "replace", "value": {"title": "t"}}]
    assert ops(GROUPS, {"op": "replace", "path": "password", "value": "p"})[0]["path"] == "password"


def test_the_entra_group_schema_uri_is_dropped_and_no_other() -> None:
    body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group", dialects.ENTRA_GROUP_SCHEMA]}
    assert dialects.group_body(body)["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:Group"]
    other = {"schemas": ["urn:example:Group"]}
    assert dialects.group_body(other) is other


def test_group_membership_changes_are_applied_on_the_ids_in_one_pass() -> None:
    from tenants.scim.patching import apply_group_simple

    current = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "id": "g",
        "displayName": "G",
        "members": [{"value": v, "type": "User", "$ref": f"/Users/{v}"} for v in ("a", "b", "c")],
    }
    message = {
        "schemas": [PATCH_URN],
        "Operations": [
            {"op": "remove", "path": 'members[value eq "a"]'},
            {"op": "remove", "path": 'Members[Value EQ "zz"]'},
            {"op": "add", "path": "members", "value": [{"value": "d"}, {"value": "b"}]},
            {"op": "replace", "value": {"displayName": "H", "externalId": "x"}},
        ],
    }
    patched = apply_group_simple(current, message)
    assert patched is not None
    assert [m["value"] for m in patched["members"]] == ["b", "c", "d"]
    assert (patched["displayName"], patched["externalId"]) == ("H", "x")
    assert current["members"][0]["value"] == "a"
    unknown = [
        {"op": "remove", "path": 'members[display eq "a"]'},
        {"op": "add", "path": "members", "value": [{"value": "d", "display": "D"}]},
        {"op": "replace", "path": "displayName", "value": 5},
        {"op": "Add", "path": "displayName", "value": "x"},
        {"op": "replace", "value": {"id": "other"}},
    ]
    for operation in unknown:
        assert (
            apply_group_simple(current, {"schemas": [PATCH_URN], "Operations": [operation]}) is None
        )
