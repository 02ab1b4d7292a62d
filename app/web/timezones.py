"""Times shown in the admin's time zone, with UTC on hover.

The zone is detected by the browser (``/static/tz.js`` writes it to the ``tz`` cookie;
scripts off means UTC) and read per request; an unknown name falls back to UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import pass_context
from markupsafe import Markup, escape
from starlette.requests import Request

TZ_COOKIE = "tz"


def zone_of(request: Request) -> ZoneInfo | None:
    """The browser's time zone from its cookie; None (UTC) when absent or unknown."""
    name = request.cookies.get(TZ_COOKIE, "")
    if not name or len(name) > 64 or ".." in name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def format_time(value: datetime | None, zone: ZoneInfo | None) -> Markup:
    """``<time>`` showing ``value`` in ``zone`` (or UTC) with the UTC time as its title."""
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


@pass_context
def localtime(context: Any, value: datetime | None) -> Markup:
    request = context.get("request")
    return format_time(value, zone_of(request) if request is not None else None)
