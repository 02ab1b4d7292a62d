"""Rules of data access, in plain Python: who may decide on a grant (four eyes), what a
grant's state is at a moment, what a request must satisfy, and how an access check is
answered.

``answer_check`` is the reference for the SQL function ``check_data_access`` (migration
0008), which answers products in one statement; tests hold the two to the same answers.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from tenants.access.models import DataCategory, GrantStatus
from tenants.errors import FieldProblem
from tenants.permissions import Permission

#: A justification is read by a privacy officer and by the member: a few words at least.
JUSTIFICATION_MIN_LENGTH = 20
JUSTIFICATION_MAX_LENGTH = 2000
#: A case reference (a ticket or matter number), at most (the column's length).
CASE_REFERENCE_MAX_LENGTH = 200
#: Outer bounds for any organisation's policy (a year; a quarter for disclosure delays).
MAX_HOURS = 24 * 366
MAX_DISCLOSURE_DELAY_DAYS = 92
#: A unit's data may be opened for diagnostic data only: never anyone's content in bulk.
UNIT_CATEGORIES = frozenset({DataCategory.DIAGNOSTIC})


@dataclass(frozen=True, slots=True)
class PolicyRules:
    """An organisation's access policy; ``DEFAULT_POLICY`` when it has not set one."""

    max_duration_hours: int = 168
    emergency_allowed: bool = False
    emergency_max_hours: int = 24
    notify_member_per_access: bool = True
    max_disclosure_delay_days: int = 0


DEFAULT_POLICY = PolicyRules()


def weakenings(before: PolicyRules, after: PolicyRules) -> list[str]:
    """What a change of the policy takes from members' protection, in words (empty when
    nothing): the console asks before saving such a change, as one person makes it."""
    said = []
    if after.emergency_allowed and not before.emergency_allowed:
        said.append(
            "Emergency access is allowed: an admin's access starts at once, without a privacy"
            " officer's approval, which is only reviewed afterwards."
        )
    elif after.emergency_allowed and after.emergency_max_hours > before.emergency_max_hours:
        said.append(
            f"Emergency access may last {after.emergency_max_hours} hours"
            f" (was {before.emergency_max_hours})."
        )
    if after.max_duration_hours > before.max_duration_hours:
        said.append(
            f"Access may last {after.max_duration_hours} hours (was {before.max_duration_hours})."
        )
    if before.notify_member_per_access and not after.notify_member_per_access:
        said.append("Members are no longer emailed about access to their data.")
    if after.max_disclosure_delay_days > before.max_disclosure_delay_days:
        said.append(
            f"An access may be hidden from its member for up to {after.max_disclosure_delay_days}"
            f" days (was {before.max_disclosure_delay_days}): their access log does not show it"
            " until then."
        )
    return said


def policy_problems(policy: PolicyRules) -> list[FieldProblem]:
    """What is wrong with a policy as a whole (each field's own bounds are the schema's)."""
    if policy.emergency_max_hours > policy.max_duration_hours:
        return [
            FieldProblem(
                "emergency_max_hours",
                f"cannot exceed max_duration_hours ({policy.max_duration_hours})",
            )
        ]
    return []


class GrantState(StrEnum):
    """What a grant is at a given moment: its stored status, with ``approved`` split by
    time into ``active`` and ``expired``."""

    REQUESTED = "requested"
    ACTIVE = "active"
    EXPIRED = "expired"
    DENIED = "denied"
    REVOKED = "revoked"


def grant_state(status: GrantStatus, ends_at: datetime | None, now: datetime) -> GrantState:
    """An approved grant is active strictly before ``ends_at``, expired from it on; no job
    has to run for a grant to expire."""
    if status is GrantStatus.APPROVED:
        return GrantState.ACTIVE if ends_at is not None and now < ends_at else GrantState.EXPIRED
    return GrantState(status.value)


class GrantAction(StrEnum):
    APPROVE = "approve"
    DENY = "deny"
    REVOKE = "revoke"


#: The legal transitions: state now → action → stored status after. Anything else is
#: refused (an expired, denied or revoked grant is final).
TRANSITIONS: dict[GrantState, dict[GrantAction, GrantStatus]] = {
    GrantState.REQUESTED: {
        GrantAction.APPROVE: GrantStatus.APPROVED,
        GrantAction.DENY: GrantStatus.DENIED,
        # Withdrawing a request.
        GrantAction.REVOKE: GrantStatus.REVOKED,
    },
    GrantState.ACTIVE: {GrantAction.REVOKE: GrantStatus.REVOKED},
}


def next_status(state: GrantState, action: GrantAction) -> GrantStatus | None:
    """The status ``action`` leads to from ``state``; None when it is not allowed."""
    return TRANSITIONS.get(state, {}).get(action)


def allowed_actions(state: GrantState) -> list[GrantAction]:
    return list(TRANSITIONS.get(state, {}))


