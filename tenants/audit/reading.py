"""Audit events for people: each change as lines of "field: before → after", and the ids
an event mentions (actors, targets, units, managers) so a page can show names instead.
Plain functions over the stored event; no I/O."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: Fields whose values are ids of members or units (shown as names where known).
MEMBER_FIELDS = (
    "member_id",
    "manager_id",
    "requester_id",
    "approver_id",
    "assignee_id",
    "successor_id",
    "fallback_successor_id",
    "admin_id",
    "decided_by_id",
    "reviewed_by_id",
    "previous_member_id",
)
UNIT_FIELDS = ("unit_id", "parent_id")
PRODUCT_FIELDS = ("product_id",)
#: Which fields name which kind of thing, and the target types that are such things.
FIELDS_OF = {"member": MEMBER_FIELDS, "unit": UNIT_FIELDS, "group": (), "product": PRODUCT_FIELDS}


@dataclass(frozen=True, slots=True)
class FieldChange:
    field: str
    before: Any
    after: Any
    #: "added", "removed" or "changed"
    kind: str


def changes_of(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> list[FieldChange]:
    """One line per field the event mentions, in the order before/after name them: a field
    only in ``after`` was set (left out when set to nothing), only in ``before`` was
    cleared (or is what was deleted)."""
    before = before or {}
    after = after or {}
    lines = []
    for field in [*before.keys(), *[k for k in after if k not in before]]:
        if field in before and field in after:
            if before[field] == after[field]:
                continue
            lines.append(FieldChange(field, before[field], after[field], "changed"))
        elif field in after:
            if after[field] is None:
                continue  # a field created empty says nothing
            lines.append(FieldChange(field, None, after[field], "added"))
        else:
            lines.append(FieldChange(field, before[field], None, "removed"))
    return lines


def shown(value: Any) -> str:
    """A value as one short line of text."""
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(value) if value else "none"
    return json.dumps(value, sort_keys=True, default=str)


#: Words written in capitals where an action's code spells them in small letters.
_ACRONYMS = {
    "api": "API",
    "scim": "SCIM",
    "sso": "SSO",
    "oidc": "OIDC",
    "idp": "IdP",
    "csv": "CSV",
    "ssf": "SSF",
    "url": "URL",
    "id": "ID",
}


def action_words(action: str) -> str:
    """An event's code as words people read, what it is about first: ``session.signed_in``
    reads "Session: signed in", ``api_token.created`` "API token: created". The code
    itself stays beside it on the page (what the filters and exports use)."""
    subject, _, what = action.partition(".")

    def words(code: str) -> str:
        return " ".join(_ACRONYMS.get(w, w) for w in code.replace(".", " ").split("_") if w)

    named = words(subject)
    named = named[:1].upper() + named[1:]
    return f"{named}: {words(what)}" if what else named


def _as_uuid(value: Any) -> uuid.UUID | None:
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def kind_of(field: str) -> str | None:
    """The kind of thing a field's value names (``FIELDS_OF``), or None."""
    return next((kind for kind, fields in FIELDS_OF.items() if field in fields), None)


def mentioned_ids(events: Sequence[Mapping[str, Any]]) -> dict[str, set[uuid.UUID]]:
    """The ids the events name, by kind (``FIELDS_OF``: member, unit, group, product), as
    actor, target or field value."""
    found: dict[str, set[uuid.UUID]] = {kind: set() for kind in FIELDS_OF}
    for event in events:
        kind, _, ref = str(event.get("actor", "")).partition(":")
        if kind == "member" and (actor := _as_uuid(ref)):
            found["member"].add(actor)
        target = _as_uuid(event.get("target_id"))
        if target is not None and str(event.get("target_type")) in found:
            found[str(event.get("target_type"))].add(target)
        for side in ("before", "after"):
            values = event.get(side) or {}
            for named, fields in FIELDS_OF.items():
                for field in fields:
                    if (value := _as_uuid(values.get(field))) is not None:
                        found[named].add(value)
    return found
