"""What the Keycloak Admin REST API FAKE enforces the way a real Keycloak 26 realm with its
defaults does (see tests/support/keycloak_fake.py): the realm-management roles each route
needs, the declarative user profile (``/users/profile``) with its unmanaged-attribute
policy and the default validators, the realm's ``organizationsEnabled`` flag and the
server version.

Sources (Keycloak's own code, read for this): ``UserProfileResource`` (GET any admin role,
PUT ``manage-realm``); ``OrganizationsResource`` (every route ``manage-realm``, and
``Organizations.checkEnabled``: 404 "Organizations not enabled for this realm." while the
realm's flag is off); ``RealmPermissions.canViewRealmDefault`` (``manage-realm`` or
``view-realm``) and the users/groups/identity-providers evaluators alike (a ``manage-*``
role implies its ``view-*``); the default ``UPConfig`` of Keycloak 24+ (``username``,
``email``, ``firstName``, ``lastName`` with ``length``, ``email`` and
``person-name-prohibited-characters`` validators, no ``unmanagedAttributePolicy``, which
means DISABLED: undeclared attributes are dropped while the call answers 2xx).
"""

from __future__ import annotations

import copy
import re
from typing import Any

JSON = dict[str, Any]

#: Roles of the realm-management client.
MANAGE_USERS = "manage-users"
VIEW_USERS = "view-users"
QUERY_USERS = "query-users"
QUERY_GROUPS = "query-groups"
MANAGE_REALM = "manage-realm"
VIEW_REALM = "view-realm"
MANAGE_IDPS = "manage-identity-providers"
VIEW_IDPS = "view-identity-providers"
ADMIN_ROLES = frozenset(
    {
        MANAGE_USERS,
        VIEW_USERS,
        QUERY_USERS,
        QUERY_GROUPS,
        MANAGE_REALM,
        VIEW_REALM,
        MANAGE_IDPS,
        VIEW_IDPS,
        "view-clients",
        "manage-clients",
        "query-clients",
        "query-realms",
        "view-events",
        "manage-events",
        "view-authorization",
        "manage-authorization",
        "impersonation",
        "create-client",
    }
)
#: What the README tells an admin to give Tenantry's service account.
SUFFICIENT_ROLES = frozenset({MANAGE_USERS, MANAGE_REALM, MANAGE_IDPS})

_VIEW_USERS = frozenset({MANAGE_USERS, VIEW_USERS})
_QUERY_USERS = _VIEW_USERS | {QUERY_USERS}
_QUERY_GROUPS = _VIEW_USERS | {QUERY_GROUPS}
_VIEW_IDPS = frozenset({MANAGE_IDPS, VIEW_IDPS})


def required_roles(method: str, path: str) -> frozenset[str] | None:
    """The roles of which the caller needs one for ``method path`` (``path`` below
    ``/admin/realms/{realm}``, or ``/admin/serverinfo``); None: any admin role."""
    read = method == "GET"
    if path.startswith("/organizations"):
        return frozenset({MANAGE_REALM})
    if path.startswith("/users/profile"):
        return None if read else frozenset({MANAGE_REALM})
    if path.startswith("/identity-provider"):
        return _VIEW_IDPS if read else frozenset({MANAGE_IDPS})
    if path == "/users":
        return _QUERY_USERS if read else frozenset({MANAGE_USERS})
    if path.startswith("/users"):
        return _VIEW_USERS if read else frozenset({MANAGE_USERS})
    if path.startswith(("/groups", "/group-by-path")):
        return _QUERY_GROUPS if read else frozenset({MANAGE_USERS})
    if path in ("", "/"):
        return None if read else frozenset({MANAGE_REALM})
    return None


def _attribute(name: str, validations: JSON, required: bool) -> JSON:
    rep: JSON = {
        "name": name,
        "displayName": "${" + name + "}",
        "validations": validations,
        "permissions": {"view": ["admin", "user"], "edit": ["admin", "user"]},
        "multivalued": False,
    }
    if required:
        rep["required"] = {"roles": ["user"]}
    return rep


DEFAULT_USER_PROFILE: JSON = {
    "attributes": [
        _attribute(
            "username",
            {
                "length": {"min": 3, "max": 255},
                "username-prohibited-characters": {},
                "up-username-not-idn-homograph": {},
            },
            False,
        ),
        _attribute("email", {"email": {}, "length": {"max": 255}}, True),
        _attribute(
            "firstName", {"length": {"max": 255}, "person-name-prohibited-characters": {}}, True
        ),
        _attribute(
            "lastName", {"length": {"max": 255}, "person-name-prohibited-characters": {}}, True
        ),
    ],
    "groups": [
        {
            "name": "user-metadata",
            "displayHeader": "User metadata",
            "displayDescription": "Attributes, which refer to user metadata",
        }
    ],
}
ROOT_ATTRIBUTES = ("username", "email", "firstName", "lastName")
UNMANAGED_POLICIES = ("ENABLED", "ADMIN_EDIT", "ADMIN_VIEW")

