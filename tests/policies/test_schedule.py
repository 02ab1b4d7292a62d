"""Scheduled changes, without a database: the answer at any time is resolution with the
rules effective then, and ``upcoming`` lists exactly the changes after now (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from policies.resolve import GroupRef, MemberFacts, Rule, TargetKind, resolve_settings
from policies.schedule import (
    TimedRule,
    change_times,
    compile_schedule,
    rules_at,
    upcoming_settings,
)
from tests.policies.test_resolve import CATALOGUE, CHOICES, GROUPS, UNITS, VALUES

U, G = TargetKind.UNIT, TargetKind.GROUP
#: A fixed origin for generated times: hypothesis needs reproducible examples.
ORIGIN = datetime(2030, 1, 1, tzinfo=UTC)


def at(hours: int) -> datetime:
    return ORIGIN + timedelta(hours=hours)


@st.composite
def scheduled_organisations(draw: st.DrawFn) -> tuple[Any, ...]:
    parents: dict[str, str | None] = {"u0": None}
    for index, unit in enumerate(UNITS[1:], start=1):
        parents[unit] = UNITS[draw(st.integers(0, index - 1))]
    priorities = {g: draw(st.integers(-3, 3)) for g in GROUPS}
    rules = []
    seen = set()
    for n in range(draw(st.integers(0, 20))):
        kind = draw(st.sampled_from([U, G]))
        target = draw(st.sampled_from(UNITS if kind is U else GROUPS))
        key = draw(st.sampled_from(["a", "b", "c"]))
        if (kind, target, key) in seen:
            continue
        seen.add((kind, target, key))
        rule = Rule(f"r{n}", kind, target, key, draw(VALUES[key]), draw(st.booleans()),
                    f"reason of r{n}")
        # None: always in force; otherwise an hour among few, so times coincide often.
        hour = draw(st.one_of(st.none(), st.integers(-5, 10)))
        # A scheduled change of a rule in force: the rule it replaces until its time.
        before = None
        if hour is not None and draw(st.booleans()):
            before = Rule(f"r{n}", kind, target, key, draw(VALUES[key]), draw(st.booleans()),
                          f"earlier reason of r{n}")
        rules.append(TimedRule(rule, None if hour is None else at(hour), before))
    unit = draw(st.sampled_from(UNITS))
    path = [unit]
    while parents[path[-1]] is not None:
        path.append(parents[path[-1]])  # type: ignore[arg-type]
    groups = tuple(
        GroupRef(g, priorities[g]) for g in draw(st.lists(st.sampled_from(GROUPS), unique=True))
    )
    member = MemberFacts(tuple(reversed(path)), groups, draw(CHOICES))
    now = at(draw(st.integers(-6, 11)))
    return parents, rules, priorities, member, now


@settings(max_examples=150, deadline=None)
@given(scheduled_organisations(), st.integers(-7, 12))
def test_the_answer_at_any_time_is_resolution_with_the_rules_effective_then(
    org: Any, hour: int
) -> None:
    parents, rules, priorities, member, _ = org
    t = at(hour)
    compiled, _ = compile_schedule(CATALOGUE, parents, rules, priorities, t)
    answered = compiled.resolve(member.unit_path[-1], [g.id for g in member.groups],
                                member.choices)
    in_force = [
        r.rule if r.effective_from is None or r.effective_from <= t else r.before
        for r in rules
    ]
    in_force = [r for r in in_force if r is not None]
    assert answered == resolve_settings(CATALOGUE, in_force, member)


@settings(max_examples=150, deadline=None)
@given(scheduled_organisations(), st.data())
def test_upcoming_lists_exactly_the_changes_after_now(org: Any, data: st.DataObject) -> None:
    parents, rules, priorities, member, now = org
    compiled, schedule = compile_schedule(CATALOGUE, parents, rules, priorities, now)
    group_ids = [g.id for g in member.groups]
    current = compiled.resolve(member.unit_path[-1], group_ids, member.choices)
    upcoming = schedule.upcoming(current, member.unit_path[-1], group_ids, member.choices)
    # The compiled schedule and the reference from scratch agree.
    assert upcoming == upcoming_settings(CATALOGUE, rules, member, now)
    assert schedule.next_change == (change_times(rules, now) or [None])[0]
    for changes in upcoming.values():
        # Every change is after now, in time order, at most one per effective time.
        times = [c.effective_at for c in changes]
        assert all(t > now for t in times) and times == sorted(set(times))
    # Replaying the upcoming changes on the current answer gives, at every later time,
    # exactly the resolution with the rules effective then (value and lock), and each
    # change carries the reason of the answer it brings.
    for hour in data.draw(st.lists(st.integers(-7, 12), max_size=6)):
        t = at(hour)
        if t < now:
            continue
        truth = resolve_settings(CATALOGUE, rules_at(rules, t), member)
        for key, answer in current.items():
            applied = [c for c in upcoming[key] if c.effective_at <= t]
            value, locked = (
                (applied[-1].value, applied[-1].locked) if applied else (answer.value, answer.locked)
            )
            assert (value, locked) == (truth[key].value, truth[key].locked), (key, t)
            if applied:
                last = applied[-1]
                answer_reason = resolve_settings(
                    CATALOGUE, rules_at(rules, last.effective_at), member
                )[key].reason
                # The answer's own reason, or (a lock lifted: the member's choice or the
                # default answers) the reason of a rule of theirs taking effect then.
                reach = {*member.unit_path, *(g.id for g in member.groups)}
                causes = {
                    r.rule.reason for r in rules
                    if r.effective_from == last.effective_at and r.rule.setting == key
                    and r.rule.target_id in reach and r.rule.reason
                }
                assert last.reason == answer_reason or (
                    not answer_reason and last.reason in causes | {""}
                )


def test_a_scheduled_lock_is_upcoming_with_its_date_and_reason_and_applies_at_its_date() -> None:
    lock = Rule("lock", U, "u0", "a", True, True, "From March, for the audit")
    plain = Rule("plain", U, "u0", "b", "y", False, "")
    rules = [TimedRule(lock, at(24)), TimedRule(plain)]
    member = MemberFacts(("u0",), (), {"a": False})
    [change] = upcoming_settings(CATALOGUE, rules, member, at(0))["a"]
    assert (change.value, change.locked, change.effective_at) == (True, True, at(24))
    assert (change.value_before, change.locked_before) == (False, False)
    assert change.reason == "From March, for the audit" and change.rule_id == "lock"
    assert upcoming_settings(CATALOGUE, rules, member, at(0))["b"] == []
    assert upcoming_settings(CATALOGUE, rules, member, at(24))["a"] == []
    compiled, schedule = compile_schedule(CATALOGUE, {"u0": None}, rules, {}, at(24))
    assert compiled.resolve("u0", [], {"a": False})["a"].locked and schedule.next_change is None


def test_a_scheduled_change_of_a_rule_in_force_keeps_it_until_its_time() -> None:
    now_on = Rule("r", U, "u0", "a", True, False, "Ads on for now")
    later = Rule("r", U, "u0", "a", False, True, "Ads off for the audit")
    rules = [TimedRule(later, at(24), before=now_on)]
    member = MemberFacts(("u0",), (), {})
    current = resolve_settings(CATALOGUE, rules_at(rules, at(0)), member)["a"]
    assert (current.value, current.locked, current.reason) == (True, False, "Ads on for now")
    [change] = upcoming_settings(CATALOGUE, rules, member, at(0))["a"]
    assert (change.value_before, change.value, change.locked) == (True, False, True)
    assert change.reason == "Ads off for the audit"


def test_a_lifted_lock_carries_the_reason_of_the_rule_that_lifts_it() -> None:
    lock = Rule("r", U, "u1", "a", False, True, "Locked for the audit")
    lifted = Rule("r", U, "u1", "a", False, False, "Audit over: yours again")
    rules = [TimedRule(lifted, at(24), before=lock)]
    member = MemberFacts(("u0", "u1"), (), {"a": True})
    [change] = upcoming_settings(CATALOGUE, rules, member, at(0))["a"]
    assert (change.value, change.locked, change.rule_id) == (True, False, None)
    assert change.reason == "Audit over: yours again"
    compiled, schedule = compile_schedule(CATALOGUE, {"u0": None, "u1": "u0"}, rules, {}, at(0))
    current = compiled.resolve("u1", [], {"a": True})
    assert schedule.upcoming(current, "u1", [], {"a": True})["a"] == [change]


def test_a_scheduled_rule_that_changes_nothing_for_a_member_is_not_upcoming_for_them() -> None:
    """A scheduled plain rule below the member's own choice changes nothing for them."""
    plain = Rule("plain", U, "u0", "a", True, False, "")
    member = MemberFacts(("u0",), (), {"a": False})
    assert upcoming_settings(CATALOGUE, [TimedRule(plain, at(5))], member, at(0))["a"] == []


def test_an_effective_time_is_bounded_so_every_date_worked_out_from_it_fits() -> None:
    from datetime import UTC, datetime, timedelta

    from policies.schedule import MAX_AHEAD, effective_from_problem

    now = datetime(2026, 12, 6, 12, tzinfo=UTC)
    assert effective_from_problem(now + MAX_AHEAD, now) is None
    assert effective_from_problem(now + MAX_AHEAD + timedelta(seconds=1), now) == (
        "must be within 10 years from now"
    )
    assert effective_from_problem(now - timedelta(days=400), now) is None  # in force now
    assert effective_from_problem(datetime(1970, 1, 1, tzinfo=UTC), now) is None
    assert effective_from_problem(datetime(1969, 12, 31, 23, 59, tzinfo=UTC), now) == (
        "must be after 1970-01-01"
    )
    far = datetime.fromisoformat("9999-12-31T23:59:59-14:00")  # past year 9999 in UTC
    assert effective_from_problem(far, now) == "must be within 10 years from now"
    early = datetime.fromisoformat("0001-01-01T00:00:00+14:00")  # before year 1 in UTC
    assert effective_from_problem(early, now) == "must be after 1970-01-01"
