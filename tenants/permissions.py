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
    """Named ``resource:action``; API tokens and product clients carry them as scopes."""

    CONSOLE_ACCESS = "console:access"
    ORGANISATION_READ = "organisation:read"
    ORGANISATION_WRITE = "organisation:write"
    SSO_READ = "sso:read"
    SSO_WRITE = "sso:write"
    UNITS_READ = "units:read"
    UNITS_WRITE = "units:write"
    GROUPS_READ = "groups:read"
    GROUPS_WRITE = "groups:write"
    MEMBERS_READ = "members:read"
    MEMBERS_WRITE = "members:write"
    MEMBERS_LIFECYCLE = "members:lifecycle"
    MEMBERS_SESSIONS = "members:sessions"
    PRODUCTS_READ = "products:read"
    PRODUCTS_WRITE = "products:write"
    POLICIES_READ = "policies:read"
    POLICIES_WRITE = "policies:write"
    DEPARTURES_READ = "departures:read"
    DEPARTURES_WRITE = "departures:write"
    #: Background jobs: the dead-letter list and its retry button.
    JOBS_READ = "jobs:read"
    JOBS_WRITE = "jobs:write"
    ACCESS_READ = "access:read"
    ACCESS_REQUEST = "access:request"
    ACCESS_APPROVE = "access:approve"
    #: Ending someone's access to members' data (never needs a second person).
    ACCESS_REVOKE = "access:revoke"
    PRIVACY_REQUESTS_READ = "privacy_requests:read"
    PRIVACY_REQUESTS_WRITE = "privacy_requests:write"
    AUDIT_READ = "audit:read"
    #: API tokens: the console's list of them (names, scopes, use; never a secret), and
    #: making and revoking them (an owner's; see tenants.tokens.rules.may_give).
    TOKENS_READ = "tokens:read"
    TOKENS_WRITE = "tokens:write"
    #: The console's provisioning page: SCIM tokens and the provisioning rules.
    SCIM_READ = "scim:read"
    SCIM_WRITE = "scim:write"
    #: What an identity provider's SCIM token carries (``/scim/v2``); no role has it.
    SCIM_PROVISION = "scim:provision"
    #: Members' content items as products registered them (admins read; products write).
    CONTENT_READ = "content:read"
    #: Putting content items under legal hold and lifting it.
    CONTENT_HOLD = "content:hold"
    # Scopes for products calling the API with client credentials.
    SETTINGS_READ = "settings:read"
    SETTINGS_WRITE = "settings:write"
    CONTENT_WRITE = "content:write"
    ACCESS_CHECK = "access:check"
    #: An identity provider enriching tokens with a member's settings and roles (/v1/claims).
    CLAIMS_READ = "claims:read"
    #: Entra's token-issuance callout (/v1/claims/token-issuance). Only the principal of an
    #: Entra callout token holds it; the route also checks that the caller is one.
    CLAIMS_CALLOUT = "claims:callout"
    #: Forwarding privacy requests a product received, and uploading its part of an export.
    PRIVACY_REQUESTS_SUBMIT = "privacy_requests:submit"
    #: Access reviews: reading campaigns and their results, running them (create, decide any
    #: item but one's own), and deciding the items one is a reviewer of (the queue).
    REVIEWS_READ = "reviews:read"
    REVIEWS_WRITE = "reviews:write"
    REVIEWS_DECIDE = "reviews:decide"


P = Permission
#: What products do; no person's role includes these.
PRODUCT_SCOPES = frozenset(
    {
        P.SETTINGS_READ,
        P.SETTINGS_WRITE,
        P.CONTENT_WRITE,
        P.ACCESS_CHECK,
        P.PRIVACY_REQUESTS_SUBMIT,
        P.CLAIMS_READ,
    }
)
#: What only machine credentials (API tokens) carry; no person's role includes these either.
MACHINE_SCOPES = frozenset({P.SCIM_PROVISION, P.CLAIMS_CALLOUT})
#: Decisions the four-eyes rule reserves to a named person holding the role: only someone
#: who holds one may put it on a token (not even an owner otherwise), and a token acts
#: with it only while its creator still holds it, in the creator's name.
PERSONAL_SCOPES = frozenset({P.ACCESS_APPROVE})
READS = frozenset(p for p in Permission if p.value.endswith(":read") and p not in PRODUCT_SCOPES)
_BASIC_READS = frozenset(
    {P.ORGANISATION_READ, P.UNITS_READ, P.GROUPS_READ, P.MEMBERS_READ, P.PRODUCTS_READ}
)

#: The role table. Least privilege: auditors read everything and change nothing; the
#: helpdesk handles accounts but not policies; only privacy officers approve data access.
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    # Not even the owner approves data access: a second person, a privacy officer, does
    # (an owner who must can hold both roles).
    Role.OWNER: frozenset(Permission) - PRODUCT_SCOPES - MACHINE_SCOPES - {P.ACCESS_APPROVE},
    Role.ADMIN: frozenset(Permission)
    - PRODUCT_SCOPES
    - MACHINE_SCOPES
    - {P.TOKENS_WRITE, P.ACCESS_APPROVE, P.ORGANISATION_WRITE},
    Role.HELPDESK: _BASIC_READS
    | {
        P.CONSOLE_ACCESS,
        P.MEMBERS_WRITE,
        P.MEMBERS_LIFECYCLE,
        P.MEMBERS_SESSIONS,
        P.POLICIES_READ,
        P.DEPARTURES_READ,
        P.REVIEWS_DECIDE,
    },
    Role.PRIVACY_OFFICER: _BASIC_READS
    | {
        P.CONSOLE_ACCESS,
        P.AUDIT_READ,
        P.POLICIES_READ,
        P.DEPARTURES_READ,
        P.ACCESS_READ,
        P.ACCESS_APPROVE,
        P.ACCESS_REVOKE,
        P.PRIVACY_REQUESTS_READ,
        P.PRIVACY_REQUESTS_WRITE,
        P.CONTENT_READ,
        P.CONTENT_HOLD,
        P.REVIEWS_DECIDE,
    },
    Role.AUDITOR: READS | {P.CONSOLE_ACCESS},
    Role.MEMBER: frozenset(),
}


def permissions_of(roles: Iterable[Role | str]) -> frozenset[Permission]:
    """The union of the roles' permissions; unknown role names grant nothing."""
    granted: frozenset[Permission] = frozenset()
    for role in roles:
        try:
            granted |= ROLE_PERMISSIONS[Role(role)]
        except ValueError:
            continue
    return granted


def may_grant(giver: frozenset[Permission], granted: frozenset[Permission]) -> bool:
    """Whether someone holding ``giver`` may hand out ``granted`` (a role's permissions, a
    token's scope): an owner (or anyone holding all an owner holds) anything; anyone else
    only what they hold themselves, so that nobody raises their own or another's powers
    above their own (``members.roles.may_assign``, ``tokens.rules.may_give``)."""
    return ROLE_PERMISSIONS[Role.OWNER] <= giver or granted <= giver


def is_admin(roles: Iterable[Role | str]) -> bool:
    return P.CONSOLE_ACCESS in permissions_of(roles)


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
