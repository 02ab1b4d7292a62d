"""Scheduled policy changes: what a member's settings become at each future effective time.

A rule with ``effective_from`` in the future is a scheduled change. Nothing runs when its
time comes: resolution at time ``t`` simply uses the rules effective at ``t``
(``rules_at``), so a change takes effect at its date without a deploy or a job that can
be missed. What a member is told in advance (the decision API's ``upcoming`` list, the
account page's "Coming changes", the notice email) is the difference between resolving
them just before each future effective time and at it: the same resolution
(``policies.resolve``), never a second resolver.

Plain data in and out; nothing imported from our other packages but ``policies``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from policies.catalogue import Catalogue, Value
from policies.resolve import (
    CompiledPolicy,
    MemberFacts,
    Resolved,
    Rule,
    answers_that_differ,
    compile_policy,
    resolve_settings,
)


@dataclass(frozen=True, slots=True)
class TimedRule:
    """A rule and the moment it applies from (None: always); ``before``, when given, is
    what the same target's rule for the setting is until then (a scheduled change of a
    rule in force keeps the rule in force until its date)."""

    rule: Rule
    effective_from: datetime | None = None
    before: Rule | None = None

    def is_in_force(self, at: datetime) -> bool:
        return self.effective_from is None or self.effective_from <= at

    def at(self, when: datetime) -> Rule | None:
        """The rule as it applies at ``when`` (None: none yet)."""
        return self.rule if self.is_in_force(when) else self.before


def rules_at(rules: Iterable[TimedRule], at: datetime) -> list[Rule]:
    """The rules that apply at ``at``: those effective from then or earlier (or always),
    and for those not yet effective, what they replace until then."""
    return [rule for r in rules if (rule := r.at(at)) is not None]


def change_times(rules: Iterable[TimedRule], now: datetime) -> list[datetime]:
    """The distinct effective times after ``now``, earliest first: the only moments at
    which any member's resolution can change."""
    return sorted({r.effective_from for r in rules if r.effective_from and r.effective_from > now})


#: How far ahead a change may be scheduled, and the earliest date a rule may carry.
MAX_AHEAD = timedelta(days=3660)
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)


def effective_from_problem(at: datetime, now: datetime) -> str | None:
    """Why ``at`` cannot be a rule's effective time, or None. Any past time means "in
    force now"; the bounds keep every date the sweep and the database work out in range."""
    if at - now > MAX_AHEAD:
        return f"must be within {MAX_AHEAD.days // 366} years from now"
    if at < EARLIEST:
        return "must be after 1970-01-01"
    return None


@dataclass(frozen=True, slots=True)
class UpcomingChange:
    """One setting's answer changing (value or lock) at ``effective_at`` for one member."""

    setting: str
    effective_at: datetime
    value: Value
    locked: bool
    #: The organisation's reason for the answer from then on (the rule that causes it).
    reason: str
    #: What the answer is until then.
    value_before: Value
    locked_before: bool
    #: The rule whose answer it becomes (None when the member's choice or the default).
    rule_id: str | None = None


def step_changes(
    before: Mapping[str, Resolved], after: Mapping[str, Resolved], at: datetime
) -> list[UpcomingChange]:
    """The settings whose value or lock differ from ``before`` to ``after`` (complete
    resolutions of one member), in ``before``'s order. Another rule giving the same value
    and lock is not a change for the member."""
    return [
        UpcomingChange(
            key, at, new.value, new.locked, new.reason, old.value, old.locked, new.source.rule_id
        )
        for key, old, new in answers_that_differ(before, after)
    ]


def _cause_reason(effective: Iterable[Rule], setting: str, reach: frozenset[str]) -> str:
    """The reason of a rule taking effect for ``setting`` on one of the member's units or
    groups (``reach``): why a change whose answer has no reason of its own happens (a lock
    lifted gives the member's choice back). The lowest rule id decides among several."""
    causes = sorted(
        (r for r in effective if r.setting == setting and r.target_id in reach and r.reason),
        key=lambda r: r.id,
    )
    return causes[0].reason if causes else ""


def _collect(
    current: Mapping[str, Resolved],
    steps: Iterable[tuple[datetime, Mapping[str, Resolved], Iterable[Rule]]],
    reach: frozenset[str],
) -> dict[str, list[UpcomingChange]]:
    upcoming: dict[str, list[UpcomingChange]] = {key: [] for key in current}
    previous = current
    for at, resolved, effective in steps:
        for change in step_changes(previous, resolved, at):
            if not change.reason:
                change = replace(change, reason=_cause_reason(effective, change.setting, reach))
            upcoming[change.setting].append(change)
        previous = resolved
    return upcoming


