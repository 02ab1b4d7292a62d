"""Policy resolution, exercised without a database: each precedence case, and properties
over random organisations (hypothesis)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.catalogue import BUILTIN, Catalogue, Purpose, Setting, SettingType
from policies.resolve import (
    GroupRef,
    MemberFacts,
    Rule,
    Source,
    SourceKind,
    TargetKind,
    compile_policy,
    resolve_settings,
)

#: An on/off setting, off by default, that rules may switch on (it rests on no consent).
ADS = "improvement.use_data"
CONSENTED = "advertising.personalised_ads"
U, G = TargetKind.UNIT, TargetKind.GROUP


def rule(
    id_: str, kind: TargetKind, target: str, value: Any, enforced: bool = False, key: str = ADS
) -> Rule:
    return Rule(id_, kind, target, key, value, enforced, reason=f"reason {id_}")


def resolve(
    rules: list[Rule],
    *,
    path: tuple[str, ...] = ("root", "mid", "leaf"),
    groups: tuple[GroupRef, ...] = (),
    choices: dict[str, Any] | None = None,
) -> Any:
    return resolve_settings(BUILTIN, rules, MemberFacts(path, groups, choices or {}))[ADS]


def test_with_no_rules_the_catalogue_default_applies() -> None:
    result = resolve([])
    assert result.value is False and result.source.kind is SourceKind.DEFAULT and not result.locked


def test_a_lock_on_the_root_beats_a_lock_below_and_everything_else() -> None:
    rules = [
        rule("r1", U, "root", False, True),
        rule("r2", U, "leaf", True, True),
        rule("r3", G, "g", True, True),
    ]
    result = resolve(rules, groups=(GroupRef("g", 99),), choices={ADS: True})
    assert result.locked and result.value is False and result.source.rule_id == "r1"
    assert result.hidden_choice is True and result.reason == "reason r1"


def test_an_enforced_group_rule_locks_when_no_unit_lock_exists() -> None:
    result = resolve(
        [rule("r1", G, "g", True, True)], groups=(GroupRef("g", 1),), choices={ADS: False}
    )
    assert result.locked and result.value is True and result.source.target_kind is G


def test_the_members_choice_beats_unlocked_rules() -> None:
    result = resolve(
        [rule("r1", G, "g", True), rule("r2", U, "leaf", True)],
        groups=(GroupRef("g", 1),),
        choices={ADS: False},
    )
    assert result.value is False and result.source.kind is SourceKind.MEMBER


def test_a_choice_on_a_setting_members_may_not_change_is_kept_but_not_applied() -> None:
    result = resolve_settings(BUILTIN, [], MemberFacts(("root",), (), {"cookies.necessary": False}))
    necessary = result["cookies.necessary"]
    assert necessary.value is True and necessary.hidden_choice is False


def test_a_group_rule_beats_unit_rules_and_the_highest_priority_group_wins() -> None:
    rules = [rule("low", G, "a", False), rule("high", G, "b", True), rule("unit", U, "leaf", False)]
    result = resolve(rules, groups=(GroupRef("a", 1), GroupRef("b", 5)))
    assert result.source.rule_id == "high" and result.value is True


def test_the_nearest_unit_rule_wins_among_unit_rules() -> None:
    result = resolve([rule("far", U, "root", True), rule("near", U, "mid", False)])
    assert result.source.rule_id == "near" and result.value is False


UNITS = [f"u{i}" for i in range(8)]
GROUPS = [f"g{i}" for i in range(4)]
CATALOGUE = Catalogue.of(
    [
        Setting("a", SettingType.BOOL, False, "A", "", Purpose.PERSONALISE, frozenset()),
        Setting(
            "b",
            SettingType.ENUM,
            "x",
            "B",
            "",
            Purpose.SOCIAL,
            frozenset(),
            allowed=("x", "y", "z"),
        ),
        Setting(
            "c",
            SettingType.BOOL,
            True,
            "C",
            "",
            Purpose.PROVIDE,
            frozenset(),
            member_choosable=False,
        ),
    ]
)
VALUES = {"a": st.booleans(), "b": st.sampled_from(["x", "y", "z"]), "c": st.booleans()}
#: A member's stored choices: possibly none for a setting (None), possibly for a setting the
#: catalogue no longer has ("gone"); both are ignored.
CHOICES = st.fixed_dictionaries(
    {},
    optional={
        "gone": st.booleans(),
        **{k: st.one_of(st.none(), v) for k, v in VALUES.items()},
    },
)


@st.composite
def organisations(
    draw: st.DrawFn,
) -> tuple[dict[str, str | None], list[Rule], dict[str, int], MemberFacts]:
    parents: dict[str, str | None] = {"u0": None}
    for index, unit in enumerate(UNITS[1:], start=1):
        parents[unit] = UNITS[draw(st.integers(0, index - 1))]
    priorities = {g: draw(st.integers(-3, 3)) for g in GROUPS}
    rules = []
    seen = set()
    for n in range(draw(st.integers(0, 25))):
        kind = draw(st.sampled_from([U, G]))
        target = draw(st.sampled_from(UNITS if kind is U else GROUPS))
        # "gone": a rule left over for a setting the catalogue no longer has (ignored).
        key = draw(st.sampled_from(["a", "b", "c", "gone"]))
        if (kind, target, key) in seen:
            continue
        seen.add((kind, target, key))
        value = draw(VALUES.get(key, st.booleans()))
        reason = draw(st.sampled_from(["", f"reason of r{n}"]))
        rules.append(Rule(f"r{n}", kind, target, key, value, draw(st.booleans()), reason))
    unit = draw(st.sampled_from(UNITS))
    path = [unit]
    while parents[path[-1]] is not None:
        path.append(parents[path[-1]])  # type: ignore[arg-type]
    groups = tuple(
        GroupRef(g, priorities[g]) for g in draw(st.lists(st.sampled_from(GROUPS), unique=True))
    )
    return parents, rules, priorities, MemberFacts(tuple(reversed(path)), groups, draw(CHOICES))


@settings(max_examples=150, deadline=None)
@given(organisations())
def test_compiled_resolution_equals_resolution_from_scratch(org: Any) -> None:
    parents, rules, priorities, member = org
    compiled = compile_policy(CATALOGUE, parents, rules, priorities)
    fast = compiled.resolve(member.unit_path[-1], [g.id for g in member.groups], member.choices)
    assert fast == resolve_settings(CATALOGUE, rules, member)
    # Callers read the catalogue's settings (and version) off the compiled policy.
    assert compiled.catalogue is CATALOGUE


def member_of(
    parents: dict[str, str | None], unit: str, groups: tuple[GroupRef, ...], choices: dict[str, Any]
) -> MemberFacts:
    path = [unit]
    while parents[path[-1]] is not None:
        path.append(parents[path[-1]])  # type: ignore[arg-type]
    return MemberFacts(tuple(reversed(path)), groups, choices)


@settings(max_examples=60, deadline=None)
@given(organisations(), st.data())
def test_many_members_resolved_against_one_compiled_policy_each_get_their_own_answer(
    org: Any, data: st.DataObject
) -> None:
    """One compiled policy serves a whole organisation, remembering what each set of groups
    sets: members of different units and groups, resolved one after another and again,
    each get exactly the reference answer for themselves."""
    parents, rules, priorities, _ = org
    compiled = compile_policy(CATALOGUE, parents, rules, priorities)
    members = data.draw(
        st.lists(
            st.builds(
                lambda unit, groups, choices: member_of(
                    parents, unit, tuple(GroupRef(g, priorities[g]) for g in groups), choices
                ),
                st.sampled_from(UNITS),
                st.lists(st.sampled_from(GROUPS), unique=True),
                CHOICES,
            ),
            min_size=2,
            max_size=12,
        )
    )
    for member in members + members[::-1]:
        fast = compiled.resolve(member.unit_path[-1], [g.id for g in member.groups], member.choices)
        assert fast == resolve_settings(CATALOGUE, rules, member), member


def test_members_of_two_groups_get_their_own_groups_lock_not_the_others_value() -> None:
    """The example the memo once got wrong: resolved after a member of a group with a plain
    rule, a member of a group that locks the setting still gets the lock."""
    rules = [rule("plain", G, "g1", False), rule("lock", G, "g2", True, enforced=True)]
    compiled = compile_policy(BUILTIN, {"root": None}, rules, {"g1": 1, "g2": 1})
    first = compiled.resolve("root", ["g1"], {})
    second = compiled.resolve("root", ["g2"], {})
    assert (first[ADS].source.rule_id, first[ADS].locked) == ("plain", False)
    assert (second[ADS].source.rule_id, second[ADS].locked) == ("lock", True)
    assert compiled.resolve("root", frozenset({"g1"}), {})[ADS].source.rule_id == "plain"


@settings(max_examples=150, deadline=None)
@given(organisations())
def test_a_lock_on_an_ancestor_is_never_undone_below_it(org: Any) -> None:
    _, rules, _, member = org
    result = resolve_settings(CATALOGUE, rules, member)
    for unit in member.unit_path:
        for r in rules:
            if r.target_kind is U and r.target_id == unit and r.enforced and r.setting in CATALOGUE:
                assert result[r.setting].locked
                locker = result[r.setting].source
                assert locker.target_kind is U
                assert member.unit_path.index(locker.target_id) <= member.unit_path.index(unit)  # type: ignore[arg-type]


@settings(max_examples=150, deadline=None)
@given(organisations())
def test_a_choice_applies_exactly_when_choosable_and_not_locked(org: Any) -> None:
    _, rules, _, member = org
    for key, resolved in resolve_settings(CATALOGUE, rules, member).items():
        chose = member.choices.get(key) is not None
        applies = chose and CATALOGUE[key].member_choosable and not resolved.locked
        assert (resolved.source.kind is SourceKind.MEMBER) == applies
        if applies:
            assert resolved.value == member.choices[key]


@settings(max_examples=100, deadline=None)
@given(organisations(), st.randoms())
def test_the_result_is_deterministic_and_every_source_is_a_real_rule(org: Any, rnd: Any) -> None:
    _, rules, _, member = org
    shuffled_rules = list(rules)
    rnd.shuffle(shuffled_rules)
    shuffled_groups = list(member.groups)
    rnd.shuffle(shuffled_groups)
    again = MemberFacts(member.unit_path, tuple(shuffled_groups), member.choices)
    first = resolve_settings(CATALOGUE, rules, member)
    assert first == resolve_settings(CATALOGUE, shuffled_rules, again)
    ids = {r.id: r for r in rules}
    for key, resolved in first.items():
        if resolved.source.rule_id is None:
            assert resolved.source in (Source(SourceKind.MEMBER), Source(SourceKind.DEFAULT))
            assert resolved.reason == ""
        else:
            rule = ids[resolved.source.rule_id]
            assert resolved.source == Source(
                SourceKind.RULE, rule.id, rule.target_kind, rule.target_id
            )
            assert (rule.setting, rule.value, rule.reason) == (key, resolved.value, resolved.reason)


def test_a_unit_the_compiled_organisation_does_not_have_is_a_key_error() -> None:
    for parents in ({}, {"root": None}):
        compiled = compile_policy(BUILTIN, parents, [rule("r1", U, "root", True)], {})
        with pytest.raises(KeyError):
            compiled.resolve("elsewhere", [], {})


def test_a_stored_rule_switching_on_what_rests_on_consent_decides_nothing() -> None:
    """Rules saved before such rules were refused (or before a product declared its setting
    as resting on consent) are left out by both resolutions: the member's own choice, or
    the default (off), applies."""
    stored = [
        rule("lock", U, "root", True, enforced=True, key=CONSENTED),
        rule("plain", U, "leaf", True, key=CONSENTED),
        rule("off", U, "mid", False, enforced=True, key="cookies.analytics"),
    ]
    member = MemberFacts(("root", "mid", "leaf"), (), {})
    reference = resolve_settings(BUILTIN, stored, member)
    assert (reference[CONSENTED].value, reference[CONSENTED].locked) == (False, False)
    assert reference[CONSENTED].source == Source(SourceKind.DEFAULT)
    # Locking it off stays possible.
    assert (reference["cookies.analytics"].value, reference["cookies.analytics"].locked) == (
        False,
        True,
    )
    chose = resolve_settings(BUILTIN, stored, MemberFacts(member.unit_path, (), {CONSENTED: True}))
    assert (chose[CONSENTED].value, chose[CONSENTED].source.kind) == (True, SourceKind.MEMBER)
    compiled = compile_policy(BUILTIN, {"root": None, "mid": "root", "leaf": "mid"}, stored, {})
    assert compiled.resolve("leaf", (), {}) == reference
