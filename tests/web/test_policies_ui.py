"""The console's policy pages: rules per unit and group behind an impact preview, the
confirmation for required settings, history, diff and rollback, "view as member", and who
may do what. The issue's scenario runs in real Chromium; the rest in process.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from playwright.async_api import Route, expect

from tenants.permissions import Role
from tests.conftest import OrgHandle, make_group, make_member, make_product, make_unit, row_counts
from tests.web.browser import OpenTab, sign_in_with_password
from tests.web.flows import (
    PASSWORD,
    WebClient,
    asgi_client,
    audit_events,
    set_local_sign_in,
    set_password,
    text_of,
    title_of,
)

ADS = "advertising.personalised_ads"
#: A setting a rule may lock on (locking ads on is refused: it rests on consent).
USE_DATA = "improvement.use_data"
REASON = "No personalised ads in Sales."


@pytest.fixture
async def local_org(org: OrgHandle) -> OrgHandle:
    """An organisation whose members sign in with passwords."""
    await set_local_sign_in(org.id, True)
    return org


async def person(
    org: OrgHandle, name: str, *, role: str = "member", unit: Any = None
) -> dict[str, Any]:
    made = await make_member(org, name=name, roles=[role], unit=unit)
    await set_password(org.id, made["id"], PASSWORD)
    return made


async def signed_in(browser: WebClient, org: OrgHandle, who: dict[str, Any]) -> str:
    """Sign ``who`` in by password; the session's CSRF token."""
    return await browser.signed_in(org.slug, who["email"])


def rule_form(
    csrf: str,
    unit_id: Any,
    *,
    value: str = "false",
    enforced: bool = True,
    setting: str = ADS,
    reason: str = REASON,
    **extra: str,
) -> dict[str, str]:
    return {
        "csrf": csrf,
        "target": f"unit:{unit_id}",
        "setting": setting,
        "value": value,
        "enforced": "on" if enforced else "",
        "reason": reason,
        **extra,
    }


async def rules_of(conn: asyncpg.Connection, org: OrgHandle) -> list[tuple[str, str, Any, bool]]:
    rows = await conn.fetch(
        "SELECT coalesce(unit_id, group_id)::text AS t, setting, value, enforced FROM policy_rules "
        "WHERE tenant_id = $1 ORDER BY setting, t",
        org.id,
    )
    return [(r["t"], r["setting"], r["value"], r["enforced"]) for r in rows]


# --- preview, save, confirmation ------------------------------------------------------------


async def test_preview_counts_the_members_in_scope_and_writes_nothing_until_confirmed(
    app: Any,
    local_org: OrgHandle,
    owner_conn: asyncpg.Connection,
) -> None:
    sales = await make_unit(local_org, "Sales")
    await make_unit(local_org, "Research")
    chooser = await make_member(local_org, unit=sales["id"])
    await make_member(local_org, unit=sales["id"])
    chosen = await local_org.post(
        f"/v1/members/{chooser['id']}/choices", json={"setting": ADS, "value": True}
    )
    assert chosen.status_code == 200, chosen.text
    admin = await person(local_org, "Ada Admin", role="admin")
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, local_org, admin)
        page = await browser.get(f"/console/policies?target=unit:{sales['id']}")
        assert page.status_code == 200
        assert title_of(page.text).startswith("Policies · Sales · ")
        assert "Personalised ads" in page.text and 'action="/console/policies/preview"' in page.text
        before = await row_counts(owner_conn)
        preview = await browser.post("/console/policies/preview", rule_form(csrf, sales["id"]))
        assert preview.status_code == 200, preview.text
        text = text_of(preview.text)
        assert "Members in scope 2" in text
        assert "Effective values that change 1" in text
        assert "Members' own choices overridden 1" in text
        assert "Locked afterwards 2 members" in text
        assert (
            "What stops working You still may see ads, but they are not chosen using your activity."
            in text
        )
        assert "Sales 1" in text  # the breakdown by unit
        assert await row_counts(owner_conn) == before
        # The same preview as a fragment for htmx: no page around it.
        fragment = await browser.post(
            "/console/policies/preview",
            rule_form(csrf, sales["id"]),
            headers={"HX-Request": "true"},
        )
        assert fragment.status_code == 200 and "<html" not in fragment.text
        assert "Confirm and save" in fragment.text
        saved = await browser.post("/console/policies/rules", rule_form(csrf, sales["id"]))
        assert saved.status_code == 303
        assert saved.headers["location"].startswith(f"/console/policies?target=unit:{sales['id']}")
        landing = text_of((await browser.get(saved.headers["location"])).text)
        assert "Saved: Personalised ads is Off, locked for everyone below, on Sales." in landing
    assert await rules_of(owner_conn, local_org) == [(sales["id"], ADS, "false", True)]
    [event] = await audit_events(owner_conn, local_org.id, "policy.rule_set")
    assert event.actor == f"member:{admin['id']}"
    assert event.after["reason"] == REASON and event.after["enforced"] is True