def _effective_at(rules: Iterable[TimedRule], at: datetime) -> list[Rule]:
    """The rules taking effect exactly at ``at``."""
    return [r.rule for r in rules if r.effective_from == at]


def upcoming_settings(
    catalogue: Catalogue, rules: Iterable[TimedRule], member: MemberFacts, now: datetime
) -> dict[str, list[UpcomingChange]]:
    """Per setting, every change of ``member``'s answer after ``now``, earliest first
    (an empty list for a setting that does not change): the reference, resolving from
    scratch at ``now`` and at each future effective time."""
    timed = list(rules)
    current = resolve_settings(catalogue, rules_at(timed, now), member)
    steps = [
        (at, resolve_settings(catalogue, rules_at(timed, at), member), _effective_at(timed, at))
        for at in change_times(timed, now)
    ]
    reach = frozenset([*member.unit_path, *(g.id for g in member.groups)])
    return _collect(current, steps, reach)


@dataclass(frozen=True)
class Schedule:
    """An organisation's compiled policy at each future effective time after ``now``:
    resolve a member's coming changes with one compiled resolution per step."""

    now: datetime
    steps: tuple[tuple[datetime, CompiledPolicy], ...]
    #: The rules taking effect at each step's time (for the reasons of changes).
    effective: Mapping[datetime, tuple[Rule, ...]] = field(default_factory=dict)
    #: Every unit's parent (None for the root): a member's units from their own.
    unit_parents: Mapping[str, str | None] = field(default_factory=dict)

    @property
    def next_change(self) -> datetime | None:
        """When the policy in force next changes (None: nothing is scheduled)."""
        return self.steps[0][0] if self.steps else None

    def upcoming(
        self,
        current: Mapping[str, Resolved],
        unit_id: str,
        group_ids: Iterable[str],
        choices: Mapping[str, Value],
    ) -> dict[str, list[UpcomingChange]]:
        """Same as ``upcoming_settings`` for the member whose answer now is ``current``."""
        if not self.steps:
            return {key: [] for key in current}
        groups = frozenset(group_ids)
        path: list[str] = []
        unit: str | None = unit_id
        while unit is not None and unit not in path:
            path.append(unit)
            unit = self.unit_parents.get(unit)
        return _collect(
            current,
            (
                (at, compiled.resolve(unit_id, groups, choices), self.effective.get(at, ()))
                for at, compiled in self.steps
            ),
            frozenset([*path, *groups]),
        )


def compile_schedule(
    catalogue: Catalogue,
    unit_parents: Mapping[str, str | None],
    rules: Iterable[TimedRule],
    group_priority: Mapping[str, int],
    now: datetime,
) -> tuple[CompiledPolicy, Schedule]:
    """The policy in force at ``now`` and the schedule of what comes after it (see
    ``compile_policy`` for the arguments)."""
    timed = list(rules)
    current = compile_policy(catalogue, unit_parents, rules_at(timed, now), group_priority)
    times = change_times(timed, now)
    steps = tuple(
        (at, compile_policy(catalogue, unit_parents, rules_at(timed, at), group_priority))
        for at in times
    )
    effective = {at: tuple(_effective_at(timed, at)) for at in times}
    return current, Schedule(now, steps, effective, dict(unit_parents))


def _plain(value: Value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "none"
    return str(value).replace("_", " ")


def when(at: datetime) -> str:
    """An effective time as members read it (UTC, to the minute)."""
    return at.strftime("%Y-%m-%d %H:%M UTC")


def describe_upcoming(changes: Iterable[UpcomingChange], titles: Mapping[str, str]) -> list[str]:
    """One line per change for a member (``titles``: setting key to its title): from when,
    the value and lock before and after, and the organisation's reason."""
    lines = []
    for c in sorted(changes, key=lambda c: (c.effective_at, c.setting)):
        before = _plain(c.value_before) + (", locked" if c.locked_before else "")
        after = _plain(c.value) + (", locked" if c.locked else "")
        line = (
            f"From {when(c.effective_at)}, {titles.get(c.setting, c.setting)}: {before} -> {after}"
        )
        lines.append(line + (f" ({c.reason})" if c.reason else ""))
    return lines
