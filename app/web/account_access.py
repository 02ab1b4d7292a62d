"""The account page's "Who accessed your data": the member's own transparency log.

Only ``ctx.active.member``'s entries are read (by member id, under row-level security for
the organisation); grants whose disclosure is delayed appear when the delay ends.
"""

from __future__ import annotations

from typing import Any

from app.web.pages import PageContext
from tenants.access.log import TransparencyPage, member_transparency

#: Entries per page of the account page's log.
PAGE = 20

CATEGORY_WORDS = {
    "interaction": "interaction data",
    "diagnostic": "diagnostic data",
    "communications": "the contents of your communications",
    "files": "your files",
}


async def who_accessed(ctx: PageContext) -> TransparencyPage:
    """The signed-in member's log, from ``?access_after=`` (a position it gave) on."""
    after = ctx.request.query_params.get("access_after") or None
    return await member_transparency(ctx.active.member.id, after=after, limit=PAGE)


def template_helpers() -> dict[str, Any]:
    def words(categories: list[str]) -> str:
        named = [CATEGORY_WORDS.get(c, c) for c in categories]
        return named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]

    return {"access_words": words}
