"""The organisation's provisioning rules, its SCIM tokens, and what Users and Groups share:
unit matching, deprovisioning, and set-based audit records.

SCIM tokens are API tokens (``tenants.tokens``) that carry the ``scim:provision``
permission; there is no second token system. Rotating one revokes it and issues a new
one with the same name in the same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tenants import db
from tenants.actors import Actor
from tenants.audit import service as audit
from tenants.audit.sealer import request_sealing
from tenants.errors import ConflictError, FieldProblem, InvalidInputError
from tenants.members import service as members
from tenants.members.lifecycle import LifecycleAction, MemberStatus
from tenants.permissions import Permission
from tenants.privacy import shredding
from tenants.scim.documents import UNIT_ATTRIBUTES, UnitCandidate, match_unit
from tenants.scim.models import Deprovisioning, ScimSettings
from tenants.tokens import service as tokens
from tenants.tokens.models import ApiToken

#: The scope every SCIM token carries, and the only one the console gives them.
SCIM_SCOPE = Permission.SCIM_PROVISION


@dataclass(frozen=True, slots=True)
class Rules:
    """The organisation's provisioning rules (defaults when it has saved none)."""

    unit_attribute: str = "department"
    default_unit_id: uuid.UUID | None = None
    deprovisioning: Deprovisioning = Deprovisioning.SUSPEND
    adopt_groups: bool = True


async def get_rules() -> Rules:
    row = await db.fetch_one(
        "SELECT unit_attribute, default_unit_id, deprovisioning, adopt_groups "
        "FROM scim_settings WHERE tenant_id = $1",
        db.current_org(),
    )
    if row is None:
        return Rules()
    return Rules(
        unit_attribute=row["unit_attribute"],
        default_unit_id=row["default_unit_id"],
        deprovisioning=Deprovisioning(row["deprovisioning"]),
        adopt_groups=bool(row["adopt_groups"]),
    )


async def save_rules(new: Rules, *, actor: Actor) -> Rules:
    """Store the rules; InvalidInputError for an unknown unit attribute or default unit.
    Returns early (nothing written or audited) when nothing changes."""
    if new.unit_attribute not in UNIT_ATTRIBUTES:
        raise InvalidInputError(
            "the unit attribute must be an enterprise attribute",
            fields=[
                FieldProblem("unit_attribute", f"expected one of {', '.join(UNIT_ATTRIBUTES)}")
            ],
        )
    if new.default_unit_id is not None and not await db.fetch_one(
        "SELECT 1 AS found FROM units WHERE tenant_id = $1 AND id = $2",
        db.current_org(),
        new.default_unit_id,
    ):
        raise InvalidInputError(
            "the default unit does not exist",
            fields=[FieldProblem("default_unit_id", "no such unit")],
        )
    old = await get_rules()
    before, after = audit.changed_fields(_snapshot(old), _snapshot(new))
    if not after:
        return old
    row = await ScimSettings.filter().select_for_update().first()
    if row is None:
        row = ScimSettings(tenant_id=db.current_org())
    row.unit_attribute = new.unit_attribute
    row.default_unit_id = new.default_unit_id
    row.deprovisioning = new.deprovisioning
    row.adopt_groups = new.adopt_groups
    await row.save()
    await audit.record(
        "scim.rules_changed",
        "organisation",
        db.current_org(),
        actor=actor,
        before=before,
        after=after,
    )
    return new


def _snapshot(rules: Rules) -> dict[str, Any]:
    return {
        "unit_attribute": rules.unit_attribute,
        "default_unit_id": rules.default_unit_id,
        "deprovisioning": rules.deprovisioning,
        "adopt_groups": rules.adopt_groups,
    }


# --- tokens ----------------------------------------------------------------------------------


async def list_tokens() -> list[ApiToken]:
    """The organisation's SCIM tokens (API tokens whose only scope is ``scim:provision``),
    newest first, revoked ones included."""
    rows = await ApiToken.all().order_by("-created_at")
    return [t for t in rows if t.scopes == [SCIM_SCOPE.value]]


