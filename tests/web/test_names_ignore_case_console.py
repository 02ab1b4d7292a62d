"""The console refuses a group or unit name taken in other capitals beside the name field,
naming the name in the way, and lets a group or unit take its own name in other capitals."""

from __future__ import annotations

import uuid
from typing import Any

from tests.conftest import OrgHandle, make_group, make_unit
from tests.web.flows import asgi_client, text_of
from tests.web.test_console_directory import follow, signed_in_admin

CLASH = "('Sales': capitals do not make a name differ)"


async def test_a_group_named_in_other_capitals_is_refused_beside_the_name(
    app: Any, org: OrgHandle
) -> None:
    sales = await make_group(org, name="Sales")
    support = await make_group(org, name="Support")
    async with asgi_client(app) as browser:
        _, csrf = await signed_in_admin(browser, org)
        refused = await browser.post(
            "/console/groups",
            {"csrf": csrf, "name": " sales ", "priority": "0"},
            headers={"referer": "http://tenantry.test/console/groups"},
        )
        assert refused.status_code == 303
        page = (await browser.get(refused.headers["location"])).text
        assert 'id="name-error"' in page
        assert 'aria-invalid="true" aria-describedby="name-error"' in page
        shown = text_of(page)
        assert "Not done: a group named 'Sales' already exists" in shown
        assert f"Name: is already taken {CLASH}" in shown
        assert 'value=" sales "' in page  # what was typed is kept

        group_page = f"/console/groups/{support['id']}"
        refused = await browser.post(
            group_page,
            {"csrf": csrf, "name": "SALES", "priority": "0"},
            headers={"referer": f"http://tenantry.test{group_page}"},
        )
        shown = await follow(browser, refused)
        assert f"Name: is already taken {CLASH}" in shown

        own = await browser.post(
            f"/console/groups/{sales['id']}", {"csrf": csrf, "name": "SALES", "priority": "0"}
        )
        assert "Saved the group SALES." in await follow(browser, own)
    names = sorted(g["name"] for g in (await org.get("/v1/groups")).json()["items"])
    assert names == ["SALES", "Support"]


async def test_a_unit_named_as_a_sibling_in_other_capitals_is_refused_beside_the_name(
    app: Any, org: OrgHandle
) -> None:
    sales = await make_unit(org, "Sales")
    support = await make_unit(org, "Support")
    elsewhere = await make_unit(org, "Elsewhere")
    async with asgi_client(app) as browser:
        await signed_in_admin(browser, org)
        csrf = await browser.csrf_of("/console/units")
        refused = await browser.post(
            "/console/units",
            {"csrf": csrf, "form": "new-unit", "name": "SALES"},
            headers={"referer": "http://tenantry.test/console/units"},
        )
        assert refused.status_code == 303
        page = (await browser.get(refused.headers["location"])).text
        assert 'id="name-error"' in page
        shown = text_of(page)
        assert "Not done: a unit named 'Sales' already exists there" in shown
        assert f"Name: is already used by a sibling unit {CLASH}" in shown

        refused = await browser.post(
            f"/console/units/{support['id']}/rename",
            {"csrf": csrf, "form": f"rename-{support['id']}", "name": "sales"},
            headers={"referer": "http://tenantry.test/console/units"},
        )
        page = (await browser.get(refused.headers["location"])).text
        assert f'id="rename-{support["id"]}-name-error"' in page
        assert f"is already used by a sibling unit {CLASH}" in text_of(page)

        # Under another parent the name is free; the unit's own name in other capitals too.
        made = await browser.post(
            "/console/units",
            {"csrf": csrf, "form": "new-unit", "name": "sales", "parent_id": elsewhere["id"]},
        )
        assert "Created unit sales." in await follow(browser, made)
        own = await browser.post(
            f"/console/units/{sales['id']}/rename",
            {"csrf": csrf, "form": f"rename-{sales['id']}", "name": "SALES"},
        )
        assert "Renamed to SALES." in await follow(browser, own)


async def test_a_move_beside_a_unit_of_the_same_name_is_refused_beside_the_move(
    app: Any, org: OrgHandle
) -> None:
    """The refusal once named Name, a field the admin had not touched, and what was typed
    in the Move picker turned up in the New unit form's Under."""
    staff = await make_unit(org, "Staff")
    club = await make_unit(org, "Robotics Club")
    await make_unit(org, "Robotics Club", parent=uuid.UUID(staff["id"]))
    async with asgi_client(app) as browser:
        await signed_in_admin(browser, org)
        csrf = await browser.csrf_of("/console/units")
        form = f"move-{club['id']}"
        refused = await browser.post(
            f"/console/units/{club['id']}/move",
            {"csrf": csrf, "form": form, "parent_id": staff["id"], "parent_id_q": "Sta"},
            headers={"referer": "http://tenantry.test/console/units"},
        )
        assert refused.status_code == 303
        page = (await browser.get(refused.headers["location"])).text
    assert f'id="{form}-parent_id-error"' in page
    assert "already has a unit named 'Robotics Club'" in text_of(page)
    assert (
        'id="new-parent-q" type="search" name="parent_id_q" autocomplete="off" placeholder="Type a unit name" value=""'
        in page
    )
