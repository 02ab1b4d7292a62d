"""Query parameters (RFC 7644 §3.4.2) and SearchRequest bodies (§3.4.3) as a ListQuery
plus the ``attributes`` / ``excludedAttributes`` to project the results on (§3.9)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from tenants.scim.documents import Path
from tenants.scim.errors import InvalidFilterError, InvalidSyntaxError, InvalidValueError
from tenants.scim.listing import DEFAULT_COUNT, ListQuery, bind_path
from tenants.scim.schemas import SEARCH_URN, ResourceKind

Refs = list[Path]

_PARAMS = (
    "filter",
    "sortby",
    "sortorder",
    "startindex",
    "count",
    "attributes",
    "excludedattributes",
)
#: An integer as the URL carries it: ASCII digits, a sign at most (not "1_000" or " 7").
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")


def attribute_refs(kind: ResourceKind, paths: Iterable[str]) -> Refs:
    """Attribute paths as the keys leading to them in the rendered resource: the top-level
    key (an extension's URN for its attributes), then the attribute and sub-attribute.

    Unknown attributes are left out: they name nothing to return (a filter naming one,
    by contrast, is refused, because dropping a filter term would widen the result).
    """
    refs: Refs = []
    for raw in paths:
        text = raw.strip()
        if not text:
            continue
        urns = {s.lower(): s for s in kind.extensions}
        if text.lower() in urns:
            refs.append((urns[text.lower()],))
            continue
        try:
            binding = bind_path(kind, text)
        except InvalidFilterError:
            continue
        sub = (binding.sub.name,) if binding.sub else ()
        if binding.urn in kind.extensions:
            refs.append((binding.urn, binding.attribute.name, *sub))
        else:
            refs.append((binding.attribute.name, *sub))
    return refs


def _split(value: str | None) -> list[str]:
    return [part for part in (value or "").split(",") if part.strip()]


def _integer(name: str, value: Any, default: int) -> int:
    """``startIndex`` or ``count`` as an integer, ``default`` when not given.

    A JSON integer of any size, a float with an integral value (``2.0``), or a string of
    ASCII digits with an optional sign (the URL's form) is one; ranges are the caller's
    (RFC 7644 §3.4.2.4: a startIndex below 1 reads as 1, a negative count as 0). Anything
    else is InvalidValueError naming ``name``: a boolean, ``1.5`` (RFC 7644 §3.4.2.4 asks
    for an integer and there is no right way to round), and the non-finite floats that
    JSON's ``1e400`` and Python's ``Infinity`` and ``NaN`` decode to.
    """
    if value is None or value == "":
        return default
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value):
        try:
            return int(value)
        except ValueError:  # more digits than int() takes from text (4300)
            raise InvalidValueError(f"{name} has too many digits") from None
    shown = repr(value) if len(repr(value)) <= 40 else f"{repr(value)[:37]}..."
    raise InvalidValueError(f"{name} must be an integer, not {shown}")


def _query(
    kind: ResourceKind, given: Mapping[str, Any], listing: bool
) -> tuple[ListQuery, Refs, Refs]:
    order = given.get("sortorder")
    if order not in (None, "", "ascending", "descending"):
        raise InvalidValueError("sortOrder must be ascending or descending")
    attributes = given.get("attributes") or []
    excluded = given.get("excludedattributes") or []
    if attributes and excluded:
        raise InvalidSyntaxError("attributes and excludedAttributes cannot both be given")
    filter_text = given.get("filter")
    if filter_text is not None and not isinstance(filter_text, str):
        raise InvalidFilterError("filter must be a string")
    if not listing and filter_text is not None:
        raise InvalidFilterError("a filter applies to a list of resources, not to one")
    sort_by = given.get("sortby")
    if sort_by is not None and not isinstance(sort_by, str):
        raise InvalidValueError("sortBy must be an attribute path")
    query = ListQuery(
        filter=filter_text,
        sort_by=sort_by or None,
        descending=order == "descending",
        start_index=_integer("startIndex", given.get("startindex"), 1),
        count=max(_integer("count", given.get("count"), DEFAULT_COUNT), 0),
    )
    kept = attribute_refs(kind, attributes)
    if attributes and not kept:
        # Naming only unknown attributes still replaces the default set (RFC 7644 §3.9):
        # what is returned always (id, schemas) is all there is to return.
        kept = [("id",)]
    return query, kept, attribute_refs(kind, excluded)


def list_query(
    kind: ResourceKind, params: Mapping[str, str], *, listing: bool = True
) -> tuple[ListQuery, Refs, Refs]:
    """The query in a URL; parameter names compare case-insensitively."""
    given: dict[str, Any] = {}
    for key, value in params.items():
        name = key.lower()
        if name not in _PARAMS:
            continue
        if "\x00" in value:
            raise InvalidValueError(f"{key} contains a NUL character")
        given[name] = _split(value) if name in ("attributes", "excludedattributes") else value
    return _query(kind, given, listing)


def search_query(kind: ResourceKind, body: Any) -> tuple[ListQuery, Refs, Refs]:
    """A SearchRequest message (RFC 7644 §3.4.3)."""
    if not isinstance(body, dict):
        raise InvalidSyntaxError("the body must be a SearchRequest message")
    schemas = body.get("schemas")
    if schemas is not None and (not isinstance(schemas, list) or SEARCH_URN not in schemas):
        raise InvalidSyntaxError(f"a SearchRequest's schemas must name {SEARCH_URN}")
    given: dict[str, Any] = {}
    for key, value in body.items():
        name = key.lower() if isinstance(key, str) else ""
        if name in ("attributes", "excludedattributes"):
            if isinstance(value, str):
                value = _split(value)
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise InvalidValueError(f"{key} must be a list of attribute paths")
        if name in _PARAMS:
            given[name] = value
    return _query(kind, given, True)
