"""Filters are translated to SQL: hypothesis-generated filters select exactly the Users a
Python evaluation of the same filter selects from the same data; malformed or unknown
ones are refused with ``invalidFilter``; sorting and paging."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import row_counts
from tests.scim.conftest import ENTERPRISE_URN, SEARCH_URN, Scim
from tests.scim.evaluator import matches
from tests.scim.test_users import assert_scim_error

WORDS = ["alpha", "Alpha", "ALPHABET", "beta", "bet", "a", "zeta", "émile", "Émile", "x-1", "Work"]

#: (attribute path as written in a filter, kind): the attributes generated filters use.
ATTRIBUTES = [
    ("userName", "str"),
    ("displayName", "str"),
    ("title", "str"),
    ("nickName", "str"),
    ("name.givenName", "str"),
    ("name.familyName", "str"),
    ("externalId", "str"),
    ("emails.value", "str"),
    ("emails.type", "str"),
    ("emails", "str"),
    ("emails.primary", "bool"),
    ("active", "bool"),
    (f"{ENTERPRISE_URN}:department", "str"),
    (f"{ENTERPRISE_URN}:employeeNumber", "str"),
]
STRING_OPS = ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"]


def _users() -> list[dict[str, Any]]:
    users = []
    for i in range(14):
        w = WORDS[i % len(WORDS)]
        v = WORDS[(i * 3 + 1) % len(WORDS)]
        user: dict[str, Any] = {"userName": f"{w}{i}@{v}.example"}
        if i % 2 == 0:
            user["displayName"] = f"{v} {w}"
        if i % 3 != 0:
            user["title"] = w
        if i % 4 == 1:
            user["nickName"] = ""
        if i % 5 != 4:
            user["name"] = {"givenName": v, **({"familyName": w} if i % 2 else {})}
        if i % 3 == 1:
            user["externalId"] = f"{w}-{i}"
        emails = []
        if i % 4 != 3:
            emails.append(
                {
                    "value": f"{v}.{i}@{w}.example",
                    "type": "work" if i % 2 else "home",
                    "primary": True,
                }
            )
        if i % 5 == 0:
            emails.append({"value": f"{w}{i}@other.example", "type": "Work"})
        if emails:
            user["emails"] = emails
        if i % 6 == 2:
            user["active"] = False
        if i % 2:
            user[ENTERPRISE_URN] = {
                "department": v,
                **({"employeeNumber": str(i)} if i % 3 else {}),
            }
        users.append(user)
    return users


def _value(kind: str) -> st.SearchStrategy[str]:
    if kind == "bool":
        return st.sampled_from(["true", "false"])
    return st.one_of(st.sampled_from(WORDS), st.text(alphabet="abéAÉ@.-x1", max_size=4)).map(
        json.dumps
    )


@st.composite
def comparison(draw: st.DrawFn) -> str:
    path, kind = draw(st.sampled_from(ATTRIBUTES))
    if draw(st.integers(0, 9)) == 0:
        return f"{path} pr"
    ops = ["eq", "ne"] if kind == "bool" else STRING_OPS
    return f"{path} {draw(st.sampled_from(ops))} {draw(_value(kind))}"


@st.composite
def value_path(draw: st.DrawFn) -> str:
    inner = draw(
        st.lists(
            st.one_of(
                st.builds(lambda o, v: f"type {o} {v}", st.sampled_from(STRING_OPS), _value("str")),
                st.builds(
                    lambda o, v: f"value {o} {v}", st.sampled_from(STRING_OPS), _value("str")
                ),
                st.builds(lambda v: f"primary eq {v}", _value("bool")),
                st.just("value pr"),
            ),
            min_size=1,
            max_size=3,
        )
    )
    joiner = draw(st.sampled_from([" and ", " or "]))
    return f"emails[{joiner.join(inner)}]"


filters = st.recursive(
    st.one_of(comparison(), value_path()),
    lambda children: st.one_of(
        st.builds(lambda a, b: f"({a}) and ({b})", children, children),
        st.builds(lambda a, b: f"{a} or {b}", children, children),
        st.builds(lambda a: f"not ({a})", children),
    ),
    max_leaves=5,
)


def _check_filters(base_url: str, token: str, everyone: list[dict[str, Any]]) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as http:

        @settings(
            max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        @given(filters)
        def check(text: str) -> None:
            response = http.get("/scim/v2/Users", params={"filter": text, "count": 100})
            assert response.status_code == 200, (text, response.text)
            found = {u["id"] for u in response.json()["Resources"]}
            expected = {u["id"] for u in everyone if matches(text, u)}
            assert found == expected, text
            assert response.json()["totalResults"] == len(expected)

        check()


@pytest.mark.slow
async def test_generated_filters_select_what_the_reference_evaluation_selects(
    scim: Scim, live_server: str
) -> None:
    for user in _users():
        await scim.create_user(user.pop("userName"), **user)
    everyone = (await scim.get("/Users", count=100)).json()["Resources"]
    assert len(everyone) == 14
    await asyncio.to_thread(_check_filters, live_server, scim.token, everyone)


async def test_complex_attribute_filters_and_their_negations(scim: Scim) -> None:
    await scim.create_user("a@x.example", emails=[{"value": "a@corp.example", "type": "work"}])
    await scim.create_user("b@x.example", emails=[{"value": "b@corp.example", "type": "home"}])
    await scim.create_user("c@x.example")
    for text, expected in [
        ('emails[type eq "work" and value co "@corp"]', ["a@x.example"]),
        ('emails[type eq "work"].value ew "corp.example"', ["a@x.example"]),
        ('not (emails[type eq "work"])', ["b@x.example", "c@x.example"]),
        ('emails.value ne "a@corp.example"', ["b@x.example", "c@x.example"]),
        ("emails pr", ["a@x.example", "b@x.example"]),
        ('userName sw "A" or userName ew "c@x.example"', ["a@x.example", "c@x.example"]),
    ]:
        response = await scim.get("/Users", filter=text, sortBy="userName")
        assert response.status_code == 200, (text, response.text)
        assert [u["userName"] for u in response.json()["Resources"]] == expected, text


async def test_malformed_or_unknown_filters_are_invalid_filter(scim: Scim) -> None:
    for text in [
        "userName eq",
        'userName xx "a"',
        '(userName eq "a"',
        'emails[type eq "work"',
        'userName eq "a" and',
        'foo eq "x"',
        'password eq "x"',
        'name.middle eq "x"',
        'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:nothing eq "x"',
        "active gt true",
        "userName eq 5",
        'active eq "yes"',
        'meta.created co "2020"',
        'meta.created gt "not a time"',
        'name eq "x"',
        'title[value eq "x"]',
        'emails[type eq "work"]] ',
        'userName eq "a\\u0000"',
        "x" * 5000,
        "",
    ]:
        assert_scim_error(await scim.get("/Users", filter=text), 400, "invalidFilter")
    assert_scim_error(await scim.get("/Groups", filter='userName eq "x"'), 400, "invalidFilter")
    search = await scim.post("/Users/.search", {"filter": "nope eq 1"})
    assert_scim_error(search, 400, "invalidFilter")


async def test_meta_times_filter_as_times(scim: Scim) -> None:
    user = await scim.create_user("t@x.example")
    created = user["meta"]["created"]
    found = (await scim.get("/Users", filter=f'meta.created ge "{created}"')).json()
    assert [u["id"] for u in found["Resources"]] == [user["id"]]
    assert (await scim.get("/Users", filter='meta.lastModified lt "2000-01-01T00:00:00Z"')).json()[
        "totalResults"
    ] == 0


async def test_a_time_that_cannot_be_shifted_to_utc_is_an_invalid_filter_naming_it(
    scim: Scim, owner_conn: asyncpg.Connection
) -> None:
    """Found by a fuzzer: year 1 at +14:00 and year 9999 at -14:00 fall off the calendar
    once shifted to UTC; the filter bound them anyway and PostgreSQL's refusal was a 500."""
    await scim.create_user("t@x.example")
    before = await row_counts(owner_conn)
    for moment, text in [
        ("0001-01-01T00:00:00+14:00", 'meta.lastModified gt "0001-01-01T00:00:00+14:00"'),
        ("9999-12-31T23:59:59-14:00", 'meta.created lt "9999-12-31T23:59:59-14:00"'),
        ("9999-12-31T23:59:59-14:00", 'not (meta.lastModified le "9999-12-31T23:59:59-14:00")'),
    ]:
        search = {"schemas": [SEARCH_URN], "filter": text}
        for response in [
            await scim.get("/Users", filter=text),
            await scim.get("/Groups", filter=text),
            await scim.post("/Users/.search", search),
            await scim.post("/Groups/.search", search),
            await scim.post("/.search", search),
        ]:
            body = assert_scim_error(response, 400, "invalidFilter")
            assert moment in body["detail"], body
    assert await row_counts(owner_conn) == before


