"""The rules of API tokens without a database: their state, and who may give which scope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tenants.errors import PermissionDeniedError
from tenants.members.roles import ANY_ASSIGNER
from tenants.models_base import max_length_of
from tenants.permissions import (
    MACHINE_SCOPES,
    PERSONAL_SCOPES,
    PRODUCT_SCOPES,
    ROLE_PERMISSIONS,
    Permission,
    Role,
    permissions_of,
)
from tenants.tokens.models import ApiToken
from tenants.tokens.rules import (
    NAME_MAX_LENGTH,
    TokenStatus,
    check_may_give,
    may_give,
    status_of,
)

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def test_the_name_limit_is_the_column_s() -> None:
    assert max_length_of(ApiToken, "name") == NAME_MAX_LENGTH


def test_a_token_is_active_until_it_expires_and_revoked_wins_over_expired() -> None:
    assert status_of(None, None, NOW) is TokenStatus.ACTIVE
    assert status_of(None, NOW + timedelta(seconds=1), NOW) is TokenStatus.ACTIVE
    assert status_of(None, NOW, NOW) is TokenStatus.EXPIRED
    assert status_of(NOW, NOW - timedelta(days=1), NOW) is TokenStatus.REVOKED


def test_an_owner_gives_any_scope_but_a_personal_one_product_and_machine_scopes_included() -> None:
    owner = permissions_of([Role.OWNER])
    assert all(may_give(owner, p) for p in Permission if p not in PERSONAL_SCOPES)
    assert all(may_give(ANY_ASSIGNER, p) for p in PRODUCT_SCOPES | MACHINE_SCOPES)


def test_deciding_on_access_to_data_is_given_only_by_someone_who_holds_it() -> None:
    """An owner does not approve access to data (a privacy officer does): a token must not
    be the way round that."""
    owner = permissions_of([Role.OWNER])
    assert {Permission.ACCESS_APPROVE} == PERSONAL_SCOPES
    assert not may_give(owner, Permission.ACCESS_APPROVE)
    assert may_give(owner | {Permission.ACCESS_APPROVE}, Permission.ACCESS_APPROVE)
    officer = permissions_of([Role.PRIVACY_OFFICER])
    assert may_give(officer, Permission.ACCESS_APPROVE)
    with pytest.raises(PermissionDeniedError) as refused:
        check_may_give(owner, [Permission.MEMBERS_READ, Permission.ACCESS_APPROVE])
    assert "access:approve" in refused.value.fields[0].reason


def test_anyone_else_gives_only_permissions_they_hold() -> None:
    issuer = ROLE_PERMISSIONS[Role.ADMIN] | {Permission.TOKENS_WRITE}
    assert may_give(issuer, Permission.MEMBERS_WRITE)
    assert not may_give(issuer, Permission.ORGANISATION_WRITE)
    assert not may_give(issuer, Permission.SETTINGS_READ)
    with pytest.raises(PermissionDeniedError) as refused:
        check_may_give(issuer, [Permission.MEMBERS_READ, Permission.ORGANISATION_WRITE])
    [problem] = refused.value.fields
    assert problem.field == "scopes" and "organisation:write" in problem.reason
    check_may_give(issuer, [Permission.MEMBERS_READ, Permission.AUDIT_READ])


def test_a_refusal_names_every_scope_beyond_and_says_whom_to_ask() -> None:
    auditor = permissions_of([Role.AUDITOR])
    with pytest.raises(PermissionDeniedError) as refused:
        check_may_give(
            auditor, [Permission.TOKENS_WRITE, Permission.AUDIT_READ, Permission.MEMBERS_WRITE]
        )
    assert str(refused.value) == (
        "you cannot give a token the scope members:write, tokens:write: it is beyond your "
        "own permissions; ask an owner"
    )
    assert [(f.field, f.reason) for f in refused.value.fields] == [
        ("scopes", "members:write, tokens:write: beyond your own permissions")
    ]


def test_only_owners_manage_tokens_and_auditors_and_admins_see_them() -> None:
    holders = {r for r in Role if Permission.TOKENS_WRITE in ROLE_PERMISSIONS[r]}
    readers = {r for r in Role if Permission.TOKENS_READ in ROLE_PERMISSIONS[r]}
    assert holders == {Role.OWNER}
    assert readers == {Role.OWNER, Role.ADMIN, Role.AUDITOR}