#: What a SCIM token's maker gives: the one scope this service fixes, never another (who
#: may make SCIM tokens is scim:write's, checked where the request comes in).
SCIM_ISSUER = frozenset({SCIM_SCOPE})


async def create_token(
    name: str, *, actor: Actor, form: uuid.UUID | None = None
) -> tuple[ApiToken, str]:
    """A new SCIM token; the text is returned once and never stored. ``form``: as for
    ``tokens.create_token`` (a console form sent again makes no second token)."""
    name = name.strip() or "SCIM"
    return await tokens.create_token(
        name, [SCIM_SCOPE.value], expires_in=None, actor=actor, issuer=SCIM_ISSUER, form=form
    )


async def rotate_token(token_id: uuid.UUID, *, actor: Actor) -> tuple[ApiToken, str]:
    """Revoke the token and issue its replacement under the same name, in one transaction.
    A token already revoked (rotated before, say: a reloaded page sends its form again) is
    refused, so that one rotation makes one token."""
    old = await get_token(token_id)
    if old.revoked_at is not None:
        raise ConflictError(
            f"the SCIM token {old.name} was already revoked or rotated; its replacement, if "
            "any, is in the list",
            fields=[FieldProblem("token_id", "is revoked")],
        )
    await tokens.revoke_token(old.id, actor=actor)
    return await tokens.create_token(
        old.name, [SCIM_SCOPE.value], expires_in=None, actor=actor, issuer=SCIM_ISSUER
    )


async def revoke_token(token_id: uuid.UUID, *, actor: Actor) -> ApiToken:
    return await tokens.revoke_token((await get_token(token_id)).id, actor=actor)


async def get_token(token_id: uuid.UUID) -> ApiToken:
    """The organisation's SCIM token ``token_id``; NotFoundError for any other id."""
    from tenants.models_base import get_by_id

    token = await get_by_id(ApiToken, token_id, "SCIM token")
    if token.scopes != [SCIM_SCOPE.value]:
        from tenants.errors import NotFoundError

        raise NotFoundError(f"there is no SCIM token with id {token_id}")
    return token


# --- units -----------------------------------------------------------------------------------


async def unit_candidates(values: Iterable[str]) -> list[UnitCandidate]:
    """The units whose name is the last part of one of ``values``, with their ancestors'
    names (one query, however many values: bulk provisioning resolves all at once)."""
    last = sorted({v.split("/")[-1].strip().lower() for v in values if v.strip()})
    if not last:
        return []
    rows = await db.fetch(
        """
        SELECT u.id, u.name,
               (SELECT array_agg(a.name ORDER BY a.depth) FROM units a
                 WHERE a.tenant_id = u.tenant_id
                   AND a.id = ANY (string_to_array(u.path, '/')::uuid[])) AS names
          FROM units u
         WHERE u.tenant_id = $1 AND lower(u.name) = ANY ($2::text[])
        """,
        db.current_org(),
        last,
    )
    return [UnitCandidate(r["id"], r["name"], tuple(r["names"] or (r["name"],))) for r in rows]


async def default_unit(rules: Rules) -> uuid.UUID:
    """Where members go whose unit attribute names no unit: the configured default unit,
    else the root unit."""
    if rules.default_unit_id is not None:
        return rules.default_unit_id
    row = await db.fetch_one(
        "SELECT id FROM units WHERE tenant_id = $1 AND parent_id IS NULL", db.current_org()
    )
    assert row is not None, "every organisation has a root unit"
    return uuid.UUID(str(row["id"]))


async def units_for(values: Sequence[str | None], rules: Rules) -> list[uuid.UUID]:
    """The unit of each value (``match_unit``), the default unit for None or no match."""
    candidates = await unit_candidates(v for v in values if v)
    fallback = await default_unit(rules)
    return [(match_unit(v, candidates) if v else None) or fallback for v in values]


# --- deprovisioning and reactivation --------------------------------------------------------