async def test_a_dated_rule_is_said_to_be_scheduled_and_a_past_date_means_from_now(
    app: Any, local_org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    sales = await make_unit(local_org, "Sales")
    admin = await person(local_org, "Ada Admin", role="admin")
    coming = (datetime.now(UTC) + timedelta(days=10)).date().isoformat()
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, local_org, admin)
        saved = await browser.post(
            "/console/policies/rules", rule_form(csrf, sales["id"], setting=USE_DATA, effective_from=coming)
        )
        landing = text_of((await browser.get(saved.headers["location"])).text)
        assert (
            "Scheduled: Use of data to improve products becomes Off, locked for everyone below, on Sales from "
            f"{coming} (UTC); members see it under Coming changes." in landing
        )
        # Previewed, a past date says it takes effect at once, without notice.
        previewed = text_of(
            (
                await browser.post(
                    "/console/policies/preview",
                    rule_form(csrf, sales["id"], setting=USE_DATA, value="true", effective_from="2020-01-01"),
                )
            ).text
        )
        assert "It takes effect at once: 2020-01-01 is past, so members get no advance" in (
            previewed
        )
        assert "on Sales from 2020-01-01" not in previewed
        future = text_of(
            (
                await browser.post(
                    "/console/policies/preview",
                    rule_form(csrf, sales["id"], setting=USE_DATA, value="true", effective_from=coming),
                )
            ).text
        )
        assert f"on Sales from {coming}." in future and "takes effect at once" not in future
        assert "Short notice" not in future  # ten days ahead, beyond the seven of notice
        soon = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
        short = text_of(
            (
                await browser.post(
                    "/console/policies/preview",
                    rule_form(csrf, sales["id"], setting=USE_DATA, value="true", effective_from=soon),
                )
            ).text
        )
        assert "Short notice: the members it changes are told at once, 2 whole days ahead, fewer" in short
        assert "than the 7 days of notice the organisation gives." in short
        today = datetime.now(UTC).date().isoformat()
        now = text_of(
            (
                await browser.post(
                    "/console/policies/preview",
                    rule_form(csrf, sales["id"], setting=USE_DATA, value="true", effective_from=today),
                )
            ).text
        )
        assert "It takes effect at once: today has begun, so members get no" in now
        past = await browser.post(
            "/console/policies/rules",
            rule_form(csrf, sales["id"], setting=USE_DATA, value="true", effective_from="2020-01-01"),
        )
        landing = text_of((await browser.get(past.headers["location"])).text)
        assert "Saved: Use of data to improve products is On, locked for everyone below, on Sales." in landing
        assert "2020-01-01" not in landing  # no "since" a date the rule never had
    stored = await owner_conn.fetchval(
        "SELECT effective_from FROM policy_rules WHERE tenant_id = $1", local_org.id
    )
    assert stored is None


async def test_switching_off_a_required_setting_names_the_products_and_members_before_it_is_saved(
    app: Any,
    local_org: OrgHandle,
    owner_conn: asyncpg.Connection,
) -> None:
    await make_product(local_org, name="Mail")
    await make_product(local_org, name="Docs")
    unit = await make_unit(local_org, "Lab")
    for _ in range(3):
        await make_member(local_org, unit=unit["id"])
    admin = await person(local_org, "Ada Admin", role="admin")
    form_fields = {
        "setting": "cookies.necessary",
        "value": "false",
        "enforced": False,
        "reason": "testing",
    }
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, local_org, admin)
        preview = await browser.post(
            "/console/policies/preview", rule_form(csrf, unit["id"], **form_fields)
        )
        assert "Sign-in and security stop working" in text_of(preview.text)
        assert "Saving asks you to confirm which products stop working" in text_of(preview.text)
        asked = await browser.post(
            "/console/policies/rules", rule_form(csrf, unit["id"], **form_fields)
        )
        assert asked.status_code == 200, asked.text
        text = text_of(asked.text)
        assert "stops Docs, Mail from working for 3 members" in text
        assert "Switch it off for 3 members" in text
        assert await rules_of(owner_conn, local_org) == []
        done = await browser.post(
            "/console/policies/rules", rule_form(csrf, unit["id"], **form_fields, confirm="yes")
        )
        assert done.status_code == 303
    assert await rules_of(owner_conn, local_org) == [
        (unit["id"], "cookies.necessary", "false", False)
    ]


