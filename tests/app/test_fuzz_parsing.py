"""Fuzzing the parsers that sit in front of the database, through HTTP on the real app.

Each property sends generated input where a client can put anything: a page cursor on
every paged list of ``/v1``, a SCIM filter, a SCIM resource body. The answer must be a
page (or the resource) or a 4xx problem naming the input, never a 5xx. Cursors include
the unsigned base64-JSON form that earlier versions issued, filled with the values that
once crashed the service (ids that are not strings, lone surrogates, values longer than
their column, statuses that are not statuses).

The tests are synchronous, as hypothesis wants; each request runs on the session's event
loop, where the app and its database pool live (as in test_schemathesis.py).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable, Coroutine
from datetime import UTC
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.rfc3339 import parse_datetime
from tests.conftest import OrgHandle, make_member
from tests.scim.conftest import USER_URN, scim_for
from tests.scim.test_parsing_properties import FILTER, HOSTILE
from tests.support.api_schema import operations, served_document

EXAMPLES = 40
FUZZ = settings(
    max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)


@pytest.fixture(scope="session")
async def session_loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()


Run = Callable[[Coroutine[Any, Any, httpx.Response]], httpx.Response]


@pytest.fixture
def run(session_loop: asyncio.AbstractEventLoop) -> Run:
    return session_loop.run_until_complete


@pytest.fixture
async def paged(org: OrgHandle) -> list[tuple[str, list[str]]]:
    """Every paged list of /v1 with the sorts it takes, and a few members to page over."""
    for _ in range(3):
        await make_member(org)
    document = await served_document(org.client)
    found = []
    for op in operations(document):
        names = {p["name"]: p for p in op.query_params}
        if op.is_list and "cursor" in names:
            sort = names.get("sort", {}).get("schema", {})
            described = sort.get("description", "") or ""
            sorts = [s.strip(" .") for s in described.replace(" or ", ", ").split(", ") if s]
            found.append((op.path, [s for s in sorts if s and " " not in s] or [""]))
    assert len(found) >= 8
    return found


def legacy(payload: Any) -> str:
    """A cursor in the unsigned form of earlier versions: base64 of JSON."""
    raw = json.dumps(payload).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


HOSTILE_VALUES = st.sampled_from(
    [*HOSTILE, "zombie", "n" * 500, 12345, None, True, [1], {"t": "soon"}, 10**30]
)
#: Sorts a legacy cursor may claim: those of the list asked for and the fixed ones.
FIXED_SORTS = ["created_at", "-created_at", "email", "-id"]


def cursors_for(sorts: list[str]) -> st.SearchStrategy[str]:
    """Any text, base64 of any bytes, a forged ``payload.signature``, and the legacy
    unsigned form claiming one of ``sorts``, with hostile values and ids."""
    return (
        st.text(max_size=200)
        | st.binary(max_size=200).map(lambda b: base64.urlsafe_b64encode(b).decode())
        | st.builds(lambda s: s + ".c2lnbmF0dXJl", st.text(max_size=50))
        | st.tuples(
            st.sampled_from([s for s in sorts if s] + FIXED_SORTS),
            HOSTILE_VALUES,
            HOSTILE_VALUES | st.uuids().map(str),
        ).map(lambda t: legacy(list(t)))
    )


@FUZZ
@given(data=st.data())
def test_any_cursor_on_any_paged_list_is_a_page_or_a_400_naming_cursor(
    org: OrgHandle, run: Run, paged: list[tuple[str, list[str]]], data: st.DataObject
) -> None:
    """Each example sends one generated cursor to every paged list."""
    for path, sorts in paged:
        sort = data.draw(st.sampled_from(sorts))
        cursor = data.draw(cursors_for([sort]))
        params = {"cursor": cursor, "limit": "1", **({"sort": sort} if sort else {})}
        response = run(org.get(path, params=params))
        assert response.status_code in (200, 400, 422), (path, params, response.text)
        if response.status_code == 400:
            assert [e["field"] for e in response.json()["errors"]] == ["cursor"], response.text


#: Text near RFC 3339: its own characters, ISO 8601's others, digits of other scripts.
MOMENT_TEXT = st.from_regex(r"\A[0-9Tt zZ:.,+W-]{0,35}\Z") | st.text(
    st.characters(codec="utf-8"), max_size=40
)


@FUZZ
@given(since=MOMENT_TEXT, until=MOMENT_TEXT)
def test_any_date_time_in_a_query_is_a_page_or_a_422_naming_it_and_reads_back_the_same(
    org: OrgHandle, run: Run, since: str, until: str
) -> None:
    """``since`` and ``until`` go through the one RFC 3339 reader (app/rfc3339.py): never
    a 500, and an instant the API takes is the instant its own RFC 3339 spelling names."""
    response = run(org.get("/v1/audit-events", params={"since": since, "until": until}))
    assert response.status_code in (200, 422), (since, until, response.text)
    if response.status_code == 422:
        named = {e["field"] for e in response.json()["errors"]}
        assert named <= {"query.since", "query.until"} and named, response.text
    for text in (since, until):
        try:
            moment = parse_datetime(text)
        except ValueError:
            continue
        assert parse_datetime(moment.isoformat()) == moment
        assert parse_datetime(moment.astimezone(UTC).isoformat()) == moment


@pytest.fixture
async def scim_token(org: OrgHandle) -> dict[str, str]:
    scim = await scim_for(org)
    return scim.headers


@FUZZ
@given(text=FILTER | st.text(max_size=100))
def test_any_scim_filter_is_a_list_or_an_invalid_filter(
    org: OrgHandle, run: Run, scim_token: dict[str, str], text: str
) -> None:
    if any("\ud800" <= c <= "\udfff" for c in text):
        text = text.encode("utf-8", "replace").decode()  # a URL cannot carry a surrogate
    for resource in ("/Users", "/Groups"):
        response = run(
            org.client.get(f"/scim/v2{resource}", params={"filter": text}, headers=scim_token)
        )
        assert response.status_code in (200, 400), (text, response.text)
        if response.status_code == 400:
            assert response.json()["scimType"] in ("invalidFilter", "invalidValue"), response.text


SCIM_STRINGS = st.text(max_size=30) | st.sampled_from(HOSTILE)
SCIM_BODIES = st.fixed_dictionaries(
    {"schemas": st.just([USER_URN]), "userName": SCIM_STRINGS},
    optional={
        "displayName": SCIM_STRINGS,
        "externalId": SCIM_STRINGS,
        "name": st.fixed_dictionaries({}, optional={"givenName": SCIM_STRINGS,
                                                    "formatted": SCIM_STRINGS}),
        "emails": st.lists(st.fixed_dictionaries({"value": SCIM_STRINGS}), max_size=2),
        "title": SCIM_STRINGS,
    },
)


@FUZZ
@given(body=SCIM_BODIES)
def test_any_scim_user_body_is_created_or_refused_with_a_scim_error(
    org: OrgHandle, run: Run, scim_token: dict[str, str], body: dict[str, Any]
) -> None:
    content = json.dumps(body).encode()  # ASCII JSON: lone surrogates travel as escapes
    response = run(
        org.client.post("/scim/v2/Users", content=content, headers=scim_token)
    )
    assert response.status_code in (201, 400, 409), (body, response.text)
    if response.status_code == 201:
        created = response.json()
        for key in ("displayName", "externalId", "title"):
            value = created.get(key)
            assert value is None or ("\x00" not in value and "\u202e" not in value), created
