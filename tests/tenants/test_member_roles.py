"""Who may give or take away which role (``tenants.members.roles``): nobody raises a
member's powers above their own."""

from __future__ import annotations

import pytest

from tenants.errors import ConflictError, PermissionDeniedError
from tenants.members.roles import (
    ANY_ASSIGNER,
    ROLE_NAMES,
    check_keeps_owner,
    check_may_act_for,
    check_may_assign,
    drops_owner,
    may_assign,
    role_name,
    role_names,
)
from tenants.permissions import Permission, Role, permissions_of

#: Which roles each role's holder may give or take away (where the route lets them change
#: roles at all: that takes members:write, which privacy officers and auditors lack).
EXPECTED = {
    Role.OWNER: set(Role),
    Role.ADMIN: {Role.ADMIN, Role.HELPDESK, Role.AUDITOR, Role.MEMBER},
    Role.HELPDESK: {Role.HELPDESK, Role.MEMBER},
    Role.PRIVACY_OFFICER: {Role.PRIVACY_OFFICER, Role.MEMBER},
    Role.AUDITOR: {Role.AUDITOR, Role.MEMBER},
    Role.MEMBER: {Role.MEMBER},
}


@pytest.mark.parametrize("holder", list(Role))
def test_each_role_gives_exactly_the_roles_within_its_own_permissions(holder: Role) -> None:
    mine = permissions_of([holder])
    assert {role for role in Role if may_assign(mine, role)} == EXPECTED[holder]


def test_an_owner_who_is_also_privacy_officer_or_a_system_assigner_gives_any_role() -> None:
    assert all(may_assign(permissions_of([Role.OWNER, Role.PRIVACY_OFFICER]), r) for r in Role)
    assert all(may_assign(ANY_ASSIGNER, r) for r in Role)


def test_a_token_with_only_members_write_gives_no_staff_role() -> None:
    scopes = frozenset({Permission.MEMBERS_READ, Permission.MEMBERS_WRITE})
    assert [r for r in Role if may_assign(scopes, r)] == [Role.MEMBER]


def test_a_change_is_judged_by_the_roles_it_gives_or_takes_not_those_it_keeps() -> None:
    helpdesk = permissions_of([Role.HELPDESK])
    # Keeping someone's owner role while adding helpdesk is within the helpdesk's powers.
    check_may_assign(helpdesk, ["owner", "member"], ["owner", "member", "helpdesk"])
    with pytest.raises(PermissionDeniedError) as refused:
        check_may_assign(helpdesk, ["helpdesk"], ["helpdesk", "owner"])
    assert [(f.field, f.reason) for f in refused.value.fields] == [
        ("roles", "Owner: beyond your own permissions")
    ]
    with pytest.raises(PermissionDeniedError, match="Admin"):  # taking away counts too
        check_may_assign(helpdesk, ["admin", "member"], ["member"])


def test_a_refusal_names_every_role_beyond_and_says_whom_to_ask() -> None:
    with pytest.raises(PermissionDeniedError) as refused:
        check_may_assign(permissions_of([Role.HELPDESK]), ["member"], ["owner", "admin"])
    assert str(refused.value) == (
        "you cannot give or take away the role Admin, Owner: it holds permissions you do "
        "not have; ask an owner"
    )
    assert [(f.field, f.reason) for f in refused.value.fields] == [
        ("roles", "Admin, Owner: beyond your own permissions")
    ]


@pytest.mark.parametrize(
    ("before", "after", "drops"),
    [
        (["owner", "member"], ["member"], True),
        (["owner"], ["owner", "admin"], False),
        (["admin"], ["member"], False),
        ([], ["owner"], False),
    ],
)
def test_only_taking_the_owner_role_away_drops_it(
    before: list[str], after: list[str], drops: bool
) -> None:
    assert drops_owner(before, after) is drops


def test_the_last_owner_keeps_the_role_and_another_owner_lets_it_go() -> None:
    with pytest.raises(ConflictError) as refused:
        check_keeps_owner(["owner"], ["member"], other_owners=0)
    assert str(refused.value) == (
        "an organisation always keeps an owner: make someone else owner first"
    )
    assert [(f.field, f.reason) for f in refused.value.fields] == [
        ("roles", "would leave the organisation without an owner")
    ]
    check_keeps_owner(["owner"], ["member"], other_owners=1)
    check_keeps_owner(["owner"], ["owner", "admin"], other_owners=0)  # kept, not dropped
    check_keeps_owner(["admin"], ["member"], other_owners=0)


def test_every_role_has_a_name_people_read_and_unknown_codes_pass_through() -> None:
    assert set(ROLE_NAMES) == set(Role)
    assert all(name[0].isupper() and "_" not in name for name in ROLE_NAMES.values())
    assert role_name("privacy_officer") == role_name(Role.PRIVACY_OFFICER) == "Privacy officer"
    assert role_names(["admin", "privacy_officer"]) == "Admin, Privacy officer"
    assert role_name("retired_role") == "retired_role"


#: Whose sign-in (address, subject, sign-in link) each role's holder may take in hand:
#: exactly the members whose roles it could give.
@pytest.mark.parametrize("editor", list(Role))
@pytest.mark.parametrize("target", list(Role))
def test_only_someone_holding_all_a_members_powers_may_change_how_they_sign_in(
    editor: Role, target: Role
) -> None:
    def act() -> None:
        check_may_act_for(
            permissions_of([editor]),
            [target.value],
            doing="change the email address of",
            field="email",
        )

    if target in EXPECTED[editor]:
        act()
    else:
        with pytest.raises(PermissionDeniedError) as refused:
            act()
        assert refused.value.fields[0].field == "email"
        assert ROLE_NAMES[target] in refused.value.message


def test_a_member_holding_two_roles_needs_an_editor_holding_both() -> None:
    both = ["helpdesk", "auditor"]
    with pytest.raises(PermissionDeniedError, match="Auditor"):
        check_may_act_for(permissions_of([Role.HELPDESK]), both, doing="x", field="invite")
    check_may_act_for(permissions_of([Role.ADMIN]), both, doing="x", field="invite")
    check_may_act_for(
        permissions_of([Role.OWNER]), ["owner", "privacy_officer"], doing="x", field="invite"
    )