async def test_a_rule_is_removed_after_its_own_preview(
    app: Any,
    local_org: OrgHandle,
    owner_conn: asyncpg.Connection,
) -> None:
    unit = await make_unit(local_org, "Sales")
    await make_member(local_org, unit=unit["id"])
    admin = await person(local_org, "Ada Admin", role="admin")
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, local_org, admin)
        assert (
            await browser.post("/console/policies/rules", rule_form(csrf, unit["id"]))
        ).status_code == 303
        await local_org.put(
            "/v1/policy/rules",
            json={
                "target_kind": "unit",
                "target_id": unit["id"],
                "setting": "sharing.obtain_from_third_parties",
                "value": True,
            },
        )
        form = {
            "csrf": csrf,
            "target": f"unit:{unit['id']}",
            "setting": "sharing.obtain_from_third_parties",
            "value": "true",
        }
        preview = await browser.post("/console/policies/preview", {**form, "remove": "yes"})
        text = text_of(preview.text)
        assert "Remove the rule for Data about you from third parties on Sales" in text
        assert "Effective values that change 1" in text and "Confirm and remove" in text
        removed = await browser.post("/console/policies/rules/remove", form)
        assert removed.status_code == 303
        assert "Removed the rule for Data about you from third parties on Sales." in text_of(
            (await browser.get(removed.headers["location"])).text
        )
    assert await rules_of(owner_conn, local_org) == [(unit["id"], ADS, "false", True)]


async def test_a_bad_value_is_refused_with_a_message_on_the_rules_page(
    app: Any,
    local_org: OrgHandle,
    owner_conn: asyncpg.Connection,
) -> None:
    admin = await person(local_org, "Ada Admin", role="admin")
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, local_org, admin)
        before = await row_counts(owner_conn)
        refused = await browser.post(
            "/console/policies/rules",
            rule_form(
                csrf, local_org.root_unit_id, setting="diagnostics.level", value="everything"
            ),
        )
        assert refused.status_code == 303
        assert refused.headers["location"].startswith(
            f"/console/policies?target=unit:{local_org.root_unit_id}&setting=diagnostics.level"
        )
        landing = text_of((await browser.get(refused.headers["location"])).text)
        assert "Not done: diagnostics.level takes one of off, required, optional" in landing
        fragment = await browser.post(
            "/console/policies/preview",
            rule_form(
                csrf, local_org.root_unit_id, setting="diagnostics.level", value="everything"
            ),
            headers={"HX-Request": "true"},
        )
        assert "Not previewed: diagnostics.level takes one of" in text_of(fragment.text)
        assert await row_counts(owner_conn) == before


# --- who may ----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.HELPDESK, Role.AUDITOR, Role.PRIVACY_OFFICER])
async def test_roles_that_only_read_policies_see_them_but_cannot_preview_save_remove_or_roll_back(
    app: Any,
    local_org: OrgHandle,
    owner_conn: asyncpg.Connection,
    role: Role,
) -> None:
    await local_org.put(
        "/v1/policy/rules",
        json={
            "target_kind": "unit",
            "target_id": str(local_org.root_unit_id),
            "setting": ADS,
            "value": False,
            "enforced": True,
        },
    )
    reader = await person(local_org, "Rea Reader", role=role.value)
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, local_org, reader)
        page = await browser.get("/console/policies")
        assert page.status_code == 200 and "Personalised ads" in page.text
        # The root unit bears the organisation's name, which the title names once.
        policies, org_name, product = title_of(page.text).split(" · ")
        assert (policies, product) == ("Policies", "Tenantry") and org_name
        assert "Preview impact" not in page.text and "/console/policies/preview" not in page.text
        assert (await browser.get("/console/policies/history")).status_code == 200
        diff = await browser.get("/console/policies/diff?version=0")
        assert diff.status_code == 200 and "/console/policies/rollback" not in diff.text
        before = await row_counts(owner_conn)
        form = rule_form(csrf, local_org.root_unit_id, value="true", enforced=False)
        for path, fields in [
            ("/console/policies/preview", form),
            ("/console/policies/rules", form),
            ("/console/policies/rules/remove", form),
            ("/console/policies/rollback", {"csrf": csrf, "version": "0"}),
        ]:
            response = await browser.post(path, fields)
            assert response.status_code == 403, path
            said = text_of(response.text)
            assert "This page is for the role" in said and "Ask an owner" in said, said
        assert await row_counts(owner_conn) == before


async def test_members_cannot_open_the_policy_pages(app: Any, local_org: OrgHandle) -> None:
    member = await person(local_org, "Max Member")
    async with asgi_client(app) as browser:
        await signed_in(browser, local_org, member)
        for path in ["/console/policies", "/console/policies/history", "/console/policies/member"]:
            assert (await browser.get(path)).status_code == 403, path


