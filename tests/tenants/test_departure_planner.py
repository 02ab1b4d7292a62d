"""The departure planner: pure decisions, checked over generated policies and items."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from random import Random
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenants.content.models import ContentKind
from tenants.departures import planner
from tenants.departures.models import ContentAction, PersonalOutcome
from tenants.departures.planner import (
    Item,
    ItemAction,
    Person,
    PolicyView,
    SuccessorSource,
    choose_successor,
    decide,
    groups_of,
    plan_departure,
    schedule_for,
)

PRODUCTS = [uuid.UUID(int=i) for i in range(1, 5)]
NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
UTC_ZONE = ZoneInfo("UTC")
LEAVER = Person(uuid.uuid4(), "Lea Leaver", "lea@example.org", manager_id=None)
BOSS = Person(uuid.uuid4(), "Bo Boss", "bo@example.org")

policies = st.builds(
    PolicyView,
    fallback_successor_id=st.none(),
    default_action=st.sampled_from(ContentAction),
    product_actions=st.dictionaries(st.sampled_from(PRODUCTS), st.sampled_from(ContentAction)),
    retention_days=st.integers(0, 400),
    export_window_days=st.integers(0, 60),
    personal_outcome=st.sampled_from(PersonalOutcome),
    reinstatement_returns_items=st.booleans(),
)
items = st.lists(
    st.builds(
        Item,
        id=st.uuids(),
        product_id=st.sampled_from(PRODUCTS),
        kind=st.sampled_from(ContentKind),
        legal_hold=st.booleans(),
        size=st.integers(0, 10**9),
    ),
    max_size=60,
)


def plan_for(policy: PolicyView, its: list[Item], successor: Person | None) -> planner.Plan:
    return plan_departure(
        policy, LEAVER, groups_of(its),
        schedule=schedule_for(date(2026, 12, 31), policy, UTC_ZONE),
        successor=successor,
        successor_source=SuccessorSource.MANAGER if successor else SuccessorSource.NONE,
        now=NOW,
    )


@given(policies, items, st.booleans())
def test_every_item_gets_exactly_one_action_and_totals_add_up(
    policy: PolicyView, its: list[Item], has_successor: bool
) -> None:
    plan = plan_for(policy, its, BOSS if has_successor else None)
    matching = [
        [r for r in plan.rows if (r.product_id, r.kind, r.legal_hold) ==
         (i.product_id, i.kind, i.legal_hold)]
        for i in its
    ]
    assert all(len(m) == 1 for m in matching)
    assert plan.total.count == len(its)
    assert plan.total.bytes == sum(i.size for i in its)
    assert sum(t.count for t in plan.totals_by("action").values()) == len(its)
    assert sum(t.count for t in plan.totals_by("product").values()) == len(its)


@given(policies, items, st.booleans())
def test_items_under_legal_hold_are_never_deleted(
    policy: PolicyView, its: list[Item], has_successor: bool
) -> None:
    plan = plan_for(policy, its, BOSS if has_successor else None)
    deleting = {ItemAction.DELETE_AFTER_RETENTION, ItemAction.EXPORT_THEN_DELETE}
    for item in its:
        if item.legal_hold:
            assert plan.decision_for(item).action not in deleting


@given(policies, items)
def test_personal_items_are_never_transferred_to_a_successor(
    policy: PolicyView, its: list[Item]
) -> None:
    plan = plan_for(policy, its, BOSS)
    for item in its:
        row = plan.decision_for(item)
        if item.kind is ContentKind.PERSONAL:
            assert row.action in {ItemAction.EXPORT_THEN_DELETE, ItemAction.EXPORT_THEN_ARCHIVE}
            assert row.target_id is None
            assert row.deadline == plan.schedule.export_until


# The decision rule as the preview states it (console and API show each row's reason):
# (kind, policy action or personal outcome, legal hold, successor) -> (action, reason, held).
ORG, PERSONAL = ContentKind.ORGANISATION, ContentKind.PERSONAL
DECISIONS = [
    (PERSONAL, PersonalOutcome.DELETE, True, True, ItemAction.EXPORT_THEN_ARCHIVE,
     "personal; under legal hold, so the organisation keeps it after the export window", True),
    (PERSONAL, PersonalOutcome.ARCHIVE, True, True, ItemAction.EXPORT_THEN_ARCHIVE,
     "personal; under legal hold, so the organisation keeps it after the export window", False),
    (PERSONAL, PersonalOutcome.ARCHIVE, False, True, ItemAction.EXPORT_THEN_ARCHIVE,
     "personal; export it before your access ends, the organisation keeps a copy", False),
    (PERSONAL, PersonalOutcome.DELETE, False, True, ItemAction.EXPORT_THEN_DELETE,
     "personal; export it before your access ends, it is deleted after retention", False),
    (ORG, ContentAction.TRANSFER, False, True, ItemAction.TRANSFER,
     "work content; handed to the successor", False),
    (ORG, ContentAction.TRANSFER, True, False, ItemAction.ARCHIVE,
     "work content; no successor, kept in the archive", False),
    (ORG, ContentAction.DELETE, True, True, ItemAction.ARCHIVE,
     "work content under legal hold; kept instead of deleted", True),
    (ORG, ContentAction.DELETE, False, True, ItemAction.DELETE_AFTER_RETENTION,
     "work content; deleted when retention ends", False),
    (ORG, ContentAction.ARCHIVE, True, True, ItemAction.ARCHIVE,
     "work content; kept in the organisation archive", False),
]


@pytest.mark.parametrize(
    ("kind", "rule", "legal_hold", "has_successor", "action", "reason", "held"), DECISIONS
)
def test_each_decision_comes_with_the_reason_the_preview_shows(
    kind: ContentKind, rule: ContentAction | PersonalOutcome, legal_hold: bool,
    has_successor: bool, action: ItemAction, reason: str, held: bool,
) -> None:
    policy = (
        PolicyView(personal_outcome=rule) if isinstance(rule, PersonalOutcome)
        else PolicyView(default_action=rule)
    )
    decision = decide(policy, PRODUCTS[0], kind, legal_hold, has_successor=has_successor)
    assert (decision.action, decision.reason, decision.held) == (action, reason, held)
    row = plan_for(policy, [Item(uuid.uuid4(), PRODUCTS[0], kind, legal_hold)],
                   BOSS if has_successor else None).rows[0]
    assert (row.action, row.reason, row.held) == (action, reason, held)
    assert row.target_id == (BOSS.id if action is ItemAction.TRANSFER else None)


def test_work_content_goes_to_the_successor_when_the_policy_transfers_it() -> None:
    decision = decide(PolicyView(), PRODUCTS[0], ContentKind.ORGANISATION, False,
                      has_successor=True)
    assert decision.action is ItemAction.TRANSFER


NO_SUCCESSOR = planner.Warning(
    "no_successor",
    "nobody can receive this member's work content (no manager, no fallback successor): "
    "it is kept in the organisation archive instead",
)
LEGAL_HOLD = planner.Warning(
    "legal_hold", "some items are under legal hold and will not be deleted"
)


def test_without_a_successor_work_content_is_archived_and_the_plan_warns() -> None:
    its = [Item(uuid.uuid4(), PRODUCTS[0], ContentKind.ORGANISATION, False, size=10)]
    plan = plan_for(PolicyView(), its, None)
    assert plan.rows[0].action is ItemAction.ARCHIVE
    assert plan.warnings == (NO_SUCCESSOR,)


@pytest.mark.parametrize(
    ("policy", "kind", "successor", "warned"),
    [
        # Transferred by a per-product rule, archived by default: still nobody to receive it.
        (PolicyView(default_action=ContentAction.ARCHIVE,
                    product_actions={PRODUCTS[0]: ContentAction.TRANSFER}), ORG, None, True),
        # Kept by a per-product rule although the default transfers: nothing to receive.
        (PolicyView(product_actions={PRODUCTS[0]: ContentAction.ARCHIVE}), ORG, None, False),
        # Personal items are never transferred, so they need no successor.
        (PolicyView(), PERSONAL, None, False),
        (PolicyView(), ORG, BOSS, False),
    ],
)
def test_the_plan_warns_of_no_successor_only_when_work_content_should_be_transferred(
    policy: PolicyView, kind: ContentKind, successor: Person | None, warned: bool
) -> None:
    plan = plan_for(policy, [Item(uuid.uuid4(), PRODUCTS[0], kind, False)], successor)
    assert (NO_SUCCESSOR in plan.warnings) is warned


def test_each_row_takes_effect_at_its_actions_moment_of_the_schedule() -> None:
    schedule = planner.Schedule(
        last_day=date(2026, 12, 31),
        suspend_at=datetime(2027, 1, 1, tzinfo=UTC),
        export_until=datetime(2027, 1, 8, tzinfo=UTC),
        purge_at=datetime(2027, 2, 1, tzinfo=UTC),
    )
    policy = PolicyView(product_actions={PRODUCTS[1]: ContentAction.DELETE,
                                         PRODUCTS[2]: ContentAction.ARCHIVE})
    its = [
        Item(uuid.uuid4(), PRODUCTS[0], ORG, False),
        Item(uuid.uuid4(), PRODUCTS[1], ORG, False),
        Item(uuid.uuid4(), PRODUCTS[1], ORG, True),
        Item(uuid.uuid4(), PRODUCTS[2], ORG, False),
        Item(uuid.uuid4(), PRODUCTS[0], PERSONAL, False),
        Item(uuid.uuid4(), PRODUCTS[1], PERSONAL, True),
    ]
    plan = plan_departure(
        policy, LEAVER, groups_of(its), schedule=schedule, successor=BOSS,
        successor_source=SuccessorSource.MANAGER, now=NOW,
    )
    assert [plan.decision_for(i).deadline for i in its] == [
        schedule.suspend_at, schedule.purge_at, schedule.suspend_at, schedule.suspend_at,
        schedule.export_until, schedule.export_until,
    ]


@given(policies, items, st.booleans(), st.randoms(use_true_random=False))
def test_the_plan_is_the_same_whatever_order_the_items_come_in(
    policy: PolicyView, its: list[Item], has_successor: bool, random: Random
) -> None:
    shuffled = list(its)
    random.shuffle(shuffled)
    successor = BOSS if has_successor else None
    assert plan_for(policy, shuffled, successor) == plan_for(policy, its, successor)


def test_a_per_product_action_overrides_the_default() -> None:
    policy = PolicyView(product_actions={PRODUCTS[1]: ContentAction.DELETE})
    its = [
        Item(uuid.uuid4(), PRODUCTS[0], ContentKind.ORGANISATION, False),
        Item(uuid.uuid4(), PRODUCTS[1], ContentKind.ORGANISATION, False),
        Item(uuid.uuid4(), PRODUCTS[1], ContentKind.ORGANISATION, True),
    ]
    plan = plan_for(policy, its, BOSS)
    assert [plan.decision_for(i).action for i in its] == [
        ItemAction.TRANSFER, ItemAction.DELETE_AFTER_RETENTION, ItemAction.ARCHIVE,
    ]
    assert plan.held.count == 1
    assert plan.decision_for(its[1]).deadline == plan.schedule.purge_at
    assert "legal_hold" in {w.code for w in plan.warnings}


def test_dates_follow_the_last_day_and_retention() -> None:
    schedule = schedule_for(date(2026, 12, 31), PolicyView(retention_days=30), UTC_ZONE)
    assert schedule.suspend_at == datetime(2027, 1, 1, tzinfo=UTC)
    assert schedule.export_until == schedule.suspend_at
    assert schedule.purge_at == schedule.suspend_at + timedelta(days=30)


@pytest.mark.parametrize(
    ("zone", "ends"),
    [
        # A Los Angeles member's last day is over at midnight there, 08:00 UTC the next day
        # (read as a UTC day, their sign-in ended at 4 pm on it); Auckland's before noon
        # UTC of the last day itself (13 hours of the next day were theirs).
        ("America/Los_Angeles", datetime(2027, 1, 1, 8, tzinfo=UTC)),
        ("Pacific/Auckland", datetime(2026, 12, 31, 11, tzinfo=UTC)),
        ("Europe/London", datetime(2027, 1, 1, tzinfo=UTC)),
    ],
)
def test_the_last_day_ends_at_midnight_in_the_organisation_s_zone(
    zone: str, ends: datetime
) -> None:
    schedule = schedule_for(date(2026, 12, 31), PolicyView(retention_days=30), ZoneInfo(zone))
    assert schedule.suspend_at == ends == schedule.export_until
    assert schedule.purge_at == ends + timedelta(days=30)


def test_short_notice_for_personal_items_is_flagged() -> None:
    its = [Item(uuid.uuid4(), PRODUCTS[0], ContentKind.PERSONAL, False)]
    plan = plan_departure(
        PolicyView(export_window_days=14), LEAVER, groups_of(its),
        schedule=schedule_for(NOW.date() + timedelta(days=2), PolicyView(), UTC_ZONE),
        successor=BOSS, successor_source=SuccessorSource.MANAGER, now=NOW,
    )
    assert "short_export_window" in {w.code for w in plan.warnings}


@pytest.mark.parametrize(
    ("notice", "kind", "warning"),
    [
        (timedelta(days=14), PERSONAL, None),
        (timedelta(days=14, seconds=-1),
         PERSONAL, "the member has 13 days to export personal items; the policy asks for 14"),
        (timedelta(hours=20),
         PERSONAL, "the member has 0 days to export personal items; the policy asks for 14"),
        (timedelta(days=-3),
         PERSONAL, "the member has 0 days to export personal items; the policy asks for 14"),
        (timedelta(days=2), ORG, None),
    ],
)
def test_notice_shorter_than_the_export_window_is_flagged_with_the_days_left(
    notice: timedelta, kind: ContentKind, warning: str | None
) -> None:
    policy = PolicyView(export_window_days=14)
    schedule = schedule_for(date(2026, 12, 31), policy, UTC_ZONE)
    plan = plan_departure(
        policy, LEAVER, groups_of([Item(uuid.uuid4(), PRODUCTS[0], kind, False)]),
        schedule=schedule, successor=BOSS, successor_source=SuccessorSource.MANAGER,
        now=schedule.export_until - notice,
    )
    flagged = [w.message for w in plan.warnings if w.code == "short_export_window"]
    assert flagged == ([warning] if warning else [])


def test_a_plan_with_held_items_warns_they_will_not_be_deleted() -> None:
    its = [Item(uuid.uuid4(), PRODUCTS[0], ORG, True)]
    plan = plan_for(PolicyView(default_action=ContentAction.DELETE), its, BOSS)
    assert plan.warnings == (LEGAL_HOLD,)
    assert plan_for(PolicyView(default_action=ContentAction.DELETE), its[:0], BOSS).warnings == ()


def test_successor_is_the_chosen_one_then_the_manager_then_the_fallback() -> None:
    fallback = Person(uuid.uuid4(), "Fay Fallback", "fay@example.org")
    inactive = Person(uuid.uuid4(), "Ina", "ina@example.org", is_active=False)
    policy = PolicyView()
    pick = choose_successor
    assert pick(policy, LEAVER, chosen=BOSS, manager=fallback, fallback=None) == (
        BOSS, SuccessorSource.CHOSEN)
    assert pick(policy, LEAVER, chosen=inactive, manager=BOSS, fallback=fallback) == (
        BOSS, SuccessorSource.MANAGER)
    assert pick(policy, LEAVER, chosen=None, manager=inactive, fallback=fallback) == (
        fallback, SuccessorSource.FALLBACK)
    assert pick(policy, LEAVER, chosen=LEAVER, manager=None, fallback=None) == (
        None, SuccessorSource.NONE)


def test_policy_survives_a_round_trip_through_json() -> None:
    policy = PolicyView(
        fallback_successor_id=uuid.uuid4(), default_action=ContentAction.ARCHIVE,
        product_actions={PRODUCTS[0]: ContentAction.DELETE}, retention_days=7,
        export_window_days=3, personal_outcome=PersonalOutcome.ARCHIVE,
        reinstatement_returns_items=False,
    )
    assert PolicyView.from_json(policy.to_json()) == policy


# --- the plan and the policy as stored --------------------------------------------------------


@given(policies, st.one_of(st.none(), st.uuids()))
def test_a_policy_read_back_from_its_json_is_the_same_policy(
    policy: PolicyView, fallback: uuid.UUID | None
) -> None:
    policy = PolicyView(
        fallback, policy.default_action, policy.product_actions, policy.retention_days,
        policy.export_window_days, policy.personal_outcome, policy.reinstatement_returns_items,
    )
    assert PolicyView.from_json(policy.to_json()) == policy


def test_a_policy_stored_before_a_field_existed_reads_with_that_fields_default() -> None:
    assert PolicyView.from_json({}) == planner.DEFAULT_POLICY
    assert planner.DEFAULT_POLICY.to_json() == {
        "fallback_successor_id": None,
        "default_action": "transfer",
        "product_actions": {},
        "retention_days": 30,
        "export_window_days": 14,
        "personal_outcome": "delete",
        "reinstatement_returns_items": True,
    }


def test_a_plan_in_json_states_its_people_totals_and_warnings() -> None:
    chat, mail = PRODUCTS[0], PRODUCTS[1]
    its = [
        Item(uuid.uuid4(), chat, ContentKind.ORGANISATION, False, size=100),
        Item(uuid.uuid4(), chat, ContentKind.ORGANISATION, False, size=50),
        Item(uuid.uuid4(), mail, ContentKind.PERSONAL, False, size=7),
        Item(uuid.uuid4(), mail, ContentKind.ORGANISATION, True, size=3),
    ]
    policy = PolicyView(product_actions={mail: ContentAction.DELETE})
    plan = plan_for(policy, its, BOSS)
    data = plan.to_json()
    assert data["member_id"] == str(LEAVER.id)
    assert data["successor_id"] == str(BOSS.id)
    assert data["successor_source"] == "manager"
    assert data["total"] == {"count": 4, "bytes": 160}
    assert data["held"] == {"count": 1, "bytes": 3}
    assert data["by_product"] == {
        str(chat): {"count": 2, "bytes": 150}, str(mail): {"count": 2, "bytes": 10}
    }
    assert data["by_kind"] == {
        "organisation": {"count": 3, "bytes": 153}, "personal": {"count": 1, "bytes": 7}
    }
    assert data["by_action"] == {
        row.action.value: {"count": sum(r.count for r in plan.rows if r.action == row.action),
                           "bytes": sum(r.bytes for r in plan.rows if r.action == row.action)}
        for row in plan.rows
    }
    assert data["warnings"] == [{"code": w.code, "message": w.message} for w in plan.warnings]
    alone = plan_for(policy, its, None).to_json()
    assert (alone["successor_id"], alone["successor_source"]) == (None, "none")


def test_single_items_are_grouped_by_product_kind_and_hold_with_counts_and_sizes() -> None:
    chat = PRODUCTS[0]
    its = [
        Item(uuid.uuid4(), chat, ContentKind.ORGANISATION, False, size=100),
        Item(uuid.uuid4(), chat, ContentKind.ORGANISATION, False, size=50),
        Item(uuid.uuid4(), chat, ContentKind.ORGANISATION, True, size=5),
        Item(uuid.uuid4(), chat, ContentKind.PERSONAL, False, size=1),
    ]
    assert groups_of(its) == [
        planner.ItemGroup(chat, ContentKind.ORGANISATION, False, 2, 150),
        planner.ItemGroup(chat, ContentKind.ORGANISATION, True, 1, 5),
        planner.ItemGroup(chat, ContentKind.PERSONAL, False, 1, 1),
    ]


def test_the_schedule_suspends_after_the_last_day_and_purges_after_retention() -> None:
    schedule = schedule_for(date(2026, 12, 31), PolicyView(retention_days=10), UTC_ZONE)
    assert schedule.suspend_at == datetime(2027, 1, 1, tzinfo=UTC)
    assert schedule.export_until == datetime(2027, 1, 1, tzinfo=UTC)
    assert schedule.purge_at == datetime(2027, 1, 11, tzinfo=UTC)
    assert schedule.last_day == date(2026, 12, 31)


def test_an_item_the_plan_did_not_see_is_a_key_error_naming_it() -> None:
    plan = plan_for(PolicyView(), [Item(uuid.uuid4(), PRODUCTS[0], ContentKind.PERSONAL, False)], BOSS)
    unseen = Item(uuid.uuid4(), PRODUCTS[0], ContentKind.PERSONAL, True)
    with pytest.raises(KeyError) as missing:
        plan.decision_for(unseen)
    assert missing.value.args == (unseen.id,)
