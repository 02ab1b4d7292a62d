"""Writes and reads of data-access grants and the access policy, in the caller's tenant
transaction; every write records its audit event in that transaction.

Who may decide is ``tenants.access.rules``; here the grant is locked, the rule asked, the
row changed and the event recorded. Decisions compare people, not credentials: an API
token acts for the person who created it (``party_of``), so nobody approves their own
request by switching from the console to a token.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from tortoise.expressions import Q
from tortoise.queryset import QuerySet

from tenants import db
from tenants.access import notices, rules
from tenants.access import policy as access_policy
from tenants.access.models import AccessGrant, DataCategory, GrantStatus
from tenants.access.rules import GrantAction, GrantState, Party
from tenants.actors import Actor, ActorKind
from tenants.audit import service as audit
from tenants.errors import (
    FieldProblem,
    IllegalTransitionError,
    InvalidInputError,
    PermissionDeniedError,
)
from tenants.members.models import Member
from tenants.models_base import get_by_id, get_referenced
from tenants.pagination import Page, Sort, paginate
from tenants.permissions import PERSONAL_SCOPES, Permission, permissions_of
from tenants.products.models import Product
from tenants.tokens.models import ApiToken
from tenants.units.models import Unit

# --- who is acting --------------------------------------------------------------------------


async def party_of(actor: Actor, permissions: frozenset[Permission]) -> Party:
    """The person behind ``actor``: a member is themselves; an API token is whoever
    created it (its ``created_by``), acting in their name, and with a personal permission
    (``PERSONAL_SCOPES``: deciding on access to data) only while that member still holds
    it; anything else (a product) is only itself, without personal permissions."""
    if actor.kind is ActorKind.MEMBER:
        return Party(actor.ref, uuid.UUID(actor.id), permissions)
    if actor.kind is ActorKind.API_TOKEN:
        creator = await ApiToken.filter(id=actor.id).values_list("created_by", flat=True)
        if creator:
            party = Party(str(creator[0]), None, permissions)
            creator_id = party.named_member
            roles = (
                await Member.filter(id=creator_id).values_list("roles", flat=True)
                if creator_id is not None
                else []
            )
            held = permissions_of(roles[0]) if roles else frozenset()
            return replace(party, permissions=permissions - (PERSONAL_SCOPES - held))
    return Party(actor.ref, None, permissions - PERSONAL_SCOPES)


def facts(grant: AccessGrant) -> rules.GrantFacts:
    return rules.GrantFacts(
        admin_id=grant.admin_id,
        requested_by=grant.requested_by,
        status=grant.status,
        ends_at=grant.ends_at,
        emergency=grant.emergency,
        review_required=grant.review_required,
    )


def state_of(grant: AccessGrant, now: datetime | None = None) -> GrantState:
    return rules.grant_state(grant.status, grant.ends_at, now or datetime.now(UTC))


def snapshot(grant: AccessGrant) -> dict[str, Any]:
    return {
        "admin_id": grant.admin_id,
        "member_id": grant.member_id,
        "unit_id": grant.unit_id,
        "categories": grant.categories,
        "all_products": grant.all_products,
        "product_ids": grant.product_ids,
        "justification": grant.justification,
        "case_reference": grant.case_reference,
        "duration_hours": grant.duration_hours,
        "emergency": grant.emergency,
        "status": grant.status,
        "starts_at": grant.starts_at,
        "ends_at": grant.ends_at,
        "review_required": grant.review_required,
    }


# --- requests and decisions -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewGrant:
    """A request for access. ``admin_id`` None: the acting member asks for themselves."""

    member_id: uuid.UUID | None
    unit_id: uuid.UUID | None
    categories: Sequence[DataCategory]
    #: None: every product.
    product_ids: Sequence[uuid.UUID] | None
    justification: str
    duration_hours: int
    case_reference: str | None = None
    emergency: bool = False
    admin_id: uuid.UUID | None = None


async def _admin_for(new: NewGrant, party: Party) -> Member:
    """The admin who gets access: the acting member, or (for a token) the one named."""
    if party.member_id is not None:
        if new.admin_id is not None and new.admin_id != party.member_id:
            raise InvalidInputError(
                "members request access for themselves",
                fields=[FieldProblem("admin_id", "leave it out or name yourself")],
            )
        admin_id = party.member_id
    elif new.admin_id is None:
        raise InvalidInputError(
            "say which admin gets access",
            fields=[FieldProblem("admin_id", "is required when a token makes the request")],
        )
    else:
        admin_id = new.admin_id
    admin = await get_referenced(Member, admin_id, "member", field="admin_id")
    if Permission.ACCESS_REQUEST not in permissions_of(admin.roles):
        raise InvalidInputError(
            f"{admin.email} may not hold access to members' data",
            fields=[FieldProblem("admin_id", "has no role that may request data access")],
        )
    return admin


async def _check_subject(new: NewGrant) -> None:
    if (new.member_id is None) == (new.unit_id is None):
        problem = "give exactly one of member_id and unit_id"
        raise InvalidInputError(
            "whose data: one member, or one unit",
            fields=[FieldProblem("member_id", problem), FieldProblem("unit_id", problem)],
        )
    if new.member_id is not None:
        await get_referenced(Member, new.member_id, "member", field="member_id")
    else:
        await get_referenced(Unit, new.unit_id, "unit", field="unit_id")


async def _check_products(product_ids: Sequence[uuid.UUID] | None) -> None:
    if not product_ids:
        return
    found = set(await Product.filter(id__in=list(product_ids)).values_list("id", flat=True))
    missing = [str(p) for p in product_ids if p not in found]
    if missing:
        raise InvalidInputError(
            "a product does not exist",
            fields=[FieldProblem("product_ids", f"no product with id {', '.join(missing)}")],
        )


async def request_access(
    new: NewGrant, *, permissions: frozenset[Permission], actor: Actor
) -> AccessGrant:
    """Record a request; emergency access (where the policy allows it) starts at once and
    waits for a privacy officer's review. InvalidInputError (naming the fields) when the
    request breaks a rule or the policy; nothing is written then."""
    party = await party_of(actor, permissions)
    admin = await _admin_for(new, party)
    await _check_subject(new)
    await _check_products(new.product_ids)
    policy = await access_policy.get_policy()
    problems = rules.request_problems(
        rules.GrantRequest(
            on_unit=new.unit_id is not None,
            categories=frozenset(new.categories),
            product_ids=None if new.product_ids is None else frozenset(new.product_ids),
            justification=new.justification.strip(),
            duration_hours=new.duration_hours,
            emergency=new.emergency,
            case_reference=(new.case_reference or "").strip() or None,
        ),
        policy,
    )
    if problems:
        raise InvalidInputError("the request cannot be made as it is", fields=problems)
    starts_at = ends_at = None
    if new.emergency:
        starts_at, ends_at = rules.access_window(datetime.now(UTC), new.duration_hours)
    grant = await AccessGrant.create(
        tenant_id=db.current_org(),
        admin_id=admin.id,
        member_id=new.member_id,
        unit_id=new.unit_id,
        categories=sorted({c.value for c in new.categories}),
        all_products=new.product_ids is None,
        product_ids=sorted({str(p) for p in new.product_ids or ()}),
        justification=new.justification.strip(),
        case_reference=(new.case_reference or "").strip() or None,
        duration_hours=new.duration_hours,
        emergency=new.emergency,
        status=GrantStatus.APPROVED if new.emergency else GrantStatus.REQUESTED,
        requested_by=party.person,
        requested_by_display=actor.display,
        starts_at=starts_at,
        ends_at=ends_at,
        review_required=new.emergency,
    )
    action = "access_grant.emergency_started" if new.emergency else "access_grant.requested"
    await audit.record(action, "access_grant", grant.id, actor=actor, after=snapshot(grant))
    return grant


async def get_grant(grant_id: uuid.UUID, *, for_update: bool = False) -> AccessGrant:
    return await get_by_id(AccessGrant, grant_id, "access grant", for_update=for_update)


def _refuse(verdict: rules.Verdict) -> None:
    if not verdict:
        raise PermissionDeniedError(verdict.reason)


#: Each action as the refusal words it ("it cannot be denied").
PAST = {GrantAction.APPROVE: "approved", GrantAction.DENY: "denied", GrantAction.REVOKE: "revoked"}


def _transition(grant: AccessGrant, action: GrantAction, now: datetime) -> GrantStatus:
    state = state_of(grant, now)
    status = rules.next_status(state, action)
    if status is None:
        legal = ", ".join(a.value for a in rules.allowed_actions(state)) or "none"
        raise IllegalTransitionError(
            f"the grant is {state.value}: it cannot be {PAST[action]} (possible now: {legal})",
            extra={"state": state.value, "allowed_actions": legal},
        )
    return status


async def approve_access(
    grant_id: uuid.UUID,
    reason: str | None,
    *,
    permissions: frozenset[Permission],
    actor: Actor,
) -> AccessGrant:
    """A privacy officer other than the requester approves: access starts now and lasts the
    requested duration. PermissionDeniedError for the requester (four eyes),
    IllegalTransitionError when the grant is no longer a request."""
    return await _decide(grant_id, GrantAction.APPROVE, reason, permissions, actor)


async def deny_access(
    grant_id: uuid.UUID, reason: str, *, permissions: frozenset[Permission], actor: Actor
) -> AccessGrant:
    """As ``approve_access``, but the request is refused; the reason is required."""
    if not reason.strip():
        raise InvalidInputError(
            "say why the request is denied", fields=[FieldProblem("reason", "is required")]
        )
    return await _decide(grant_id, GrantAction.DENY, reason, permissions, actor)


async def _decide(
    grant_id: uuid.UUID,
    action: GrantAction,
    reason: str | None,
    permissions: frozenset[Permission],
    actor: Actor,
) -> AccessGrant:
    grant = await get_grant(grant_id, for_update=True)
    party = await party_of(actor, permissions)
    _refuse(rules.can_approve_access(facts(grant), party))
    now = datetime.now(UTC)
    before = snapshot(grant)
    grant.status = _transition(grant, action, now)
    grant.decided_by_id = party.named_member
    grant.decided_at = now
    grant.decision_reason = (reason or "").strip() or None
    if action is GrantAction.APPROVE:
        grant.starts_at, grant.ends_at = rules.access_window(now, grant.duration_hours)
    await grant.save(
        update_fields=[
            "status",
            "decided_by_id",
            "decided_at",
            "decision_reason",
            "starts_at",
            "ends_at",
            "updated_at",
        ]
    )
    old, new = audit.changed_fields(before, snapshot(grant))
    new["decision_reason"] = grant.decision_reason
    await audit.record(
        f"access_grant.{'approved' if action is GrantAction.APPROVE else 'denied'}",
        "access_grant",
        grant.id,
        actor=actor,
        before=old,
        after=new,
    )
    await notices.decision_made(
        grant, approved=action is GrantAction.APPROVE, decided_by=actor.display.split(" <")[0]
    )
    return grant


async def revoke_access(
    grant_id: uuid.UUID,
    reason: str | None,
    *,
    permissions: frozenset[Permission],
    actor: Actor,
) -> AccessGrant:
    """End access now (or withdraw a request). The admin holding it, the requester or a
    privacy officer may; expired, denied and revoked grants are final (409)."""
    grant = await get_grant(grant_id, for_update=True)
    _refuse(rules.can_revoke_access(facts(grant), await party_of(actor, permissions)))
    now = datetime.now(UTC)
    before = snapshot(grant)
    grant.status = _transition(grant, GrantAction.REVOKE, now)
    grant.revoked_at = now
    grant.revoked_by = actor.display
    grant.revoke_reason = (reason or "").strip() or None
    await grant.save(
        update_fields=["status", "revoked_at", "revoked_by", "revoke_reason", "updated_at"]
    )
    await audit.record(
        "access_grant.revoked",
        "access_grant",
        grant.id,
        actor=actor,
        before={"status": before["status"]},
        after={"status": grant.status, "revoke_reason": grant.revoke_reason},
    )
    return grant


async def review_access(
    grant_id: uuid.UUID, note: str, *, permissions: frozenset[Permission], actor: Actor
) -> AccessGrant:
    """A privacy officer's after-the-fact review of emergency access; clears
    ``review_required``. 409 for access that needs no review or was reviewed already."""
    grant = await get_grant(grant_id, for_update=True)
    party = await party_of(actor, permissions)
    _refuse(rules.can_review_access(facts(grant), party))
    if not grant.review_required:
        raise IllegalTransitionError(
            "only emergency access waiting for review can be reviewed"
            + (" (this one was reviewed already)" if grant.reviewed_at else "")
        )
    if not note.strip():
        raise InvalidInputError(
            "record what the review found", fields=[FieldProblem("note", "is required")]
        )
    grant.review_required = False
    grant.reviewed_by_id = party.named_member
    grant.reviewed_at = datetime.now(UTC)
    grant.review_note = note.strip()
    await grant.save(
        update_fields=[
            "review_required",
            "reviewed_by_id",
            "reviewed_at",
            "review_note",
            "updated_at",
        ]
    )
    await audit.record(
        "access_grant.reviewed",
        "access_grant",
        grant.id,
        actor=actor,
        before={"review_required": True},
        after={"review_required": False, "review_note": grant.review_note},
    )
    return grant


async def delay_disclosure(
    grant_id: uuid.UUID,
    until: datetime,
    reason: str,
    *,
    permissions: frozenset[Permission],
    actor: Actor,
) -> AccessGrant:
    """Hide a grant and its accesses from the member until ``until`` (an investigation),
    with a recorded reason, within the policy's limit; audited like any write."""
    grant = await get_grant(grant_id, for_update=True)
    _refuse(rules.can_delay_disclosure(facts(grant), await party_of(actor, permissions)))
    problems = rules.disclosure_delay_problems(
        until, reason, await access_policy.get_policy(), datetime.now(UTC)
    )
    if problems:
        raise InvalidInputError("disclosure cannot be delayed like this", fields=problems)
    before = {"until": grant.disclosure_delayed_until, "reason": grant.disclosure_delay_reason}
    grant.disclosure_delayed_until = until
    grant.disclosure_delay_reason = reason.strip()
    after = {"until": grant.disclosure_delayed_until, "reason": grant.disclosure_delay_reason}
    old, new = audit.changed_fields(before, after)
    if not new:
        return grant
    await grant.save(
        update_fields=["disclosure_delayed_until", "disclosure_delay_reason", "updated_at"]
    )
    await audit.record(
        "access_grant.disclosure_delayed",
        "access_grant",
        grant.id,
        actor=actor,
        before=old,
        after=new,
    )
    return grant


