"""A member's own preferences that change only how pages show things: their time zone.

The name is checked against the IANA database zoneinfo has (``Europe/Paris``); anything
else is InvalidInputError naming ``time_zone``, never a stored value a page would later
fail on.
"""

from __future__ import annotations

import uuid
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tenants.actors import Actor
from tenants.audit import service as audit
from tenants.errors import FieldProblem, InvalidInputError
from tenants.members.models import Member
from tenants.models_base import get_by_id

MAX_ZONE = 64


def is_time_zone(name: str) -> bool:
    """Whether ``name`` is a time zone zoneinfo knows (not a path, not empty)."""
    if not name or len(name) > MAX_ZONE or name.startswith("/") or ".." in name:
        return False
    if not all(c.isalnum() or c in "/_+-" for c in name):
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def time_zone_name(value: str | None) -> str:
    """``value`` as a time zone name; InvalidInputError naming ``time_zone`` otherwise."""
    name = (value or "").strip()
    if not is_time_zone(name):
        raise InvalidInputError(
            "that is not a time zone",
            fields=[FieldProblem("time_zone", "expected an IANA time zone such as Europe/Paris")],
        )
    return name


async def set_time_zone(member_id: uuid.UUID, value: str | None, *, actor: Actor) -> Member:
    """Store the member's time zone (audited, ``member.time_zone_changed``); nothing when it
    is already that. InvalidInputError naming ``time_zone`` for an unknown zone."""
    name = time_zone_name(value)
    member = await get_by_id(Member, member_id, "member", for_update=True)
    if member.time_zone == name:
        return member
    before = member.time_zone
    member.time_zone = name
    await Member.filter(id=member.id).update(time_zone=name)
    await audit.record(
        "member.time_zone_changed",
        "member",
        member.id,
        actor=actor,
        before={"time_zone": before},
        after={"time_zone": name},
    )
    return member
