"""The member lifecycle table, exercised without a database."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenants.errors import ConflictError, IllegalTransitionError
from tenants.members.lifecycle import (
    TRANSITIONS,
    LifecycleAction,
    MemberStatus,
    allowed_actions,
    can_sign_in,
    check_changeable,
    next_status,
    offered_actions,
)

S, A = MemberStatus, LifecycleAction

LEGAL = {
    (S.INVITED, A.ACTIVATE): S.ACTIVE,
    (S.INVITED, A.SUSPEND): S.SUSPENDED,
    (S.ACTIVE, A.BEGIN_DEPARTURE): S.DEPARTING,
    (S.ACTIVE, A.SUSPEND): S.SUSPENDED,
    (S.DEPARTING, A.SUSPEND): S.SUSPENDED,
    (S.DEPARTING, A.REINSTATE): S.ACTIVE,
    (S.SUSPENDED, A.DEPART): S.DEPARTED,
    (S.SUSPENDED, A.REINSTATE): S.ACTIVE,
    (S.DEPARTED, A.PURGE): S.PURGED,
    (S.DEPARTED, A.REINSTATE): S.ACTIVE,
}


@pytest.mark.parametrize(("status", "action"), [(s, a) for s in S for a in A])
def test_every_pair_is_legal_exactly_as_the_design_says(
    status: MemberStatus, action: LifecycleAction
) -> None:
    if (status, action) in LEGAL:
        assert next_status(status, action) is LEGAL[(status, action)]
    else:
        with pytest.raises(IllegalTransitionError) as refused:
            next_status(status, action)
        assert refused.value.extra["allowed_actions"] == [a.value for a in allowed_actions(status)]
        assert status.value in refused.value.message


def test_purged_is_final() -> None:
    assert allowed_actions(S.PURGED) == []


def test_reinstate_is_possible_until_purge_and_not_after() -> None:
    assert [s for s in S if A.REINSTATE in allowed_actions(s)] == [
        S.DEPARTING,
        S.SUSPENDED,
        S.DEPARTED,
    ]


def test_only_invited_active_and_departing_members_may_sign_in() -> None:
    assert {s for s in S if can_sign_in(s)} == {S.INVITED, S.ACTIVE, S.DEPARTING}


@given(st.lists(st.sampled_from(list(A)), max_size=30))
def test_any_sequence_of_actions_stays_inside_the_table(actions: list[LifecycleAction]) -> None:
    status = S.INVITED
    for action in actions:
        if action in allowed_actions(status):
            after = next_status(status, action)
            assert after is TRANSITIONS[action].target
            status = after
        else:
            with pytest.raises(IllegalTransitionError):
                next_status(status, action)
    assert status in S


def test_an_illegal_action_is_refused_naming_the_status_and_what_is_allowed_from_it() -> None:
    with pytest.raises(IllegalTransitionError) as refused:
        next_status(MemberStatus.ACTIVE, LifecycleAction.PURGE)
    assert refused.value.message == (
        "cannot purge a member who is active; what can be done now: begin_departure, suspend"
    )
    assert refused.value.extra == {
        "member_status": "active",
        "action": "purge",
        "allowed_actions": ["begin_departure", "suspend"],
    }


def test_an_action_on_a_purged_member_says_the_status_is_final() -> None:
    with pytest.raises(IllegalTransitionError) as refused:
        next_status(MemberStatus.PURGED, LifecycleAction.BEGIN_DEPARTURE)
    assert refused.value.message == (
        "cannot start the departure of a member who is purged; "
        "what can be done now: none (this status is final)"
    )
    assert refused.value.extra["allowed_actions"] == []


def test_the_api_and_console_offer_only_the_direct_actions_legal_from_each_status() -> None:
    # Departing and erasing go through their own paths (a departure, the erasure), so
    # depart and purge are never offered directly.
    assert {s: offered_actions(s) for s in S} == {
        S.INVITED: [A.ACTIVATE, A.SUSPEND],
        S.ACTIVE: [A.BEGIN_DEPARTURE, A.SUSPEND],
        S.DEPARTING: [A.SUSPEND, A.REINSTATE],
        S.SUSPENDED: [A.REINSTATE],
        S.DEPARTED: [A.REINSTATE],
        S.PURGED: [],
    }


def test_a_refused_direct_action_names_only_what_is_offered_directly() -> None:
    with pytest.raises(IllegalTransitionError) as refused:
        next_status(MemberStatus.SUSPENDED, LifecycleAction.ACTIVATE, direct=True)
    assert refused.value.message == (
        "cannot activate a member who is suspended; what can be done now: reinstate"
    )
    assert refused.value.extra["allowed_actions"] == ["reinstate"]


def test_only_an_erased_member_is_beyond_change() -> None:
    for status in MemberStatus:
        if status is not MemberStatus.PURGED:
            check_changeable(status)
    with pytest.raises(ConflictError) as refused:
        check_changeable(MemberStatus.PURGED)
    assert refused.value.message == (
        "this member was erased: their record keeps only what the law requires and "
        "cannot be changed"
    )
    assert [(f.field, f.reason) for f in refused.value.fields] == [("status", "is purged")]


def test_every_action_has_words_for_its_refusal() -> None:
    from tenants.members.lifecycle import DOING

    assert set(DOING) == set(LifecycleAction)