async def deprovision(member_id: uuid.UUID, status: str, rules: Rules, *, actor: Actor) -> None:
    """``active: false`` or DELETE: what the organisation chose. A departure starts only
    for an active member (it needs one); anyone else still able to sign in is suspended;
    a member already suspended or gone is left as is. Nothing is deleted."""
    reason = "deprovisioned by the identity provider (SCIM)"
    if rules.deprovisioning is Deprovisioning.DEPARTURE and status == MemberStatus.ACTIVE:
        from tenants.departures.service import start_departure
        from tenants.organisations import days
        from tenants.organisations import service as organisations

        await start_departure(
            member_id,
            # Today is the last day, the organisation's today: it ends at midnight there.
            last_day=days.today(await organisations.time_zone()),
            successor_id=None,
            reason=reason,
            actor=actor,
        )
        return
    if status in (MemberStatus.INVITED, MemberStatus.ACTIVE, MemberStatus.DEPARTING):
        await members.transition_member(
            member_id, LifecycleAction.SUSPEND, reason=reason, actor=actor
        )


async def reactivate(member_id: uuid.UUID, status: str, *, actor: Actor) -> None:
    """``active: true``: activate an invited member, or reinstate one being deprovisioned
    (stopping their departure if one is running)."""
    reason = "reactivated by the identity provider (SCIM)"
    if status == MemberStatus.ACTIVE:
        return
    if status == MemberStatus.INVITED:
        await members.transition_member(
            member_id, LifecycleAction.ACTIVATE, reason=reason, actor=actor
        )
        return
    from tenants.departures.service import current_departure, reinstate_departure

    departure = await current_departure(member_id)
    if departure is not None:
        await reinstate_departure(departure.id, reason=reason, actor=actor)
        return
    await members.transition_member(
        member_id, LifecycleAction.REINSTATE, reason=reason, actor=actor
    )


# --- audit events, set-based -----------------------------------------------------------------

RECORD_MANY_SQL = """
WITH recorded AS (
  INSERT INTO audit_events (tenant_id, occurred_at, actor, actor_display, action, target_type,
                            target_id, before, after, request_id, client_addr)
  SELECT $1, $2, $3, $4, $5, $6, t.target_id, t.before::jsonb, t.after::jsonb, $7, $8
    FROM unnest($9::text[], $10::text[], $11::text[]) WITH ORDINALITY
         AS t(target_id, before, after, n)
   ORDER BY t.n
  RETURNING tenant_id, id
)
INSERT INTO audit_pending (tenant_id, event_id) SELECT tenant_id, id FROM recorded
"""


async def record_many(
    action: str,
    target_type: str,
    events: Sequence[tuple[object, Mapping[str, Any] | None, Mapping[str, Any] | None]],
    *,
    actor: Actor,
    plain: bool = False,
) -> None:
    """Record one audit event per ``(target id, before, after)`` in one statement.

    ``plain``: the values are already JSON values (strings, numbers, lists), as
    ``tenants.audit.service.jsonable`` would make them, so they are not converted again.

    The same rows ``tenants.audit.service.record`` writes (event and sealing-queue entry,
    in the caller's transaction; see its ``RECORD_SQL``), for writes that change many rows
    at once: bulk provisioning and group membership.
    """
    if not events:
        return
    sealed = await shredding.seal_events(
        actor, action, target_type,
        [(target, _values(before, plain), _values(after, plain)) for target, before, after in events],
    )
    await db.connection().execute_query(
        RECORD_MANY_SQL,
        [
            db.current_org(),
            datetime.now(UTC),
            actor.ref,
            sealed[0].actor_display,
            action,
            target_type,
            actor.request_id,
            sealed[0].client_addr,
            [str(target) for target, _, _ in events],
            [None if e.before is None else shredding.json_bytes(e.before).decode() for e in sealed],
            [None if e.after is None else shredding.json_bytes(e.after).decode() for e in sealed],
        ],
    )
    request_sealing()


def _values(value: Mapping[str, Any] | None, plain: bool) -> Mapping[str, Any] | None:
    if value is None:
        return None
    return value if plain else audit.jsonable(value)