@dataclass(frozen=True, slots=True)
class Party:
    """Someone acting on a grant: the person (``member:<id>``, or for an API token the
    actor who created it) and the permissions they act with."""

    person: str
    member_id: uuid.UUID | None
    permissions: frozenset[Permission]

    @property
    def named_member(self) -> uuid.UUID | None:
        """The member the person is (for a token, the member who created it), to name as
        who decided; None when the person is no member (a product, a system actor)."""
        if self.member_id is not None:
            return self.member_id
        kind, _, raw = self.person.partition(":")
        if kind != "member":
            return None
        try:
            return uuid.UUID(raw)
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class GrantFacts:
    """What the rules need to know about a grant."""

    admin_id: uuid.UUID
    #: The person who asked (``Party.person`` of the requester).
    requested_by: str
    status: GrantStatus
    ends_at: datetime | None
    emergency: bool = False
    review_required: bool = False


@dataclass(frozen=True, slots=True)
class Verdict:
    """Yes, or no with the reason, written for the person refused."""

    allowed: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.allowed


YES = Verdict(True)


def _four_eyes(grant: GrantFacts, party: Party, *, own: str, asked: str, doing: str) -> Verdict:
    if Permission.ACCESS_APPROVE not in party.permissions:
        return Verdict(False, f"only a privacy officer (access:approve) may {doing}")
    if party.person == f"member:{grant.admin_id}":
        return Verdict(False, own)
    if party.person == grant.requested_by:
        return Verdict(False, asked)
    return YES


def can_approve_access(grant: GrantFacts, approver: Party) -> Verdict:
    """Four eyes: a privacy officer who is neither the admin getting access nor the
    person who asked for it decides (approves or denies). Holds for owners too, who
    cannot approve at all unless they also hold the privacy-officer role."""
    return _four_eyes(
        grant,
        approver,
        own="you cannot decide on access to data for yourself: another privacy officer must",
        asked="you requested this access, so another privacy officer must decide on it",
        doing="decide on a request for access to data",
    )


def can_review_access(grant: GrantFacts, reviewer: Party) -> Verdict:
    """Emergency access skips approval, so the after-the-fact review is the second pair
    of eyes: the same people as for approval."""
    return _four_eyes(
        grant,
        reviewer,
        own="you cannot review your own emergency access: another privacy officer must",
        asked="you started this emergency access, so another privacy officer must review it",
        doing="review emergency access",
    )


def can_delay_disclosure(grant: GrantFacts, party: Party) -> Verdict:
    """Hiding a grant from its member is the privacy officer's call, and never the call
    of whoever benefits from the access."""
    return _four_eyes(
        grant,
        party,
        own="you cannot hide your own access to data from the member",
        asked="you requested this access, so another privacy officer decides when the member "
        "is told",
        doing="delay telling a member about access to their data",
    )


def can_revoke_access(grant: GrantFacts, party: Party) -> Verdict:
    """Ending access needs no second person: whoever may revoke (access:revoke: owners,
    admins, privacy officers) may end any grant or withdraw any request, and the admin
    holding it or whoever asked for it may always end their own. It is audited."""
    if Permission.ACCESS_REVOKE in party.permissions:
        return YES
    if party.person in (f"member:{grant.admin_id}", grant.requested_by):
        return YES
    return Verdict(False, "only the admin holding this access or a privacy officer may end it")


@dataclass(frozen=True, slots=True)
class GrantRequest:
    """What an admin asks for, as the rules see it."""

    on_unit: bool
    categories: frozenset[DataCategory]
    #: None: every product.
    product_ids: frozenset[uuid.UUID] | None
    justification: str
    duration_hours: int
    emergency: bool
    case_reference: str | None = None


def request_problems(request: GrantRequest, policy: PolicyRules) -> list[FieldProblem]:
    """Everything wrong with a request under ``policy``; empty when it may be made."""
    problems = []
    if not request.categories:
        problems.append(FieldProblem("categories", "name at least one category"))
    if request.on_unit and not request.categories <= UNIT_CATEGORIES:
        problems.append(
            FieldProblem("categories", "a unit's data may be opened for diagnostic data only")
        )
    if request.product_ids is not None and not request.product_ids:
        problems.append(FieldProblem("product_ids", "name at least one product, or all"))
    if len(request.justification.strip()) < JUSTIFICATION_MIN_LENGTH:
        problems.append(
            FieldProblem(
                "justification",
                f"say why, in at least {JUSTIFICATION_MIN_LENGTH} characters: the member reads it",
            )
        )
    if len(request.justification) > JUSTIFICATION_MAX_LENGTH:
        problems.append(
            FieldProblem("justification", f"has more than {JUSTIFICATION_MAX_LENGTH} characters")
        )
    if request.case_reference and len(request.case_reference) > CASE_REFERENCE_MAX_LENGTH:
        problems.append(
            FieldProblem("case_reference", f"has more than {CASE_REFERENCE_MAX_LENGTH} characters")
        )
    if request.emergency and not policy.emergency_allowed:
        problems.append(
            FieldProblem("emergency", "the organisation's policy does not allow emergency access")
        )
    cap = policy.emergency_max_hours if request.emergency else policy.max_duration_hours
    if request.duration_hours > cap:
        what = "emergency access" if request.emergency else "access"
        problems.append(
            FieldProblem(
                "duration_hours", f"the organisation's policy allows {what} for at most {cap} hours"
            )
        )
    if request.duration_hours < 1:
        problems.append(FieldProblem("duration_hours", "must be at least 1 hour"))
    return problems


