"""Running the directory from the console (in process, as a browser without scripts would):
adding and editing members, roles with the last-owner rule, products, groups, bulk moves,
CSV import (dry run, refusal naming lines, apply) and export, units emptied before delete,
and the pickers and search that cost what they return."""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from typing import Any
from urllib.parse import quote

import asyncpg
import pytest

from tenants.permissions import Permission
from tests.conftest import (
    OrgHandle,
    make_group,
    make_member,
    make_product,
    make_unit,
    row_counts,
)
from tests.web.flows import (
    PASSWORD,
    WebClient,
    asgi_client,
    set_local_sign_in,
    set_password,
    text_of,
)


async def signed_in_admin(
    browser: WebClient, org: OrgHandle, roles: list[str] | None = None
) -> tuple[dict[str, Any], str]:
    await set_local_sign_in(org.id, True)
    admin = await make_member(org, name="Olive Owner", roles=roles or ["owner"])
    await set_password(org.id, admin["id"], PASSWORD)
    response = await browser.password_sign_in(org.slug, admin["email"], PASSWORD)
    assert response.status_code == 303, response.text
    return admin, await browser.csrf_of("/console/members")


async def follow(browser: WebClient, response: Any) -> str:
    assert response.status_code == 303, response.text[:2000]
    return text_of((await browser.get(response.headers["location"])).text)


