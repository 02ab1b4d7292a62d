"""Data access: the organisation's access policy and grants (request, approve or deny,
revoke, review of emergency access, disclosure delays). The access check products call
and the access log are in ``app.v1.access_checks``.

Decisions are made by people. An approval, denial, review or disclosure delay compares
the person acting with the admin getting access and the person who asked (four eyes);
an API token acts for whoever created it.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from app.api import ApiRouter, Call
from app.v1.common import (
    FREE_TEXT,
    NAME,
    Input,
    Instant,
    ListQuery,
    Output,
    Page,
    absent,
    changes_of,
)
from tenants.access import policy as access_policy
from tenants.access import rules, service
from tenants.access.models import AccessGrant, DataCategory, GrantStatus
from tenants.access.rules import GrantAction, GrantState
from tenants.permissions import Permission

router = ApiRouter("/v1/access", "data access")

#: At least ``rules.JUSTIFICATION_MIN_LENGTH`` characters, which the rules check (422).
Reason = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=rules.JUSTIFICATION_MAX_LENGTH
    ),
    FREE_TEXT,
]
Note = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000), FREE_TEXT
]
OptionalNote = Annotated[str, StringConstraints(max_length=2000), FREE_TEXT]
Hours = Annotated[int, Field(ge=1, le=rules.MAX_HOURS)]


# --- policy ---------------------------------------------------------------------------------


class PolicyOut(Output):
    organisation_id: uuid.UUID
    max_duration_hours: int = Field(description="The longest access an admin may request.")
    emergency_allowed: bool = Field(
        description="Whether admins may start emergency access without approval (reviewed "
        "afterwards by a privacy officer)."
    )
    emergency_max_hours: int
    notify_member_per_access: bool = Field(
        description="Whether members are emailed about each new access in their log."
    )
    max_disclosure_delay_days: int = Field(
        description="How long showing a grant to its member may be delayed during an "
        "investigation; 0: never."
    )


class PolicyPatch(Input):
    max_duration_hours: Hours = Field(default_factory=absent)
    emergency_allowed: bool = Field(default_factory=absent)
    emergency_max_hours: Hours = Field(default_factory=absent)
    notify_member_per_access: bool = Field(default_factory=absent)
    max_disclosure_delay_days: int = Field(
        default_factory=absent, ge=0, le=rules.MAX_DISCLOSURE_DELAY_DAYS
    )


def _policy_out(org_id: uuid.UUID, policy: rules.PolicyRules) -> PolicyOut:
    return PolicyOut(organisation_id=org_id, **asdict(policy))


@router.get(
    "/policy",
    summary="The organisation's data-access policy",
    permission=Permission.ACCESS_READ,
    response=PolicyOut,
)
async def get_access_policy(call: Call[Input, Input]) -> PolicyOut:
    return _policy_out(call.principal.org_id, await access_policy.get_policy())


@router.patch(
    "/policy",
    summary="Change the data-access policy",
    permission=Permission.ACCESS_APPROVE,
    body=PolicyPatch,
    response=PolicyOut,
    errors=(422,),
)
async def update_access_policy(call: Call[PolicyPatch, Input]) -> PolicyOut:
    policy = await access_policy.update_policy(changes_of(call.body), actor=call.actor)
    return _policy_out(call.principal.org_id, policy)


# --- grants ---------------------------------------------------------------------------------


class GrantOut(Output):
    id: uuid.UUID
    admin_id: uuid.UUID = Field(description="The admin who gets access.")
    member_id: uuid.UUID | None = Field(description="Whose data (or unit_id).")
    unit_id: uuid.UUID | None = Field(description="A unit and the units below it.")
    categories: list[DataCategory]
    all_products: bool
    product_ids: list[uuid.UUID]
    justification: str
    case_reference: str | None
    duration_hours: int
    emergency: bool
    status: GrantStatus = Field(description="The decision recorded.")
    state: GrantState = Field(description="What the grant is now: approved splits by time.")
    allowed_actions: list[GrantAction]
    requested_by: str = Field(description="Who asked: the person behind the credential.")
    requested_by_display: str
    starts_at: datetime | None
    ends_at: datetime | None
    decided_by_id: uuid.UUID | None
    decided_at: datetime | None
    decision_reason: str | None
    revoked_at: datetime | None
    revoked_by: str | None
    revoke_reason: str | None
    review_required: bool
    reviewed_by_id: uuid.UUID | None
    reviewed_at: datetime | None
    review_note: str | None
    disclosure_delayed_until: datetime | None
    disclosure_delay_reason: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, grant: AccessGrant) -> GrantOut:
        state = service.state_of(grant)
        return cls(
            **{
                name: getattr(grant, name)
                for name in cls.model_fields
                if name not in ("state", "allowed_actions", "categories", "product_ids")
            },
            categories=[DataCategory(c) for c in grant.categories],
            product_ids=[uuid.UUID(p) for p in grant.product_ids],
            state=state,
            allowed_actions=rules.allowed_actions(state),
        )


class GrantPage(Page[GrantOut]):
    pass


class GrantRequestIn(Input):
    admin_id: uuid.UUID | None = Field(
        None,
        description="The admin who gets access. Members asking for themselves leave it out; "
        "an API token must name them.",
    )
    member_id: uuid.UUID | None = Field(None, description="Whose data; or give unit_id.")
    unit_id: uuid.UUID | None = Field(
        None, description="A unit (and everyone below it): diagnostic data only."
    )
    categories: list[DataCategory] = Field(min_length=1, max_length=len(DataCategory))
    product_ids: list[uuid.UUID] | None = Field(
        None, max_length=100, description="The products; null or absent: every product."
    )
    justification: Reason = Field(
        description="Why, in at least 20 characters; shown to the privacy officer and the member."
    )
    case_reference: Annotated[str, StringConstraints(max_length=200), NAME] | None = None
    duration_hours: Hours = Field(description="Capped by the organisation's policy.")
    emergency: bool = Field(
        False, description="Start at once, without approval, where the policy allows it."
    )


class DecisionIn(Input):
    reason: OptionalNote | None = None


class DenialIn(Input):
    reason: Note


class ReviewIn(Input):
    note: Note = Field(description="What the review of the emergency access found.")


class DelayIn(Input):
    until: Instant = Field(description="When the member is shown the grant after all.")
    reason: Reason = Field(
        description="Why disclosure waits, in at least 20 characters (recorded and audited)."
    )


class GrantQuery(ListQuery):
    state: GrantState | None = None
    member_id: uuid.UUID | None = None
    admin_id: uuid.UUID | None = Field(None, description="The admin who asked for and holds it.")
    unit_id: uuid.UUID | None = None
    review_required: bool | None = None


@router.get(
    "/grants",
    summary="List grants, newest request first",
    permission=Permission.ACCESS_READ,
    query=GrantQuery,
    response=GrantPage,
    errors=(422,),
)
async def list_access_grants(call: Call[Input, GrantQuery]) -> GrantPage:
    q = call.query
    page = await service.list_grants(
        service.GrantFilter(
            state=q.state,
            member_id=q.member_id,
            admin_id=q.admin_id,
            unit_id=q.unit_id,
            review_required=q.review_required,
        ),
        cursor=q.cursor,
        limit=q.limit,
    )
    return GrantPage(items=[GrantOut.of(g) for g in page.items], next_cursor=page.next_cursor)


@router.post(
    "/grants",
    summary="Request access to a member's (or a unit's diagnostic) data",
    permission=Permission.ACCESS_REQUEST,
    body=GrantRequestIn,
    response=GrantOut,
    status=201,
    errors=(409, 422),
)
async def request_access_grant(call: Call[GrantRequestIn, Input]) -> GrantOut:
    """A request waits for a privacy officer other than the requester; with
    ``emergency: true`` (where the policy allows it) access starts at once and is flagged
    for review. The duration is capped by the policy (422 naming ``duration_hours``)."""
    b = call.body
    grant = await service.request_access(
        service.NewGrant(
            admin_id=b.admin_id,
            member_id=b.member_id,
            unit_id=b.unit_id,
            categories=b.categories,
            product_ids=b.product_ids,
            justification=b.justification,
            case_reference=b.case_reference,
            duration_hours=b.duration_hours,
            emergency=b.emergency,
        ),
        permissions=call.principal.permissions,
        actor=call.actor,
    )
    return GrantOut.of(grant)


@router.get(
    "/grants/{id}",
    summary="Get a grant",
    permission=Permission.ACCESS_READ,
    response=GrantOut,
    errors=(404,),
)
async def get_access_grant(call: Call[Input, Input]) -> GrantOut:
    return GrantOut.of(await service.get_grant(call.id()))


@router.post(
    "/grants/{id}/approve",
    summary="Approve a request (a privacy officer other than the requester)",
    permission=Permission.ACCESS_APPROVE,
    body=DecisionIn,
    response=GrantOut,
    errors=(403, 404, 409, 422),
)
async def approve_access_grant(call: Call[DecisionIn, Input]) -> GrantOut:
    """403 when the caller is the admin getting access or the person who asked (four
    eyes); 409 when the grant is no longer a request. Access starts now."""
    grant = await service.approve_access(
        call.id(), call.body.reason, permissions=call.principal.permissions, actor=call.actor
    )
    return GrantOut.of(grant)


@router.post(
    "/grants/{id}/deny",
    summary="Deny a request, saying why",
    permission=Permission.ACCESS_APPROVE,
    body=DenialIn,
    response=GrantOut,
    errors=(403, 404, 409, 422),
)
async def deny_access_grant(call: Call[DenialIn, Input]) -> GrantOut:
    grant = await service.deny_access(
        call.id(), call.body.reason, permissions=call.principal.permissions, actor=call.actor
    )
    return GrantOut.of(grant)


@router.post(
    "/grants/{id}/revoke",
    summary="End access now, or withdraw a request",
    permission=Permission.ACCESS_REVOKE,
    body=DecisionIn,
    response=GrantOut,
    errors=(403, 404, 409, 422),
)
async def revoke_access_grant(call: Call[DecisionIn, Input]) -> GrantOut:
    """Needs no second person; audited. Expired, denied and revoked grants are final
    (409)."""
    grant = await service.revoke_access(
        call.id(), call.body.reason, permissions=call.principal.permissions, actor=call.actor
    )
    return GrantOut.of(grant)


@router.post(
    "/grants/{id}/review",
    summary="Review emergency access after the fact",
    permission=Permission.ACCESS_APPROVE,
    body=ReviewIn,
    response=GrantOut,
    errors=(403, 404, 409, 422),
)
async def review_access_grant(call: Call[ReviewIn, Input]) -> GrantOut:
    grant = await service.review_access(
        call.id(), call.body.note, permissions=call.principal.permissions, actor=call.actor
    )
    return GrantOut.of(grant)


@router.put(
    "/grants/{id}/disclosure-delay",
    summary="Delay showing a grant to its member (an investigation)",
    permission=Permission.ACCESS_APPROVE,
    body=DelayIn,
    response=GrantOut,
    errors=(403, 404, 422),
)
async def delay_access_disclosure(call: Call[DelayIn, Input]) -> GrantOut:
    """Only where the policy allows it (``max_disclosure_delay_days``), with a reason and an
    end date; the member sees the grant and its accesses once the date has passed."""
    grant = await service.delay_disclosure(
        call.id(),
        call.body.until,
        call.body.reason,
        permissions=call.principal.permissions,
        actor=call.actor,
    )
    return GrantOut.of(grant)


@router.delete(
    "/grants/{id}/disclosure-delay",
    summary="Show a grant to its member now",
    permission=Permission.ACCESS_APPROVE,
    status=204,
    errors=(403, 404),
)
async def lift_access_disclosure_delay(call: Call[Input, Input]) -> None:
    await service.lift_disclosure_delay(
        call.id(), permissions=call.principal.permissions, actor=call.actor
    )
