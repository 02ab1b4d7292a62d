"""The console's lists as tables people can work with: sortable column headers, the total,
previous and next pages, a page size, and filters kept in every link.

Pages are keyset pages (``tenants.pagination``): "previous" needs the cursors of the pages
before, which ride along in the URL (``trail``, at most TRAIL of them joined by
TRAIL_SEPARATOR; from further back, previous leads to the first page). A sort or size
the list does not offer falls back to its default rather than failing the page. Templates
draw it with ``console/tables.html`` (``th``, ``pager``, ``size_select``, ``kept``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from app.web.numbers import whole_number
from tenants.errors import FieldProblem, InvalidInputError
from tenants.pagination import Sort

PAGE_SIZES = (25, 50, 100, 200)
#: Previous pages remembered in the URL (each a cursor); older ones lead to the first page.
TRAIL = 20
#: Joins the trail's cursors. A cursor (``tenants.cursors``) is unpadded URL-safe base64,
#: so never "~", which URLs also carry as it is.
TRAIL_SEPARATOR = "~"
#: What each of the trail's entries is: a cursor, or FIRST (the first page).
TRAIL_ENTRY = re.compile(r"[A-Za-z0-9_-]{1,4096}")
FIRST = "first"


@dataclass(frozen=True)
class ListView:
    """One list's state from its query string: sort, page size, where the page starts, the
    cursors of the pages before, and the list's own filters (kept in every link)."""

    path: str
    sort: Sort
    size: int
    cursor: str | None
    trail: tuple[str, ...]
    filters: Mapping[str, str] = field(default_factory=dict)
    sizes: tuple[int, ...] = PAGE_SIZES

    @classmethod
    def parse(
        cls,
        path: str,
        params: Mapping[str, str],
        *,
        sortable: tuple[str, ...],
        default_sort: str,
        filters: Mapping[str, str] | None = None,
        sizes: tuple[int, ...] = PAGE_SIZES,
        default_size: int = 50,
    ) -> ListView:
        text = params.get("sort") or default_sort
        sort = Sort.parse(default_sort, sortable)
        if text.removeprefix("-") in sortable:
            sort = Sort.parse(text, sortable)
        size = whole_number(params.get("size"))
        size = size if size in sizes else default_size
        trail = parse_trail(params.get("trail") or "")
        return cls(
            path,
            sort,
            size,
            params.get("cursor") or None,
            trail,
            {k: v for k, v in (filters or {}).items() if v},
            sizes,
        )

    @property
    def keep(self) -> dict[str, str]:
        """Filters, sort and size: what every link of the list carries."""
        return {**self.filters, "sort": str(self.sort), "size": str(self.size)}

    def url(self, query: Mapping[str, str]) -> str:
        return f"{self.path}?{urlencode(dict(query))}"

    def sort_url(self, column: str) -> str:
        """The first page sorted by ``column``; ascending, or flipped when it is the sort."""
        flip = "-" + column if self.sort.field == column and not self.sort.descending else column
        return self.url({**self.filters, "sort": flip, "size": str(self.size)})

    def next_url(self, next_cursor: str | None) -> str | None:
        if not next_cursor:
            return None
        trail = [*self.trail, self.cursor or FIRST][-TRAIL:]
        return self.url({**self.keep, "cursor": next_cursor, "trail": TRAIL_SEPARATOR.join(trail)})

    @property
    def prev_url(self) -> str | None:
        if not self.cursor:
            return None
        back = self.trail[-1] if self.trail else FIRST
        query = dict(self.keep)
        if back != FIRST:
            query.update(cursor=back, trail=TRAIL_SEPARATOR.join(self.trail[:-1]))
        return self.url(query)

    def context(self, *, next_cursor: str | None, total: int | str, shown: int) -> dict[str, Any]:
        """What ``console/tables.html`` needs, as template variables (under ``table``);
        ``total`` may be words ("10,000 or more") where counting all would cost too much."""
        return {
            "table": {
                "sort": self.sort,
                "sort_url": self.sort_url,
                "size": self.size,
                "sizes": self.sizes,
                "total": total,
                "shown": shown,
                "next_url": self.next_url(next_cursor),
                "prev_url": self.prev_url,
                "keep": self.keep,
                "filters": dict(self.filters),
                "path": self.path,
            }
        }


def parse_trail(text: str) -> tuple[str, ...]:
    """The cursors of the pages before (the last TRAIL), from the ``trail`` parameter;
    InvalidInputError naming ``trail`` (a 400) when an entry cannot be a cursor. Each is
    checked as a cursor only when "previous" leads to it (an altered one is then refused
    as ``cursor``)."""
    entries = tuple(entry for entry in text.split(TRAIL_SEPARATOR) if entry)
    if not all(TRAIL_ENTRY.fullmatch(entry) for entry in entries):
        raise InvalidInputError(
            "the page trail is not valid",
            fields=[FieldProblem("trail", "it holds something that is not a page cursor")],
        )
    return entries[-TRAIL:]
