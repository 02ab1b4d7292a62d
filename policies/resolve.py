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

from collections.abc import Iterable, Mapping
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


def resolve_settings(
    catalogue: Catalogue, rules: Iterable[Rule], member: MemberFacts
) -> dict[str, Resolved]:
    """Every setting's effective value for ``member``: the reference implementation.

    ``rules`` may include rules that do not touch the member; they are ignored.
    """
    by_target: dict[tuple[TargetKind, str], dict[str, Rule]] = {}
    for given in rules:
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
        hidden = choice if choice is not None else None
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
    """Per setting, the lock from the unit path (root first) and the nearest unit rule."""

    locks: Mapping[str, Rule]
    nearest: Mapping[str, Rule]


@dataclass(frozen=True)
class CompiledPolicy:
    """One organisation's rules, precomputed per unit; resolve many members quickly."""

    catalogue: Catalogue
    units: Mapping[str, _UnitView]
    group_rules: Mapping[str, Mapping[str, Rule]]
    group_priority: Mapping[str, int]
    rule_ids: frozenset[str]

    def resolve(
        self, unit_id: str, group_ids: Iterable[str], choices: Mapping[str, Value]
    ) -> dict[str, Resolved]:
        """Same answer as ``resolve_settings`` for a member of ``unit_id`` in ``group_ids``.

        Raises KeyError for a unit the compiled organisation does not have.
        """
        view = self.units[unit_id]
        priority = self.group_priority
        ordered = sorted((g for g in group_ids if g in priority), key=lambda g: (-priority[g], g))
        group_lock: dict[str, Rule] = {}
        group_first: dict[str, Rule] = {}
        for group in ordered:
            for key, candidate in self.group_rules.get(group, {}).items():
                if key not in group_first:
                    group_first[key] = candidate
                if candidate.enforced and key not in group_lock:
                    group_lock[key] = candidate
        result: dict[str, Resolved] = {}
        locks, nearest = view.locks, view.nearest
        for setting in self.catalogue.settings.values():
            key = setting.key
            choice = choices.get(key)
            lock = locks.get(key) or group_lock.get(key)
            if lock is not None:
                hidden = choice if choice is not None and choice != lock.value else None
                result[key] = Resolved(lock.value, True, _source(lock), hidden, lock.reason)
            elif setting.member_choosable and choice is not None:
                result[key] = Resolved(choice, False, MEMBER_SOURCE)
            else:
                rule = group_first.get(key) or nearest.get(key)
                if rule is not None:
                    result[key] = Resolved(rule.value, False, _source(rule), choice, rule.reason)
                else:
                    result[key] = Resolved(setting.default, False, DEFAULT_SOURCE, choice)
        return result


def compile_policy(
    catalogue: Catalogue,
    unit_parents: Mapping[str, str | None],
    rules: Iterable[Rule],
    group_priority: Mapping[str, int],
) -> CompiledPolicy:
    """Precompute each unit's locks and nearest rules, top-down from the root.

    ``unit_parents`` maps every unit of the organisation to its parent (None for the root).
    Rules for settings missing from the catalogue are ignored.
    """
    unit_rules: dict[str, dict[str, Rule]] = {}
    group_rules: dict[str, dict[str, Rule]] = {}
    ids = set()
    for rule in rules:
        if rule.setting not in catalogue:
            continue
        ids.add(rule.id)
        table = unit_rules if rule.target_kind is TargetKind.UNIT else group_rules
        table.setdefault(rule.target_id, {})[rule.setting] = rule
    children: dict[str | None, list[str]] = {}
    for unit, parent in unit_parents.items():
        children.setdefault(parent, []).append(unit)
    views: dict[str, _UnitView] = {}
    stack: list[tuple[str, _UnitView | None]] = [(root, None) for root in children.get(None, [])]
    while stack:
        unit, parent_view = stack.pop()
        own = unit_rules.get(unit, {})
        locks = dict(parent_view.locks) if parent_view else {}
        nearest = dict(parent_view.nearest) if parent_view else {}
        for key, rule in own.items():
            if rule.enforced and key not in locks:
                locks[key] = rule
            nearest[key] = rule
        view = _UnitView(locks, nearest)
        views[unit] = view
        stack.extend((child, view) for child in children.get(unit, []))
    return CompiledPolicy(catalogue, views, group_rules, dict(group_priority), frozenset(ids))
