"""The console's units page costs what it shows: the root and a page of its children, the
sub-units of a unit read when opened (htmx) or on its own page, a search by any part of a
name, and member counts kept by the counters of 0023_units_sized_by_page (never a count
over members), which follow every insert, move and delete of members."""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import unquote

import asyncpg
import pytest

from tests.conftest import OrgHandle, make_member, make_unit
from tests.web.flows import asgi_client, described_by, text_of
from tests.web.test_console_directory import signed_in_admin

HTMX = {"hx-request": "true"}


async def counted(owner_conn: asyncpg.Connection, org: OrgHandle) -> dict[str, int]:
    """The kept counters of members per unit, without the zeros."""
    rows = await owner_conn.fetch(
        "SELECT name, n FROM tenant_counters WHERE tenant_id = $1 AND name LIKE 'unit_members.%' AND n <> 0",
        org.id,
    )
    return {r["name"].removeprefix("unit_members."): int(r["n"]) for r in rows}


async def actual(owner_conn: asyncpg.Connection, org: OrgHandle) -> dict[str, int]:
    rows = await owner_conn.fetch(
        "SELECT unit_id::text AS unit, count(*) AS n FROM members WHERE tenant_id = $1 GROUP BY 1",
        org.id,
    )
    return {r["unit"]: int(r["n"]) for r in rows}


async def test_the_page_shows_the_top_levels_and_opens_a_unit_when_asked(
    app: Any, org: OrgHandle
) -> None:
    sales = await make_unit(org, "Sales")
    await make_unit(org, "Support")
    north = await make_unit(org, "Sales North", parent=uuid.UUID(sales["id"]))
    for _ in range(3):
        await make_member(org, unit=sales["id"])
    await make_member(org, unit=north["id"])
    async with asgi_client(app) as browser:
        await signed_in_admin(browser, org)
        top = await browser.get("/console/units")
        text = text_of(top.text)
        assert top.status_code == 200
        assert "Sales 3 members" in text and "Support 0 members" in text
        assert "Sales North" not in text  # a level below is read when opened
        assert f'hx-get="/console/units?parent={sales["id"]}"' in top.text
        opened = await browser.get(f"/console/units?parent={sales['id']}", headers=HTMX)
        assert "<html" not in opened.text
        assert "Sales North 1 member" in text_of(opened.text)
        empty = await browser.get(f"/console/units?parent={north['id']}", headers=HTMX)
        assert "Sales North has no sub-units." in text_of(empty.text)
        # Without scripts the same link opens the unit's own page, under its ancestors.
        page = text_of((await browser.get(f"/console/units?parent={sales['id']}")).text)
        assert "Sales North 1 member" in page and "Support" not in page
        assert "Sales 3 members" in page


async def test_many_siblings_come_a_page_at_a_time(app: Any, org: OrgHandle) -> None:
    parent = await make_unit(org, "Regions")
    for i in range(53):
        await make_unit(org, f"Region {i:02d}", parent=uuid.UUID(parent["id"]))
    async with asgi_client(app) as browser:
        await signed_in_admin(browser, org)
        first = await browser.get(f"/console/units?parent={parent['id']}", headers=HTMX)
        shown = text_of(first.text)
        assert "Region 49" in shown and "Region 50" not in shown
        more = first.text.split('class="more"><a href="')[1].split('"')[0].replace("&amp;", "&")
        rest = await browser.get(unquote(more) if "%" not in more else more, headers=HTMX)
        assert rest.status_code == 200
        shown = text_of(rest.text)
        assert "Region 50" in shown and "Region 52" in shown and "Region 49" not in shown
        assert 'class="more"' not in rest.text and "<ul>" not in rest.text
        forged = await browser.get(f"/console/units?parent={parent['id']}&cursor=abc")
        assert forged.status_code == 400 and "cursor" in forged.text


