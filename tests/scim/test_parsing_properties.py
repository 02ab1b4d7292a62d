"""SCIM input parsing as properties: any filter text and any JSON body is either understood
or refused with a SCIM error, and nothing a refusal would have caught reaches SQL.

These run without a database: the filter compiler's output is SQL text plus bound values,
and the body check returns the canonical document or raises.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from app.scim.queries import list_query, search_query
from tenants.scim import validation
from tenants.scim.columns import GROUP_COLUMNS, USER_COLUMNS
from tenants.scim.errors import InvalidSyntaxError, ScimError
from tenants.scim.filters import Params, compile_filter
from tenants.scim.listing import ListQuery
from tenants.scim.schemas import GROUPS, SEARCH_URN, USERS, ResourceKind
from tenants.text import is_storable

HOSTILE = ["\ud800", "\x00", "\x01", "\u202e", "e\u0301", "\\ud800", "\\u0000", '"', "\\"]
ATTRIBUTES = [
    "userName",
    "displayName",
    "externalId",
    "name.givenName",
    "emails.value",
    'emails[type eq "work"].value',
    "active",
    "meta.lastModified",
    "meta.created",
    "members.value",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
    "id",
]
OPERATORS = ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "pr", "EQ", "xx"]
#: dateTimes anywhere in the calendar, its first and last second most of all, with UTC
#: offsets up to ±14:00 or none; some of them cannot be shifted to UTC.
MOMENTS = st.builds(
    lambda moment, minutes: (
        moment if minutes is None else moment.replace(tzinfo=timezone(timedelta(minutes=minutes)))
    ).isoformat(),
    st.sampled_from([datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59, 999999)])
    | st.datetimes(),
    st.none() | st.sampled_from([-14 * 60, 14 * 60]) | st.integers(-14 * 60, 14 * 60),
)
LITERAL = (
    st.text(max_size=12).map(json.dumps)
    | st.sampled_from(HOSTILE).map(lambda t: f'"{t}"')
    | st.sampled_from(["true", "false", "null", "1", "-0.5", "2026-12-05T00:00:00Z", "1e309"])
    | MOMENTS.map(json.dumps)
)
COMPARISON = st.builds(
    lambda a, o, v: f"{a} {o}" if o == "pr" else f"{a} {o} {v}",
    st.sampled_from(ATTRIBUTES),
    st.sampled_from(OPERATORS),
    LITERAL,
)
FILTER = st.recursive(
    COMPARISON,
    lambda inner: (
        st.builds(
            lambda a, j, b: f"({a}) {j} {b}", inner, st.sampled_from(["and", "or", "AND"]), inner
        )
        | inner.map(lambda f: f"not ({f})")
    ),
    max_leaves=5,
)


def compiled(text: str, columns: Any) -> tuple[str, list[Any]] | None:
    params = Params("tenant")
    try:
        return compile_filter(text, columns, params), params.values
    except ScimError:
        return None


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(FILTER | st.text(max_size=200))
# Found by a fuzzer: times that fall off the calendar once shifted to UTC reached SQL.
@example('meta.lastModified gt "0001-01-01T00:00:00+14:00"')
@example('meta.created lt "9999-12-31T23:59:59-14:00"')
def test_any_filter_compiles_to_sql_with_storable_values_or_is_refused(text: str) -> None:
    for columns in (USER_COLUMNS, GROUP_COLUMNS):
        result = compiled(text, columns)
        if result is None:
            continue
        sql, values = result
        assert isinstance(sql, str) and sql
        for value in values:
            assert not isinstance(value, str) or is_storable(value), (text, value)
            if isinstance(value, datetime):
                # PostgreSQL takes a time it can hold in UTC, years 1 to 9999 here.
                assert value.tzinfo is not None and value.astimezone(UTC), (text, value)


#: What a client may send as startIndex or count: integers of any size, any float (JSON's
#: 1e400 reads as infinity, and Python's parser also takes Infinity and NaN), and others.
NUMBERS = (
    st.integers()
    | st.sampled_from([10**400, -(10**400), 2**63, -(2**63) - 1])
    | st.floats()
    | st.sampled_from(["1e400", "Infinity", "NaN", "1.5", " 7", "1_000", "\u0663", "0x10", ""])
    | st.text(max_size=5)
    | st.sampled_from([True, None, [], {}])
)


def _url_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def paged(parse: Any, kind: ResourceKind, source: Any) -> ListQuery | ScimError:
    """The query ``parse`` (search_query or list_query) reads from ``source``, or its refusal."""
    try:
        query: ListQuery = parse(kind, source)[0]
    except ScimError as error:
        return error
    return query


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.fixed_dictionaries({}, optional={"startIndex": NUMBERS, "count": NUMBERS}))
# Found by a fuzzer: an infinite startIndex or count was an OverflowError.
@example({"startIndex": math.inf})
@example({"count": -math.inf})
@example({"count": math.nan, "startIndex": 1.5})
def test_any_start_index_and_count_are_integers_or_invalid_value_naming_them(
    given_values: dict[str, Any],
) -> None:
    """A SearchRequest (decoded as the body would be) and the URL query alike: integers
    (an integral float as its integer), or invalidValue naming the parameter."""
    body = json.loads(json.dumps({"schemas": [SEARCH_URN], **given_values}))
    params = {name: _url_text(value) for name, value in given_values.items()}
    for kind in (USERS, GROUPS):
        for parse, source in ((search_query, body), (list_query, params)):
            query = paged(parse, kind, source)
            if isinstance(query, ScimError):
                assert query.scim_type == "invalidValue", (source, query)
                assert "startIndex" in query.message or "count" in query.message, query.message
                continue
            assert type(query.start_index) is int and type(query.count) is int, (source, query)
            assert query.count >= 0, (source, query)
            for value in source.values():
                assert not isinstance(value, float) or value.is_integer(), (source, query)


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(HOSTILE),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from([*ATTRIBUTES, "name", "emails", "schemas", "x"]) | st.text(max_size=8),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)
USER_LIKE = st.fixed_dictionaries(
    {"schemas": st.just(["urn:ietf:params:scim:schemas:core:2.0:User"])},
    optional={
        "userName": st.text(max_size=20) | st.sampled_from(HOSTILE),
        "displayName": st.text(max_size=20) | st.sampled_from(HOSTILE),
        "externalId": st.text(max_size=20) | st.sampled_from(HOSTILE) | st.integers(),
        "name": st.dictionaries(
            st.sampled_from(["givenName", "familyName", "formatted"]),
            st.text(max_size=10) | st.sampled_from(HOSTILE),
        ),
        "emails": st.lists(st.fixed_dictionaries({"value": st.text(max_size=20)})),
        "active": st.booleans() | st.text(max_size=5),
    },
)


def strings_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [k, *strings_in(v)]]
    if isinstance(value, list):
        return [s for v in value for s in strings_in(v)]
    return []


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(USER_LIKE | JSON)
# Found by this test: a name's `formatted` was let through as free text like an address's.
@example(
    {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "name": {"formatted": "\u202e"}}
)
@example(
    {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "a",
        "addresses": [{"type": "work", "formatted": "1 Main St\nTown"}],
    }
)
def test_any_body_is_a_canonical_resource_of_storable_text_or_a_scim_error(body: Any) -> None:
    for kind in (USERS, GROUPS):
        try:
            validation.check_body(body)
            document = validation.validate(kind, body)
        except ScimError:
            continue
        for text in strings_in(document):
            assert is_storable(text), (body, text)
            assert "\u202e" not in text and "\x01" not in text, (body, text)


def test_a_body_nests_at_most_max_depth_arrays_or_objects() -> None:
    for wrap in (lambda inner: [inner], lambda inner: {"value": inner}):
        body: Any = "bulkId:x"
        for _ in range(validation.MAX_DEPTH):
            body = wrap(body)
        validation.check_body(body)
        with pytest.raises(InvalidSyntaxError, match=f"deeper than {validation.MAX_DEPTH}"):
            validation.check_body(wrap(body))
    validation.check_body([[{"a": [1, "b"]}] * 1000] * 30)
