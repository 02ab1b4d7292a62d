"""Queries over a resource kind (RFC 7644 §3.4.2): filter, sort, page, count, in SQL.

Both kinds share the shape: a SELECT of the resource's rows, a visibility condition, the
compiled filter, an ORDER BY and LIMIT/OFFSET; the total comes from a window count in
the same statement (a second COUNT only when the page is empty or not asked for).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scim2_models.path.grammar import _parse_path  # the PATCH/attribute path grammar

from tenants import db
from tenants.scim.errors import InvalidFilterError, InvalidValueError
from tenants.scim.filters import (
    Columns,
    Composite,
    Params,
    compile_filter,
    sort_expression,
    value_column,
)
from tenants.scim.schemas import Binding, ResourceKind, resolve

#: Default and largest page (RFC 7644 §3.4.2.4: a larger count gets the maximum).
DEFAULT_COUNT = 100
MAX_COUNT = 1000
MAX_RESULTS = 100_000


@dataclass(frozen=True, slots=True)
class ListQuery:
    """A query as RFC 7644 §3.4.2 takes it (from the URL or a SearchRequest)."""

    filter: str | None = None
    sort_by: str | None = None
    descending: bool = False
    #: 1-based (RFC 7644 §3.4.2.4); values below 1 read as 1.
    start_index: int = 1
    count: int = DEFAULT_COUNT


def bind_path(kind: ResourceKind, text: str) -> Binding:
    """An attribute path (``sortBy``) resolved against the kind; InvalidFilterError if unknown."""
    try:
        node = _parse_path(text)
    except Exception as exc:
        raise InvalidFilterError(f"{text!r} is not an attribute path") from exc
    attr = getattr(node, "attr", None)
    if not isinstance(attr, str):
        raise InvalidFilterError(f"{text!r} is not an attribute path")
    return resolve(kind, attr, getattr(node, "sub_attr", None), getattr(node, "uri", None))


def order_by(columns: Columns, query: ListQuery, tiebreak: str) -> str:
    """The ORDER BY of a query: ``sortBy`` (a multi-valued attribute sorts by its primary
    or first value), then ``tiebreak`` so pages never overlap."""
    direction = "DESC NULLS FIRST" if query.descending else "ASC NULLS LAST"
    if not query.sort_by:
        return f"{tiebreak} {'DESC' if query.descending else 'ASC'}"
    try:
        binding = bind_path(columns.kind, query.sort_by)
        column = columns.column(binding)
    except InvalidFilterError as exc:  # the path's own words, but not a filter's error
        raise InvalidValueError(f"sortBy: {exc}") from None
    if isinstance(column, Composite):
        if binding.sub is None:
            raise InvalidValueError(f"sortBy: {binding} is complex: sort by a sub-attribute")
        found = column.subs.get(binding.sub.name.lower())
        if found is None:
            raise InvalidValueError(f"sortBy: {binding} cannot be sorted on")
        column = found
    scalar = value_column(column)
    return f"{sort_expression(scalar, binding.leaf.case_exact)} {direction}, {tiebreak} ASC"


async def run(
    columns: Columns, select: str, visible: str, query: ListQuery, tiebreak: str
) -> tuple[int, list[dict[str, Any]]]:
    """``(totalResults, rows of the page)``. ``select`` is the SELECT … FROM of the kind and
    ``visible`` its visibility condition, both using ``$1`` for the organisation."""
    if query.count < 0 or query.start_index > MAX_RESULTS:
        raise InvalidValueError("count must not be negative and startIndex not past the results")
    params = Params(db.current_org())
    where = visible
    if query.filter is not None:
        where += f" AND {compile_filter(query.filter, columns, params)}"
    count = min(query.count, MAX_COUNT)
    offset = max(query.start_index, 1) - 1
    counting = f"SELECT count(*) AS total FROM ({select} WHERE {where}) q"  # noqa: S608
    if count == 0:
        total_row = await db.fetch_one(counting, *params.values)
        return int(total_row["total"]) if total_row else 0, []
    counted = select.replace("SELECT ", "SELECT count(*) OVER () AS total, ", 1)
    sql = (
        f"{counted} WHERE {where} ORDER BY {order_by(columns, query, tiebreak)} "
        f"LIMIT {count} OFFSET {offset}"
    )
    rows = await db.fetch(sql, *params.values)
    if rows:
        return int(rows[0]["total"]), rows
    total_row = await db.fetch_one(counting, *params.values)
    return int(total_row["total"]) if total_row else 0, []