async def test_sorting_and_paging(scim: Scim) -> None:
    names = ["delta", "Alpha", "charlie", "bravo", "echo"]
    for name in names:
        await scim.create_user(f"{name}@x.example", title=name)
    ascending = (await scim.get("/Users", sortBy="userName")).json()["Resources"]
    assert [u["title"] for u in ascending] == sorted(names, key=str.lower)
    descending = (await scim.get("/Users", sortBy="title", sortOrder="descending")).json()[
        "Resources"
    ]
    assert [u["title"] for u in descending] == sorted(names, key=str.lower, reverse=True)
    page = (await scim.get("/Users", sortBy="userName", startIndex=2, count=2)).json()
    assert page["totalResults"] == 5
    assert page["startIndex"] == 2
    assert page["itemsPerPage"] == 2
    assert [u["title"] for u in page["Resources"]] == ["bravo", "charlie"]
    past = (await scim.get("/Users", startIndex=9)).json()
    assert past["totalResults"] == 5
    assert past["Resources"] == []
    only_count = (await scim.get("/Users", count=0)).json()
    assert only_count["totalResults"] == 5
    assert only_count["Resources"] == []
    # A sortBy is not a filter: RFC 7644 §3.12's invalidFilter would send the client
    # looking at a filter it did not give.
    unknown_sort = await scim.get("/Users", sortBy="nothing")
    assert_scim_error(unknown_sort, 400, "invalidValue")
    assert "sortBy" in unknown_sort.json()["detail"]
    assert_scim_error(await scim.get("/Users", sortBy="name"), 400, "invalidValue")
    assert_scim_error(await scim.get("/Users", count="many"), 400, "invalidValue")