def access_window(start: datetime, duration_hours: int) -> tuple[datetime, datetime]:
    """When access given at ``start`` begins and ends."""
    return start, start + timedelta(hours=duration_hours)


def disclosure_delay_problems(
    until: datetime, reason: str, policy: PolicyRules, now: datetime
) -> list[FieldProblem]:
    """A delay needs a recorded reason and an end date within the policy's limit."""
    problems = []
    if policy.max_disclosure_delay_days <= 0:
        problems.append(
            FieldProblem("until", "the organisation's policy does not allow delaying disclosure")
        )
    elif until > now + timedelta(days=policy.max_disclosure_delay_days):
        problems.append(
            FieldProblem(
                "until",
                f"the policy allows a delay of at most {policy.max_disclosure_delay_days} days",
            )
        )
    if until <= now:
        problems.append(FieldProblem("until", "must be in the future"))
    if len(reason.strip()) < JUSTIFICATION_MIN_LENGTH:
        problems.append(
            FieldProblem("reason", f"record why, in at least {JUSTIFICATION_MIN_LENGTH} characters")
        )
    return problems


def is_disclosed(delayed_until: datetime | None, now: datetime) -> bool:
    """Whether the member may see a grant (and its accesses) now."""
    return delayed_until is None or delayed_until <= now


class DenyReason(StrEnum):
    """Why an access check said no (the answer's ``reason``)."""

    NO_GRANT = "no_grant"
    PENDING_APPROVAL = "pending_approval"
    DENIED = "denied"
    EXPIRED = "expired"
    REVOKED = "revoked"
    CATEGORY_NOT_GRANTED = "category_not_granted"
    PRODUCT_NOT_GRANTED = "product_not_granted"


ALLOWED = "allowed"

#: When several grants cover a check, the most useful answer wins: access, then a grant
#: that is live but narrower, then one on its way, then the ones that are over.
OUTCOME_ORDER: tuple[str, ...] = (
    ALLOWED,
    DenyReason.CATEGORY_NOT_GRANTED,
    DenyReason.PRODUCT_NOT_GRANTED,
    DenyReason.PENDING_APPROVAL,
    DenyReason.EXPIRED,
    DenyReason.REVOKED,
    DenyReason.DENIED,
)


@dataclass(frozen=True, slots=True)
class CheckedGrant:
    """A grant covering the admin and member of a check."""

    id: uuid.UUID
    status: GrantStatus
    ends_at: datetime | None
    categories: frozenset[str]
    all_products: bool
    product_ids: frozenset[str]


def grant_outcome(grant: CheckedGrant, category: str, product_id: uuid.UUID, now: datetime) -> str:
    """``allowed`` or the reason ``grant`` does not allow this read now."""
    state = grant_state(grant.status, grant.ends_at, now)
    if state is not GrantState.ACTIVE:
        return {
            GrantState.REQUESTED: DenyReason.PENDING_APPROVAL,
            GrantState.DENIED: DenyReason.DENIED,
            GrantState.REVOKED: DenyReason.REVOKED,
            GrantState.EXPIRED: DenyReason.EXPIRED,
        }[state].value
    if category not in grant.categories:
        return DenyReason.CATEGORY_NOT_GRANTED.value
    if not grant.all_products and str(product_id) not in grant.product_ids:
        return DenyReason.PRODUCT_NOT_GRANTED.value
    return ALLOWED


def answer_check(
    grants: Iterable[CheckedGrant], category: str, product_id: uuid.UUID, now: datetime
) -> tuple[str, uuid.UUID | None]:
    """The answer to a check over the grants covering it: (outcome, grant) where outcome
    is ``allowed`` or a DenyReason value, and grant the one that decided (None when no
    grant covers the admin and member)."""
    ranked: Sequence[tuple[int, float, str, uuid.UUID]] = sorted(
        (
            OUTCOME_ORDER.index(outcome := grant_outcome(g, category, product_id, now)),
            -(g.ends_at.timestamp() if g.ends_at else float("-inf")),
            outcome,
            g.id,
        )
        for g in grants
    )
    if not ranked:
        return DenyReason.NO_GRANT.value, None
    _, _, outcome, grant_id = ranked[0]
    return outcome, grant_id