async def test_an_admin_adds_a_member_then_edits_moves_and_gives_roles_and_a_product(
    app: Any, org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    sales = await make_unit(org, "Sales")
    product = await make_product(org, name="Mail")
    async with asgi_client(app) as browser:
        _, csrf = await signed_in_admin(browser, org)
        form = await browser.get("/console/members/new")
        assert form.status_code == 200 and "Administrator roles" in text_of(form.text)
        added = await browser.post(
            "/console/members",
            {
                "csrf": csrf,
                "name": "Nina New",
                "email": "Nina@Example.org",
                "unit_id": str(org.root_unit_id),
                "status": "active",
                "outside_domain_ok": "example.org",  # asked about: see the test below
            },
        )
        member_page = added.headers["location"]
        assert "Added Nina New." in await follow(browser, added)
        member_id = member_page.rsplit("/", 1)[1]
        row = await owner_conn.fetchrow("SELECT * FROM members WHERE id = $1", uuid.UUID(member_id))
        assert (row["email"], row["status"]) == ("nina@example.org", "active")

        # Moving asks first, showing what the move changes for her (resolved before and
        # after: a lock on Sales switches use of data to improve products off); then it happens.
        await org.put(
            "/v1/policy/rules",
            json={
                "target_kind": "unit",
                "target_id": sales["id"],
                "setting": "improvement.use_data",
                "value": False,
                "enforced": True,
                "reason": "sales policy",
            },
        )
        asked = await browser.post(f"{member_page}/move", {"csrf": csrf, "unit_id": sales["id"]})
        assert asked.status_code == 200, asked.text[:2000]
        shown = text_of(asked.text)
        assert "Move Nina New?" in shown
        assert "Nina New moves from " in shown and " to Sales." in shown
        assert "Off becomes Off (locked). The rule's reason: “sales policy”." in shown
        assert 'name="confirmed" value="1"' in asked.text
        unmoved = await owner_conn.fetchval(
            "SELECT unit_id FROM members WHERE id = $1", uuid.UUID(member_id)
        )
        assert unmoved == org.root_unit_id
        moved = await browser.post(
            f"{member_page}/move", {"csrf": csrf, "unit_id": sales["id"], "confirmed": "1"}
        )
        assert "Moved Nina New." in await follow(browser, moved)
        given = {"csrf": csrf, "role_helpdesk": "1", "role_auditor": "1"}
        asked = await browser.post(f"{member_page}/roles", given)
        assert asked.status_code == 200, asked.text[:300]  # a role is given once confirmed
        shown = text_of(asked.text)
        assert "Give Nina New the role Auditor, Helpdesk?" in shown
        assert "Reads everything, changes nothing" in shown
        roles = await browser.post(f"{member_page}/roles", {**given, "confirmed": "1"})
        assert "roles: Auditor, Helpdesk" in await follow(browser, roles)
        assigned = await browser.post(
            f"{member_page}/products", {"csrf": csrf, "product_id": product["id"], "op": "assign"}
        )
        assert "Nina New has Mail." in await follow(browser, assigned)
        # Removing the account asks first, naming what happens; then it happens.
        asked = await browser.post(
            f"{member_page}/products", {"csrf": csrf, "product_id": product["id"], "op": "remove"}
        )
        assert asked.status_code == 200
        assert "Remove Nina New's Mail account?" in text_of(asked.text)
        assert 'name="confirmed" value="1"' in asked.text
        removed = await browser.post(
            f"{member_page}/products",
            {"csrf": csrf, "product_id": product["id"], "op": "remove", "confirmed": "1"},
        )
        assert "account is removed" in await follow(browser, removed)

    row = await owner_conn.fetchrow("SELECT * FROM members WHERE id = $1", uuid.UUID(member_id))
    assert str(row["unit_id"]) == sales["id"]
    assert sorted(json.loads(row["roles"])) == ["auditor", "helpdesk"]
    actions = [
        r["action"]
        for r in await owner_conn.fetch(
            "SELECT action FROM audit_events WHERE tenant_id = $1 AND action LIKE ANY($2) ORDER BY id",
            org.id,
            ["member.%", "product_account.%"],
        )
    ]
    for action in (
        "member.created",
        "member.moved",
        "member.updated",
        "product_account.assigned",
        "product_account.removed",
    ):
        assert action in actions


async def test_a_refused_form_comes_back_with_the_error_beside_the_field_and_the_input_kept(
    app: Any, org: OrgHandle
) -> None:
    taken = await make_member(org, name="Taken", email="taken@example.org")
    async with asgi_client(app) as browser:
        _, csrf = await signed_in_admin(browser, org)
        refused = await browser.post(
            "/console/members",
            {
                "csrf": csrf,
                "name": "Second Taken",
                "email": taken["email"],
                "unit_id": str(org.root_unit_id),
            },
            headers={"referer": "http://tenantry.test/console/members/new"},
        )
        assert refused.status_code == 303
        assert refused.headers["location"] == "/console/members/new"
        page = (await browser.get("/console/members/new")).text
        assert 'class="banner flash error-banner" role="alert"' in page
        assert 'id="email-error"' in page and "is already used by another member" in page
        assert 'aria-invalid="true" aria-describedby="email-error"' in page
        assert 'value="Second Taken"' in page  # what was typed is kept
        again = (await browser.get("/console/members/new")).text
        assert "email-error" not in again  # shown once
        # Every empty or malformed field is named at once, not the first one checked.
        empty = await browser.post(
            "/console/members",
            {"csrf": csrf, "name": " ", "email": "", "unit_id": "not-a-unit"},
            headers={"referer": "http://tenantry.test/console/members/new"},
        )
        assert empty.status_code == 303
        page = text_of((await browser.get("/console/members/new")).text)
        for shown in ("Email: is empty", "Name: is empty", "Unit: choose one"):
            assert shown in page, shown
        # A manager typed in the picker but not chosen is named, not dropped (the member
        # was created with no manager while the form showed "Ben Mor").
        typed = await browser.post(
            "/console/members",
            {
                "csrf": csrf,
                "name": "New Person",
                "email": "new.person@example.org",
                "unit_id": str(org.root_unit_id),
                "manager_id_q": "Ben Mor",
            },
            headers={"referer": "http://tenantry.test/console/members/new"},
        )
        assert typed.status_code == 303 and typed.headers["location"] == "/console/members/new"
        page = text_of((await browser.get("/console/members/new")).text)
        assert "“Ben Mor” is typed but not chosen: choose one of the matches" in page
        listed = (await org.get("/v1/members", params={"q": "new.person"})).json()["items"]
        assert listed == []


async def test_an_address_outside_the_verified_domains_is_asked_about_before_it_is_saved(
    app: Any, org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    """Such a member is not found by the sign-in page from their address, and single sign-on
    may not admit them: the console asks first, beside the email, keeping what was typed and
    chosen; nothing is written until the admin ticks the box. The API does not ask."""
    verified = f"{org.slug}.example"
    boss = await make_member(org, name="Bea Boss")
    async with asgi_client(app) as browser:
        _, csrf = await signed_in_admin(browser, org)
        typed = {
            "csrf": csrf,
            "name": "Carl Contractor",
            "email": "Carl@Contractor.example",
            "unit_id": str(org.root_unit_id),
            "unit_id_q": "Roo",
            "manager_id": boss["id"],
            "status": "active",
            "role_auditor": "1",
        }
        asked = await browser.post(
            "/console/members",
            typed,
            headers={"referer": "http://tenantry.test/console/members/new"},
        )
        assert asked.status_code == 303 and asked.headers["location"] == "/console/members/new"
        carl = "SELECT id, email FROM members WHERE email = $1"
        assert await owner_conn.fetchrow(carl, "carl@contractor.example") is None
        form = (await browser.get("/console/members/new")).text
        shown = text_of(form)
        assert "Not done: carl@contractor.example is not at one of" in shown
        assert f"contractor.example is not one of {org.slug.title()}'s verified domains" in shown
        assert "The sign-in page will not find" in shown and "single sign-on may not" in shown
        assert 'aria-describedby="email-warning"' in form and "aria-invalid" not in form
        assert re.search(r'name="outside_domain_ok" value="contractor.example">', form)
        # What was typed and chosen is all there: the address, name, status, role, unit and
        # manager (chosen again, not to be picked anew).
        assert 'value="Carl@Contractor.example"' in form and 'value="Carl Contractor"' in form
        assert 'name="status" value="active" checked' in form
        assert 'name="role_auditor" value="1" checked' in form
        assert f'name="unit_id" value="{org.root_unit_id}" checked' in form
        assert f'name="manager_id" value="{boss["id"]}" checked' in form

        # A tick given for one domain confirms no other.
        elsewhere = await browser.post(
            "/console/members",
            {**typed, "email": "carl@elsewhere.example", "outside_domain_ok": "contractor.example"},
        )
        assert elsewhere.headers["location"] == "/console/members/new"
        assert "elsewhere.example is not one of" in text_of(
            (await browser.get("/console/members/new")).text
        )
        added = await browser.post(
            "/console/members", {**typed, "outside_domain_ok": "contractor.example"}
        )
        assert "Added Carl Contractor." in await follow(browser, added)
        row = await owner_conn.fetchrow(carl, "carl@contractor.example")
        assert row is not None

        # At a verified domain: added at once, nothing asked.
        direct = await browser.post(
            "/console/members",
            {**typed, "name": "Vera Verified", "email": f"vera@{verified}", "manager_id": ""},
        )
        assert direct.status_code == 303 and direct.headers["location"].startswith(
            "/console/members/"
        )
        assert "Added Vera Verified." in await follow(browser, direct)

        # Changing an address: asked when it moves to an outside domain (the manager chosen
        # in the same form kept), not when a contractor's address stays at their domain.
        vera_page = direct.headers["location"]
        changed = {
            "csrf": csrf,
            "name": "Vera Verified",
            "email": "vera@gmail.example",
            "manager_id": boss["id"],
        }
        asked = await browser.post(
            f"{vera_page}/details", changed, headers={"referer": f"http://tenantry.test{vera_page}"}
        )
        assert asked.headers["location"] == vera_page
        page = (await browser.get(vera_page)).text
        assert "gmail.example is not one of" in text_of(page)
        assert "Save anyway: the address at gmail.example is right" in text_of(page)
        assert 'value="vera@gmail.example"' in page
        assert f'name="manager_id" value="{boss["id"]}" checked' in page
        vera = await owner_conn.fetchrow(
            "SELECT email, manager_id FROM members WHERE id = $1",
            uuid.UUID(vera_page.rsplit("/", 1)[1]),
        )
        assert (vera["email"], vera["manager_id"]) == (f"vera@{verified}", None)
        saved = await browser.post(
            f"{vera_page}/details", {**changed, "outside_domain_ok": "gmail.example"}
        )
        assert "Saved Vera Verified." in await follow(browser, saved)
        moved_on = await browser.post(
            f"/console/members/{row['id']}/details",
            {"csrf": csrf, "name": "Carl Contractor", "email": "carl.c@contractor.example"},
        )
        assert "Saved Carl Contractor." in await follow(browser, moved_on)
    # The API adds and changes such members as it is told (contractors are legitimate).
    api = await org.post(
        "/v1/members",
        {"email": "dana@agency.example", "name": "Dana", "unit_id": str(org.root_unit_id)},
    )
    assert api.status_code == 201, api.text


async def test_the_last_owner_keeps_the_role_in_the_console_and_the_api(
    app: Any, org: OrgHandle
) -> None:
    async with asgi_client(app) as browser:
        owner, csrf = await signed_in_admin(browser, org)
        # Other owners made through the API count only while they can act.
        refused = await browser.post(
            f"/console/members/{owner['id']}/roles",
            {"csrf": csrf, "role_admin": "1", "confirmed": "1"},  # asked first: one's own roles
        )
        page = await follow(browser, refused)
        assert "an organisation always keeps an owner" in page
    response = await org.patch(f"/v1/members/{owner['id']}", {"roles": ["admin"]})
    assert response.status_code == 409, response.text
    assert response.json()["errors"] == [
        {"field": "roles", "reason": "would leave the organisation without an owner"}
    ]
    second = await make_member(org, roles=["owner"])
    assert (await org.patch(f"/v1/members/{owner['id']}", {"roles": ["admin"]})).status_code == 200
    # Now the second is the last owner.
    assert (await org.patch(f"/v1/members/{second['id']}", {"roles": []})).status_code == 409


async def test_groups_are_made_renamed_filled_and_deleted_after_a_confirmation(
    app: Any, org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    members = [await make_member(org, name=f"Grouped {i}") for i in range(2)]
    async with asgi_client(app) as browser:
        _, csrf = await signed_in_admin(browser, org)
        made = await browser.post(
            "/console/groups", {"csrf": csrf, "name": "Choir", "priority": "3"}
        )
        group_page = made.headers["location"]
        assert "Created the group Choir." in await follow(browser, made)
        for m in members:
            added = await browser.post(
                f"{group_page}/members", {"csrf": csrf, "member_id": m["id"], "op": "add"}
            )
            assert "Added to the group." in await follow(browser, added)
        renamed = await browser.post(
            group_page, {"csrf": csrf, "name": "Big choir", "priority": "4"}
        )
        assert "Saved the group Big choir." in await follow(browser, renamed)
        asked = await browser.post(f"{group_page}/delete", {"csrf": csrf})
        assert asked.status_code == 200
        assert "2 members leave the group" in text_of(asked.text)
        assert (
            await owner_conn.fetchval("SELECT count(*) FROM groups WHERE tenant_id = $1", org.id)
            == 1
        )
        deleted = await browser.post(f"{group_page}/delete", {"csrf": csrf, "confirmed": "1"})
        assert "Deleted the group Big choir." in await follow(browser, deleted)
    assert (
        await owner_conn.fetchval("SELECT count(*) FROM groups WHERE tenant_id = $1", org.id) == 0
    )


async def test_bulk_move_of_three_selected_members_is_confirmed_with_the_count_then_done(
    app: Any, org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    target = await make_unit(org, "Warehouse")
    locked = await make_unit(org, "Locked")
    await org.put(
        "/v1/policy/rules",
        json={
            "target_kind": "unit",
            "target_id": locked["id"],
            "setting": "improvement.use_data",
            "value": True,
            "enforced": True,
            "reason": "locked unit",
        },
    )
    chosen = [
        await make_member(org, name=f"Bulk {i}", unit=locked["id"] if i == 0 else None)
        for i in range(3)
    ]
    untouched = await make_member(org, name="Not chosen")
    form = {f"member_{m['id']}": "1" for m in chosen}
    async with asgi_client(app) as browser:
        _, csrf = await signed_in_admin(browser, org)
        listing = (await browser.get("/console/members")).text
        assert f'name="member_{chosen[0]["id"]}"' in listing
        asked = await browser.post(
            "/console/members/bulk",
            {"csrf": csrf, "action": "move", "unit_id": target["id"], **form},
        )
        assert asked.status_code == 200
        text = text_of(asked.text)
        assert "Move 3 members to Warehouse?" in text and "Bulk 0, Bulk 1, Bulk 2" in text
        # The totals of the move preview: only Bulk 0 leaves a lock.
        assert "Settings change for 1 of them: Bulk 0." in text
        assert "changes for 1 member." in text
        done = await browser.post(
            "/console/members/bulk",
            {"csrf": csrf, "action": "move", "unit_id": target["id"], "confirmed": "1", **form},
        )
        assert "Moved 3 members." in await follow(browser, done)

        # Again, with one more already there: the confirmation names who is left as they
        # are and why, and the outcome counts the same way.
        another = await make_member(org, name="Bulk 3")
        again = {**form, f"member_{another['id']}": "1"}
        asked = await browser.post(
            "/console/members/bulk",
            {"csrf": csrf, "action": "move", "unit_id": target["id"], **again},
        )
        text = text_of(asked.text)
        assert "Move 1 member to Warehouse?" in text
        assert "Left as they are (is already in it): Bulk 0, Bulk 1, Bulk 2." in text
        done = await browser.post(
            "/console/members/bulk",
            {"csrf": csrf, "action": "move", "unit_id": target["id"], "confirmed": "1", **again},
        )
        assert "Moved 1 member; 3 of the 4 selected left as they were." in await follow(
            browser, done
        )
        nothing = await browser.post(
            "/console/members/bulk",
            {"csrf": csrf, "action": "move", "unit_id": target["id"], **again},
        )
        assert "nothing to do: each selected member is already in it" in await follow(
            browser, nothing
        )
    units = {
        str(r["id"]): str(r["unit_id"])
        for r in await owner_conn.fetch(
            "SELECT id, unit_id FROM members WHERE tenant_id = $1", org.id
        )
    }
    assert all(units[m["id"]] == target["id"] for m in chosen)
    assert units[untouched["id"]] == str(org.root_unit_id)


async def test_a_refused_bulk_action_comes_back_with_the_same_members_ticked_and_action_chosen(
    app: Any, org: OrgHandle
) -> None:
    chosen = [await make_member(org, name=f"Ticked {i}") for i in range(3)]
    other = await make_member(org, name="Not ticked")
    form = {f"member_{m['id']}": "1" for m in chosen}
    async with asgi_client(app) as browser:
        _, csrf = await signed_in_admin(browser, org)
        refused = await browser.post(
            "/console/members/bulk",
            {"csrf": csrf, "action": "add_to_group", "group_id": "", **form},
            headers={"referer": "/console/members?q=ticked"},
        )
        assert refused.status_code == 303
        back = await browser.get(refused.headers["location"])
        assert "choose the group" in text_of(back.text)
        for member in chosen:
            assert re.search(f'name="member_{member["id"]}"[^>]* checked', back.text)
        assert not re.search(f'name="member_{other["id"]}"[^>]* checked', back.text)
        assert '<option value="add_to_group" selected>' in back.text
        mail = await make_product(org, name="Mail")
        nobody = await browser.post(
            "/console/members/bulk",
            {"csrf": csrf, "action": "assign_product", "product_id": mail["id"]},
            headers={"referer": "/console/members"},
        )
        back = await browser.get(nobody.headers["location"])
        assert f'<option value="{mail["id"]}" selected>Mail</option>' in back.text
        assert '<option value="assign_product" selected>' in back.text


CSV_GOOD = (
    "email,name,unit,manager_email,roles,status\n"
    "ann@example.org,Ann Imported,Imports,,,active\n"
    "{existing},Renamed Existing,,,auditor,\n"
)
CSV_BAD = (
    "email,name,unit,manager_email,roles,status\n"
    "ann@example.org,Ann Imported,Imports,,,active\n"
    "not-an-email,Bad Line,,,,\n"
    "bob@example.org,Bob,No Such Unit,,,\n"
    "cy@example.org,Cy,,,emperor,\n"
)


async def test_csv_import_dry_run_then_apply_and_a_refused_apply_writes_nothing(
    app: Any, org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    await make_unit(org, "Imports")
    existing = await make_member(org, name="Existing Person")
    async with asgi_client(app) as browser:
        _, csrf = await signed_in_admin(browser, org)
        before = await row_counts(owner_conn)
        empty = await browser.http.post(
            "/console/members/import",
            data={"csrf": csrf, "csv_text": "  \n"},
            headers={"referer": "http://tenantry.test/console/members/import"},
        )
        assert empty.status_code == 303, empty.text[:500]
        shown = (await browser.get(empty.headers["location"])).text
        assert 'aria-describedby="csv_text-error"' in shown
        assert "CSV text: is empty: paste the CSV, its header line first" in text_of(shown)
        refused = await browser.post(
            "/console/members/import", {"csrf": csrf, "csv_text": CSV_BAD, "apply": "1"}
        )
        assert refused.status_code == 422
        text = text_of(refused.text)
        assert "Nothing was imported: 3 lines are refused" in text
        assert "3 not-an-email refused email 'not-an-email' is not an email address" in text
        assert "no unit named 'No Such Unit'" in text and "unknown role 'emperor'" in text
        assert await row_counts(owner_conn) == before
        # A dry run says what to do next, and every problem of a line at once.
        both = CSV_BAD + "dee@example.org,Dee,Nowhere,nobody@example.org,,\n"
        checked = text_of(
            (await browser.post("/console/members/import", {"csrf": csrf, "csv_text": both})).text
        )
        assert (
            "Nothing is imported while a line is refused: fix them in the text above "
            "(line 3, 4, 5, 6; line 1 is the header), then check again." in checked
        )
        assert "no unit named 'Nowhere'; no member with email nobody@example.org (manager)" in (
            checked
        )

        good = CSV_GOOD.format(existing=existing["email"])
        dry = await browser.post("/console/members/import", {"csrf": csrf, "csv_text": good})
        assert dry.status_code == 200
        text = text_of(dry.text)
        assert "1 created · 1 changed · 0 unchanged · 0 refused" in text
        assert await row_counts(owner_conn) == before
        checked = re.search(r'name="checked" value="([0-9a-f]{64})"', dry.text)
        assert checked is not None
        # Text edited after its check is not imported under the check's button (an Owner
        # line added below "Import 1 new, 1 changed" became an owner): it is checked anew.
        edited = good + "eve@example.org,Eve,Imports,,owner,active\n"
        stale = await browser.post(
            "/console/members/import",
            {"csrf": csrf, "csv_text": edited, "apply": "1", "checked": checked[1]},
        )
        assert stale.status_code == 409
        said = text_of(stale.text)
        assert "Nothing was imported: the text changed after it was checked" in said
        assert "Import 2 new, 1 changed" in said
        assert await row_counts(owner_conn) == before
        applied = await browser.post(
            "/console/members/import",
            {"csrf": csrf, "csv_text": good, "apply": "1", "checked": checked[1]},
        )
        assert "Imported: 1 created, 1 changed, 0 unchanged." in await follow(browser, applied)
    ann = await owner_conn.fetchrow("SELECT * FROM members WHERE email = 'ann@example.org'")
    assert ann is not None and ann["status"] == "active"
    renamed = await owner_conn.fetchval(
        "SELECT name FROM members WHERE id = $1", uuid.UUID(existing["id"])
    )
    assert renamed == "Renamed Existing"


async def test_the_import_api_names_bad_lines_and_writes_nothing_then_applies(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    await make_unit(org, "Imports")
    headers = {"content-type": "text/csv"}
    before = await row_counts(owner_conn)
    refused = await org.client.post(
        "/v1/members/import?dry_run=false",
        content=CSV_BAD.encode(),
        headers={**headers, "authorization": f"Bearer {org.token}"},
    )
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in refused.json()["errors"]] == ["line 3", "line 4", "line 5"]
    assert await row_counts(owner_conn) == before
    dry = await org.client.post(
        "/v1/members/import",
        content=CSV_BAD.encode(),
        headers={**headers, "authorization": f"Bearer {org.token}"},
    )
    assert dry.status_code == 200, dry.text
    body = dry.json()
    assert (body["applied"], body["created"], body["refused"]) == (False, 1, 3)
    assert [line["line"] for line in body["lines"] if line["outcome"] == "refused"] == [3, 4, 5]
    wrong_type = await org.client.post(
        "/v1/members/import",
        content=b"email,name\n",
        headers={"content-type": "application/json", "authorization": f"Bearer {org.token}"},
    )
    assert wrong_type.status_code == 415
    applied = await org.client.post(
        "/v1/members/import?dry_run=false",
        content=b"email,name,unit\nzed@example.org,Zed,Imports\n",
        headers={**headers, "authorization": f"Bearer {org.token}"},
    )
    assert applied.status_code == 200, applied.text
    assert applied.json()["applied"] is True and applied.json()["created"] == 1


async def test_export_of_the_filtered_list_neutralises_formula_cells(
    app: Any, org: OrgHandle
) -> None:
    await make_member(org, name='=HYPERLINK("http://evil")', email="formula@example.org")
    await make_member(org, name="+1 plus", email="plus@example.org")
    await make_member(org, name="Plain", email="plain@example.org", status="invited")
    async with asgi_client(app) as browser:
        await signed_in_admin(browser, org)
        exported = await browser.get("/console/members/export.csv?status=active")
        assert exported.status_code == 200
        assert exported.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(exported.text)))
    assert rows[0] == ["email", "name", "unit", "manager_email", "roles", "status"]
    names = {r[0]: r[1] for r in rows[1:]}
    assert names["formula@example.org"] == '\'=HYPERLINK("http://evil")'
    assert names["plus@example.org"] == "'+1 plus"
    assert "plain@example.org" not in names  # the filter (active) is kept


async def test_a_unit_with_members_is_emptied_into_another_then_deleted(
    app: Any, org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    doomed = await make_unit(org, "Closing")
    keeper = await make_unit(org, "Keeping")
    for i in range(2):
        await make_member(org, unit=doomed["id"], name=f"Closing {i}")
    async with asgi_client(app) as browser:
        _, csrf = await signed_in_admin(browser, org)
        asked = await browser.post(f"/console/units/{doomed['id']}/delete", {"csrf": csrf})
        assert asked.status_code == 200
        assert "Move 2 members and delete Closing" in text_of(asked.text)
        done = await browser.post(
            f"/console/units/{doomed['id']}/delete",
            {"csrf": csrf, "confirmed": "1", "unit_id": keeper["id"]},
        )
        landing = await follow(browser, done)
        assert "Deleted the unit Closing after moving its 2 members." in landing, landing[:600]
    assert (
        await owner_conn.fetchval(
            "SELECT count(*) FROM members WHERE unit_id = $1", uuid.UUID(keeper["id"])
        )
        == 2
    )
    assert (
        await owner_conn.fetchval(
            "SELECT count(*) FROM audit_events WHERE tenant_id = $1 AND action = 'member.moved'",
            org.id,
        )
        == 2
    )


async def test_pickers_and_search_find_by_the_start_of_a_name_or_email(
    app: Any, org: OrgHandle
) -> None:
    await make_member(org, name="Zora Picked", email="zp@example.org")
    await make_member(org, name="Other", email="zora.mail@example.org")
    await make_unit(org, "Zoology")
    async with asgi_client(app) as browser:
        await signed_in_admin(browser, org)
        found = await browser.get("/console/pick/members?name=manager_id&manager_id_q=zor")
        text = text_of(found.text)
        assert "Zora Picked (zp@example.org)" in text and "zora.mail@example.org" in text
        assert 'name="manager_id"' in found.text
        units = await browser.get("/console/pick/units?name=parent_id&parent_id_q=ZOO")
        assert "Zoology" in text_of(units.text) and 'name="parent_id"' in units.text
        odd = await browser.get("/console/pick/units?name=bad%22name&unit_id_q=Zoo")
        assert 'name="unit_id"' in odd.text  # only plain field names travel back
        search = text_of((await browser.get("/console/search?q=zo")).text)
        assert "Zora Picked" in search and "Zoology" in search
        # From three letters the start of a later name finds the person too (a surname),
        # but not the middle of a word.
        surname = text_of((await browser.get("/console/search?q=pick")).text)
        assert "Zora Picked" in surname
        assert "Zora Picked" not in text_of((await browser.get("/console/search?q=icked")).text)
        picked = await browser.get("/console/pick/members?name=manager_id&manager_id_q=Picked")
        assert "Zora Picked (zp@example.org)" in text_of(picked.text)


async def test_units_named_alike_read_apart_by_their_parents(app: Any, org: OrgHandle) -> None:
    staff = await make_unit(org, "Staff")
    students = await make_unit(org, "Students")
    await make_unit(org, "Robotics Club", parent=uuid.UUID(staff["id"]))
    await make_unit(org, "Robotics Club", parent=uuid.UUID(students["id"]))
    async with asgi_client(app) as browser:
        await signed_in_admin(browser, org)
        picked = text_of((await browser.get("/console/pick/units?unit_id_q=robot")).text)
        search = text_of((await browser.get("/console/search?q=robot")).text)
        found = text_of((await browser.get("/console/units?q=robot")).text)
    for shown in (picked, search):
        assert "Staff \u203a Robotics Club" in shown and "Students \u203a Robotics Club" in shown
    assert "Robotics Club in Staff" in found and "Robotics Club in Students" in found


async def test_units_are_found_whatever_the_accents_typed(app: Any, org: OrgHandle) -> None:
    await make_unit(org, "École Nord")
    async with asgi_client(app) as browser:
        await signed_in_admin(browser, org)
        for typed in ("ecole", "ÉCOLE", "cole n"):
            found = text_of((await browser.get("/console/units", params={"q": typed})).text)
            assert "École Nord" in found, typed
        # The picker and the header search by a name's start, accents or not.
        for path in ("/console/pick/units?unit_id_q=ecole", "/console/search?q=Ecole"):
            assert "École Nord" in text_of((await browser.get(path)).text), path
        assert "École Nord" not in text_of(
            (await browser.get("/console/pick/units?unit_id_q=cole")).text
        )  # the start of the name, not its middle


@pytest.mark.parametrize("path", ["/console/members", "/console/units"])
async def test_an_expired_session_during_htmx_sends_the_whole_page_to_sign_in(
    app: Any, org: OrgHandle, path: str
) -> None:
    async with asgi_client(app) as browser:
        await signed_in_admin(browser, org)
        browser.http.cookies.clear()
        answer = await browser.get(
            "/console/pick/members?member_id_q=a",
            headers={"hx-request": "true", "hx-current-url": f"http://tenantry.test{path}?q=x"},
        )
        assert answer.status_code == 200
        # The page the admin was on, never the fragment's URL.
        assert answer.headers["hx-redirect"] == "/login?next=" + quote(f"{path}?q=x")


async def test_after_sign_in_a_post_only_next_lands_on_its_page(app: Any, org: OrgHandle) -> None:
    await set_local_sign_in(org.id, True)
    admin = await make_member(org, roles=["owner"])
    await set_password(org.id, admin["id"], PASSWORD)
    async with asgi_client(app) as browser:
        response = await browser.password_sign_in(
            org.slug,
            admin["email"],
            PASSWORD,
            next_path=f"/console/members/{admin['id']}/transition",
        )
        assert response.status_code == 303
        assert response.headers["location"] == f"/console/members/{admin['id']}"


async def test_a_csrf_failure_explains_itself_and_links_back(app: Any, org: OrgHandle) -> None:
    async with asgi_client(app) as browser:
        await signed_in_admin(browser, org)
        refused = await browser.post(
            "/console/groups",
            {"csrf": "forged", "name": "X"},
            headers={"referer": "http://tenantry.test/console/groups"},
        )
        assert refused.status_code == 403
        text = text_of(refused.text)
        assert "Nothing was changed" in text and "sent from another site" in text
        assert 'href="/console/groups"' in refused.text


async def test_a_member_opening_the_console_is_told_why_not(app: Any, org: OrgHandle) -> None:
    await set_local_sign_in(org.id, True)
    member = await make_member(org)
    await set_password(org.id, member["id"], PASSWORD)
    async with asgi_client(app) as browser:
        await browser.password_sign_in(org.slug, member["email"], PASSWORD)
        page = await browser.get("/console/members")
        assert page.status_code == 403
        assert "you are a member of it without an administrator role" in text_of(page.text)


@pytest.mark.parametrize("role", ["helpdesk", "admin"])
async def test_nobody_gives_a_role_beyond_their_own_powers_in_the_console_or_the_api(
    app: Any, org: OrgHandle, role: str
) -> None:
    """A helpdesk made itself owner through the roles form (members:write was the only
    check); an admin could too. Neither may give or take away a role holding permissions
    they lack, for themselves or anyone, in the form, the new-member form or the API."""
    other = await make_member(org, name="Ada Other")
    async with asgi_client(app) as browser:
        me, csrf = await signed_in_admin(browser, org, roles=[role])
        for target in (me, other):
            refused = await browser.post(
                f"/console/members/{target['id']}/roles",
                {"csrf": csrf, f"role_{role}": "1", "role_owner": "1"},
            )
            assert "you cannot give or take away the role Owner" in await follow(browser, refused)
        created = await browser.post(
            "/console/members",
            {
                "csrf": csrf,
                "name": "Nina New",
                "email": "nina.new@example.org",
                "unit_id": str(org.root_unit_id),
                "outside_domain_ok": "example.org",
                "role_owner": "1",
            },
        )
        assert created.status_code in (303, 403), created.text[:500]
        page = await follow(browser, created) if created.status_code == 303 else created.text
        assert "you cannot give or take away the role Owner" in text_of(page)
        # The form shows roles beyond their powers fixed: disabled, kept as they are.
        form = (await browser.get(f"/console/members/{other['id']}")).text
        assert re.search(r'name="role_owner" value="1" disabled', form)
        assert re.search(rf'name="role_{role}" value="1">', form)
        assert "only an owner gives or takes them away" in text_of(form)
        # A role they cannot touch that the member holds is sent back as it is.
        boss = await make_member(org, name="Bo Boss", roles=["owner"])
        boss_form = (await browser.get(f"/console/members/{boss['id']}")).text
        assert '<input type="hidden" name="role_owner" value="1">' in boss_form
        kept = await browser.post(
            f"/console/members/{boss['id']}/roles",
            {"csrf": csrf, "role_owner": "1", f"role_{role}": "1", "confirmed": "1"},
        )
        assert kept.status_code == 303, kept.text[:500]
        assert sorted((await org.get(f"/v1/members/{boss['id']}")).json()["roles"]) == sorted(
            ["owner", role]
        )
        # Within their own powers it works: their own role given to another.
        given = await browser.post(
            f"/console/members/{other['id']}/roles",
            {"csrf": csrf, f"role_{role}": "1", "confirmed": "1"},
        )
        assert f"Ada Other's roles: {role.capitalize()}." in await follow(browser, given)
    assert (await org.get(f"/v1/members/{me['id']}")).json()["roles"] == [role]
    assert (await org.get(f"/v1/members/{other['id']}")).json()["roles"] == [role]
    assert (await org.get("/v1/members", params={"q": "nina.new"})).json()["items"] == []
    # The API judges a token by its scopes the same way.
    narrow = await org.token_with(Permission.MEMBERS_READ, Permission.MEMBERS_WRITE)
    response = await org.client.patch(
        f"/v1/members/{other['id']}",
        headers={"Authorization": f"Bearer {narrow}"},
        json={"roles": ["owner"]},
    )
    assert response.status_code == 403, response.text
    assert response.json()["errors"] == [
        {"field": "roles", "reason": f"{role.capitalize()}, Owner: beyond your own permissions"}
    ]
    assert (await org.patch(f"/v1/members/{other['id']}", {"roles": ["owner"]})).status_code == 200


async def test_taking_roles_away_from_yourself_asks_first(app: Any, org: OrgHandle) -> None:
    await make_member(org, name="Second Owner", roles=["owner"])
    async with asgi_client(app) as browser:
        me, csrf = await signed_in_admin(browser, org)
        asked = await browser.post(
            f"/console/members/{me['id']}/roles", {"csrf": csrf, "role_admin": "1"}
        )
        assert asked.status_code == 200, asked.text[:500]
        page = text_of(asked.text)
        assert "Take roles away from yourself?" in page and "You give up: Owner." in page
        assert (await org.get(f"/v1/members/{me['id']}")).json()["roles"] == ["owner"]
        done = await browser.post(
            f"/console/members/{me['id']}/roles",
            {"csrf": csrf, "role_admin": "1", "confirmed": "1"},
        )
        assert done.status_code == 303, done.text[:500]
    assert (await org.get(f"/v1/members/{me['id']}")).json()["roles"] == ["admin"]


async def test_the_last_owner_is_told_at_once_and_a_refusal_after_confirming_lands_on_the_page(
    app: Any, org: OrgHandle
) -> None:
    """The only owner who unticked Owner was asked to confirm "You give up: Owner", and
    confirming showed a 405 (the refusal went back to the action's POST-only address)."""
    async with asgi_client(app) as browser:
        me, csrf = await signed_in_admin(browser, org)
        member_page = f"/console/members/{me['id']}"
        action = f"{member_page}/roles"
        told = await browser.post(
            action,
            {"csrf": csrf, "role_admin": "1"},
            headers={"referer": f"http://tenantry.test{member_page}"},
        )
        assert told.status_code == 303 and told.headers["location"] == member_page
        assert "always keeps an owner" in text_of((await browser.get(member_page)).text)
        # A confirmation whose action is then refused returns to where it started.
        await make_member(org, name="Second Owner", roles=["owner"])
        asked = await browser.post(action, {"csrf": csrf, "role_admin": "1"})
        assert f'name="refused_on" value="{member_page}"' in asked.text
        others = (await org.get("/v1/members?sort=email")).json()["items"]
        second = next(m for m in others if m["name"] == "Second Owner")
        assert (
            await org.patch(f"/v1/members/{second['id']}", {"roles": ["member"]})
        ).status_code == 200
        refused = await browser.post(
            action,
            {"csrf": csrf, "role_admin": "1", "confirmed": "1", "refused_on": member_page},
            headers={"referer": f"http://tenantry.test{action}"},
        )
        assert refused.status_code == 303 and refused.headers["location"] == member_page
        assert (await browser.get(member_page)).status_code == 200
    assert (await org.get(f"/v1/members/{me['id']}")).json()["roles"] == ["owner"]


async def test_the_import_finds_units_whatever_their_capitals_and_asks_for_an_id_when_two_match(
    org: OrgHandle,
) -> None:
    berlin = await make_unit(org, "Berlin")
    elsewhere = await make_unit(org, "Sites")
    await make_unit(org, "Paris")
    await make_unit(org, "PARIS", parent=uuid.UUID(elsewhere["id"]))  # another parent: allowed
    csv_text = (
        "email,name,unit\n"
        f"lower@{org.slug}.example,Lower,berlin\n"
        f"twice@{org.slug}.example,Twice,paris\n"
        f"none@{org.slug}.example,None,Lisbon\n"
    )
    dry = await org.client.post(
        "/v1/members/import",
        content=csv_text.encode(),
        headers={"content-type": "text/csv", "authorization": f"Bearer {org.token}"},
    )
    assert dry.status_code == 200, dry.text
    lines = {line["line"]: line for line in dry.json()["lines"]}
    assert lines[2]["outcome"] == "created", lines[2]
    assert lines[3]["outcome"] == "refused" and "use the unit's id" in str(lines[3]), lines[3]
    assert lines[4]["outcome"] == "refused" and "no unit named 'Lisbon'" in str(lines[4]), lines[4]
    applied = await org.client.post(
        "/v1/members/import?dry_run=false",
        content=f"email,name,unit\nlower@{org.slug}.example,Lower,BERLIN\n".encode(),
        headers={"content-type": "text/csv", "authorization": f"Bearer {org.token}"},
    )
    assert applied.status_code == 200, applied.text
    member = (await org.get(f"/v1/members?q=lower@{org.slug}.example")).json()["items"][0]
    assert member["unit_id"] == berlin["id"]


async def test_two_tabs_each_save_what_they_changed_and_a_field_both_changed_is_refused(
    app: Any, org: OrgHandle
) -> None:
    """Tab 2 saving a new email put back the name tab 1 had just saved."""
    zoe = await make_member(org, name="Zoe Original")
    page_of = f"/console/members/{zoe['id']}"
    async with asgi_client(app) as browser:
        _, csrf = await signed_in_admin(browser, org)
        page = (await browser.get(page_of)).text
        shown = {
            name: re.search(rf'name="{name}" value="([^"]*)"', page).group(1)  # type: ignore[union-attr]
            for name in ("was_name", "was_email", "was_manager_id")
        }
        base = {"csrf": csrf, **shown}
        one = await browser.post(
            f"{page_of}/details", {**base, "name": "Zoe Tab One", "email": zoe["email"]}
        )
        assert one.status_code == 303
        two = await browser.post(
            f"{page_of}/details",
            {**base, "name": "Zoe Original", "email": f"zoe.two@{org.slug}.example"},
        )
        assert two.status_code == 303
        now = (await org.get(f"/v1/members/{zoe['id']}")).json()
        assert (now["name"], now["email"]) == ("Zoe Tab One", f"zoe.two@{org.slug}.example")
        # Both tabs changed the name: the later one is told, and nothing is overwritten.
        three = await browser.post(
            f"{page_of}/details",
            {**base, "name": "Zoe Tab Three", "email": zoe["email"]},
            headers={"referer": f"http://tenantry.test{page_of}"},
        )
        assert three.status_code == 303
        told = text_of((await browser.get(page_of)).text)
        assert "someone else changed this member since the page was opened" in told
        assert "was changed by someone else since this page was opened (now 'Zoe Tab One')" in told
    after = (await org.get(f"/v1/members/{zoe['id']}")).json()
    assert (after["name"], after["email"]) == ("Zoe Tab One", f"zoe.two@{org.slug}.example")


async def test_a_member_joins_any_group_through_the_picker_not_a_list_of_the_first_few(
    app: Any, org: OrgHandle
) -> None:
    nora = await make_member(org, name="Picker Nora")
    async with asgi_client(app) as browser:
        _, csrf = await signed_in_admin(browser, org)
        page = f"/console/members/{nora['id']}"
        assert "No groups yet" in text_of((await browser.get(page)).text)
        for n in range(205):
            await org.post("/v1/groups", {"name": f"Team {n:03d}"})
        assert 'hx-get="/console/pick/groups"' in (await browser.get(page)).text
        found = await browser.get("/console/pick/groups?name=group_id&group_id_q=team 204")
        [group_id] = re.findall(r'name="group_id" value="([0-9a-f-]+)"', found.text)
        # No rule of the group changes her settings: nothing to confirm.
        added = await browser.post(
            f"{page}/groups", {"csrf": csrf, "group_id": group_id, "op": "add"}
        )
        assert "Added Picker Nora to the group." in await follow(browser, added)
        assert "Team 204" in text_of((await browser.get(page)).text)


@pytest.mark.parametrize("role", ["helpdesk", "admin"])
async def test_nobody_takes_over_the_sign_in_of_a_member_with_more_powers_than_their_own(
    app: Any, org: OrgHandle, role: str
) -> None:
    """A helpdesk pointed an owner's address at its own mailbox ("Save anyway") and had a
    sign-in link sent there: the owner's account was the helpdesk's. Neither the address,
    the sign-in subject nor a sign-in link of a member holding permissions the editor
    lacks can be changed or sent, in the console or the API; a member within the editor's
    powers still can."""
    boss = await make_member(org, name="Bo Boss", roles=["owner"])
    peer = await make_member(org, name="Pat Peer", roles=[role])
    async with asgi_client(app) as browser:
        _, csrf = await signed_in_admin(browser, org, roles=[role])
        boss_page = f"/console/members/{boss['id']}"
        moved = await browser.post(
            f"{boss_page}/details",
            {
                "csrf": csrf,
                "name": "Bo Boss",
                "email": "mine@gmail.example",
                "outside_domain_ok": "gmail.example",
            },
        )
        said = await follow(browser, moved) if moved.status_code == 303 else text_of(moved.text)
        assert "you cannot change the email address of a member who holds the role Owner" in said
        invited = await browser.post(f"{boss_page}/invite", {"csrf": csrf})
        said = (
            await follow(browser, invited) if invited.status_code == 303 else text_of(invited.text)
        )
        assert "you cannot send a sign-in link to a member who holds the role Owner" in said
        # Within their powers: a peer's address changes and a link goes.
        peer_page = f"/console/members/{peer['id']}"
        changed = await browser.post(
            f"{peer_page}/details",
            {"csrf": csrf, "name": "Pat Peer", "email": f"pat.two@{org.slug}.example"},
        )
        assert "Saved Pat Peer." in await follow(browser, changed)
        sent = await browser.post(f"{peer_page}/invite", {"csrf": csrf})
        assert sent.status_code == 303, sent.text[:300]
        # Nor the owner's other details, lifecycle or sessions (a helpdesk suspended the
        # only owner), refused before any confirmation page.
        for path, form in (
            ("details", {"name": "Owned By Helpdesk", "email": boss["email"]}),
            ("transition", {"action": "suspend", "reason": "test"}),
            ("sign-out", {}),
        ):
            refused = await browser.post(f"{boss_page}/{path}", {"csrf": csrf, **form})
            said = (
                await follow(browser, refused)
                if refused.status_code == 303
                else text_of(refused.text)
            )
            assert "a member who holds the role Owner" in said, (path, said[:500])
    after = (await org.get(f"/v1/members/{boss['id']}")).json()
    assert after["email"] == boss["email"]
    invitations = await org.get(
        "/v1/audit-events", params={"action": "member.invited", "target_id": boss["id"]}
    )
    assert invitations.json()["items"] == []
    # The API judges a token by its scopes the same way.
    narrow = await org.token_with(Permission.MEMBERS_READ, Permission.MEMBERS_WRITE)
    bearer = {"Authorization": f"Bearer {narrow}"}
    patched = await org.client.patch(
        f"/v1/members/{boss['id']}", headers=bearer, json={"email": "mine@gmail.example"}
    )
    assert patched.status_code == 403, patched.text
    assert patched.json()["errors"][0]["field"] == "email"
    relinked = await org.client.patch(
        f"/v1/members/{boss['id']}", headers=bearer, json={"idp_subject": "mine"}
    )
    assert relinked.status_code == 403 and relinked.json()["errors"][0]["field"] == "idp_subject"
    link = await org.client.post(f"/v1/members/{boss['id']}/invitation", headers=bearer)
    assert link.status_code == 403 and link.json()["errors"][0]["field"] == "invite"
    renamed = await org.client.patch(
        f"/v1/members/{boss['id']}", headers=bearer, json={"name": "Bo B. Boss"}
    )
    assert renamed.status_code == 403 and renamed.json()["errors"][0]["field"] == "name"
    suspended = await org.client.post(
        f"/v1/members/{boss['id']}/transitions",
        headers={"Authorization": f"Bearer {await org.token_with(Permission.MEMBERS_LIFECYCLE)}"},
        json={"action": "suspend", "reason": "test"},
    )
    assert suspended.status_code == 403, suspended.text
    assert (await org.get(f"/v1/members/{boss['id']}")).json()["status"] == "active"


async def test_no_path_moves_or_suspends_a_member_with_more_powers_than_the_editor(
    app: Any, org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    """A helpdesk suspended admins and auditors through the bulk action (the member's own
    page refused it) and moved owners out from under their locks (page, bulk, import, API).
    Each path now judges each member as the single change does, and refuses the whole."""
    boss = await make_member(org, name="Bo Boss", roles=["owner"])
    chief = await make_member(org, name="Ada Admin", roles=["admin"])
    plain = await make_member(org, name="Pat Plain")
    away = await make_unit(org, "Annex")
    async with asgi_client(app) as browser:
        _, csrf = await signed_in_admin(browser, org, roles=["helpdesk"])
        both = {f"member_{chief['id']}": "1", f"member_{plain['id']}": "1"}
        for action, extra in (("suspend", {}), ("move", {"unit_id": away["id"]})):
            refused = await browser.post(
                "/console/members/bulk",
                {"csrf": csrf, "action": action, "confirmed": "1", **extra, **both},
                headers={"referer": "/console/members"},
            )
            said = (
                await follow(browser, refused)
                if refused.status_code == 303
                else text_of(refused.text)
            )
            assert "a member who holds the role Admin" in said, (action, said[:400])
        moved = await browser.post(
            f"/console/members/{boss['id']}/move", {"csrf": csrf, "unit_id": away["id"]}
        )
        said = await follow(browser, moved) if moved.status_code == 303 else text_of(moved.text)
        assert "you cannot move a member who holds the role Owner" in said
        assert "Move Bo Boss?" not in said  # refused before the confirmation
        dry = await browser.post(
            "/console/members/import",
            {
                "csrf": csrf,
                "csv_text": f"email,name,unit\n{boss['email']},Bo Boss,Annex\n"
                f"{plain['email']},Pat Plain,Annex\n",
            },
        )
        said = text_of(dry.text)
        assert f"{boss['email']} holds the role Owner, beyond your own permissions" in said
    rows = await owner_conn.fetch(
        "SELECT id::text, status, unit_id FROM members WHERE tenant_id = $1 AND id = ANY($2)",
        org.id,
        [uuid.UUID(m["id"]) for m in (boss, chief, plain)],
    )
    assert {(r["status"], r["unit_id"]) for r in rows} == {("active", org.root_unit_id)}
    narrow = await org.token_with(Permission.MEMBERS_READ, Permission.MEMBERS_WRITE)
    api_move = await org.client.post(
        f"/v1/members/{boss['id']}/move",
        headers={"Authorization": f"Bearer {narrow}"},
        json={"unit_id": away["id"]},
    )
    assert api_move.status_code == 403 and api_move.json()["errors"][0]["field"] == "unit_id"
    # Nor added to or taken out of a group (its rules change their settings) by a token
    # holding members and groups but not the owner's powers.
    grouper = await org.token_with(
        Permission.MEMBERS_READ, Permission.MEMBERS_WRITE, Permission.GROUPS_WRITE
    )
    club = await make_group(org, name="Lockers")
    for method in ("PUT", "DELETE"):
        grouped = await org.client.request(
            method,
            f"/v1/groups/{club['id']}/members/{boss['id']}",
            headers={"Authorization": f"Bearer {grouper}"},
        )
        assert grouped.status_code == 403, (method, grouped.text)
        assert grouped.json()["errors"][0]["field"] == "member_id"
    # Within the editor's powers, the same paths still work.
    fine = await org.client.post(
        f"/v1/members/{plain['id']}/move",
        headers={"Authorization": f"Bearer {narrow}"},
        json={"unit_id": away["id"]},
    )
    assert fine.status_code == 200, fine.text


async def test_the_organisation_s_last_owner_is_never_suspended(org: OrgHandle) -> None:
    """A helpdesk suspended the only owner; nobody could then manage the organisation's
    settings or tokens, nor give the role back. Whoever asks, the last owner who can act
    stays."""
    await make_member(org, name="First Owner", roles=["owner"], status="active")
    await make_member(org, name="Second Owner", roles=["owner"], status="active")
    owners = [
        m
        for m in (await org.get("/v1/members", params={"limit": 200})).json()["items"]
        if "owner" in m["roles"] and m["status"] in ("active", "invited")
    ]
    assert len(owners) >= 2
    for owner in owners[:-1]:
        done = await org.post(f"/v1/members/{owner['id']}/transitions", {"action": "suspend"})
        assert done.status_code == 200, done.text
    last = await org.post(f"/v1/members/{owners[-1]['id']}/transitions", {"action": "suspend"})
    assert last.status_code == 409, last.text
    assert last.json()["errors"][0]["field"] == "action"
    assert "only owner" in last.json()["detail"]
