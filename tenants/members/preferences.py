"""A member's own preferences that change only how pages show things: their time zone.

The name is checked against the IANA database zoneinfo has (``Europe/Paris``); anything
else is InvalidInputError naming ``time_zone``, never a stored value a page would later
fail on.
"""

from __future__ import annotations

import functools
import uuid
import zoneinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tenants.actors import Actor
from tenants.audit import service as audit
from tenants.errors import FieldProblem, InvalidInputError
from tenants.members.models import Member
from tenants.models_base import get_by_id

MAX_ZONE = 64


#: Files of the zoneinfo directory that are not zones of the IANA database: the host's own
#: zone, the POSIX rules template and tzdata's "Factory" placeholder ("-00").
NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})
#: Trees of the same zones with leap seconds counted (``right/``: their clocks run 27 s
#: behind UTC as Python and PostgreSQL count it) or duplicated (``posix/``).
NOT_ZONE_TREES = ("right/", "posix/")


@functools.cache
def time_zone_names() -> frozenset[str]:
    """The IANA time zone names a member may choose: every zone and link of the database
    (``Europe/Paris``, and ``Asia/Calcutta``, which browsers still report), without the
    files that are not zones (NOT_ZONES) or count leap seconds (NOT_ZONE_TREES)."""
    return frozenset(
        name
        for name in zoneinfo.available_timezones()
        if name not in NOT_ZONES and not name.startswith(NOT_ZONE_TREES)
    )


def is_time_zone(name: str) -> bool:
    """Whether ``name`` is a time zone a member may choose (``time_zone_names``); never a
    path, ``right/Europe/Paris``, ``localtime`` or ``Factory``."""
    if not name or len(name) > MAX_ZONE or name not in time_zone_names():
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
