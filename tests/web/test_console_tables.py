"""Every console list is a table people can work with: column headers that sort, the
total, previous and next pages, a page size, and filters kept in every link; a sort or
size the list does not offer falls back to its default (never an error page)."""

from __future__ import annotations

import csv
import html
import io
import re
import uuid
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest

from app.settings import Settings
from app.web.console.tables import TRAIL_SEPARATOR, ListView
from tenants import cursors
from tenants.audit.sealer import seal_all
from tenants.errors import InvalidInputError
from tenants.pagination import Sort
from tests.conftest import OrgHandle, make_group, make_member, make_product, make_unit
from tests.web.flows import WebClient, asgi_client, text_of
from tests.web.test_console_directory import signed_in_admin


def links(page: str, label: str) -> list[str]:
    return [
        html.unescape(href)
        for href, text in re.findall(
            r'<a class="button secondary" href="([^"]+)">([^<]+)</a>', page
        )
        if text == label
    ]


def names_in(page: str) -> list[str]:
    return re.findall(r'<a href="/console/groups/[0-9a-f-]+">([^<]+)</a>', page)


async def get_ok(browser: WebClient, url: str) -> str:
    response = await browser.get(url)
    assert response.status_code == 200, (url, response.status_code, response.text[:500])
    return response.text


async def test_the_groups_list_sorts_pages_both_ways_counts_and_keeps_its_filter(
    app: Any, org: OrgHandle
) -> None:
    for n in range(30):
        created = await org.post(
            "/v1/groups", {"name": f"Team {n:02d}", "priority": n % 7, "description": ""}
        )
        assert created.status_code == 201, created.text
    await org.post("/v1/groups", {"name": "Other", "priority": 0, "description": ""})
    async with asgi_client(app) as browser:
        await signed_in_admin(browser, org)
        first = await get_ok(browser, "/console/groups?q=team&size=25")
        assert "30 groups match; showing 25" in text_of(first)
        assert names_in(first)[:2] == ["Team 00", "Team 01"]
        assert 'aria-sort="ascending"' in first
        assert links(first, "Previous page") == []
        [next_url] = links(first, "Next page")
        assert parse_qs(urlsplit(next_url).query)["q"] == ["team"]

        second = await get_ok(browser, next_url)
        assert names_in(second) == [f"Team {n:02d}" for n in range(25, 30)]
        assert links(second, "Next page") == []
        [prev_url] = links(second, "Previous page")
        back = await get_ok(browser, prev_url)
        assert names_in(back) == names_in(first)

        # The header flips the sort and keeps the filter and the size.
        [by_name] = re.findall(r'<a href="([^"]+)">Name', first)
        query = parse_qs(urlsplit(html.unescape(by_name)).query)
        assert query == {"q": ["team"], "sort": ["-name"], "size": ["25"]}
        flipped = await get_ok(browser, html.unescape(by_name))
        assert names_in(flipped)[0] == "Team 29" and 'aria-sort="descending"' in flipped

        # Sorts and sizes the list does not offer fall back to its defaults.
        odd = await get_ok(browser, "/console/groups?sort=description&size=7")
        assert "31 groups match; showing 31" in text_of(odd)


async def test_a_table_caption_counts_one_in_the_singular_and_more_in_the_plural(
    app: Any, org: OrgHandle
) -> None:
    for name in ("Solo", "Pair A", "Pair B"):
        created = await org.post("/v1/groups", {"name": name, "priority": 0, "description": ""})
        assert created.status_code == 201, created.text
    async with asgi_client(app) as browser:
        await signed_in_admin(browser, org)
        one = text_of(await get_ok(browser, "/console/groups?q=solo"))
        assert "1 group matches; showing 1" in one, one
        two = text_of(await get_ok(browser, "/console/groups?q=pair"))
        assert "2 groups match; showing 2" in two, two
        none = text_of(await get_ok(browser, "/console/groups?q=nobody"))
        assert "0 groups match; showing 0" in none, none