async def test_a_start_index_or_count_that_is_no_finite_integer_is_invalid_value(
    scim: Scim, owner_conn: asyncpg.Connection
) -> None:
    """Found by a fuzzer: JSON's 1e400 reads as infinity, which ``int()`` refused with an
    OverflowError (a 500). Out-of-range integers keep their meaning (RFC 7644 §3.4.2.4:
    startIndex below 1 is 1, a negative count is 0, a larger count is the maximum)."""
    await scim.create_user("p@x.example")
    before = await row_counts(owner_conn)
    for name in ("startIndex", "count"):
        for literal in ("1e400", "-1e400", "Infinity", "-Infinity", "NaN", "1.5", '"1_0"'):
            content = f'{{"schemas": ["{SEARCH_URN}"], "{name}": {literal}}}'
            for path in ("/Users/.search", "/Groups/.search", "/.search"):
                response = await scim.client.post(
                    f"/scim/v2{path}", content=content, headers=scim.headers
                )
                body = assert_scim_error(response, 400, "invalidValue")
                assert name in body["detail"], (path, content, body)
        assert_scim_error(await scim.get("/Users", **{name: "1e400"}), 400, "invalidValue")
    assert await row_counts(owner_conn) == before
    for path in ("/Users/.search", "/.search"):
        edges = {"schemas": [SEARCH_URN], "startIndex": -(10**400), "count": 10**400}
        page = (await scim.post(path, edges)).json()
        assert (page["startIndex"], page["totalResults"], len(page["Resources"])) == (1, 1, 1)
        empty = (await scim.post(path, {"schemas": [SEARCH_URN], "count": -1e300})).json()
        assert (empty["totalResults"], empty["Resources"]) == (1, [])
        whole = (await scim.post(path, {"schemas": [SEARCH_URN], "count": 1.0})).json()
        assert len(whole["Resources"]) == 1
        past = await scim.post(path, {"schemas": [SEARCH_URN], "startIndex": 10**400})
        assert_scim_error(past, 400, "invalidValue")


