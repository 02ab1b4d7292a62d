"""The rules of data access, without a database: four eyes, time, requests, the check."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenants.access.models import DataCategory, GrantStatus
from tenants.access.rules import (
    DEFAULT_POLICY,
    CheckedGrant,
    DenyReason,
    GrantAction,
    GrantFacts,
    GrantRequest,
    GrantState,
    Party,
    PolicyRules,
    Verdict,
    access_window,
    allowed_actions,
    answer_check,
    can_approve_access,
    can_delay_disclosure,
    can_review_access,
    can_revoke_access,
    disclosure_delay_problems,
    grant_outcome,
    grant_state,
    is_disclosed,
    next_status,
    policy_problems,
    request_problems,
)
from tenants.permissions import Permission, permissions_of

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
ADMIN = uuid.uuid4()
OFFICER = uuid.uuid4()
PRODUCT = uuid.uuid4()


def party(member: uuid.UUID, *roles: str) -> Party:
    return Party(f"member:{member}", member, permissions_of(roles))


def grant(**changes: object) -> GrantFacts:
    values: dict[str, object] = {
        "admin_id": ADMIN,
        "requested_by": f"member:{ADMIN}",
        "status": GrantStatus.REQUESTED,
        "ends_at": None,
    }
    values.update(changes)
    return GrantFacts(**values)  # type: ignore[arg-type]


# --- four eyes ------------------------------------------------------------------------------


def test_the_requester_can_never_approve_their_own_request_even_as_a_privacy_officer() -> None:
    verdict = can_approve_access(grant(), party(ADMIN, "admin", "privacy_officer"))
    assert not verdict
    assert "another privacy officer" in verdict.reason


def test_another_privacy_officer_can_approve() -> None:
    assert can_approve_access(grant(), party(OFFICER, "privacy_officer"))


def test_an_owner_is_not_a_privacy_officer() -> None:
    verdict = can_approve_access(grant(), party(OFFICER, "owner"))
    assert not verdict and "access:approve" in verdict.reason


def test_whoever_asked_on_an_admins_behalf_cannot_approve_either() -> None:
    asked_by_officer = grant(requested_by=f"member:{OFFICER}")
    assert not can_approve_access(asked_by_officer, party(OFFICER, "privacy_officer"))
    token_of_officer = Party(f"member:{OFFICER}", None, frozenset({Permission.ACCESS_APPROVE}))
    assert not can_approve_access(asked_by_officer, token_of_officer)


@given(st.sampled_from(["owner", "admin", "helpdesk", "privacy_officer", "auditor", "member"]))
def test_nobody_approves_access_to_data_for_themselves(role: str) -> None:
    for rule in (can_approve_access, can_review_access, can_delay_disclosure):
        assert not rule(grant(requested_by="api_token:x"), party(ADMIN, role, "privacy_officer"))


def test_revoking_needs_no_second_person() -> None:
    active = grant(status=GrantStatus.APPROVED, ends_at=NOW + timedelta(hours=1))
    assert can_revoke_access(active, party(ADMIN, "admin"))
    assert can_revoke_access(active, party(OFFICER, "privacy_officer"))
    assert can_revoke_access(active, party(OFFICER, "owner"))
    assert not can_revoke_access(active, party(OFFICER, "auditor"))
    assert not can_revoke_access(active, party(OFFICER, "helpdesk"))


# --- time and transitions -------------------------------------------------------------------


def test_an_approved_grant_is_active_until_its_end_and_expired_from_it() -> None:
    end = NOW + timedelta(hours=2)
    assert grant_state(GrantStatus.APPROVED, end, NOW) is GrantState.ACTIVE
    assert grant_state(GrantStatus.APPROVED, end, end - timedelta(microseconds=1)) is (
        GrantState.ACTIVE
    )
    assert grant_state(GrantStatus.APPROVED, end, end) is GrantState.EXPIRED
    assert grant_state(GrantStatus.REVOKED, end, NOW) is GrantState.REVOKED


def test_only_requests_are_decided_and_only_live_grants_revoked() -> None:
    assert next_status(GrantState.REQUESTED, GrantAction.APPROVE) is GrantStatus.APPROVED
    assert next_status(GrantState.REQUESTED, GrantAction.REVOKE) is GrantStatus.REVOKED
    assert next_status(GrantState.ACTIVE, GrantAction.REVOKE) is GrantStatus.REVOKED
    for state in (GrantState.EXPIRED, GrantState.DENIED, GrantState.REVOKED):
        assert all(next_status(state, action) is None for action in GrantAction)
    assert next_status(GrantState.ACTIVE, GrantAction.APPROVE) is None


# --- requests -------------------------------------------------------------------------------


def request(**changes: object) -> GrantRequest:
    values: dict[str, object] = {
        "on_unit": False,
        "categories": frozenset({DataCategory.FILES}),
        "product_ids": None,
        "justification": "Investigating a reported data leak.",
        "duration_hours": 24,
        "emergency": False,
    }
    values.update(changes)
    return GrantRequest(**values)  # type: ignore[arg-type]


def fields(problems: list[object]) -> set[str]:
    return {p.field for p in problems}  # type: ignore[attr-defined]


def test_a_sound_request_has_no_problems() -> None:
    assert request_problems(request(), DEFAULT_POLICY) == []


def test_a_unit_may_be_opened_for_diagnostic_data_only() -> None:
    assert fields(request_problems(request(on_unit=True), DEFAULT_POLICY)) == {"categories"}
    diagnostic = request(on_unit=True, categories=frozenset({DataCategory.DIAGNOSTIC}))
    assert request_problems(diagnostic, DEFAULT_POLICY) == []


def test_the_duration_is_capped_by_the_policy_and_emergency_by_its_own_cap() -> None:
    assert fields(request_problems(request(duration_hours=169), DEFAULT_POLICY)) == {
        "duration_hours"
    }
    allowing = PolicyRules(emergency_allowed=True, emergency_max_hours=8)
    assert request_problems(request(emergency=True, duration_hours=8), allowing) == []
    assert fields(request_problems(request(emergency=True, duration_hours=9), allowing)) == {
        "duration_hours"
    }


def test_emergency_access_needs_the_policy_to_allow_it() -> None:
    assert fields(request_problems(request(emergency=True, duration_hours=1), DEFAULT_POLICY)) == {
        "emergency"
    }


def test_a_justification_says_why_in_more_than_a_word() -> None:
    assert fields(request_problems(request(justification="   because   "), DEFAULT_POLICY)) == {
        "justification"
    }


def test_emergency_access_may_not_outlast_ordinary_access() -> None:
    assert fields(policy_problems(PolicyRules(max_duration_hours=12))) == {"emergency_max_hours"}


# --- disclosure -----------------------------------------------------------------------------


def test_disclosure_may_be_delayed_only_where_allowed_with_a_reason_and_an_end() -> None:
    reason = "Ongoing investigation of fraud, HR-17."
    soon = NOW + timedelta(days=3)
    assert fields(disclosure_delay_problems(soon, reason, DEFAULT_POLICY, NOW)) == {"until"}
    policy = PolicyRules(max_disclosure_delay_days=30)
    assert disclosure_delay_problems(soon, reason, policy, NOW) == []
    assert fields(disclosure_delay_problems(NOW + timedelta(days=31), reason, policy, NOW)) == {
        "until"
    }
    assert fields(disclosure_delay_problems(NOW, reason, policy, NOW)) == {"until"}
    assert fields(disclosure_delay_problems(soon, "secret", policy, NOW)) == {"reason"}


def test_a_delayed_grant_is_shown_once_the_delay_ends() -> None:
    assert is_disclosed(None, NOW)
    assert not is_disclosed(NOW + timedelta(seconds=1), NOW)
    assert is_disclosed(NOW, NOW)


# --- the check ------------------------------------------------------------------------------


def checked(**changes: object) -> CheckedGrant:
    values: dict[str, object] = {
        "id": uuid.uuid4(),
        "status": GrantStatus.APPROVED,
        "ends_at": NOW + timedelta(hours=1),
        "categories": frozenset({"files"}),
        "all_products": False,
        "product_ids": frozenset({str(PRODUCT)}),
    }
    values.update(changes)
    return CheckedGrant(**values)  # type: ignore[arg-type]


def test_each_reason_for_a_refusal() -> None:
    def outcome(**changes: object) -> str:
        return grant_outcome(checked(**changes), "files", PRODUCT, NOW)

    assert outcome() == "allowed"
    assert outcome(ends_at=NOW) == DenyReason.EXPIRED
    assert outcome(status=GrantStatus.REQUESTED, ends_at=None) == DenyReason.PENDING_APPROVAL
    assert outcome(status=GrantStatus.DENIED) == DenyReason.DENIED
    assert outcome(status=GrantStatus.REVOKED) == DenyReason.REVOKED
    assert outcome(categories=frozenset({"diagnostic"})) == DenyReason.CATEGORY_NOT_GRANTED
    assert outcome(product_ids=frozenset({str(uuid.uuid4())})) == DenyReason.PRODUCT_NOT_GRANTED
    assert outcome(product_ids=frozenset(), all_products=True) == "allowed"
    assert answer_check([], "files", PRODUCT, NOW) == (DenyReason.NO_GRANT, None)


def test_the_grant_that_allows_wins_over_any_that_refuse() -> None:
    allowing = checked()
    others = [checked(status=GrantStatus.DENIED), checked(ends_at=NOW - timedelta(hours=1))]
    assert answer_check([*others, allowing], "files", PRODUCT, NOW) == ("allowed", allowing.id)
    narrower = checked(categories=frozenset({"diagnostic"}))
    assert answer_check([others[0], narrower], "files", PRODUCT, NOW) == (
        DenyReason.CATEGORY_NOT_GRANTED,
        narrower.id,
    )


# --- each refusal in the words the admin reads -----------------------------------------------

EMERGENCY_OK = PolicyRules(emergency_allowed=True, emergency_max_hours=8)


@pytest.mark.parametrize(
    ("changes", "policy", "expected"),
    [
        (
            {"categories": frozenset()},
            DEFAULT_POLICY,
            [("categories", "name at least one category")],
        ),
        (
            {"on_unit": True},
            DEFAULT_POLICY,
            [("categories", "a unit's data may be opened for diagnostic data only")],
        ),
        (
            {
                "on_unit": True,
                "categories": frozenset({DataCategory.DIAGNOSTIC, DataCategory.FILES}),
            },
            DEFAULT_POLICY,
            [("categories", "a unit's data may be opened for diagnostic data only")],
        ),
        (
            {"product_ids": frozenset()},
            DEFAULT_POLICY,
            [("product_ids", "name at least one product, or all")],
        ),
        (
            {"justification": " " * 5 + "x" * 19 + " " * 5},
            DEFAULT_POLICY,
            [("justification", "say why, in at least 20 characters: the member reads it")],
        ),
        (
            {"emergency": True, "duration_hours": 1},
            DEFAULT_POLICY,
            [("emergency", "the organisation's policy does not allow emergency access")],
        ),
        (
            {"duration_hours": 169},
            DEFAULT_POLICY,
            [("duration_hours", "the organisation's policy allows access for at most 168 hours")],
        ),
        (
            {"emergency": True, "duration_hours": 9},
            EMERGENCY_OK,
            [
                (
                    "duration_hours",
                    "the organisation's policy allows emergency access for at most 8 hours",
                )
            ],
        ),
        ({"duration_hours": 0}, DEFAULT_POLICY, [("duration_hours", "must be at least 1 hour")]),
    ],
)
def test_each_problem_of_a_request_is_named_once_with_its_reason(
    changes: dict[str, object], policy: PolicyRules, expected: list[tuple[str, str]]
) -> None:
    problems = request_problems(request(**changes), policy)
    assert [(p.field, p.reason) for p in problems] == expected


def test_requests_at_the_limits_are_sound() -> None:
    assert (
        request_problems(request(justification="x" * 20, duration_hours=168), DEFAULT_POLICY) == []
    )
    assert request_problems(request(duration_hours=1), DEFAULT_POLICY) == []
    assert request_problems(request(product_ids=frozenset({PRODUCT})), DEFAULT_POLICY) == []
    assert request_problems(request(emergency=True, duration_hours=8), EMERGENCY_OK) == []


def test_an_emergency_cap_above_the_ordinary_cap_is_refused_with_its_reason() -> None:
    problems = policy_problems(PolicyRules(max_duration_hours=12, emergency_max_hours=13))
    assert [(p.field, p.reason) for p in problems] == [
        ("emergency_max_hours", "cannot exceed max_duration_hours (12)")
    ]
    assert policy_problems(PolicyRules(max_duration_hours=12, emergency_max_hours=12)) == []


@pytest.mark.parametrize(
    ("until", "why", "policy", "expected"),
    [
        (
            NOW + timedelta(days=3),
            "Ongoing investigation of fraud, HR-17.",
            DEFAULT_POLICY,
            [("until", "the organisation's policy does not allow delaying disclosure")],
        ),
        (
            NOW + timedelta(days=31),
            "Ongoing investigation of fraud, HR-17.",
            PolicyRules(max_disclosure_delay_days=30),
            [("until", "the policy allows a delay of at most 30 days")],
        ),
        (
            NOW,
            "Ongoing investigation of fraud, HR-17.",
            PolicyRules(max_disclosure_delay_days=30),
            [("until", "must be in the future")],
        ),
        (
            NOW + timedelta(days=1),
            "  too short  ",
            PolicyRules(max_disclosure_delay_days=30),
            [("reason", "record why, in at least 20 characters")],
        ),
    ],
)
def test_each_problem_of_a_disclosure_delay_is_named_with_its_reason(
    until: datetime, why: str, policy: PolicyRules, expected: list[tuple[str, str]]
) -> None:
    problems = disclosure_delay_problems(until, why, policy, NOW)
    assert [(p.field, p.reason) for p in problems] == expected


def test_a_delay_exactly_at_the_policys_limit_is_allowed() -> None:
    policy = PolicyRules(max_disclosure_delay_days=30)
    why = "x" * 20
    assert disclosure_delay_problems(NOW + timedelta(days=30), why, policy, NOW) == []


@pytest.mark.parametrize(
    ("check", "doing", "own", "asked"),
    [
        (
            can_approve_access,
            "decide on a request for access to data",
            "you cannot decide on access to data for yourself: another privacy officer must",
            "you requested this access, so another privacy officer must decide on it",
        ),
        (
            can_review_access,
            "review emergency access",
            "you cannot review your own emergency access: another privacy officer must",
            "you started this emergency access, so another privacy officer must review it",
        ),
        (
            can_delay_disclosure,
            "delay telling a member about access to their data",
            "you cannot hide your own access to data from the member",
            "you requested this access, so another privacy officer decides when the member is told",
        ),
    ],
)
def test_each_four_eyes_refusal_says_why(check: Any, doing: str, own: str, asked: str) -> None:
    requester = uuid.uuid4()
    facts = grant(requested_by=f"member:{requester}")
    assert check(facts, party(OFFICER, "admin")) == Verdict(
        False, f"only a privacy officer (access:approve) may {doing}"
    )
    assert check(facts, party(ADMIN, "privacy_officer")) == Verdict(False, own)
    assert check(facts, party(requester, "privacy_officer")) == Verdict(False, asked)
    assert check(facts, party(OFFICER, "privacy_officer")) == Verdict(True)


def test_ending_access_is_refused_to_others_with_its_reason() -> None:
    stranger = party(uuid.uuid4(), "member")
    assert can_revoke_access(grant(), stranger) == Verdict(
        False, "only the admin holding this access or a privacy officer may end it"
    )
    asker = uuid.uuid4()
    assert can_revoke_access(grant(requested_by=f"member:{asker}"), party(asker, "member"))
    assert can_revoke_access(grant(), party(ADMIN, "member"))


def test_among_grants_that_allow_the_one_lasting_longest_decides() -> None:
    short = checked(id=uuid.UUID(int=1), ends_at=NOW + timedelta(hours=1))
    long = checked(id=uuid.UUID(int=2), ends_at=NOW + timedelta(hours=5))
    assert answer_check([short, long], "files", PRODUCT, NOW) == ("allowed", long.id)
    assert answer_check([long, short], "files", PRODUCT, NOW) == ("allowed", long.id)


def test_among_refusals_of_one_kind_a_grant_with_an_end_decides_before_one_without() -> None:
    endless = checked(id=uuid.UUID(int=1), status=GrantStatus.DENIED, ends_at=None)
    ending = checked(id=uuid.UUID(int=2), status=GrantStatus.DENIED, ends_at=NOW)
    assert answer_check([endless, ending], "files", PRODUCT, NOW) == (DenyReason.DENIED, ending.id)


def test_the_actions_open_in_each_state_of_a_grant() -> None:
    assert allowed_actions(GrantState.REQUESTED) == [
        GrantAction.APPROVE,
        GrantAction.DENY,
        GrantAction.REVOKE,
    ]
    assert allowed_actions(GrantState.ACTIVE) == [GrantAction.REVOKE]
    assert allowed_actions(GrantState.EXPIRED) == []


def test_access_runs_from_its_start_for_the_hours_granted() -> None:
    assert access_window(NOW, 5) == (NOW, NOW + timedelta(hours=5))


def test_a_policy_allowing_a_one_day_delay_allows_one_day() -> None:
    policy = PolicyRules(max_disclosure_delay_days=1)
    assert disclosure_delay_problems(NOW + timedelta(days=1), "x" * 20, policy, NOW) == []


def test_each_problem_is_said_in_words_beside_its_field_all_at_once() -> None:
    """What the admin reads beside each field of the request form, every problem named."""
    everything_wrong = request(
        on_unit=True,
        categories=frozenset(),
        product_ids=frozenset(),
        justification="x" * 2001,
        case_reference="c" * 201,
        emergency=True,
        duration_hours=0,
    )
    assert [(p.field, p.reason) for p in request_problems(everything_wrong, DEFAULT_POLICY)] == [
        ("categories", "name at least one category"),
        ("product_ids", "name at least one product, or all"),
        ("justification", "has more than 2000 characters"),
        ("case_reference", "has more than 200 characters"),
        ("emergency", "the organisation's policy does not allow emergency access"),
        ("duration_hours", "must be at least 1 hour"),
    ]
    worded = [
        (p.field, p.reason)
        for p in request_problems(
            request(
                on_unit=True,
                categories=frozenset({DataCategory.FILES}),
                justification="too short",
                duration_hours=169,
            ),
            DEFAULT_POLICY,
        )
    ]
    assert worded == [
        ("categories", "a unit's data may be opened for diagnostic data only"),
        ("justification", "say why, in at least 20 characters: the member reads it"),
        ("duration_hours", "the organisation's policy allows access for at most 168 hours"),
    ]
    allowing = PolicyRules(emergency_allowed=True, emergency_max_hours=8)
    assert [
        p.reason for p in request_problems(request(emergency=True, duration_hours=9), allowing)
    ] == ["the organisation's policy allows emergency access for at most 8 hours"]
    # The limits are inclusive: exactly 20 and 2,000 characters, 200 of a reference pass.
    assert (
        request_problems(request(justification="j" * 20, case_reference="c" * 200), DEFAULT_POLICY)
        == []
    )
    assert request_problems(request(justification="j" * 2000), DEFAULT_POLICY) == []


def test_a_policy_change_that_protects_members_less_is_named_in_words() -> None:
    from tenants.access.rules import DEFAULT_POLICY, PolicyRules, weakenings

    assert weakenings(DEFAULT_POLICY, DEFAULT_POLICY) == []
    stricter = PolicyRules(max_duration_hours=24, emergency_max_hours=12)
    assert weakenings(DEFAULT_POLICY, stricter) == []
    looser = PolicyRules(
        max_duration_hours=240,
        emergency_allowed=True,
        emergency_max_hours=48,
        notify_member_per_access=False,
        max_disclosure_delay_days=92,
    )
    said = weakenings(DEFAULT_POLICY, looser)
    assert len(said) == 4
    assert said[0].startswith("Emergency access is allowed")
    assert "240 hours (was 168)" in said[1]
    assert "no longer emailed" in said[2]
    assert "up to 92 days (was 0)" in said[3]
    allowed = PolicyRules(emergency_allowed=True, emergency_max_hours=24)
    longer = PolicyRules(emergency_allowed=True, emergency_max_hours=72)
    assert weakenings(allowed, longer) == ["Emergency access may last 72 hours (was 24)."]