async def test_the_other_lists_have_sortable_headers_totals_and_a_page_size(
    app: Any, org: OrgHandle
) -> None:
    product = await make_product(org, name="Hooked")
    group = (await org.post("/v1/groups", {"name": "Listed"})).json()
    async with asgi_client(app) as browser:
        await signed_in_admin(browser, org)
        for path, sorted_by in (
            (f"/console/products/{product['id']}/webhooks", "Queued"),
            ("/console/departures", "Started"),
            ("/console/jobs", "Since"),
            (f"/console/groups/{group['id']}", "Email"),
            ("/console/policies/history", "Version"),
            ("/console/privacy-requests", "Deadline"),
            ("/console/data-access", "Requested"),
            ("/console/sign-ins", "When"),
            ("/console/groups", "Name"),
            ("/console/members", "Name"),
        ):
            page = await get_ok(browser, f"{path}?size=25&sort=nonsense")
            assert "aria-sort=" in page, path
            assert re.search(rf'<a href="[^"]+">{sorted_by}', page), path
            assert re.search(r"\d+ [a-z-]+(, showing| match(es)?; showing) \d+", text_of(page)), (
                path
            )
            assert "(s)" not in text_of(page), path
            assert re.search(r'<option value="25" selected>25</option>', page), path


async def test_the_audit_log_pages_older_and_newer_at_the_size_chosen(
    app: Any, org: OrgHandle
) -> None:
    for n in range(30):
        created = await org.post("/v1/groups", {"name": f"Audited {n:02d}"})
        assert created.status_code == 201, created.text
    await seal_all(wait=True)  # the log shows each event's place in the chain once sealed
    async with asgi_client(app) as browser:
        await signed_in_admin(browser, org)
        first = await get_ok(browser, "/console/audit?action=group.&size=25")
        ids = re.findall(r"<td>(\d+)</td>", first)
        assert len(ids) == 25
        assert '<option value="25" selected>25</option>' in first
        [older] = links(first, "Older events")
        second = await get_ok(browser, older)
        assert len(re.findall(r"<td>(\d+)</td>", second)) == 5
        assert links(second, "Older events") == []
        [newer] = links(second, "Newer events")
        assert parse_qs(urlsplit(newer).query)["action"] == ["group."]
        back = await get_ok(browser, newer)
        assert re.findall(r"<td>(\d+)</td>", back) == ids


def member_names_in(page: str) -> list[str]:
    return re.findall(r'<td><a href="/console/members/[0-9a-f-]+">([^<]+)</a></td>', page)


async def test_the_members_list_pages_four_forward_and_four_back_to_the_same_rows(
    app: Any, org: OrgHandle
) -> None:
    for n in range(120):
        await make_member(org, name=f"Paged {n:03d}")
    async with asgi_client(app) as browser:
        await signed_in_admin(browser, org)
        url = "/console/members?q=paged&size=25"
        forward = [member_names_in(await get_ok(browser, url))]
        for _ in range(4):
            [url] = links(await get_ok(browser, url), "Next page")
            forward.append(member_names_in(await get_ok(browser, url)))
        assert [len(rows) for rows in forward] == [25, 25, 25, 25, 20]
        assert [name for rows in forward for name in rows] == [f"Paged {n:03d}" for n in range(120)]
        backward = []
        for _ in range(4):
            [url] = links(await get_ok(browser, url), "Previous page")
            backward.append(member_names_in(await get_ok(browser, url)))
        assert backward == forward[3::-1]
        assert links(await get_ok(browser, url), "Previous page") == []


