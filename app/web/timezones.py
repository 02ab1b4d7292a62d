"""Times shown in the viewer's time zone, with UTC on hover.

The zone is detected by the browser (``/static/tz.js``) and stored per member
(``members.time_zone``, posted to ``/account/time-zone`` when it differs), so it follows
the admin from browser to browser and into exports of what they saw. Pages shown before
sign-in read the ``tz`` cookie the same script writes. Neither known: UTC. The zone
stored is checked on the way in; a cookie's on every read (an unknown name means UTC).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import pass_context
from markupsafe import Markup, escape
from starlette.requests import Request

from tenants.members.preferences import is_time_zone

TZ_COOKIE = "tz"


def zone_of(request: Request) -> ZoneInfo | None:
    """The browser's time zone from its cookie; None (UTC) when absent or not one a member
    may choose (``preferences.is_time_zone``: no ``right/`` zone, no ``localtime``)."""
    name = request.cookies.get(TZ_COOKIE, "")
    if not is_time_zone(name):
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def format_time(value: datetime | str | None, zone: ZoneInfo | None) -> Markup:
    """``<time>`` showing ``value`` in ``zone`` (or UTC) with the UTC time as its title.
    ``value`` may be the ISO text a JSON document keeps a time as (erasure evidence)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return Markup("{}").format(value)
    if value is None:
        return Markup("")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    utc = value.astimezone(UTC)
    shown = value.astimezone(zone) if zone else utc
    label = shown.strftime("%Y-%m-%d %H:%M") + (f" {shown.tzname()}" if zone else " UTC")
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        utc.isoformat(), utc.strftime("%Y-%m-%d %H:%M:%S UTC"), escape(label)
    )


def stored_zone(name: str | None) -> ZoneInfo | None:
    """The member's stored zone (checked when stored); None when there is none."""
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def viewer_time(
    value: datetime | str | None, stored: str | None, request: Request | None
) -> Markup:
    """``value`` in the viewer's zone: the one stored for them, else their browser's (the
    cookie ``tz.js`` sets), else UTC. Pages show times by the ``localtime`` filter; code
    that writes a time into a message (a confirmation) calls this."""
    zone = stored_zone(stored) or (zone_of(request) if request is not None else None)
    return format_time(value, zone)


@pass_context
def localtime(context: Any, value: datetime | str | None) -> Markup:
    return viewer_time(value, context.get("viewer_zone"), context.get("request"))


@pass_context
def org_date(context: Any, value: datetime | None) -> str:
    """The date ``value`` falls on in the organisation's zone (``org.time_zone``): the day
    an admin named (a policy's effective day begins at midnight there), whatever the
    viewer's zone."""
    if value is None:
        return ""
    org = context.get("org")
    zone = stored_zone(getattr(org, "time_zone", None)) or UTC
    return value.astimezone(zone).date().isoformat()