async def test_policy_forms_without_the_sessions_csrf_token_are_refused_and_change_nothing(
    app: Any,
    local_org: OrgHandle,
    owner_conn: asyncpg.Connection,
) -> None:
    admin = await person(local_org, "Ada Admin", role="admin")
    async with asgi_client(app) as browser:
        await signed_in(browser, local_org, admin)
        before = await row_counts(owner_conn)
        form = rule_form("", local_org.root_unit_id)
        del form["csrf"]
        for path, fields in [
            ("/console/policies/rules", form),
            ("/console/policies/rules/remove", form),
            ("/console/policies/preview", form),
            ("/console/policies/rollback", {"version": "0"}),
        ]:
            response = await browser.post(path, fields)
            assert response.status_code == 403, path
            assert "This form was not sent from this session" in text_of(response.text)
        assert await row_counts(owner_conn) == before


# --- history, diff, rollback ----------------------------------------------------------------


async def test_history_shows_each_version_and_rollback_restores_an_earlier_one(
    app: Any,
    local_org: OrgHandle,
    owner_conn: asyncpg.Connection,
) -> None:
    sales = await make_unit(local_org, "Sales")
    admin = await person(local_org, "Ada Admin", role="admin")
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, local_org, admin)
        for value, reason in [("false", "First reason"), ("true", "Second reason")]:
            saved = await browser.post(
                "/console/policies/rules", rule_form(csrf, sales["id"], setting=USE_DATA, value=value, reason=reason)
            )
            assert saved.status_code == 303
        history = text_of((await browser.get("/console/policies/history")).text)
        assert "The rule set is at version 2" in history
        assert "Use of data to improve products on unit Sales" in history and "Ada Admin" in history
        diff = text_of((await browser.get("/console/policies/diff?version=2")).text)
        assert "Changes from version 1 to version 2" in diff
        assert (
            "changed Sales unit Use of data to improve products Off, locked for everyone below — “First reason” "
            "On, locked for everyone below — “Second reason”"
        ) in diff
        assert "Restore version" not in diff  # the current version
        restore = text_of((await browser.get("/console/policies/diff?version=1")).text)
        assert "What restoring changes now" in restore
        rolled = await browser.post("/console/policies/rollback", {"csrf": csrf, "version": "1"})
        assert (
            rolled.status_code == 303 and rolled.headers["location"] == "/console/policies/history"
        )
        landing = text_of((await browser.get("/console/policies/history")).text)
        assert "Restored the rules of version 1; this is now version 3." in landing
        assert "rolled back to version 1" in landing
    assert await rules_of(owner_conn, local_org) == [(sales["id"], USE_DATA, "false", True)]
    reason = await owner_conn.fetchval(
        "SELECT reason FROM policy_rules WHERE tenant_id = $1", local_org.id
    )
    assert reason == "First reason"
    [event] = await audit_events(owner_conn, local_org.id, "policy.rolled_back")
    assert event.after == {"to_version": 1}


async def test_rolling_back_to_a_version_that_does_not_exist_is_refused(
    app: Any,
    local_org: OrgHandle,
    owner_conn: asyncpg.Connection,
) -> None:
    admin = await person(local_org, "Ada Admin", role="admin")
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, local_org, admin)
        before = await row_counts(owner_conn)
        refused = await browser.post(
            "/console/policies/rollback",
            {"csrf": csrf, "version": "9"},
            headers={"Referer": "http://tenantry.test/console/policies/history"},
        )
        assert refused.status_code == 303
        landing = text_of((await browser.get(refused.headers["location"])).text)
        assert "Not done: choose one of the versions in the history" in landing
        assert "Version: is not a version of the rules" in landing
        assert await row_counts(owner_conn) == before


# --- view as member -------------------------------------------------------------------------