def test_the_trail_of_previous_pages_holds_real_cursors_whole(settings: Settings) -> None:
    cursors.configure(settings.secret_key)  # the app's own key: its cursors stay valid
    sort = Sort.parse("name", ("name",))
    sealed = [cursors.seal("members", str(sort), [f"Name {n}", str(n)]) for n in range(3)]
    assert all(TRAIL_SEPARATOR not in cursor for cursor in sealed)
    view = ListView.parse("/m", {}, sortable=("name",), default_sort="name")
    seen = [view]
    for cursor in sealed:
        query = dict(parse_qsl(urlsplit(view.next_url(cursor) or "").query))
        view = ListView.parse("/m", query, sortable=("name",), default_sort="name")
        seen.append(view)
    assert [v.cursor for v in seen] == [None, *sealed]
    assert seen[-1].trail == ("first", *sealed[:-1])
    back = dict(parse_qsl(urlsplit(seen[-1].prev_url or "").query))
    assert back["cursor"] == sealed[-2]


@pytest.mark.parametrize("trail", ["first~<script>", "first~a b", "x" * 5000])
def test_a_garbled_trail_is_refused_naming_it(trail: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        ListView.parse("/m", {"trail": trail}, sortable=("name",), default_sort="name")
    assert [f.field for f in refused.value.fields] == ["trail"]


async def test_a_forged_trail_is_a_clean_400_in_the_console(app: Any, org: OrgHandle) -> None:
    async with asgi_client(app) as browser:
        await signed_in_admin(browser, org)
        garbled = await browser.get("/console/members?trail=first~%3Cscript%3E&cursor=x.y")
        forged = await browser.get("/console/members?cursor=bm90LWEtY3Vyc29y.Zm9yZ2Vk")
    assert garbled.status_code == 400
    assert "the page trail is not valid" in text_of(garbled.text)
    assert forged.status_code == 400
    assert "the cursor is not valid" in text_of(forged.text)


async def test_the_members_list_filters_by_unit_group_and_manager_as_the_api_does(
    app: Any, org: OrgHandle
) -> None:
    sales = await make_unit(org, "Sales")
    north = await make_unit(org, "North", parent=uuid.UUID(sales["id"]))
    boss = await make_member(org, name="Filter Boss", unit=sales["id"])
    at_sales = await make_member(org, name="Filter Sales", unit=sales["id"], manager_id=boss["id"])
    at_north = await make_member(org, name="Filter North", unit=north["id"], manager_id=boss["id"])
    await make_member(org, name="Filter Root")
    club = await make_group(org, name="Chess club")
    await org.put(f"/v1/groups/{club['id']}/members/{at_north['id']}")
    async with asgi_client(app) as browser:
        await signed_in_admin(browser, org)

        async def listed(query: str) -> tuple[list[str], str]:
            page = await get_ok(browser, f"/console/members?q=filter&{query}")
            return sorted(member_names_in(page)), text_of(page)

        names, text = await listed(f"unit={sales['id']}")
        assert names == ["Filter Boss", "Filter North", "Filter Sales"]
        assert "Members in Sales and below" in text
        names, text = await listed(f"unit={sales['id']}&only=1")
        assert names == ["Filter Boss", "Filter Sales"]
        assert "Members in Sales only" in text
        names, text = await listed(f"group={club['id']}")
        assert (names, "Members in the group Chess club" in text) == (["Filter North"], True)
        names, text = await listed(f"manager={boss['id']}&unit={north['id']}")
        assert names == ["Filter North"]
        assert "Members in North and below, managed by Filter Boss" in text
        # The chosen filters stay chosen in the form, and in the links that sort and export.
        page = await get_ok(browser, f"/console/members?q=filter&manager={boss['id']}&only=1")
        assert f'name="manager" value="{boss["id"]}" checked' in page
        export = re.search(r'href="(/console/members/export\.csv\?[^"]+)"', page)
        assert export is not None and f"manager={boss['id']}" in html.unescape(export[1])
        exported = await browser.get(html.unescape(export[1]))
        assert exported.status_code == 200
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        assert sorted(r["email"] for r in rows) == sorted([at_sales["email"], at_north["email"]])
        # Another organisation's group, or none at all, finds nobody and says so.
        names, text = await listed(f"group={uuid.uuid4()}")
        assert names == [] and "in a group that does not exist" in text
        picked = text_of((await browser.get("/console/pick/groups?name=group&group_q=chE")).text)
        assert "Chess club" in picked