# Keycloak's EmailValidator (RFC 5321-ish, local part at most 64 characters).
_EMAIL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
# PersonNameProhibitedCharactersValidator's default pattern.
_NAME_PROHIBITED = re.compile(r"[<>&\"$%!#?§;*~/\\|^=\[\]{}()\x00-\x1f\x7f]")


class UserProfileError(Exception):
    """A user representation the profile refuses: Keycloak answers 400 with this body."""

    def __init__(self, field: str, message: str, value: Any) -> None:
        self.body = {"field": field, "errorMessage": message, "params": [field, value]}


def default_user_profile() -> JSON:
    return copy.deepcopy(DEFAULT_USER_PROFILE)


class UserProfile:
    """The realm's user-profile configuration and what it does to a user's attributes."""

    def __init__(self) -> None:
        self.config = default_user_profile()

    @property
    def unmanaged_policy(self) -> str:
        """DISABLED when the config names none (Keycloak's default)."""
        return str(self.config.get("unmanagedAttributePolicy") or "DISABLED")

    def _declared(self) -> dict[str, JSON]:
        return {a["name"]: a for a in self.config.get("attributes") or [] if a.get("name")}

    def admin_can(self, name: str, what: str) -> bool:
        """Whether an admin may ``view`` or ``edit`` the custom attribute ``name``."""
        declared = self._declared().get(name)
        if declared is not None:
            permissions = declared.get("permissions") or {}
            allowed = set(permissions.get(what) or [])
            if what == "view":
                allowed |= set(permissions.get("edit") or [])
            return "admin" in allowed
        policy = self.unmanaged_policy
        if what == "edit":
            return policy in ("ENABLED", "ADMIN_EDIT")
        return policy in UNMANAGED_POLICIES

    def validate(self, rep: JSON) -> None:
        """The default validators on the root attributes (admin context: none required)."""
        declared = self._declared()
        email = rep.get("email")
        checks_email = "email" in (declared.get("email") or {}).get("validations", {})
        if email and checks_email and not _EMAIL.match(str(email)):
            raise UserProfileError("email", "invalidEmailMessage", email)
        for name in ("email", "firstName", "lastName", "username"):
            value = rep.get(name)
            if value is None:
                continue
            length = ((declared.get(name) or {}).get("validations") or {}).get("length") or {}
            if "max" in length and len(str(value)) > int(length["max"]):
                raise UserProfileError(name, "error-invalid-length-too-long", value)
            if "min" in length and value and len(str(value)) < int(length["min"]):
                raise UserProfileError(name, "error-invalid-length-too-short", value)
        for name in ("firstName", "lastName"):
            value = rep.get(name)
            validations = (declared.get(name) or {}).get("validations") or {}
            prohibits = "person-name-prohibited-characters" in validations
            if value and prohibits and _NAME_PROHIBITED.search(str(value)):
                raise UserProfileError(name, "error-person-name-invalid-character", value)

    def written(self, old: JSON, sent: JSON) -> JSON:
        """The attributes stored after a write of ``sent``: what the admin may edit is
        taken, anything else keeps its old value (undeclared ones are silently dropped)."""
        stored = dict(old)
        for name, values in sent.items():
            if name in ROOT_ATTRIBUTES:
                continue
            if self.admin_can(name, "edit"):
                stored[name] = values
        for name in list(stored):
            if name not in sent and self.admin_can(name, "edit"):
                del stored[name]
        return stored

    def visible(self, attributes: JSON) -> JSON:
        """The attributes an admin reads back."""
        return {k: v for k, v in attributes.items() if self.admin_can(k, "view")}

    def check_config(self, config: Any) -> None:
        """Refuse what Keycloak refuses when the config is PUT (400)."""
        if not isinstance(config, dict) or not isinstance(config.get("attributes"), list):
            raise UserProfileError("attributes", "Invalid user profile configuration", None)
        names = [a.get("name") for a in config["attributes"] if isinstance(a, dict)]
        missing = [n for n in ("username", "email") if n not in names]
        if missing:
            raise UserProfileError(missing[0], "The attribute is required", None)
        policy = config.get("unmanagedAttributePolicy")
        if policy is not None and policy not in UNMANAGED_POLICIES:
            raise UserProfileError("unmanagedAttributePolicy", "Invalid policy", policy)


def version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def requires_organization_domain(version: str) -> bool:
    """Keycloak 26.0 to 26.3 refuse an organization without a domain; 26.4 does not."""
    return (26, 0) <= version_tuple(version)[:2] < (26, 4)
