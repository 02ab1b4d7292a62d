"""Policy resolution: a pure function from rules and choices to effective settings, with
provenance. No I/O, and nothing imported from our other packages but the catalogue.

For each setting, in order (DESIGN.md "Policy resolution"):

1. An enforced rule on the member's unit path, nearest the root first, wins and locks the
   setting: a parent's lock cannot be undone below it. Then an enforced group rule
   (highest group priority first) locks it.
2. Otherwise, if members may choose the setting and this member has, their choice wins.
3. Otherwise a group rule (highest priority first), then the nearest unit rule (the
   member's own unit, then its ancestors), then the catalogue default.

``resolve_settings`` states these rules directly and is the reference;
``compile_policy`` precomputes the unit part per organisation so that resolving one
member costs a pass over their groups. Property tests hold the two equal.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from policies.catalogue import Catalogue, Value


class TargetKind(StrEnum):
    UNIT = "unit"
    GROUP = "group"


class SourceKind(StrEnum):
    RULE = "rule"
    MEMBER = "member"
    DEFAULT = "default"


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    target_kind: TargetKind
    target_id: str
    setting: str
    value: Value
    enforced: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class GroupRef:
    id: str
    priority: int


@dataclass(frozen=True, slots=True)
class MemberFacts:
    """What resolution needs to know about one member."""

    #: Unit ids from the root down to the member's own unit.
    unit_path: tuple[str, ...]
    groups: tuple[GroupRef, ...] = ()
    choices: Mapping[str, Value] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Source:
    kind: SourceKind
    rule_id: str | None = None
    target_kind: TargetKind | None = None
    target_id: str | None = None


DEFAULT_SOURCE = Source(SourceKind.DEFAULT)
MEMBER_SOURCE = Source(SourceKind.MEMBER)


@dataclass(frozen=True, slots=True)
class Resolved:
    value: Value
    locked: bool
    source: Source
    #: The member's own choice when a lock (or a choice the setting no longer allows)
    #: hides it; it comes back when the lock goes.
    hidden_choice: Value | None = None
    reason: str = ""


def _source(rule: Rule) -> Source:
    return Source(SourceKind.RULE, rule.id, rule.target_kind, rule.target_id)


def group_order(groups: Iterable[GroupRef]) -> list[GroupRef]:
    """Highest priority first; ties broken by id so the result never depends on input order."""
    return sorted(groups, key=lambda g: (-g.priority, g.id))


def applicable(catalogue: Catalogue, rules: Iterable[Rule]) -> Iterable[Rule]:
    """The rules that may decide anything: not those a rule may not be
    (``Setting.rule_problem``): switching on what rests on each member's consent, saved
    before that was refused, or before a product declared its setting as such."""
    for rule in rules:
        setting = catalogue.settings.get(rule.setting)
        if setting is None or setting.rule_problem(rule.value) is None:
            yield rule


def resolve_settings(
    catalogue: Catalogue, rules: Iterable[Rule], member: MemberFacts
) -> dict[str, Resolved]:
    """Every setting's effective value for ``member``: the reference implementation.

    ``rules`` may include rules that do not touch the member; they are ignored, and so are
    those that may decide nothing (``applicable``).
    """
    by_target: dict[tuple[TargetKind, str], dict[str, Rule]] = {}
    for given in applicable(catalogue, rules):
        by_target.setdefault((given.target_kind, given.target_id), {})[given.setting] = given
    unit_rules = [by_target.get((TargetKind.UNIT, unit), {}) for unit in member.unit_path]
    group_rules = [by_target.get((TargetKind.GROUP, g.id), {}) for g in group_order(member.groups)]
    result: dict[str, Resolved] = {}
    for setting in catalogue:
        key = setting.key
        choice = member.choices.get(key)
        lock = next((r[key] for r in unit_rules if key in r and r[key].enforced), None)
        if lock is None:
            lock = next((r[key] for r in group_rules if key in r and r[key].enforced), None)
        if lock is not None:
            hidden = choice if choice is not None and choice != lock.value else None
            result[key] = Resolved(lock.value, True, _source(lock), hidden, lock.reason)
            continue
        if setting.member_choosable and choice is not None:
            result[key] = Resolved(choice, False, MEMBER_SOURCE)
            continue
        hidden = choice
        rule = next((r[key] for r in group_rules if key in r), None)
        if rule is None:
            rule = next((r[key] for r in reversed(unit_rules) if key in r), None)
        if rule is not None:
            result[key] = Resolved(rule.value, False, _source(rule), hidden, rule.reason)
        else:
            result[key] = Resolved(setting.default, False, DEFAULT_SOURCE, hidden)
    return result


@dataclass(frozen=True, slots=True)
class _UnitView:
    """The settings the unit path locks, and the whole answer for a member of the unit
    with no groups and no choices (the nearest unit rules are in it)."""

    locked: frozenset[str]
    #: Every setting's ``Resolved`` (catalogue order) when no group or choice applies.
    base: Mapping[str, Resolved]


#: Distinct group sets remembered per compiled policy (a set is usually shared by many
#: members); the memo is emptied when it is full, so memory stays bounded.
GROUP_SETS_REMEMBERED = 4096

_GroupPatch = tuple[tuple[str, Resolved], ...]


@dataclass(frozen=True)
class CompiledPolicy:
    """One organisation's rules, precomputed per unit; resolve many members quickly.

    ``resolve`` starts from the unit's ready answer (immutable ``Resolved`` objects,
    shared), overwrites the settings the member's groups set (merged once per distinct
    set of groups and remembered) and then the settings the member chose.
    """

    catalogue: Catalogue
    units: Mapping[str, _UnitView]
    #: Per setting that groups set: the enforced group rules' answers (as locks), then all
    #: group rules' answers (as plain rules), each list highest priority first. A member's
    #: groups take the first enforced one they hold, else the first one: the cost of a new
    #: set of groups is the settings groups set, not the groups the member is in.
    _group_precedence: tuple[
        tuple[str, tuple[tuple[str, Resolved], ...], tuple[tuple[str, Resolved], ...]], ...
    ] = field(repr=False, compare=False)
    #: Setting keys members may choose.
    _choosable: frozenset[str] = field(repr=False, compare=False)
    #: Groups that have a rule: joining or leaving any other group changes no setting.
    ruled_groups: frozenset[str] = field(repr=False, compare=False)
    #: frozenset of group ids -> what those groups set, as (key, Resolved) pairs.
    _group_patches: dict[frozenset[str], _GroupPatch] = field(
        default_factory=dict, repr=False, compare=False
    )

    def resolve(
        self, unit_id: str, group_ids: Iterable[str], choices: Mapping[str, Value]
    ) -> dict[str, Resolved]:
        """Same answer as ``resolve_settings`` for a member of ``unit_id`` in ``group_ids``.

        Raises KeyError for a unit the compiled organisation does not have.
        """
        view = self.units[unit_id]
        result = dict(view.base)
        if group_ids:
            groups = group_ids if isinstance(group_ids, frozenset) else frozenset(group_ids)
            patch = self._group_patches.get(groups)
            if patch is None:
                patch = self._group_patch(groups)
            if patch:
                locked = view.locked
                for key, answer in patch:
                    if key not in locked:
                        result[key] = answer
        if choices:
            choosable = self._choosable
            for key, choice in choices.items():
                if choice is None:
                    continue
                current = result.get(key)
                if current is None:
                    continue  # not a setting of this catalogue
                if current.locked:
                    if choice != current.value:
                        result[key] = Resolved(
                            current.value, True, current.source, choice, current.reason
                        )
                elif key in choosable:
                    result[key] = Resolved(choice, False, MEMBER_SOURCE)
                else:
                    result[key] = Resolved(
                        current.value, False, current.source, choice, current.reason
                    )
        return result

    def _group_patch(self, groups: frozenset[str]) -> _GroupPatch:
        """What ``groups`` set, before unit locks: per setting the highest-priority
        enforced group rule as a lock, else the highest-priority group rule."""
        patch: list[tuple[str, Resolved]] = []
        for key, locks, plain in self._group_precedence:
            answer = next((a for g, a in locks if g in groups), None)
            if answer is None:
                answer = next((a for g, a in plain if g in groups), None)
            if answer is not None:
                patch.append((key, answer))
        frozen = tuple(patch)
        if len(self._group_patches) >= GROUP_SETS_REMEMBERED:
            self._group_patches.clear()
        self._group_patches[groups] = frozen
        return frozen


def answers_that_differ(
    before: Mapping[str, Resolved], after: Mapping[str, Resolved]
) -> Iterator[tuple[str, Resolved, Resolved]]:
    """Each setting whose value or lock differs between two complete resolutions of one
    member, in ``before``'s order, with both answers. Another rule giving the same value
    and lock is not a change for the member: provenance alone does not count."""
    for key, old in before.items():
        new = after[key]
        if old.value != new.value or old.locked != new.locked:
            yield key, old, new


def compile_policy(
    catalogue: Catalogue,
    unit_parents: Mapping[str, str | None],
    rules: Iterable[Rule],
    group_priority: Mapping[str, int],
) -> CompiledPolicy:
    """Precompute each unit's locked settings and ready answer, top-down from the root.

    ``unit_parents`` maps every unit of the organisation to its parent (None for the root).
    Rules for settings missing from the catalogue are ignored.
    """
    unit_rules: dict[str, dict[str, Rule]] = {}
    group_rules: dict[str, dict[str, Rule]] = {}
    for rule in applicable(catalogue, rules):
        if rule.setting not in catalogue:
            continue
        table = unit_rules if rule.target_kind is TargetKind.UNIT else group_rules
        table.setdefault(rule.target_id, {})[rule.setting] = rule

    def answers(rule: Rule) -> tuple[Resolved, Resolved]:
        """The rule's answer as a lock and as a plain rule (sharing one Source)."""
        source = _source(rule)
        return (
            Resolved(rule.value, True, source, None, rule.reason),
            Resolved(rule.value, False, source, None, rule.reason),
        )

    order = sorted(
        (g for g in group_rules if g in group_priority), key=lambda g: (-group_priority[g], g)
    )
    locks: dict[str, list[tuple[str, Resolved]]] = {}
    plain: dict[str, list[tuple[str, Resolved]]] = {}
    for group in order:
        for key, rule in group_rules[group].items():
            as_lock, as_rule = answers(rule)
            plain.setdefault(key, []).append((group, as_rule))
            if rule.enforced:
                locks.setdefault(key, []).append((group, as_lock))
    precedence = tuple(
        (key, tuple(locks.get(key, ())), tuple(entries)) for key, entries in plain.items()
    )
    defaults = {
        s.key: Resolved(s.default, False, DEFAULT_SOURCE, None) for s in catalogue.settings.values()
    }
    children: dict[str | None, list[str]] = {}
    for unit, parent in unit_parents.items():
        children.setdefault(parent, []).append(unit)
    views: dict[str, _UnitView] = {}
    stack: list[tuple[str, _UnitView | None]] = [(root, None) for root in children.get(None, [])]
    while stack:
        unit, parent_view = stack.pop()
        own = unit_rules.get(unit, {})
        if parent_view is None:
            locked: set[str] = set()
            base = dict(defaults)
        elif own:
            locked = set(parent_view.locked)
            base = dict(parent_view.base)
        else:  # nothing changes below a unit without rules: share the parent's tables
            views[unit] = parent_view
            stack.extend((child, parent_view) for child in children.get(unit, []))
            continue
        for key, rule in own.items():
            if key not in locked:
                as_lock, as_rule = answers(rule)
                if rule.enforced:
                    locked.add(key)
                    base[key] = as_lock
                else:
                    base[key] = as_rule
        view = _UnitView(frozenset(locked), base)
        views[unit] = view
        stack.extend((child, view) for child in children.get(unit, []))
    choosable = frozenset(s.key for s in catalogue.settings.values() if s.member_choosable)
    return CompiledPolicy(
        catalogue,
        views,
        precedence,
        choosable,
        frozenset(order),
    )
