"""What a Keycloak realm needs before Tenantry can mirror into it, as plain rules: the
checks ``tenantry identity setup`` runs (each with its name and the fix), the
realm-management roles the service account needs, the user-profile change that keeps
Tenantry's attributes, and which server versions need an organization domain.

Settled by reading Keycloak's admin resources (services/.../resources/admin and
organization/admin/resource): every ``/organizations`` route and the user-profile PUT need
``manage-realm``; user and group writes, group membership and logout need
``manage-users``; identity-provider writes need ``manage-identity-providers``. Each
``manage-*`` role already passes the matching ``view-*`` check (``canView…Default`` accepts
either), so ``view-users`` and ``view-realm`` are not needed on top. Reading the realm's
``organizationsEnabled`` and the server version (``/admin/serverinfo``'s ``systemInfo``)
needs ``view-realm`` or ``manage-realm``.
"""

from __future__ import annotations

import base64
import copy
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from tenants.text import counted

ATTR_ORG = "tenantry_org_id"
ATTR_MEMBER = "tenantry_member_id"
TENANTRY_ATTRIBUTES = (ATTR_MEMBER, ATTR_ORG)

#: The roles of the ``realm-management`` client the service account needs, and why.
REQUIRED_ROLES: dict[str, str] = {
    "manage-users": "users, groups, group membership and logging members out",
    "manage-realm": "organizations, the user profile and the realm's Organizations switch",
    "manage-identity-providers": "the organisation's own identity provider",
}
#: Keycloak 26.4 made an organization's domain optional; 26.0 to 26.3 refuse none.
DOMAIN_OPTIONAL_FROM = (26, 4)
ORGANIZATIONS_FROM = (26, 0)


class CheckName(StrEnum):
    #: Whether the outbound network policy lets the service connect to the server URL
    #: (``tenants.network``); when it does not, nothing is sent and no other check runs.
    SERVER_ADDRESS = "server_address"
    CREDENTIALS = "credentials"
    ROLES = "service_account_roles"
    SERVER_VERSION = "server_version"
    ORGANIZATIONS = "organizations_enabled"
    USER_PROFILE = "user_profile_attributes"
    ORGANISATION_DOMAIN = "organisation_domain"


class UnmanagedPolicy(StrEnum):
    """How ``setup`` keeps Tenantry's attributes: declared in the user profile (admin-only,
    the default), or by letting admins edit every undeclared attribute."""

    DECLARE = "declare"
    ADMIN_EDIT = "ADMIN_EDIT"


@dataclass(frozen=True, slots=True)
class SetupCheck:
    name: CheckName
    ok: bool
    #: What was found, in plain words.
    detail: str
    #: What to do when it is not ok (empty when ok).
    fix: str = ""
    #: Whether ``setup`` changed the realm to make it ok.
    changed: bool = False


def token_roles(access_token: str, client: str = "realm-management") -> frozenset[str] | None:
    """The client roles in a Keycloak access token (``resource_access``), read without
    checking the signature: only to tell the admin which roles are missing. None when the
    token is not a readable JWT."""
    try:
        part = access_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        roles = claims.get("resource_access", {}).get(client, {}).get("roles", [])
    except (IndexError, ValueError, AttributeError, UnicodeDecodeError):
        return None
    return frozenset(r for r in roles if isinstance(r, str))


def missing_roles(held: frozenset[str]) -> list[str]:
    return [role for role in REQUIRED_ROLES if role not in held]


def parse_version(version: str | None) -> tuple[int, ...] | None:
    """``26.3.2`` → (26, 3, 2); None when there is nothing to read."""
    if not version:
        return None
    parts: list[int] = []
    for piece in version.split(".")[:3]:
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts) or None


def requires_organization_domain(version: tuple[int, ...] | None) -> bool:
    """Whether the server refuses an organization without a domain; an unknown version
    is taken to refuse it (the safe answer)."""
    return version is None or version[:2] < DOMAIN_OPTIONAL_FROM


def _admin_editable(attribute: dict[str, Any]) -> bool:
    permissions = attribute.get("permissions") or {}
    return "admin" in (permissions.get("edit") or [])


def undeclared_attributes(config: dict[str, Any]) -> list[str]:
    """Tenantry's attributes the user profile would drop: neither declared as editable by
    admins nor kept by an unmanaged-attribute policy that lets admins edit."""
    if config.get("unmanagedAttributePolicy") in ("ENABLED", "ADMIN_EDIT"):
        declared = {a.get("name") for a in config.get("attributes") or [] if not _admin_editable(a)}
        return [n for n in TENANTRY_ATTRIBUTES if n in declared]
    editable = {a.get("name") for a in config.get("attributes") or [] if _admin_editable(a)}
    return [n for n in TENANTRY_ATTRIBUTES if n not in editable]


def prepared_profile(config: dict[str, Any], policy: UnmanagedPolicy) -> dict[str, Any]:
    """The user-profile configuration with Tenantry's attributes kept: declared as
    admin-only (viewed and edited by admins, never shown to the user), or the unmanaged
    attribute policy set to ADMIN_EDIT. Everything else in ``config`` is left as it is."""
    result = copy.deepcopy(config)
    if policy is UnmanagedPolicy.ADMIN_EDIT:
        result["unmanagedAttributePolicy"] = "ADMIN_EDIT"
        return result
    attributes = [
        a for a in result.get("attributes") or [] if a.get("name") not in TENANTRY_ATTRIBUTES
    ]
    for name in TENANTRY_ATTRIBUTES:
        attributes.append(
            {
                "name": name,
                "displayName": name,
                "permissions": {"view": ["admin"], "edit": ["admin"]},
                "multivalued": False,
                "annotations": {"tenantry": "mirrored by Tenantry; do not edit"},
            }
        )
    result["attributes"] = attributes
    return result


def domain_check(domains: tuple[str, ...], version: tuple[int, ...] | None) -> SetupCheck:
    """Whether the organisation can be mirrored as a Keycloak organization."""
    if domains:
        return SetupCheck(
            CheckName.ORGANISATION_DOMAIN,
            True,
            f"the organisation has {counted(len(domains), 'domain')}",
        )
    if not requires_organization_domain(version):
        return SetupCheck(
            CheckName.ORGANISATION_DOMAIN,
            True,
            "no domain: Keycloak 26.4 and later accept an organization without one",
        )
    shown = ".".join(map(str, version)) if version else "of an unknown version"
    return SetupCheck(
        CheckName.ORGANISATION_DOMAIN,
        False,
        f"the organisation has no verified domain and Keycloak {shown} refuses an "
        "organization without one (26.0 to 26.3 do)",
        "verify a domain for the organisation, or upgrade Keycloak to 26.4 or later",
    )


def no_domain_message(version: tuple[int, ...] | None) -> str:
    return domain_check((), version).detail + ": " + domain_check((), version).fix
