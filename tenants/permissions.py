"""Roles and permissions: one table decides what each role may do, deny by default."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    HELPDESK = "helpdesk"
    PRIVACY_OFFICER = "privacy_officer"
    AUDITOR = "auditor"
    MEMBER = "member"


class Permission(StrEnum):
    """Named ``resource:action``; API tokens carry them as scopes."""

    ORGANISATION_READ = "organisation:read"
    ORGANISATION_WRITE = "organisation:write"
    UNITS_READ = "units:read"
    UNITS_WRITE = "units:write"
    GROUPS_READ = "groups:read"
    GROUPS_WRITE = "groups:write"
    MEMBERS_READ = "members:read"
    MEMBERS_WRITE = "members:write"
    MEMBERS_LIFECYCLE = "members:lifecycle"
    PRODUCTS_READ = "products:read"
    PRODUCTS_WRITE = "products:write"
    AUDIT_READ = "audit:read"
    TOKENS_WRITE = "tokens:write"


P = Permission
_READ = frozenset(
    {P.ORGANISATION_READ, P.UNITS_READ, P.GROUPS_READ, P.MEMBERS_READ, P.PRODUCTS_READ}
)
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OWNER: frozenset(Permission),
    Role.ADMIN: frozenset(Permission) - {P.TOKENS_WRITE, P.ORGANISATION_WRITE},
    Role.HELPDESK: _READ | {P.MEMBERS_WRITE, P.MEMBERS_LIFECYCLE},
    Role.PRIVACY_OFFICER: _READ | {P.AUDIT_READ},
    Role.AUDITOR: _READ | {P.AUDIT_READ},
    Role.MEMBER: frozenset(),
}


def permissions_of(roles: Iterable[Role]) -> frozenset[Permission]:
    granted: frozenset[Permission] = frozenset()
    for role in roles:
        granted |= ROLE_PERMISSIONS[role]
    return granted


def parse_scopes(scopes: Iterable[str]) -> frozenset[Permission]:
    """Scopes to permissions; ValueError naming the first unknown scope."""
    result = set()
    for scope in scopes:
        try:
            result.add(Permission(scope))
        except ValueError:
            known = ", ".join(p.value for p in Permission)
            raise ValueError(f"unknown scope {scope!r}; known scopes: {known}") from None
    return frozenset(result)
