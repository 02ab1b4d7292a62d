"""The ``keycloak`` identity backend: organisations, members, groups and sessions mirrored
into a Keycloak 26 realm through python-keycloak's async (``a_``) Admin REST API calls.

How Tenantry's things map onto the realm (Admin REST API as published in
``@keycloak/keycloak-admin-client`` 26.x):

- an organisation is a Keycloak *Organization* (``/admin/realms/{realm}/organizations``):
  ``alias`` = the slug, ``name``, ``domains`` (verified), the attribute
  ``tenantry_org_id``; its identity provider is an ``oidc`` identity provider linked to the
  Organization (``/organizations/{id}/identity-providers``);
- a member is a *user* whose ``username`` is the member id (stable when the email
  changes; Keycloak does not let usernames change by default), with ``email``, first and
  last name, ``enabled`` and the attributes ``tenantry_member_id`` / ``tenantry_org_id``,
  and an Organization member;
- groups are children of one top-level group per organisation (named by the slug, so two
  organisations' groups in one realm never clash), found by the attribute
  ``tenantry_group_id``;
- suspension is ``enabled: false`` plus ``POST /users/{id}/logout``; purge deletes the user.

Every method reads first and writes only what differs, so a repeated call writes nothing.
python-keycloak's errors are translated in ``keycloak_errors.translate``: unreachable,
5xx, 408 and 429 mean "wait and retry" (``BackendUnavailableError``); 401 (after python-keycloak fetched
a fresh token once), 403 and "Organizations not enabled" mean the realm is not set up for
Tenantry (``BackendSetupError``: the job is dead at once, ``tenantry identity setup``
names the fix); any other refusal is ``BackendRejectedError``.

A Keycloak 24+ realm drops attributes its user profile does not declare while answering
2xx, so after writing a user the adapter reads the attributes back and stops with a
``BackendSetupError`` when they were discarded, instead of rewriting them on every sync.
``check_setup`` runs the checks of ``tenants.identity.setup`` and, when asked, prepares
the realm.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import httpx

from tenants import network
from tenants.identity import setup
from tenants.identity.errors import BackendRejectedError, BackendSetupError
from tenants.identity.keycloak_errors import has_status, is_not_found, translate
from tenants.identity.port import (
    DirectoryGroup,
    DirectoryMember,
    DirectoryOrganisation,
    DirectoryState,
    LinkedIdp,
)

ATTR_ORG = setup.ATTR_ORG
ATTR_MEMBER = setup.ATTR_MEMBER
ATTR_GROUP = "tenantry_group_id"
#: Stored in the identity provider's config: Keycloak never shows a client secret back,
#: so a fingerprint tells whether the secret it holds is the current one.
SECRET_FINGERPRINT = "tenantrySecretSha256"  # noqa: S105 - a config key, not a secret


@dataclass(frozen=True, slots=True)
class KeycloakConfig:
    """Where the realm is and the confidential client (with a service account holding the
    realm-management roles of ``setup.REQUIRED_ROLES``) that the adapter authenticates as,
    with client credentials."""

    server_url: str
    realm: str
    client_id: str
    client_secret: str
    timeout: int = 10
    verify: bool = True


def _split_name(member: DirectoryMember) -> dict[str, Any]:
    return {"firstName": member.first_name, "lastName": member.last_name}


def _attribute(rep: dict[str, Any], name: str) -> str | None:
    values = (rep.get("attributes") or {}).get(name)
    if isinstance(values, list) and values and isinstance(values[0], str):
        return values[0]
    return values if isinstance(values, str) else None


def _fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class KeycloakDirectory:
    """One adapter per unit of work (a job, a reconcile run); ``aclose`` when done.

    It remembers the Organization and parent group ids it looked up, so a run touching many
    members asks for them once.
    """

    def __init__(self, config: KeycloakConfig) -> None:
        # python-keycloak is imported by the first adapter, not with this module: the
        # worker loads every job handler at start, and most deployments mirror nothing,
        # so its import (about 0.17 s of CPU) would cost every start for nothing.
        from keycloak import KeycloakAdmin, KeycloakOpenIDConnection

        self.config = config
        connection = KeycloakOpenIDConnection(
            server_url=config.server_url.rstrip("/") + "/",
            realm_name=config.realm,
            client_id=config.client_id,
            client_secret_key=config.client_secret,
            grant_type="client_credentials",
            timeout=config.timeout,
            verify=config.verify,
        )
        self.admin = KeycloakAdmin(connection=connection)
        # Both of python-keycloak's async clients (the Admin API's, and the token
        # endpoint's, which is sent the client secret) connect only where the network
        # policy allows, checked at each connection like webhooks: a server_url that
        # resolves, now or later, to a private address is refused before anything is sent.
        self._clients = [connection, connection.keycloak_openid.connection]
        for manager in self._clients:
            manager.async_s = httpx.AsyncClient(
                transport=network.PolicedTransport(verify=config.verify)
            )
            manager.async_s.auth = None  # type: ignore[assignment]  # as python-keycloak does
        self._organisations: dict[str, str] = {}
        self._parents: dict[str, str] = {}
        self._version: tuple[tuple[int, ...] | None] | None = None

    async def aclose(self) -> None:
        for manager in self._clients:
            await manager.aclose()

    async def check_setup(
        self,
        org: DirectoryOrganisation,
        *,
        prepare: bool,
        policy: setup.UnmanagedPolicy = setup.UnmanagedPolicy.DECLARE,
    ) -> list[setup.SetupCheck]:
        """The checks of ``tenants.identity.setup`` against this realm (see
        ``keycloak_setup.check_realm``); with ``prepare`` the realm is fixed where it can be."""
        from tenants.identity.keycloak_setup import check_realm

        return await check_realm(self, org, prepare=prepare, policy=policy)

    # --- organisations ---------------------------------------------------------------

    def _organisation_rep(self, org: DirectoryOrganisation) -> dict[str, Any]:
        return {
            "name": org.name,
            "alias": org.alias,
            "enabled": org.enabled,
            "description": "Mirrored by Tenantry",
            "domains": [{"name": d, "verified": True} for d in sorted(org.domains)],
            "attributes": {ATTR_ORG: [org.org_id]},
        }

    async def _find_organisation(self, org: DirectoryOrganisation) -> dict[str, Any] | None:
        found = await translate(
            "search organizations",
            self.admin.a_get_organizations({"q": f"{ATTR_ORG}:{org.org_id}", "exact": True}),
        )
        for item in found:
            if _attribute(item, ATTR_ORG) in (org.org_id, None) and item.get("alias") == org.alias:
                full: dict[str, Any] = await translate(
                    "read an organization", self.admin.a_get_organization(item["id"])
                )
                return full
        return None

    async def _organisation_id(self, org: DirectoryOrganisation) -> str:
        """The mirrored Organization's id, creating it (without IdPs) when missing."""
        if org.alias not in self._organisations:
            found = await self._find_organisation(org)
            if found is None:
                await self.ensure_organisation(org)
            else:
                self._organisations[org.alias] = found["id"]
        return self._organisations[org.alias]

    async def server_version(self) -> tuple[int, ...] | None:
        """The server's version from ``/admin/serverinfo`` (asked once per adapter); None
        when Keycloak does not show it to this service account."""
        if self._version is None:
            info = await translate("read the server's version", self.admin.a_get_server_info())
            system = info.get("systemInfo") if isinstance(info, dict) else None
            version = system.get("version") if isinstance(system, dict) else None
            self._version = (setup.parse_version(version if isinstance(version, str) else None),)
        return self._version[0]

    async def _require_domain_if_needed(self, org: DirectoryOrganisation) -> None:
        if org.domains:
            return
        version = await self.server_version()
        if setup.requires_organization_domain(version):
            raise BackendSetupError(setup.no_domain_message(version))

    async def ensure_organisation(self, org: DirectoryOrganisation) -> list[str]:
        await self._require_domain_if_needed(org)
        changes: list[str] = []
        wanted = self._organisation_rep(org)
        found = await self._find_organisation(org)
        if found is None:
            try:
                created = await translate(
                    "create an organization", self.admin.a_create_organization(wanted)
                )
            except BackendRejectedError as clash:
                # Another job of the organisation (a reconcile, a member's first sync)
                # created it a moment ago; go on with the one that exists.
                found = await self._find_organisation(org) if has_status(clash, 409) else None
                if found is None:
                    raise
            else:
                if not created:
                    raise BackendRejectedError("Keycloak created the organization but named no id")
                self._organisations[org.alias] = created
                changes.append(f"created organization {org.alias}")
        if found is not None:
            self._organisations[org.alias] = found["id"]
            current = {
                "name": found.get("name"),
                "enabled": found.get("enabled"),
                "domains": sorted(d.get("name") for d in found.get("domains") or []),
                "attribute": _attribute(found, ATTR_ORG),
            }
            expected = {
                "name": org.name,
                "enabled": org.enabled,
                "domains": sorted(org.domains),
                "attribute": org.org_id,
            }
            differing = [k for k in expected if current[k] != expected[k]]
            if differing:
                await translate(
                    "update an organization",
                    self.admin.a_update_organization(found["id"], {**found, **wanted}),
                )
                changes.append(f"updated organization {', '.join(differing)}")
        for idp in org.idps:
            changes += await self._ensure_idp(org, idp)
        return changes

    def _idp_rep(self, org: DirectoryOrganisation, idp: LinkedIdp) -> dict[str, Any]:
        config: dict[str, str] = {
            "issuer": idp.issuer,
            "clientId": idp.client_id,
            "authorizationUrl": idp.authorization_url,
            "tokenUrl": idp.token_url,
            "jwksUrl": idp.jwks_url,
            "useJwksUrl": "true",
            "validateSignature": "true",
            "pkceEnabled": "true",
            "pkceMethod": "S256",
            "clientAuthMethod": "client_secret_post",
            "defaultScope": "openid email profile",
            "syncMode": "IMPORT",
        }
        if idp.userinfo_url:
            config["userInfoUrl"] = idp.userinfo_url
        if idp.logout_url:
            config["logoutUrl"] = idp.logout_url
        if idp.client_secret is not None:
            config["clientSecret"] = idp.client_secret
            config[SECRET_FINGERPRINT] = _fingerprint(idp.client_secret)
        return {
            "alias": idp.alias,
            "displayName": org.name,
            "providerId": "oidc",
            "enabled": True,
            "trustEmail": True,
            "hideOnLogin": True,
            "config": config,
        }

    async def _ensure_idp(self, org: DirectoryOrganisation, idp: LinkedIdp) -> list[str]:
        changes: list[str] = []
        wanted = self._idp_rep(org, idp)
        try:
            current: dict[str, Any] | None = await translate(
                "read an identity provider", self.admin.a_get_idp(idp.alias)
            )
        except BackendRejectedError as exc:
            if not is_not_found(exc):
                raise
            current = None
        if current is None:
            await translate("create an identity provider", self.admin.a_create_idp(wanted))
            changes.append(f"created identity provider {idp.alias}")
        else:
            config = current.get("config") or {}
            differing = sorted(
                k for k, v in wanted["config"].items() if k != "clientSecret" and config.get(k) != v
            )
            if differing or current.get("enabled") is not True:
                merged = {**current, **wanted, "config": {**config, **wanted["config"]}}
                await translate(
                    "update an identity provider", self.admin.a_update_idp(idp.alias, merged)
                )
                changes.append(f"updated identity provider {idp.alias}")
        org_id = self._organisations[org.alias]
        linked = await translate(
            "list an organization's identity providers",
            self.admin.a_get_organization_idps(org_id),
        )
        if idp.alias not in {i.get("alias") for i in linked}:
            await translate(
                "link an identity provider", self.admin.a_organization_idp_add(org_id, idp.alias)
            )
            changes.append(f"linked identity provider {idp.alias}")
        return changes

    # --- members -----------------------------------------------------------------------

    async def _user(self, member_id: str) -> dict[str, Any] | None:
        users = await translate(
            "find a user",
            self.admin.a_get_users({"username": member_id, "exact": True, "max": 2}),
        )
        matching = [u for u in users if u.get("username") == member_id]
        return matching[0] if matching else None

    async def upsert_member(self, org: DirectoryOrganisation, member: DirectoryMember) -> list[str]:
        changes: list[str] = []
        org_id = await self._organisation_id(org)
        wanted: dict[str, Any] = {
            "username": member.member_id,
            "email": member.email,
            "emailVerified": True,
            **_split_name(member),
            "enabled": member.enabled,
        }
        attributes = {ATTR_MEMBER: [member.member_id], ATTR_ORG: [org.org_id]}
        user = await self._user(member.member_id)
        if user is None:
            try:
                user_id = await translate(
                    "create a user",
                    self.admin.a_create_user({**wanted, "attributes": attributes}),
                )
            except BackendRejectedError as clash:
                # A reconcile and the member's own job may create them at the same time.
                user = await self._user(member.member_id) if has_status(clash, 409) else None
                if user is None:
                    raise
            else:
                changes.append("created user")
                await self._check_kept(user_id, attributes)
        if user is not None:
            user_id = user["id"]
            full: dict[str, Any] = await translate("read a user", self.admin.a_get_user(user_id))
            differing = [k for k, v in wanted.items() if full.get(k) != v]
            kept = full.get("attributes") or {}
            if any(kept.get(k) != v for k, v in attributes.items()):
                differing.append("attributes")
            if differing:
                payload = {**full, **wanted, "attributes": {**kept, **attributes}}
                await translate("update a user", self.admin.a_update_user(user_id, payload))
                changes.append(f"updated user {', '.join(differing)}")
                if "attributes" in differing:
                    await self._check_kept(user_id, attributes)
        organisations = await translate(
            "list a user's organizations", self.admin.a_get_user_organizations(user_id)
        )
        if org_id not in {o.get("id") for o in organisations}:
            try:
                await translate(
                    "add an organization member",
                    self.admin.a_organization_user_add(user_id, org_id),
                )
                changes.append(f"joined organization {org.alias}")
            except BackendRejectedError as clash:
                if not has_status(clash, 409):  # 409: another job added them a moment ago
                    raise
        changes += await self._sync_groups(org, user_id, member.groups)
        return changes

    async def _check_kept(self, user_id: str, attributes: dict[str, list[str]]) -> None:
        """Read the user back: a realm whose user profile does not keep Tenantry's
        attributes answers 2xx and drops them, and every later sync would write them again."""
        stored: dict[str, Any] = await translate("read a user", self.admin.a_get_user(user_id))
        kept = stored.get("attributes") or {}
        dropped = sorted(k for k, v in attributes.items() if kept.get(k) != v)
        if dropped:
            raise BackendSetupError(
                f"Keycloak discarded the user attributes {', '.join(dropped)}: the realm's user "
                "profile does not declare them (unmanagedAttributePolicy is DISABLED by "
                "default); run tenantry identity setup to declare them"
            )

    async def _sync_groups(
        self, org: DirectoryOrganisation, user_id: str, wanted: frozenset[DirectoryGroup]
    ) -> list[str]:
        changes: list[str] = []
        parent = await self._parent_group(org)
        children = await self._children(parent)
        target: dict[str, str] = {}
        for group in sorted(wanted, key=lambda g: g.group_id):
            if group.group_id not in children:
                changes += await self.upsert_group(org, group)
                children = await self._children(parent)
            target[children[group.group_id]["id"]] = group.name
        current = await translate(
            "list a user's groups", self.admin.a_get_user_groups(user_id, brief_representation=True)
        )
        mine = {c["id"] for c in children.values()}
        held = {g["id"] for g in current if g.get("id") in mine}
        for group_id in sorted(set(target) - held):
            await translate("add a group member", self.admin.a_group_user_add(user_id, group_id))
            changes.append(f"joined group {target[group_id]}")
        names = {c["id"]: c.get("name", "") for c in children.values()}
        for group_id in sorted(held - set(target)):
            await translate(
                "remove a group member", self.admin.a_group_user_remove(user_id, group_id)
            )
            changes.append(f"left group {names.get(group_id, group_id)}")
        return changes

    async def set_enabled(
        self, org: DirectoryOrganisation, member_id: str, enabled: bool
    ) -> list[str]:
        user = await self._user(member_id)
        if user is None or user.get("enabled") is enabled:
            return []
        full: dict[str, Any] = await translate("read a user", self.admin.a_get_user(user["id"]))
        await translate(
            "update a user", self.admin.a_update_user(user["id"], {**full, "enabled": enabled})
        )
        return ["enabled user" if enabled else "disabled user"]

    async def log_out(self, org: DirectoryOrganisation, member_id: str) -> list[str]:
        user = await self._user(member_id)
        if user is None:
            return []
        await translate("log a user out", self.admin.a_user_logout(user["id"]))
        return ["ended sessions"]

    async def remove_member(self, org: DirectoryOrganisation, member_id: str) -> list[str]:
        user = await self._user(member_id)
        if user is None:
            return []
        await translate("delete a user", self.admin.a_delete_user(user["id"]))
        return ["deleted user"]

    # --- groups ------------------------------------------------------------------------

    async def _parent_group(self, org: DirectoryOrganisation) -> str:
        """The top-level group holding the organisation's groups (created when missing)."""
        if org.alias in self._parents:
            return self._parents[org.alias]
        try:
            found: dict[str, Any] = await translate(
                "find a group", self.admin.a_get_group_by_path(f"/{org.alias}")
            )
            group_id = str(found["id"])
        except BackendRejectedError as exc:
            if not is_not_found(exc):
                raise
            try:
                created = await translate(
                    "create a group",
                    self.admin.a_create_group(
                        {"name": org.alias, "attributes": {ATTR_ORG: [org.org_id]}}
                    ),
                )
            except BackendRejectedError as clash:
                if not has_status(clash, 409):
                    raise
                # Another job of the organisation created it a moment ago.
                again: dict[str, Any] = await translate(
                    "find a group", self.admin.a_get_group_by_path(f"/{org.alias}")
                )
                created = str(again["id"])
            if not created:
                raise BackendRejectedError("Keycloak created the group but named no id") from exc
            group_id = created
        self._parents[org.alias] = group_id
        return group_id

    async def _children(self, parent: str) -> dict[str, dict[str, Any]]:
        """The organisation's groups at Keycloak by Tenantry group id."""
        children = await translate(
            "list groups",
            self.admin.a_get_group_children(parent, {"briefRepresentation": False}),
        )
        result: dict[str, dict[str, Any]] = {}
        for child in children:
            group_id = _attribute(child, ATTR_GROUP)
            if group_id:
                result[group_id] = child
        return result

    async def upsert_group(self, org: DirectoryOrganisation, group: DirectoryGroup) -> list[str]:
        parent = await self._parent_group(org)
        current = (await self._children(parent)).get(group.group_id)
        wanted = {
            "name": group.name,
            "description": group.description,
            "attributes": {ATTR_GROUP: [group.group_id]},
        }
        if current is None:
            try:
                await translate("create a group", self.admin.a_create_group(wanted, parent=parent))
            except BackendRejectedError as clash:
                # Two workers (the group's job, a member's job) may create it at once.
                current = (await self._children(parent)).get(group.group_id)
                if not has_status(clash, 409) or current is None:
                    raise
            else:
                return [f"created group {group.name}"]
        if current.get("name") == group.name and (current.get("description") or "") == (
            group.description
        ):
            return []
        await translate(
            "update a group", self.admin.a_update_group(current["id"], {**current, **wanted})
        )
        return [f"updated group {group.name}"]

    async def remove_group(self, org: DirectoryOrganisation, group_id: str) -> list[str]:
        parent = await self._parent_group(org)
        current = (await self._children(parent)).get(group_id)
        if current is None:
            return []
        await translate("delete a group", self.admin.a_delete_group(current["id"]))
        return [f"deleted group {current.get('name', group_id)}"]

    # --- reading everything, for reconcile ---------------------------------------------

    async def snapshot(self, org: DirectoryOrganisation) -> DirectoryState:
        found = await self._find_organisation(org)
        mirrored = None
        members_of_org: set[str] = set()
        if found is not None:
            self._organisations[org.alias] = found["id"]
            mirrored = DirectoryOrganisation(
                org_id=_attribute(found, ATTR_ORG) or "",
                alias=found.get("alias", ""),
                name=found.get("name", ""),
                domains=tuple(sorted(d.get("name", "") for d in found.get("domains") or [])),
                enabled=bool(found.get("enabled")),
            )
            listed = await translate(
                "list organization members", self.admin.a_get_organization_members(found["id"])
            )
            members_of_org = {m["id"] for m in listed}
        parent = await self._parent_group(org)
        children = await self._children(parent)
        groups = {
            gid: DirectoryGroup(gid, c.get("name", ""), c.get("description") or "")
            for gid, c in children.items()
        }
        group_members: dict[str, set[str]] = {}
        for gid, child in children.items():
            for user in await translate(
                "list group members", self.admin.a_get_group_members(child["id"])
            ):
                group_members.setdefault(user["id"], set()).add(gid)
        users = await translate(
            "list users",
            self.admin.a_get_users({"q": f"{ATTR_ORG}:{org.org_id}", "briefRepresentation": False}),
        )
        members: dict[str, DirectoryMember] = {}
        outside: set[str] = set()
        for user in users:
            member_id = _attribute(user, ATTR_MEMBER) or user.get("username", "")
            if _attribute(user, ATTR_ORG) != org.org_id:
                continue
            members[member_id] = DirectoryMember(
                member_id=member_id,
                email=user.get("email") or "",
                first_name=user.get("firstName") or "",
                last_name=user.get("lastName") or "",
                enabled=bool(user.get("enabled")),
                groups=frozenset(groups[g] for g in group_members.get(user["id"], set())),
            )
            if user["id"] not in members_of_org:
                outside.add(member_id)
        return DirectoryState(mirrored, members, groups, frozenset(outside))
