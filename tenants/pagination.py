"""Keyset pagination: stable under concurrent inserts and as fast on page 1,000 as page 1.

A cursor (``tenants.cursors``) is an opaque, signed token carrying the list (table) and
sort it was made for and the last row's sort value and id; the next page starts strictly
after that pair. Its values are checked against the sorted column before the query.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

from tortoise.expressions import Q
from tortoise.fields import Field
from tortoise.models import Model
from tortoise.queryset import QuerySet

from tenants import cursors
from tenants.cursors import BIGINT, Column, Kind
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


def column_of(field: Field[Any]) -> Column:
    """What a cursor value compared with the tortoise ``field`` must be."""
    kind = field.field_type
    enum_type = getattr(field, "enum_type", None)
    if enum_type is not None:
        return Column(Kind.CHOICE, choices=frozenset(str(m.value) for m in enum_type))
    if isinstance(kind, type) and issubclass(kind, datetime):
        return Column(Kind.DATETIME)
    if isinstance(kind, type) and issubclass(kind, date):
        return Column(Kind.DATE)
    if kind is UUID:
        return Column(Kind.UUID)
    if kind is int:
        limits = getattr(field, "constraints", {})
        return Column(
            Kind.INTEGER, low=limits.get("ge", BIGINT[0]), high=limits.get("le", BIGINT[1])
        )
    if isinstance(kind, type) and issubclass(kind, str):
        return Column(Kind.TEXT, max_length=getattr(field, "max_length", None))
    raise TypeError(f"cannot page on {field.model_field_name}: {kind!r} has no cursor rule")


def _columns(model: type[Model], sort: Sort) -> list[Column]:
    fields = model._meta.fields_map
    return [column_of(fields[sort.field]), Column(Kind.UUID)]


async def paginate(
    query: QuerySet[M],
    sort: Sort,
    *,
    cursor: str | None,
    limit: int,
    within: object | None = None,
) -> Page[M]:
    """One page of ``query`` ordered by ``sort`` then id, starting after ``cursor``.
    ``within``: the parent a nested list belongs to (a group's members, a member's items,
    a review's items), whose cursors then serve that list only: bound to the table alone,
    a group's cursor went on in the organisation's member list, or another group's."""
    direction = "-" if sort.descending else ""
    list_name = query.model._meta.db_table + (f"/{within}" if within is not None else "")
    if cursor:
        value, last_id = cursors.unseal(cursor, list_name, str(sort), _columns(query.model, sort))
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
        next_cursor = cursors.seal(list_name, str(sort), [getattr(last, sort.field), last.pk])
    return Page(list(rows), next_cursor)


#: Counting a list stops here: a page says "10,000 or more" (``shown_total``) rather than
#: read every row of a long log or of a member's many items to give the exact number.
COUNT_CAP = 10_000


async def count_up_to(query: QuerySet[M], cap: int = COUNT_CAP) -> int:
    """How many rows ``query`` matches, at most ``cap + 1`` (reads that many ids of its
    index at worst)."""
    return len(await query.limit(cap + 1).values_list("id", flat=True))


def shown_total(count: int, cap: int = COUNT_CAP) -> int | str:
    """A list's total as its caption shows it: the number, or "10,000 or more"."""
    return f"{cap:,} or more" if count > cap else count