async def test_a_decomposed_filter_value_finds_what_was_stored_composed(scim: Scim) -> None:
    """Values are stored NFC; an identity provider sending the decomposed form (e + U+0301)
    in its lookup must find the user it created, not get 0 results and then a 409."""
    created = await scim.create_user("jose\u0301.x@acme.example", displayName="Jose\u0301 X")
    assert created["userName"] == "jos\u00e9.x@acme.example"
    for text in ('userName eq "jose\u0301.x@acme.example"', 'displayName sw "Jose\u0301"'):
        found = (await scim.get("/Users", filter=text)).json()
        assert [u["id"] for u in found["Resources"]] == [created["id"]], text


async def test_search_by_post_and_attribute_projection(scim: Scim) -> None:
    await scim.create_user("p@x.example", title="T", nickName="N")
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": 'title eq "t"',
        "attributes": ["nickName"],
    }
    found = (await scim.post("/Users/.search", body)).json()
    assert found["totalResults"] == 1
    assert set(found["Resources"][0]) == {"schemas", "id", "nickName"}
    excluded = (await scim.get("/Users", excludedAttributes="title,meta")).json()["Resources"][0]
    assert "title" not in excluded
    assert "meta" not in excluded
    assert excluded["nickName"] == "N"
    # A sub-attribute of an extension's attribute (RFC 7644 §3.10), and of a multi-valued
    # one, projects to it alone.
    boss = await scim.create_user("boss@x.example")
    managed = await scim.create_user(
        "managed@x.example",
        emails=[{"value": "managed@x.example", "type": "work", "primary": True}],
        **{ENTERPRISE_URN: {"manager": {"value": boss["id"]}, "department": "Sales"}},
    )
    one = (
        await scim.get(
            f"/Users/{managed['id']}", attributes=f"{ENTERPRISE_URN}:manager.value,emails.type"
        )
    ).json()
    assert one[ENTERPRISE_URN] == {"manager": {"value": boss["id"]}}
    assert one["emails"] == [{"type": "work"}]
    without = (
        await scim.get(
            f"/Users/{managed['id']}", excludedAttributes=f"{ENTERPRISE_URN}:manager.$ref"
        )
    ).json()
    assert without[ENTERPRISE_URN]["manager"] == {"value": boss["id"]}
    assert without[ENTERPRISE_URN]["department"] == "Sales"
    # Naming only attributes that do not exist still replaces the default set (§3.9).
    only_unknown = (await scim.get("/Users", attributes="nothing,urn:x:y")).json()["Resources"]
    assert [set(u) for u in only_unknown] == [{"schemas", "id"}] * 3
    everything = (
        await scim.post("/.search", {"schemas": body["schemas"], "filter": "displayName pr"})
    ).json()
    assert everything["totalResults"] == 0
