"""What a move changes for one member: plain functions over resolutions, no I/O.

A move (another unit, other groups, or both) changes a member's settings only through
resolution, so the preview never guesses: the caller resolves the member as they are and
as they would be (``policies.resolve``) and ``setting_changes`` lists the difference. Data
access granted on a unit covers the members of the unit and of every unit below it, so a
grant on an ancestor of the old unit that is not an ancestor of the new one stops covering
the member (``grants_crossed``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from policies.catalogue import Value
from policies.resolve import Resolved, SourceKind, answers_that_differ


@dataclass(frozen=True, slots=True)
class SettingChange:
    """One setting whose value or lock differs after the move."""

    setting: str
    value_before: Value
    value_after: Value
    locked_before: bool
    locked_after: bool
    #: Where the new answer comes from (rule, member or default) and the rule's reason.
    source_after: SourceKind
    reason_after: str = ""


def setting_changes(
    before: Mapping[str, Resolved], after: Mapping[str, Resolved]
) -> list[SettingChange]:
    """The settings whose value or lock differ between ``before`` and ``after`` (both
    complete resolutions of one member), in ``before``'s order. A change of provenance
    alone (another rule giving the same value, same lock) is not a change for the member."""
    return [
        SettingChange(
            key, old.value, new.value, old.locked, new.locked, new.source.kind, new.reason
        )
        for key, old, new in answers_that_differ(before, after)
    ]


def _plain(value: Value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "none"
    return str(value).replace("_", " ")


def describe_changes(changes: Iterable[SettingChange], titles: Mapping[str, str]) -> list[str]:
    """One line per change for a member (``titles``: setting key to its title), naming the
    value and lock before and after and the organisation's reason when a rule decides."""
    lines = []
    for c in changes:
        before = _plain(c.value_before) + (", locked" if c.locked_before else "")
        after = _plain(c.value_after) + (", locked" if c.locked_after else "")
        line = f"{titles.get(c.setting, c.setting)}: {before} -> {after}"
        lines.append(line + (f" ({c.reason_after})" if c.reason_after else ""))
    return lines


@dataclass(frozen=True, slots=True)
class UnitGrant:
    """A standing data-access grant on a unit (what ``grants_crossed`` needs of it)."""

    grant_id: str
    unit_id: str


@dataclass(frozen=True, slots=True)
class CrossedGrants:
    #: Grants that cover the member now and would not after the move.
    lost: list[str]
    #: Grants that would cover the member after the move and do not now.
    gained: list[str]


def grants_crossed(
    grants: Iterable[UnitGrant], path_before: Sequence[str], path_after: Sequence[str]
) -> CrossedGrants:
    """Split unit grants by the move from ``path_before`` to ``path_after`` (unit ids from
    the root down to the member's unit): a grant covers the member when its unit is on
    the path."""
    old, new = set(path_before), set(path_after)
    lost, gained = [], []
    for grant in grants:
        if grant.unit_id in old and grant.unit_id not in new:
            lost.append(grant.grant_id)
        elif grant.unit_id in new and grant.unit_id not in old:
            gained.append(grant.grant_id)
    return CrossedGrants(lost, gained)
