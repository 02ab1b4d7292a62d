"""The member lifecycle as a table of legal transitions; plain Python, no I/O.

    invited ──activate──▶ active ──begin_departure──▶ departing ──suspend──▶ suspended
                           ▲  │                                               │
                           │  └──────────────suspend─────────────────────────▶│
                           │                                               depart
                      reinstate (from departing, suspended, departed)         ▼
                           └───────────────────────────────────────────── departed ──purge──▶ purged

Purged is final: the member's data is gone and only the audit trail remains.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from tenants.errors import ConflictError, FieldProblem, IllegalTransitionError


class MemberStatus(StrEnum):
    INVITED = "invited"
    ACTIVE = "active"
    DEPARTING = "departing"
    SUSPENDED = "suspended"
    DEPARTED = "departed"
    PURGED = "purged"


class LifecycleAction(StrEnum):
    ACTIVATE = "activate"
    BEGIN_DEPARTURE = "begin_departure"
    SUSPEND = "suspend"
    DEPART = "depart"
    PURGE = "purge"
    REINSTATE = "reinstate"


#: Each action as the verb of "cannot … a member who is …", the way people say it.
DOING: dict[LifecycleAction, str] = {
    LifecycleAction.ACTIVATE: "activate",
    LifecycleAction.BEGIN_DEPARTURE: "start the departure of",
    LifecycleAction.SUSPEND: "suspend",
    LifecycleAction.DEPART: "mark as departed",
    LifecycleAction.PURGE: "purge",
    LifecycleAction.REINSTATE: "reinstate",
}


@dataclass(frozen=True, slots=True)
class Transition:
    sources: frozenset[MemberStatus]
    target: MemberStatus


S = MemberStatus
TRANSITIONS: dict[LifecycleAction, Transition] = {
    LifecycleAction.ACTIVATE: Transition(frozenset({S.INVITED}), S.ACTIVE),
    LifecycleAction.BEGIN_DEPARTURE: Transition(frozenset({S.ACTIVE}), S.DEPARTING),
    LifecycleAction.SUSPEND: Transition(frozenset({S.INVITED, S.ACTIVE, S.DEPARTING}), S.SUSPENDED),
    LifecycleAction.DEPART: Transition(frozenset({S.SUSPENDED}), S.DEPARTED),
    LifecycleAction.PURGE: Transition(frozenset({S.DEPARTED}), S.PURGED),
    LifecycleAction.REINSTATE: Transition(
        frozenset({S.DEPARTING, S.SUSPENDED, S.DEPARTED}), S.ACTIVE
    ),
}

#: Statuses in which a member may sign in and use products.
SIGN_IN_ALLOWED: frozenset[MemberStatus] = frozenset({S.INVITED, S.ACTIVE, S.DEPARTING})


#: The actions offered directly (API ``/transitions``, the console's member page). A member
#: leaves through a departure (which suspends and departs them step by step) and is
#: erased through the erasure path (which purges them); ``begin_departure`` is accepted
#: only to point at the departure API.
DIRECT_ACTIONS: frozenset[LifecycleAction] = frozenset({
    LifecycleAction.ACTIVATE, LifecycleAction.BEGIN_DEPARTURE, LifecycleAction.SUSPEND,
    LifecycleAction.REINSTATE,
})


class DirectAction(StrEnum):
    """``LifecycleAction`` restricted to ``DIRECT_ACTIONS`` (the API's input)."""

    ACTIVATE = "activate"
    BEGIN_DEPARTURE = "begin_departure"
    SUSPEND = "suspend"
    REINSTATE = "reinstate"


def offered_actions(status: MemberStatus) -> list[LifecycleAction]:
    """The direct actions legal from ``status`` (what the API and console offer)."""
    return [a for a in allowed_actions(status) if a in DIRECT_ACTIONS]


def allowed_actions(status: MemberStatus) -> list[LifecycleAction]:
    """The actions legal from ``status``, in declaration order (stable for messages)."""
    return [action for action, t in TRANSITIONS.items() if status in t.sources]


def next_status(
    status: MemberStatus, action: LifecycleAction, *, direct: bool = False
) -> MemberStatus:
    """The status after ``action``; raises IllegalTransitionError naming the legal actions
    (with ``direct``, those offered directly)."""
    transition = TRANSITIONS[action]
    if status not in transition.sources:
        allowed = offered_actions(status) if direct else allowed_actions(status)
        names = ", ".join(a.value for a in allowed) or "none (this status is final)"
        raise IllegalTransitionError(
            f"cannot {DOING[action]} a member who is {status.value}; "
            f"what can be done now: {names}",
            extra={
                "member_status": status.value,
                "action": action.value,
                "allowed_actions": [a.value for a in allowed],
            },
        )
    return transition.target


def can_sign_in(status: MemberStatus) -> bool:
    return status in SIGN_IN_ALLOWED


def check_changeable(status: MemberStatus) -> None:
    """Refuse a change to an erased (purged) member's record: it keeps only what the law
    requires, under placeholders, and is not a member any more (an owner once gave one
    the admin role). ConflictError naming ``status``; None for every other status."""
    if status is MemberStatus.PURGED:
        raise ConflictError(
            "this member was erased: their record keeps only what the law requires and "
            "cannot be changed",
            fields=[FieldProblem("status", "is purged")],
        )