async def lift_disclosure_delay(
    grant_id: uuid.UUID, *, permissions: frozenset[Permission], actor: Actor
) -> AccessGrant:
    """Show the grant to its member now; early return when it was not delayed."""
    grant = await get_grant(grant_id, for_update=True)
    _refuse(rules.can_delay_disclosure(facts(grant), await party_of(actor, permissions)))
    if grant.disclosure_delayed_until is None:
        return grant
    before = {"until": grant.disclosure_delayed_until, "reason": grant.disclosure_delay_reason}
    grant.disclosure_delayed_until = None
    await grant.save(update_fields=["disclosure_delayed_until", "updated_at"])
    await audit.record(
        "access_grant.disclosure_delay_lifted",
        "access_grant",
        grant.id,
        actor=actor,
        before=before,
        after={"until": None},
    )
    return grant


# --- lists ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GrantFilter:
    state: GrantState | None = None
    member_id: uuid.UUID | None = None
    admin_id: uuid.UUID | None = None
    unit_id: uuid.UUID | None = None
    review_required: bool | None = None


def _state_filter(state: GrantState, now: datetime) -> Q:
    if state is GrantState.ACTIVE:
        return Q(status=GrantStatus.APPROVED, ends_at__gt=now)
    if state is GrantState.EXPIRED:
        return Q(status=GrantStatus.APPROVED, ends_at__lte=now)
    return Q(status=GrantStatus(state.value))


#: How grant lists may be sorted (the request time; the other times may be empty).
GRANT_SORTABLE = ("created_at",)
NEWEST_REQUEST_FIRST = Sort("created_at", descending=True)


def _grants(filters: GrantFilter) -> QuerySet[AccessGrant]:
    query = AccessGrant.all()
    if filters.state is not None:
        query = query.filter(_state_filter(filters.state, datetime.now(UTC)))
    for name in ("member_id", "admin_id", "unit_id", "review_required"):
        value = getattr(filters, name)
        if value is not None:
            query = query.filter(**{name: value})
    return query


async def list_grants(
    filters: GrantFilter,
    *,
    cursor: str | None,
    limit: int,
    sort: Sort = NEWEST_REQUEST_FIRST,
) -> Page[AccessGrant]:
    """Grants matching ``filters``, newest request first unless ``sort`` says otherwise."""
    return await paginate(_grants(filters), sort, cursor=cursor, limit=limit)


async def count_grants(filters: GrantFilter) -> int:
    """How many grants match ``filters`` (the list's total)."""
    return await _grants(filters).count()