async def test_view_as_member_shows_each_setting_with_where_it_comes_from(
    app: Any,
    local_org: OrgHandle,
) -> None:
    sales = await make_unit(local_org, "Sales")
    group = await make_group(local_org, name="Analysts", priority=3)
    member = await make_member(
        local_org, unit=sales["id"], name="Sam Sales", email="sam@sales.example"
    )
    await local_org.put(f"/v1/groups/{group['id']}/members/{member['id']}")
    await local_org.post(
        f"/v1/members/{member['id']}/choices", json={"setting": ADS, "value": True}
    )
    await local_org.post(
        f"/v1/members/{member['id']}/choices",
        json={"setting": "personalisation.recommendations", "value": False},
    )
    for target_kind, target_id, setting, value, enforced in [
        ("unit", sales["id"], ADS, False, True),
        ("group", group["id"], "sharing.obtain_from_third_parties", True, False),
        ("unit", sales["id"], "cookies.preferences", False, False),
    ]:
        response = await local_org.put(
            "/v1/policy/rules",
            json={
                "target_kind": target_kind,
                "target_id": target_id,
                "setting": setting,
                "value": value,
                "enforced": enforced,
                "reason": f"reason for {setting}",
            },
        )
        assert response.status_code == 200, response.text
    helpdesk = await person(local_org, "Hal Helpdesk", role="helpdesk")
    async with asgi_client(app) as browser:
        await signed_in(browser, local_org, helpdesk)
        search = await browser.get("/console/policies/member?q=sam@sales")
        assert f"id={member['id']}" in search.text
        page = await browser.get(f"/console/policies/member?q=sam&id={member['id']}")
        assert page.status_code == 200
        text = text_of(page.text)
    assert "What Sam Sales gets" in text and "Groups Analysts" in text
    assert f"Personalised ads Off Locked Sales reason for {ADS} On hidden by the lock" in text
    assert (
        "Data about you from third parties On Group rule Analysts"
        " reason for sharing.obtain_from_third_parties"
    ) in text
    assert "Preference cookies Off Unit rule Sales reason for cookies.preferences" in text
    assert "Personalisation and recommendations Off Own choice Off" in text
    assert "Web beacons Off Default" in text


# --- the scenario in Chromium ---------------------------------------------------------


