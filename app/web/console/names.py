"""Names instead of raw ids on console pages: an actor reference (``member:<id>``) becomes
the member's name linked to their page, in one query for a whole page of references."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from tenants.members.models import Member


async def actor_links(refs: Iterable[str]) -> dict[str, tuple[str, str | None]]:
    """Each reference to (text, link or None): members by name, linked; other actors (API
    tokens, products, the system) as written."""
    ids: dict[str, uuid.UUID] = {}
    for ref in refs:
        kind, _, rest = ref.partition(":")
        if kind == "member":
            try:
                ids[ref] = uuid.UUID(rest)
            except ValueError:
                continue
    found = {m.id: m.name for m in await Member.filter(id__in=list(ids.values()))}
    links: dict[str, tuple[str, str | None]] = {}
    for ref in refs:
        member_id = ids.get(ref)
        if member_id is not None and member_id in found:
            links[ref] = (found[member_id], f"/console/members/{member_id}")
        else:
            links[ref] = (ref, None)
    return links
