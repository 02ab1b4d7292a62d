"""Keyset pagination: stable under concurrent inserts and as fast on page 1,000 as page 1.

A cursor is an opaque token carrying the sort it was made for and the last row's sort
value and id; the next page starts strictly after that pair.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

from tortoise.expressions import Q
from tortoise.models import Model
from tortoise.queryset import QuerySet

from tenants.errors import FieldProblem, InvalidInputError

M = TypeVar("M", bound=Model)

MAX_LIMIT = 500


@dataclass(frozen=True, slots=True)
class Sort:
    field: str
    descending: bool = False

    @classmethod
    def parse(cls, text: str, allowed: tuple[str, ...]) -> Sort:
        """``name`` or ``-name``; InvalidInputError on fields outside ``allowed``."""
        descending = text.startswith("-")
        name = text.removeprefix("-")
        if name not in allowed:
            options = ", ".join(f"{a}, -{a}" for a in allowed)
            raise InvalidInputError(
                f"cannot sort by {text!r}",
                fields=[FieldProblem("sort", f"expected one of {options}")],
            )
        return cls(name, descending)

    def __str__(self) -> str:
        return ("-" if self.descending else "") + self.field


@dataclass(frozen=True, slots=True)
class Page(Generic[M]):
    items: list[M]
    next_cursor: str | None


def _bad_cursor(reason: str) -> InvalidInputError:
    return InvalidInputError("the cursor is not valid", fields=[FieldProblem("cursor", reason)])


def encode_cursor(sort: Sort, value: Any, id_: UUID) -> str:
    if isinstance(value, datetime):
        value = {"t": value.isoformat()}
    raw = json.dumps([str(sort), value, str(id_)], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: Sort) -> tuple[Any, UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        made_for, value, id_text = json.loads(raw)
        id_ = UUID(id_text)
        if isinstance(value, dict):
            value = datetime.fromisoformat(value["t"])
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError):
        raise _bad_cursor("it was not issued by this service or was altered") from None
    if made_for != str(sort):
        raise _bad_cursor(f"it was issued for sort={made_for}, not sort={sort}")
    return value, id_


async def paginate(
    query: QuerySet[M], sort: Sort, *, cursor: str | None, limit: int
) -> Page[M]:
    """One page of ``query`` ordered by ``sort`` then id, starting after ``cursor``."""
    direction = "-" if sort.descending else ""
    if cursor:
        value, last_id = decode_cursor(cursor, sort)
        op = "lt" if sort.descending else "gt"
        query = query.filter(
            Q(**{f"{sort.field}__{op}": value}) | Q(**{sort.field: value, f"id__{op}": last_id})
        )
    rows = await query.order_by(f"{direction}{sort.field}", f"{direction}id").limit(limit + 1)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor(sort, getattr(last, sort.field), last.pk)
    return Page(list(rows), next_cursor)