@pytest.mark.browser
async def test_admin_locks_personalised_ads_for_a_unit_and_members_see_it_at_once(
    local_org: OrgHandle,
    tabs: OpenTab,
    tmp_path: Path,
    owner_conn: asyncpg.Connection,
) -> None:
    sales = await make_unit(local_org, "Sales")
    research = await make_unit(local_org, "Research")
    admin = await person(local_org, "Ada Admin", role="admin")
    sam = await person(local_org, "Sam Sales", unit=sales["id"])
    rita = await person(local_org, "Rita Research", unit=research["id"])
    chosen = await local_org.post(
        f"/v1/members/{sam['id']}/choices", json={"setting": ADS, "value": True}
    )
    assert chosen.status_code == 200, chosen.text
    org_name = local_org.slug.title()

    # The admin reads the impact preview, then locks personalised ads off for Sales.
    tab = await tabs()
    page = tab.page
    await sign_in_with_password(tab, local_org, admin["email"])
    await tab.land("/console", tmp_path, "01-console")
    await (
        page.get_by_role("navigation", name="Console").get_by_role("link", name="Policies").click()
    )
    await tab.land("/console/policies", tmp_path, "02-policies-root")
    await (
        page.get_by_role("navigation", name="Units and groups")
        .get_by_role("link", name="Sales")
        .click()
    )
    await tab.land(f"/console/policies?target=unit:{sales['id']}", tmp_path, "03-policies-sales")
    ads = page.get_by_role("article", name="Personalised ads")
    await expect(ads).to_contain_text("Members here get Off")
    await ads.get_by_text("Set a rule").click()
    value = ads.get_by_label("Personalised ads: on")
    await expect(value).not_to_be_checked()
    await ads.get_by_label("Lock for everyone below").check()
    await ads.get_by_label("Reason").fill(REASON)
    await ads.get_by_role("button", name="Preview impact").click()
    impact = ads.get_by_role("region", name="Impact of this change")
    await expect(impact).to_contain_text("Members in scope 1")
    await expect(impact).to_contain_text("Effective values that change 1")
    await expect(impact).to_contain_text("Members' own choices overridden 1")
    await expect(impact).to_contain_text(
        "You still may see ads, but they are not chosen using your activity."
    )
    # The form changed after its preview: the preview's Confirm (which saves what was
    # previewed) goes, so what is saved is never other than what the form shows.
    await ads.get_by_label("Reason").fill(REASON + " (draft)")
    await expect(ads).to_contain_text("The form has changed since this preview")
    await expect(ads.get_by_role("button", name="Confirm and save")).to_have_count(0)
    await ads.get_by_label("Reason").fill(REASON)
    await ads.get_by_role("button", name="Preview impact").click()
    await expect(impact).to_contain_text("Members in scope 1")
    # A preview still on its way when the form changes is not shown when it comes (on a
    # large organisation it takes a while): it is about a form no longer on screen.
    answered = asyncio.Event()

    async def held(route: Route) -> None:
        await answered.wait()
        await route.continue_()

    await page.route("**/console/policies/preview", held)
    await ads.get_by_role("button", name="Preview impact").click()
    await ads.get_by_label("Reason").fill(REASON + " (on second thoughts)")
    answered.set()
    await page.wait_for_load_state("networkidle")
    await expect(ads).to_contain_text("The form has changed since this preview")
    await expect(ads.get_by_role("button", name="Confirm and save")).to_have_count(0)
    await page.unroute("**/console/policies/preview")
    await ads.get_by_label("Reason").fill(REASON)
    await ads.get_by_role("button", name="Preview impact").click()
    await expect(impact).to_contain_text("Members in scope 1")
    await ads.screenshot(path=str(tmp_path / "04-impact-preview.png"))
    await page.screenshot(path=str(tmp_path / "04-impact-preview-page.png"), full_page=False)
    assert (
        await owner_conn.fetchval(
            "SELECT count(*) FROM policy_rules WHERE tenant_id = $1", local_org.id
        )
        == 0
    )
    await impact.get_by_role("button", name="Confirm and save").click()
    await tab.land(f"^/console/policies\\?target=unit:{sales['id']}.*", tmp_path, "05-saved")
    await expect(page.get_by_role("status")).to_have_text(
        "Saved: Personalised ads is Off, locked for everyone below, on Sales."
    )
    await expect(page.get_by_role("article", name="Personalised ads")).to_contain_text(
        "Rule here Off locked"
    )
    await page.screenshot(path=str(tmp_path / "05-saved-as-seen.png"))  # where the page scrolled

    # Sam, in Sales, sees it set by the organisation, with the reason, and cannot change it.
    tab_sam = await tabs()
    await sign_in_with_password(tab_sam, local_org, sam["email"])
    await tab_sam.land("/account", tmp_path, "06-sam-account")
    sam_ads = tab_sam.page.get_by_role("article", name="Personalised ads")
    await sam_ads.scroll_into_view_if_needed()
    await tab_sam.page.screenshot(path=str(tmp_path / "07-sam-ads.png"))
    await expect(sam_ads).to_contain_text(f"Off Set by {org_name}")
    await expect(sam_ads).to_contain_text(f"Why: {REASON} Set for Sales. You cannot change it.")
    await expect(sam_ads).to_contain_text("Your own choice (On) is kept")
    await expect(sam_ads.get_by_role("radio")).to_have_count(0)
    await expect(sam_ads.get_by_role("button")).to_have_count(0)

    # Rita, elsewhere, can still change it, and the change shows at once.
    tab_rita = await tabs()
    rita_page = tab_rita.page
    await sign_in_with_password(tab_rita, local_org, rita["email"])
    await tab_rita.land("/account", tmp_path, "08-rita-account")
    rita_ads = rita_page.get_by_role("article", name="Personalised ads")
    await expect(rita_ads).to_contain_text(f"Off {org_name} default — you can change it")
    await (
        rita_ads.get_by_role("group", name="Your choice for Personalised ads")
        .get_by_label("On")
        .check()
    )
    await rita_ads.get_by_role("button", name="Save your choice for Personalised ads").click()
    await tab_rita.land(
        f"^/account\\?setting={ADS}#setting-advertising-personalised-ads",
        tmp_path,
        "09-rita-changed",
    )
    rita_ads = rita_page.get_by_role("article", name="Personalised ads")
    await expect(rita_ads).to_contain_text("On Your choice")
    await expect(rita_ads.get_by_role("status")).to_have_text(
        "Saved: Personalised ads is now On, in every product."
    )
    await expect(
        rita_ads.get_by_role("button", name=f"Use {org_name}'s default (Off) for Personalised ads")
    ).to_be_visible()
    await rita_ads.screenshot(path=str(tmp_path / "10-rita-ads.png"))
    settings = (await local_org.get(f"/v1/members/{rita['id']}/settings")).json()["settings"][ADS]
    assert settings["value"] is True and settings["source"]["kind"] == "member"
    audited = await audit_events(owner_conn, local_org.id, "policy.choice_set")
    assert audited[-1].actor == f"member:{rita['id']}" and audited[-1].after == {ADS: True}
    # Sam's own choice was hidden by the lock, not deleted: it comes back if the lock goes.
    kept = await owner_conn.fetchval(
        "SELECT value FROM member_choices WHERE member_id = $1 AND setting = $2",
        uuid.UUID(sam["id"]),
        ADS,
    )
    assert kept == "true"


