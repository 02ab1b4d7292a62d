"""Keyset pagination: stable under concurrent inserts and as fast on page 1,000 as page 1.

A cursor is an opaque token carrying the sort it was made for and the last row's sort
value and id; the next page starts strictly after that pair.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

from tortoise.expressions import Q
from tortoise.fields import Field
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
    elif isinstance(value, date):
        value = {"d": value.isoformat()}
    raw = json.dumps([str(sort), value, str(id_)], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: Sort, field: Field[Any] | None = None) -> tuple[Any, UUID]:
    """The sort value and id a cursor continues after; InvalidInputError if it was altered.

    With ``field`` (the model field sorted on) the value must also be of that field's type,
    so a crafted cursor is refused here rather than failing in the database.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        made_for, value, id_text = json.loads(raw)
        id_ = UUID(id_text)
        if isinstance(value, dict):
            value = date.fromisoformat(value["d"]) if "d" in value else (
                datetime.fromisoformat(value["t"])
            )
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError, RecursionError):
        raise _bad_cursor("it was not issued by this service or was altered") from None
    if made_for != str(sort):
        raise _bad_cursor(f"it was issued for sort={made_for}, not sort={sort}")
    if field is not None and not _fits(value, field):
        raise _bad_cursor("it was not issued by this service or was altered")
    return value, id_


def _fits(value: Any, field: Field[Any]) -> bool:
    """Whether ``value`` can be compared with ``field`` in SQL without a database error."""
    kind = field.field_type
    if isinstance(kind, type) and issubclass(kind, datetime):
        if not isinstance(value, datetime) or value.tzinfo is None:
            return False
        try:
            value.astimezone(UTC)
        except OverflowError:
            return False
        return True
    if isinstance(kind, type) and issubclass(kind, date):
        return isinstance(value, date) and not isinstance(value, datetime)
    if kind is int:
        limits = getattr(field, "constraints", {})
        return (
            isinstance(value, int)
            and not isinstance(value, bool)
            and limits.get("ge", -(2**63)) <= value <= limits.get("le", 2**63 - 1)
        )
    if isinstance(kind, type) and issubclass(kind, str):
        return isinstance(value, str) and "\x00" not in value
    return True


async def paginate(query: QuerySet[M], sort: Sort, *, cursor: str | None, limit: int) -> Page[M]:
    """One page of ``query`` ordered by ``sort`` then id, starting after ``cursor``."""
    direction = "-" if sort.descending else ""
    if cursor:
        value, last_id = decode_cursor(cursor, sort, query.model._meta.fields_map.get(sort.field))
        op = "lt" if sort.descending else "gt"
        # "field >= v AND (field > v OR id > last)": the first part is an index range on
        # (tenant_id, field), so a deep page reads about as few rows as the first; the
        # second only filters the rows that tie on the sort value.
        at_or_after: dict[str, Any] = {f"{sort.field}__{op}e": value}
        after: dict[str, Any] = {f"{sort.field}__{op}": value}
        later_id: dict[str, Any] = {f"id__{op}": last_id}
        query = query.filter(Q(**at_or_after) & (Q(**after) | Q(**later_id)))
    rows = await query.order_by(f"{direction}{sort.field}", f"{direction}id").limit(limit + 1)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor(sort, getattr(last, sort.field), last.pk)
    return Page(list(rows), next_cursor)
