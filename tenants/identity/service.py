"""The organisation's identity backend settings, and the state it should mirror, read in
the caller's tenant transaction.

The client secret of the backend is stored encrypted (tenants/secrets.py) and never shown
again. ``desired_*`` read what the backend *should* hold, in the shapes of the port
(``tenants.identity.port``); the sync jobs and reconcile compare it with what it holds.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tenants import db, text
from tenants.actors import Actor
from tenants.audit import service as audit
from tenants.domains import service as domains
from tenants.errors import FieldProblem, InvalidInputError
from tenants.identity import changes
from tenants.identity.keycloak import KeycloakConfig
from tenants.identity.models import BackendKind, IdentityBackendConfig
from tenants.identity.port import (
    DirectoryGroup,
    DirectoryMember,
    DirectoryOrganisation,
    DirectoryState,
)
from tenants.members.lifecycle import MemberStatus, can_sign_in
from tenants.models_base import max_length_of
from tenants.organisations.models import Organisation, OrganisationStatus
from tenants.secrets import SecretBox
from tenants.sso.models import SsoConnection
from tenants.sso.rules import check_endpoint

SECRET_PURPOSE = "identity-backend-secrets"  # noqa: S105 - a key-derivation label
KEYCLOAK_FIELDS = ("server_url", "realm", "client_id")


def secret_box(secret_key: str) -> SecretBox:
    return SecretBox(secret_key, SECRET_PURPOSE)


def config_view(config: IdentityBackendConfig | None) -> dict[str, Any]:
    """What admins may see; the client secret never leaves. No row reads as ``local``."""
    if config is None:
        return {
            "kind": BackendKind.LOCAL,
            "server_url": None,
            "realm": None,
            "client_id": None,
            "has_client_secret": False,
            "last_synced_at": None,
            "last_error": None,
        }
    return {
        "kind": config.kind,
        "server_url": config.server_url,
        "realm": config.realm,
        "client_id": config.client_id,
        "has_client_secret": bool(config.client_secret_enc),
        "last_synced_at": config.last_synced_at,
        "last_error": config.last_error,
    }


async def get_config() -> IdentityBackendConfig | None:
    return await IdentityBackendConfig.filter().first()


#: What each field of the backend may hold, at most: its column; the secret, as the API
#: has always bounded it.
MAX_LENGTHS = {
    "server_url": max_length_of(IdentityBackendConfig, "server_url"),
    "realm": max_length_of(IdentityBackendConfig, "realm"),
    "client_id": max_length_of(IdentityBackendConfig, "client_id"),
    "client_secret": 2000,
}


async def save_config(
    changes_in: dict[str, Any], *, box: SecretBox, actor: Actor
) -> IdentityBackendConfig:
    """Create or change the organisation's identity backend.

    ``keycloak`` needs ``server_url``, ``realm``, ``client_id`` and a client secret (given
    now or stored before); InvalidInputError names what is missing. An absent or empty
    ``client_secret`` keeps the stored one. Switching to (or re-pointing) Keycloak queues
    a full reconcile, which mirrors the organisation, its groups and members. A field past
    ``MAX_LENGTHS`` is refused (InvalidInputError naming it), never shortened.
    """
    text.check_lengths(changes_in, MAX_LENGTHS)
    if changes_in.get("server_url"):
        check_endpoint("server_url", changes_in["server_url"])  # it receives the client secret
    config = await IdentityBackendConfig.filter().select_for_update().first()
    before = config_view(config) if config else None
    secret = changes_in.pop("client_secret", None)
    if config is None:
        config = IdentityBackendConfig(tenant_id=db.current_org())
    for key, value in changes_in.items():
        setattr(config, key, value)
    if config.kind is BackendKind.KEYCLOAK:
        missing = [f for f in KEYCLOAK_FIELDS if not getattr(config, f)]
        if not secret and not config.client_secret_enc:
            missing.append("client_secret")
        if missing:
            raise InvalidInputError(
                "a Keycloak backend needs " + ", ".join(missing),
                fields=[FieldProblem(f, "is required for kind keycloak") for f in missing],
            )
    if secret:
        config.client_secret_enc = box.encrypt(secret)
    old, new = audit.changed_fields(before or {}, config_view(config))
    if before is not None and not new and not secret:
        return config
    await config.save()
    if secret:
        new["client_secret"] = "(changed)"  # noqa: S105 - a marker, not the secret
    await audit.record(
        "identity.backend_saved",
        "identity_backend",
        config.id,
        actor=actor,
        before=old if before else None,
        after=new,
    )
    if config.kind is BackendKind.KEYCLOAK:
        await changes.reconcile_requested("backend saved", revive=True)
    return config


async def keycloak_config(box: SecretBox) -> KeycloakConfig | None:
    """How to reach the organisation's Keycloak; None when it mirrors nothing."""
    config = await get_config()
    if config is None or config.kind is not BackendKind.KEYCLOAK:
        return None
    if not (config.server_url and config.realm and config.client_id):
        return None
    return KeycloakConfig(
        server_url=config.server_url,
        realm=config.realm,
        client_id=config.client_id,
        client_secret=box.decrypt(config.client_secret_enc) if config.client_secret_enc else "",
    )