async def test_a_unit_is_found_by_any_part_of_its_name(app: Any, org: OrgHandle) -> None:
    await make_unit(org, "Zoology")
    deep = await make_unit(org, "Botany")
    await make_unit(org, "Microbiology lab", parent=uuid.UUID(deep["id"]))
    async with asgi_client(app) as browser:
        await signed_in_admin(browser, org)
        page = (await browser.get("/console/units?q=OLOG")).text
        found = text_of(page)
        assert "Zoology" in found and "Microbiology lab in Botany" in found
        assert "<strong>Botany</strong>" not in page  # where a match is, not a match
        short = text_of((await browser.get("/console/units?q=bo")).text)
        assert "Botany" in short and "Zoology" not in short
        none = text_of((await browser.get("/console/units?q=nothing-like-it")).text)
        assert "No unit's name contains" in none


async def test_member_counts_follow_inserts_moves_and_deletes(
    app: Any, org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    a = await make_unit(org, "Alpha")
    b = await make_unit(org, "Beta")
    people = [await make_member(org, unit=a["id"]) for _ in range(3)]
    assert (await counted(owner_conn, org)) == (await actual(owner_conn, org))
    moved = await org.post(f"/v1/members/{people[0]['id']}/move", {"unit_id": b["id"]})
    assert moved.status_code == 200, moved.text
    renamed = await org.patch(f"/v1/members/{people[1]['id']}", {"name": "Renamed"})
    assert renamed.status_code == 200, renamed.text
    assert (await counted(owner_conn, org)) == (await actual(owner_conn, org))
    assert (await counted(owner_conn, org))[a["id"]] == 2
    await owner_conn.execute("DELETE FROM members WHERE id = $1", uuid.UUID(people[2]["id"]))
    assert (await counted(owner_conn, org)) == (await actual(owner_conn, org))
    async with asgi_client(app) as browser:
        _, csrf = await signed_in_admin(browser, org)
        done = await browser.post(
            f"/console/units/{a['id']}/delete",
            {"csrf": csrf, "confirmed": "1", "unit_id": b["id"]},
        )
        assert done.status_code == 303, done.text[:500]
        top = text_of((await browser.get("/console/units")).text)
        assert "Beta 2 members" in top and "Members of Alpha" not in top
    assert (await counted(owner_conn, org)) == (await actual(owner_conn, org))


async def test_a_refused_rename_comes_back_beside_that_units_field_with_the_input_kept(
    app: Any, org: OrgHandle
) -> None:
    sales = await make_unit(org, "Sales")
    await make_unit(org, "Support")
    async with asgi_client(app) as browser:
        await signed_in_admin(browser, org)
        csrf = await browser.csrf_of("/console/units")
        refused = await browser.post(
            f"/console/units/{sales['id']}/rename",
            {"csrf": csrf, "form": f"rename-{sales['id']}", "name": "Sales\u202eevil"},
            headers={"referer": "http://tenantry.test/console/units"},
        )
        assert refused.status_code == 303
        page = (await browser.get(refused.headers["location"])).text
    # Only Sales's edit form is open and names the problem; the other unit's is untouched.
    assert page.count('<details class="edit" open>') == 1
    assert f'id="rename-{sales["id"]}-name-error"' in page
    assert 'value="Sales\u202eevil" required maxlength="200" aria-invalid="true"' in page
    assert page.count('class="field-error"') == 1


async def test_a_units_forms_are_read_when_its_edit_opens(app: Any, org: OrgHandle) -> None:
    sales = await make_unit(org, "Sales")
    north = await make_unit(org, "Sales North", parent=uuid.UUID(sales["id"]))
    async with asgi_client(app) as browser:
        await signed_in_admin(browser, org)
        top = (await browser.get("/console/units")).text
        # A row carries a link to its forms, not the forms: a page costs its rows.
        assert f'hx-get="/console/units/{sales["id"]}/edit"' in top
        assert f'action="/console/units/{sales["id"]}/rename"' not in top
        assert f'action="/console/units/{sales["id"]}/move"' not in top
        forms = await browser.get(f"/console/units/{sales['id']}/edit", headers=HTMX)
        assert forms.status_code == 200 and "<html" not in forms.text
        for action in ("rename", "move", "delete"):
            assert f'action="/console/units/{sales["id"]}/{action}"' in forms.text
        assert 'value="Sales" required' in forms.text
        # The root is renamed, never moved or deleted.
        root = (await browser.get(f"/console/units/{org.root_unit_id}/edit", headers=HTMX)).text
        assert f'action="/console/units/{org.root_unit_id}/rename"' in root
        assert "/move" not in root and "/delete" not in root
        # Without scripts the link opens a page of the unit's forms under its ancestors.
        page = await browser.get(f"/console/units/{north['id']}/edit")
        assert page.status_code == 200 and "<html" in page.text
        assert "Edit Sales North" in text_of(page.text)
        assert f'href="/console/units?parent={sales["id"]}"' in page.text
        assert f'action="/console/units/{north["id"]}/move"' in page.text
        csrf = await browser.csrf_of(f"/console/units/{north['id']}/edit")
        refused = await browser.post(
            f"/console/units/{north['id']}/rename",
            {"csrf": csrf, "form": f"rename-{north['id']}", "name": "   "},
            headers={"referer": f"http://tenantry.test/console/units/{north['id']}/edit"},
        )
        assert refused.status_code == 303
        back = (await browser.get(refused.headers["location"])).text
        assert f'id="rename-{north["id"]}-name-error"' in back
        missing = await browser.get(f"/console/units/{uuid.uuid4()}/edit")
        assert missing.status_code == 404
        bad = await browser.get("/console/units/not-a-unit/edit")
        assert bad.status_code == 400


# --- creating without "Under", moving under a sub-unit, deleting without a target ----------


async def test_a_unit_created_without_choosing_under_goes_under_the_root(
    app: Any, org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    async with asgi_client(app) as browser:
        _, csrf = await signed_in_admin(browser, org)
        made = await browser.post(
            "/console/units",
            {"csrf": csrf, "form": "new-unit", "name": "Research", "parent_id_q": ""},
        )
        assert made.status_code == 303 and made.headers["location"] == "/console/units"
    parent = await owner_conn.fetchval(
        "SELECT parent_id FROM units WHERE tenant_id = $1 AND name = 'Research'", org.id
    )
    assert parent == org.root_unit_id


async def test_moving_a_unit_under_its_own_sub_unit_says_so(app: Any, org: OrgHandle) -> None:
    maths = await make_unit(org, "Mathematics")
    algebra = await make_unit(org, "Algebra", parent=uuid.UUID(maths["id"]))
    page = f"/console/units/{maths['id']}/edit"
    move_form = f"move-{maths['id']}"
    async with asgi_client(app) as browser:
        _, csrf = await signed_in_admin(browser, org)
        # Chosen (as a script could send it): the move rule's own words.
        chosen = await browser.post(
            f"/console/units/{maths['id']}/move",
            {"csrf": csrf, "form": move_form, "parent_id": algebra["id"]},
            headers={"referer": f"http://tenantry.test{page}"},
        )
        assert chosen.status_code == 303 and chosen.headers["location"] == page
        shown = text_of((await browser.get(page)).text)
        assert "cannot move a unit under one of its own sub-units" in shown
        assert "is not a unit" not in shown
        # Typed in the picker, which offers no sub-unit, and sent without a match chosen.
        typed = await browser.post(
            f"/console/units/{maths['id']}/move",
            {"csrf": csrf, "form": move_form, "parent_id_q": "algebra"},
            headers={"referer": f"http://tenantry.test{page}"},
        )
        assert typed.status_code == 303
        shown = (await browser.get(page)).text
        assert "cannot move a unit under one of its own sub-units" in text_of(shown)
        assert described_by(shown, f"{move_form}-parent_id-error") == [f"move-{maths['id']}-q"]
        # Nothing typed, nothing chosen: asked to choose, not told "not a unit".
        await browser.post(
            f"/console/units/{maths['id']}/move",
            {"csrf": csrf, "form": move_form, "parent_id_q": ""},
            headers={"referer": f"http://tenantry.test{page}"},
        )
        shown = text_of((await browser.get(page)).text)
        assert "choose the unit to move it under" in shown and "is not a unit" not in shown
    moved = await org.get(f"/v1/units/{maths['id']}")
    assert moved.json()["parent_id"] == str(org.root_unit_id)


@pytest.mark.parametrize("htmx", [False, True])
async def test_deleting_a_unit_with_members_without_a_target_shows_the_page_again(
    app: Any, org: OrgHandle, owner_conn: asyncpg.Connection, htmx: bool
) -> None:
    maths = await make_unit(org, "Mathematics")
    for _ in range(2):
        await make_member(org, unit=maths["id"])
    action = f"/console/units/{maths['id']}/delete"
    async with asgi_client(app) as browser:
        _, csrf = await signed_in_admin(browser, org)
        asked = await browser.post(action, {"csrf": csrf})
        assert asked.status_code == 200 and "Move 2 members and delete Mathematics" in asked.text
        refused = await browser.post(
            action,
            {"csrf": csrf, "confirmed": "1", "unit_id_q": "Phys"},
            headers={"referer": f"http://tenantry.test{action}", **(HTMX if htmx else {})},
        )
    assert refused.status_code == (200 if htmx else 422), refused.text[:500]
    assert "method_not_allowed" not in refused.text
    assert "Delete the unit Mathematics?" in refused.text
    assert described_by(refused.text, "unit_id-error") == ["delete-target-q"]
    assert described_by(refused.text, "delete-target-hint") == ["delete-target-q"]
    assert re.search(r'<p class="field-error" id="unit_id-error">[^<]*choose', refused.text)
    assert 'value="Phys"' in refused.text  # what was typed in the picker is kept
    assert (
        await owner_conn.fetchval(
            "SELECT count(*) FROM units WHERE tenant_id = $1 AND id = $2",
            org.id,
            uuid.UUID(maths["id"]),
        )
        == 1
    )
    assert (await actual(owner_conn, org)).get(maths["id"]) == 2


async def test_a_refused_rename_of_a_sub_unit_comes_back_where_that_unit_is_shown(
    app: Any, org: OrgHandle
) -> None:
    """The units page shows the top level; a sub-unit's forms, read into the tree when
    opened, came back to that page, where the unit is not: only the banner said why."""
    engineering = await make_unit(org, "Engineering")
    await make_unit(org, "Platform", parent=uuid.UUID(engineering["id"]))
    apps = await make_unit(org, "Apps", parent=uuid.UUID(engineering["id"]))
    async with asgi_client(app) as browser:
        await signed_in_admin(browser, org)
        csrf = await browser.csrf_of("/console/units")
        forms = (await browser.get(f"/console/units/{apps['id']}/edit", headers=HTMX)).text
        back = re.search(r'name="refused_on" value="([^"]+)"', forms)
        assert back is not None and back.group(1) == f"/console/units?parent={engineering['id']}"
        refused = await browser.post(
            f"/console/units/{apps['id']}/rename",
            {"csrf": csrf, "form": f"rename-{apps['id']}", "name": "PLATFORM",
             "refused_on": back.group(1)},
            headers={"referer": "http://tenantry.test/console/units"},
        )
        assert refused.status_code == 303
        assert refused.headers["location"] == back.group(1)
        page = (await browser.get(refused.headers["location"])).text
    assert f'id="rename-{apps["id"]}-name-error"' in page
    assert "capitals do not make a name differ" in text_of(page)
    assert 'value="PLATFORM"' in page
    assert page.count('<details class="edit" open>') == 1


async def test_top_level_units_keep_coming_back_to_the_units_page_and_siblings_sort_by_name(
    app: Any, org: OrgHandle
) -> None:
    await make_unit(org, "Sales")
    await make_unit(org, "design")
    top = await make_unit(org, "Engineering")
    async with asgi_client(app) as browser:
        await signed_in_admin(browser, org)
        forms = (await browser.get(f"/console/units/{top['id']}/edit", headers=HTMX)).text
        assert "refused_on" not in forms
        shown = text_of((await browser.get("/console/units")).text)
    assert shown.index("design") < shown.index("Engineering") < shown.index("Sales")
