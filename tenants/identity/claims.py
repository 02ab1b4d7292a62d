"""Policy claims for identity providers: what an IdP adds to a member's tokens while it
issues them (a Keycloak protocol mapper calling a URL, an Entra-style custom claims
provider), so products read the organisation's settings from the token itself.

A token has little room (cookies and headers carry it), so the claims are compact: only
settings that are locked or differ from the catalogue default (a product knows the
defaults), with short claim names:

    {"mid": "<member id>", "org": "acme", "roles": ["admin"],
     "s": {"personalisation.recommendations": false},
     "l": ["personalisation.recommendations"], "v": 12}

``mid`` is the member's id (what products call Tenantry with), ``s`` the settings, ``l``
those the organisation locks, ``v`` the policy version (a product that caches by version
knows when a token's settings are older than the API's).
Resolution uses the compiled policy cached per process (``policies.cache``), so a token
issuance costs one small query.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from policies.cache import DecisionCache
from policies.catalogue import Catalogue
from policies.resolve import Resolved
from tenants import db
from tenants.errors import ConflictError, NotFoundError
from tenants.ids import OrgId
from tenants.members.lifecycle import MemberStatus, can_sign_in
from tenants.policy import service as policy


class MemberCannotSignInError(ConflictError):
    """The member's lifecycle status does not allow sign-in, so no token should be issued."""

    code = "member_cannot_sign_in"
    title = "Member cannot sign in"


@dataclass(frozen=True, slots=True)
class MemberClaims:
    member_id: uuid.UUID
    organisation: str
    roles: tuple[str, ...]
    settings: dict[str, Any]
    locked: tuple[str, ...]
    policy_version: int

    def compact(self) -> dict[str, Any]:
        """The claim value: short names, nothing a product can infer."""
        return {
            "mid": str(self.member_id),
            "org": self.organisation,
            "roles": list(self.roles),
            "s": self.settings,
            "l": list(self.locked),
            "v": self.policy_version,
        }

    def as_strings(self, prefix: str = "tenantry_") -> dict[str, str | list[str]]:
        """The same claims for providers that take only strings and string lists (Entra
        custom claims): settings travel as one compact JSON string."""
        return {
            f"{prefix}member_id": str(self.member_id),
            f"{prefix}org": self.organisation,
            f"{prefix}roles": list(self.roles),
            f"{prefix}settings": json.dumps(self.settings, separators=(",", ":"), sort_keys=True),
            f"{prefix}locked": list(self.locked),
            f"{prefix}policy_version": str(self.policy_version),
        }


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def compact_settings(
    resolved: Mapping[str, Resolved], catalogue: Catalogue
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The settings worth a claim (locked, or not the catalogue default) and the locked
    keys, both sorted by key so equal policies give byte-equal tokens."""
    settings: dict[str, Any] = {}
    locked: list[str] = []
    for key in sorted(resolved):
        result = resolved[key]
        default = catalogue[key].default if key in catalogue else None
        if result.locked:
            locked.append(key)
        if result.locked or result.value != default:
            settings[key] = _plain(result.value)
    return settings, tuple(locked)


async def claims_for(
    *,
    email: str | None = None,
    idp_subject: str | None = None,
    member_id: uuid.UUID | None = None,
    cache: DecisionCache[OrgId] | None = None,
) -> MemberClaims:
    """The claims of the member found by id, email or IdP subject (the first given).

    Raises NotFoundError when no member matches and MemberCannotSignInError when the
    member may not sign in (suspended, departed, purged): no token should carry them.
    """
    if member_id is not None:
        where, value = "m.id = $2", str(member_id)
    elif email is not None:
        where, value = "m.email = $2", email.strip().lower()
    elif idp_subject is not None:
        where, value = "m.idp_subject = $2", idp_subject
    else:
        raise NotFoundError("name the member by id, email or IdP subject")
    row = await db.fetch_one(
        "SELECT m.id, m.roles, m.status, o.slug FROM members m "  # noqa: S608 - fixed columns
        f"JOIN organisations o ON o.id = m.tenant_id WHERE m.tenant_id = $1 AND {where}",
        db.current_org(),
        uuid.UUID(value) if member_id is not None else value,
    )
    if row is None:
        raise NotFoundError("there is no such member")
    status = MemberStatus(row["status"])
    if not can_sign_in(status):
        raise MemberCannotSignInError(
            f"the member is {status.value}; no token should be issued",
            extra={"member_status": status.value},
        )
    snapshot = await policy.compiled_policy(cache)
    facts = (await policy.member_facts([row["id"]]))[row["id"]]
    resolved = snapshot.compiled.resolve(str(facts.unit_id), facts.group_ids, facts.choices)
    settings, locked = compact_settings(resolved, snapshot.compiled.catalogue)
    roles = row["roles"] if isinstance(row["roles"], list) else json.loads(row["roles"])
    return MemberClaims(
        member_id=row["id"],
        organisation=row["slug"],
        roles=tuple(sorted(roles)),
        settings=settings,
        locked=locked,
        policy_version=snapshot.policy_version,
    )