async def note_sync(
    subject_type: str,
    subject_id: object,
    made: list[str],
    *,
    actor: Actor,
    error: str | None = None,
) -> None:
    """Record the outcome of talking to the backend: the last success or failure on the
    settings, and an audit event for every change the backend accepted."""
    update: dict[str, Any] = {"last_error": error[:2000] if error else None}
    if error is None:
        update["last_synced_at"] = datetime.now(UTC)
    await IdentityBackendConfig.filter().update(**update)
    if made:
        await audit.record(
            "identity.mirrored",
            subject_type,
            subject_id,
            actor=actor,
            after={"changes": made},
        )


# --- what the backend should hold ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SsoLink:
    """The organisation's own OpenID provider, to link at the backend."""

    issuer: str
    client_id: str
    client_secret: str | None


async def desired_organisation() -> DirectoryOrganisation:
    org = await Organisation.get(id=db.current_org())
    return DirectoryOrganisation(
        org_id=str(org.id),
        alias=org.slug,
        name=org.name,
        domains=tuple(await domains.owned_domains()),
        enabled=org.status == OrganisationStatus.ACTIVE,
    )


async def sso_link(sso_box: SecretBox) -> SsoLink | None:
    connection = await SsoConnection.filter(enabled=True).first()
    if connection is None:
        return None
    secret = sso_box.decrypt(connection.client_secret_enc) if connection.client_secret_enc else None
    return SsoLink(connection.issuer, connection.client_id, secret)


def _split(name: str) -> tuple[str, str]:
    first, _, last = name.strip().partition(" ")
    return first, last.strip()


def _member(row: dict[str, Any], groups: frozenset[DirectoryGroup]) -> DirectoryMember:
    first, last = _split(row["name"])
    return DirectoryMember(
        member_id=str(row["id"]),
        email=row["email"],
        first_name=first,
        last_name=last,
        enabled=can_sign_in(MemberStatus(row["status"])),
        groups=groups,
    )


async def _groups_of(member_ids: list[uuid.UUID] | None) -> dict[uuid.UUID, set[DirectoryGroup]]:
    sql = (
        "SELECT gm.member_id, g.id, g.name, g.description FROM group_memberships gm "
        "JOIN groups g ON g.tenant_id = gm.tenant_id AND g.id = gm.group_id "
        "WHERE gm.tenant_id = $1"
    )
    args: list[Any] = [db.current_org()]
    if member_ids is not None:
        sql += " AND gm.member_id = ANY($2::uuid[])"
        args.append(member_ids)
    result: dict[uuid.UUID, set[DirectoryGroup]] = defaultdict(set)
    for row in await db.fetch(sql, *args):
        result[row["member_id"]].add(
            DirectoryGroup(str(row["id"]), row["name"], row["description"] or "")
        )
    return result


MEMBER_SQL = "SELECT id, email, name, status FROM members WHERE tenant_id = $1"


async def desired_member(member_id: uuid.UUID) -> DirectoryMember | None:
    """The member as the backend should hold them; None when they must not be there
    (purged, or gone)."""
    row = await db.fetch_one(MEMBER_SQL + " AND id = $2", db.current_org(), member_id)
    if row is None or row["status"] == MemberStatus.PURGED:
        return None
    groups = await _groups_of([member_id])
    return _member(row, frozenset(groups.get(member_id, set())))


async def desired_group(group_id: uuid.UUID) -> DirectoryGroup | None:
    row = await db.fetch_one(
        "SELECT id, name, description FROM groups WHERE tenant_id = $1 AND id = $2",
        db.current_org(),
        group_id,
    )
    return DirectoryGroup(str(row["id"]), row["name"], row["description"] or "") if row else None


async def desired_state() -> DirectoryState:
    """Everything the backend should hold for the organisation, in three queries."""
    groups = {
        str(r["id"]): DirectoryGroup(str(r["id"]), r["name"], r["description"] or "")
        for r in await db.fetch(
            "SELECT id, name, description FROM groups WHERE tenant_id = $1", db.current_org()
        )
    }
    memberships = await _groups_of(None)
    members = {
        str(r["id"]): _member(r, frozenset(memberships.get(r["id"], set())))
        for r in await db.fetch(MEMBER_SQL + " AND status <> 'purged'", db.current_org())
    }
    return DirectoryState(await desired_organisation(), members, groups)


async def request_reconcile(*, actor: Actor) -> bool:
    """Queue a reconcile of the organisation; False (nothing written) when it is local."""
    if not await changes.reconcile_requested("requested"):
        return False
    await audit.record(
        "identity.reconcile_requested", "organisation", db.current_org(), actor=actor
    )
    return True