async def test_a_rule_with_a_named_value_is_saved_and_restored_like_any_other(
    app: Any,
    local_org: OrgHandle,
    owner_conn: asyncpg.Connection,
) -> None:
    admin = await person(local_org, "Ada Admin", role="admin")
    root = local_org.root_unit_id
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, local_org, admin)
        form = rule_form(
            csrf, root, setting="social.activity_visibility", value="nobody", reason="Quiet"
        )
        assert (await browser.post("/console/policies/rules", form)).status_code == 303
        page = text_of((await browser.get(f"/console/policies?target=unit:{root}")).text)
        assert "Rule here Nobody locked — “Quiet”" in page
        removed = await browser.post("/console/policies/rules/remove", form)
        assert removed.status_code == 303
        assert await rules_of(owner_conn, local_org) == []
        restored = await browser.post("/console/policies/rollback", {"csrf": csrf, "version": "1"})
        assert restored.status_code == 303
    assert await rules_of(owner_conn, local_org) == [
        (str(root), "social.activity_visibility", '"nobody"', True)
    ]


@pytest.mark.browser
async def test_admin_reads_history_restores_a_version_and_views_a_member_in_chromium(
    local_org: OrgHandle,
    tabs: OpenTab,
    tmp_path: Path,
    owner_conn: asyncpg.Connection,
) -> None:
    sales = await make_unit(local_org, "Sales")
    group = await make_group(local_org, name="Analysts", priority=2)
    sam = await make_member(
        local_org, unit=sales["id"], name="Sam Sales", email="sam@sales.example"
    )
    await local_org.put(f"/v1/groups/{group['id']}/members/{sam['id']}")
    await local_org.post(f"/v1/members/{sam['id']}/choices", json={"setting": ADS, "value": True})
    for target_kind, target_id, setting, value, enforced in [
        ("unit", sales["id"], ADS, False, True),
        ("group", group["id"], "sharing.obtain_from_third_parties", True, False),
        ("unit", sales["id"], ADS, False, False),  # unlocked (never on: it rests on consent)
    ]:
        response = await local_org.put(
            "/v1/policy/rules",
            json={
                "target_kind": target_kind,
                "target_id": target_id,
                "setting": setting,
                "value": value,
                "enforced": enforced,
                "reason": f"Because of {setting}",
            },
        )
        assert response.status_code == 200, response.text
    admin = await person(local_org, "Ada Admin", role="admin")
    tab = await tabs()
    page = tab.page
    await sign_in_with_password(tab, local_org, admin["email"])
    await tab.land("/console", tmp_path, "01-console")
    await page.goto(f"{tab.base_url}/console/policies/history")
    await tab.land("/console/policies/history", tmp_path, "02-history")
    rows = page.get_by_role("table").locator("tbody tr")
    await expect(rows).to_have_count(4)  # versions 3, 2, 1 and the start
    await expect(rows.first).to_contain_text("Personalised ads on unit Sales")
    await page.get_by_role("link", name="Restore… version 1").click()
    await tab.land("^/console/policies/diff\\?version=1#restore", tmp_path, "03-diff-version-1")
    restore = page.get_by_role("region", name="Restore version 1")
    await expect(restore.locator("tbody tr")).to_have_count(2)
    await restore.get_by_role("button", name="Restore version 1").click()
    await tab.land("/console/policies/history", tmp_path, "04-restored")
    await expect(page.get_by_role("status")).to_have_text(
        "Restored the rules of version 1; this is now version 4."
    )
    rules = await owner_conn.fetch(
        "SELECT setting, value, enforced FROM policy_rules WHERE tenant_id = $1", local_org.id
    )
    assert [(r["setting"], r["value"], r["enforced"]) for r in rules] == [(ADS, "false", True)]

    await (
        page.get_by_role("navigation", name="Policies")
        .get_by_role("link", name="View as member")
        .click()
    )
    await tab.land("/console/policies/member", tmp_path, "05-view-as-member")
    await page.get_by_label("Member's email or name").fill("sam@sales")
    await page.keyboard.press("Enter")
    await page.get_by_role("link", name="Sam Sales").click()
    await tab.land(
        f"^/console/policies/member\\?q=sam%40sales&id={sam['id']}", tmp_path, "06-sam-resolved"
    )
    ads = page.get_by_role("row", name="Personalised ads")
    await expect(ads).to_contain_text("Off")
    await expect(ads).to_contain_text("Locked Sales")
    await expect(ads).to_contain_text("On hidden by the lock")


