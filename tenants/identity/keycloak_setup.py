"""``tenantry identity setup`` against a Keycloak realm: the checks of
``tenants.identity.setup`` run over the Admin REST API, each reported by name with its fix,
and the realm prepared where Tenantry can do it itself (Organizations switched on, the user
profile keeping Tenantry's attributes). Roles, the server version and the organisation's
domain are reported; only an admin can change those.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from tenants.identity import setup
from tenants.identity.errors import (
    BackendAddressRefusedError,
    BackendRejectedError,
    BackendSetupError,
)
from tenants.identity.keycloak_errors import translate
from tenants.identity.port import DirectoryOrganisation

if TYPE_CHECKING:
    from tenants.identity.keycloak import KeycloakDirectory


async def check_realm(
    self: KeycloakDirectory,
    org: DirectoryOrganisation,
    *,
    prepare: bool,
    policy: setup.UnmanagedPolicy = setup.UnmanagedPolicy.DECLARE,
) -> list[setup.SetupCheck]:
    """Every check of ``setup.CheckName``, in order, each with its fix; with ``prepare``
    the realm is changed where Tenantry can (Organizations switched on, the user
    profile keeping Tenantry's attributes). Raises BackendUnavailableError only when
    Keycloak cannot be reached at all."""
    C, Check = setup.CheckName, setup.SetupCheck
    host = urlsplit(self.config.server_url).hostname
    allowed = Check(C.SERVER_ADDRESS, True, f"the network policy lets Tenantry connect to {host}")
    try:
        version = await self.server_version()
    except BackendAddressRefusedError as exc:
        return [
            Check(
                C.SERVER_ADDRESS,
                False,
                exc.message,
                "give the Keycloak server's address on the internet; where Keycloak lives "
                "on the operator's private network, the operator sets "
                "TENANTRY_PRIVATE_NETWORKS=true",
            )
        ]
    except BackendSetupError as exc:
        if "HTTP 401" in exc.message:
            return [
                allowed,
                Check(
                    C.CREDENTIALS,
                    False,
                    "Keycloak refused the client id and secret",
                    f"check that client {self.config.client_id} of realm "
                    f"{self.config.realm} is confidential, has 'Service accounts roles' "
                    "on, and that the stored secret is its current one",
                ),
            ]
        version = None
    checks = [
        allowed,
        Check(C.CREDENTIALS, True, f"client {self.config.client_id} signed in"),
    ]
    token = (self.admin.connection.token or {}).get("access_token", "")
    held = setup.token_roles(token if isinstance(token, str) else "")
    if held is None:
        checks.append(
            Check(
                C.ROLES,
                False,
                "the access token does not list the service account's roles",
                "assign the realm-management roles " + ", ".join(setup.REQUIRED_ROLES),
            )
        )
    else:
        missing = setup.missing_roles(held)
        checks.append(
            Check(C.ROLES, True, "holds " + ", ".join(setup.REQUIRED_ROLES))
            if not missing
            else Check(
                C.ROLES,
                False,
                "missing " + "; ".join(f"{r} ({setup.REQUIRED_ROLES[r]})" for r in missing),
                f"Clients → {self.config.client_id} → Service accounts roles → Assign "
                "role → client realm-management: " + ", ".join(missing),
            )
        )
    shown = ".".join(map(str, version)) if version else None
    if version is None:
        checks.append(
            Check(
                C.SERVER_VERSION,
                False,
                "Keycloak did not show its version",
                "give the service account manage-realm (it reads /admin/serverinfo)",
            )
        )
    elif version[:2] < setup.ORGANIZATIONS_FROM:
        checks.append(
            Check(
                C.SERVER_VERSION,
                False,
                f"Keycloak {shown} has no Organizations",
                "upgrade Keycloak to 26 or later",
            )
        )
    else:
        needs = "needs" if setup.requires_organization_domain(version) else "does not need"
        checks.append(
            Check(C.SERVER_VERSION, True, f"Keycloak {shown} ({needs} an organization domain)")
        )
    checks.append(await _check_organizations(self, prepare))
    checks.append(await _check_profile(self, prepare, policy))
    checks.append(setup.domain_check(org.domains, version))
    return checks


async def _check_organizations(self: KeycloakDirectory, prepare: bool) -> setup.SetupCheck:
    C, Check = setup.CheckName, setup.SetupCheck
    fix = "Realm settings → General → Organizations: On (or run setup without --check)"
    try:
        realm = await translate("read the realm", self.admin.a_get_realm(self.config.realm))
        if realm.get("organizationsEnabled") is True:
            return Check(C.ORGANIZATIONS, True, "Organizations are enabled for the realm")
        if not prepare:
            return Check(C.ORGANIZATIONS, False, "Organizations are off for the realm", fix)
        await translate(
            "enable Organizations",
            self.admin.a_update_realm(self.config.realm, {"organizationsEnabled": True}),
        )
    except BackendRejectedError as exc:
        return Check(C.ORGANIZATIONS, False, exc.message, fix)
    return Check(C.ORGANIZATIONS, True, "Organizations switched on", changed=True)


async def _check_profile(
    self: KeycloakDirectory, prepare: bool, policy: setup.UnmanagedPolicy
) -> setup.SetupCheck:
    C, Check = setup.CheckName, setup.SetupCheck
    fix = (
        "Realm settings → User profile → Create attribute: "
        + " and ".join(setup.TENANTRY_ATTRIBUTES)
        + ", who can view and edit: Admin only (or run setup without --check; "
        "--unmanaged-attributes sets the Unmanaged attributes policy to Admin can edit)"
    )
    try:
        config = await translate("read the user profile", self.admin.a_get_realm_users_profile())
        dropped = setup.undeclared_attributes(config)
        if not dropped:
            return Check(C.USER_PROFILE, True, "the user profile keeps Tenantry's attributes")
        if not prepare:
            return Check(
                C.USER_PROFILE,
                False,
                f"the user profile would discard {', '.join(dropped)}",
                fix,
            )
        await translate(
            "update the user profile",
            self.admin.a_update_realm_users_profile(setup.prepared_profile(config, policy)),
        )
    except BackendRejectedError as exc:
        return Check(C.USER_PROFILE, False, exc.message, fix)
    how = (
        "unmanagedAttributePolicy set to ADMIN_EDIT"
        if policy is setup.UnmanagedPolicy.ADMIN_EDIT
        else "declared " + " and ".join(setup.TENANTRY_ATTRIBUTES) + " (admin only)"
    )
    return Check(C.USER_PROFILE, True, how, changed=True)
