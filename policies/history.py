"""Differences between two versions of an organisation's rule set. Plain data in and out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class ChangeKind(StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"


@dataclass(frozen=True, slots=True)
class RuleChange:
    kind: ChangeKind
    target_kind: str
    target_id: str
    setting: str
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None


#: The fields of a stored rule that make it what it is (not its id or timestamps).
RULE_FIELDS = ("value", "enforced", "reason", "effective_from")


def _key(rule: Mapping[str, Any]) -> tuple[str, str, str]:
    return (str(rule["target_kind"]), str(rule["target_id"]), str(rule["setting"]))


def diff_rules(
    before: Iterable[Mapping[str, Any]], after: Iterable[Mapping[str, Any]]
) -> list[RuleChange]:
    """What changed from ``before`` to ``after``, ordered by target then setting.

    Rules are matched by (target, setting), the identity a rule has for people: editing a
    rule's value shows as "changed", not as one removal and one addition.
    """
    old = {_key(r): r for r in before}
    new = {_key(r): r for r in after}
    changes = []
    for key in sorted(old.keys() | new.keys()):
        a, b = old.get(key), new.get(key)
        if a is None:
            kind = ChangeKind.ADDED
        elif b is None:
            kind = ChangeKind.REMOVED
        elif any(a.get(f) != b.get(f) for f in RULE_FIELDS):
            kind = ChangeKind.CHANGED
        else:
            continue
        changes.append(
            RuleChange(
                kind,
                key[0],
                key[1],
                key[2],
                {f: a.get(f) for f in RULE_FIELDS} if a else None,
                {f: b.get(f) for f in RULE_FIELDS} if b else None,
            )
        )
    return changes