@pytest.mark.browser
async def test_without_javascript_the_preview_is_a_page_and_required_settings_ask_to_confirm(
    local_org: OrgHandle,
    tabs: OpenTab,
    tmp_path: Path,
    owner_conn: asyncpg.Connection,
) -> None:
    lab = await make_unit(local_org, "Lab")
    for _ in range(2):
        await make_member(local_org, unit=lab["id"])
    await make_product(local_org, name="Mail")
    admin = await person(local_org, "Ada Admin", role="admin")
    tab = await tabs(javascript=False)
    page = tab.page
    await sign_in_with_password(tab, local_org, admin["email"])
    await tab.land("/console", tmp_path, "01-console")
    await page.goto(f"{tab.base_url}/console/policies?target=unit:{lab['id']}")
    necessary = page.get_by_role("article", name="Necessary cookies")
    await necessary.get_by_text("Set a rule").click()
    await necessary.get_by_label("Necessary cookies: on").uncheck()
    await necessary.get_by_label("Reason").fill("Testing a kiosk")
    await necessary.get_by_role("button", name="Preview impact").click()
    await tab.land("/console/policies/preview", tmp_path, "02-preview-page")
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        "Check the impact before saving"
    )
    await expect(page.get_by_role("main")).to_contain_text("Saving asks you to confirm")
    await page.get_by_role("button", name="Confirm and save").click()
    # The page answers the POST; its history entry then takes the rules page's address
    # (so Back does not resend the form): either address may be seen here.
    await tab.land(
        f"^/console/policies(/rules|\\?target=unit:{lab['id']}.*)", tmp_path, "03-confirm-required"
    )
    await expect(page.get_by_role("alert")).to_contain_text("stops Mail from working for 2 members")
    assert (
        await owner_conn.fetchval(
            "SELECT count(*) FROM policy_rules WHERE tenant_id = $1", local_org.id
        )
        == 0
    )
    await page.get_by_role("button", name="Switch it off for 2 members").click()
    await tab.land(f"^/console/policies\\?target=unit:{lab['id']}.*", tmp_path, "04-saved")
    await expect(page.get_by_role("status")).to_have_text("Saved: Necessary cookies is Off on Lab.")
    assert (
        await owner_conn.fetchval(
            "SELECT count(*) FROM policy_rules WHERE tenant_id = $1", local_org.id
        )
        == 1
    )


async def test_a_wide_tree_shows_fifty_units_a_level_and_says_where_the_others_are(
    app: Any, local_org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    """The page reads a level's first fifty children by name, not every unit; a unit past
    them is still reached (its own page opens the tree down to it, the units page links
    its policies)."""
    root_path = await owner_conn.fetchval("SELECT path FROM units WHERE id = $1", local_org.root_unit_id)
    ids = [uuid.uuid4() for _ in range(53)]
    await owner_conn.executemany(
        "INSERT INTO units (id, tenant_id, parent_id, path, depth, name, created_at, updated_at) "
        "VALUES ($1, $2, $3, $4, 1, $5, now(), now())",
        [(u, local_org.id, local_org.root_unit_id, f"{root_path}/{u}", f"Team {i:02d}") for i, u in enumerate(ids)],
    )
    admin = await person(local_org, "Ada Admin", role="admin")
    async with asgi_client(app) as browser:
        await signed_in(browser, local_org, admin)
        page = text_of((await browser.get("/console/policies")).text)
        assert "Team 00" in page and "Team 49" in page
        assert "Team 50" not in page and "Team 52" not in page
        assert "More units under" in page and "find them on the Units page" in page
        far = text_of((await browser.get(f"/console/policies?target=unit:{ids[52]}")).text)
        assert "Team 52" in far and "Team 00" in far and "More units under" in far
        units = (await browser.get("/console/units")).text
        assert f'href="/console/policies?target=unit:{ids[0]}"' in units


async def test_many_groups_list_those_with_rules_and_fifty_more_and_say_where_the_others_are(
    app: Any, local_org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    ids = [uuid.uuid4() for _ in range(55)]
    await owner_conn.executemany(
        "INSERT INTO groups (id, tenant_id, name, description, priority, created_at, updated_at) "
        "VALUES ($1, $2, $3, '', 0, now(), now())",
        [(g, local_org.id, f"Group {i:02d}") for i, g in enumerate(ids)],
    )
    await owner_conn.execute(
        "INSERT INTO policy_rules (id, tenant_id, group_id, setting, value, enforced, reason, created_at, updated_at) "
        "VALUES (gen_random_uuid(), $1, $2, $3, 'false', false, '', now(), now())",
        local_org.id, ids[53], ADS,
    )
    admin = await person(local_org, "Ada Admin", role="admin")
    async with asgi_client(app) as browser:
        await signed_in(browser, local_org, admin)
        page = text_of((await browser.get("/console/policies")).text)
        assert "Group 00" in page and "Group 49" in page and "Group 53" in page  # 53 has a rule
        assert "Group 50" not in page and "Group 54" not in page
        assert "More groups: find them on the Groups page" in page
        opened = text_of((await browser.get(f"/console/policies?target=group:{ids[54]}")).text)
        assert "Group 54" in opened
        group_page = (await browser.get(f"/console/groups/{ids[54]}")).text
        assert f'href="/console/policies?target=group:{ids[54]}"' in group_page
