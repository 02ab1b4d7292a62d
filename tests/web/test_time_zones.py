"""Times in the admin's own time zone: detected by the browser, stored for the admin (so
another browser with scripts off shows the same zone), UTC on hover; a zone that is not
one is a 4xx problem naming ``time_zone`` and stores nothing."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import asyncpg
import pytest
from playwright.async_api import expect

from app.settings import Settings
from app.web.pages import TEMPLATES
from tenants import db
from tenants.tokens import service as tokens
from tests.conftest import ACTOR, OrgHandle, make_member
from tests.web.browser import OpenTab, sign_in_with_password
from tests.web.flows import (
    PASSWORD,
    asgi_client,
    audit_events,
    configure_sso,
    set_local_sign_in,
    set_password,
)
from tests.web.test_console_directory import signed_in_admin

JSON = {"accept": "application/json"}


async def stored_zone(conn: asyncpg.Connection, member_id: Any) -> str | None:
    zone: str | None = await conn.fetchval(
        "SELECT time_zone FROM members WHERE id = $1::uuid", str(member_id)
    )
    return zone


async def test_the_zone_is_stored_for_the_admin_and_pages_show_times_in_it(
    app: Any, org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    async with asgi_client(app) as browser:
        admin, csrf = await signed_in_admin(browser, org)
        saved = await browser.post(
            "/account/time-zone", {"csrf": csrf, "time_zone": "Asia/Tokyo"}, headers=JSON
        )
        assert saved.status_code == 204, saved.text
        again = await browser.post(
            "/account/time-zone", {"csrf": csrf, "time_zone": "Asia/Tokyo"}, headers=JSON
        )
        assert again.status_code == 204
        page = (await browser.get(f"/console/members/{admin['id']}")).text
        assert 'data-time-zone="Asia/Tokyo"' in page
        audit = (await browser.get("/console/audit")).text
    assert await stored_zone(owner_conn, admin["id"]) == "Asia/Tokyo"
    # One audit event: the second report changed nothing.
    [event] = await audit_events(owner_conn, org.id, "member.time_zone_changed")
    assert event.after == {"time_zone": "Asia/Tokyo"}
    shown = re.findall(r'<time datetime="[^"]+" title="([^"]+ UTC)">([^<]+)</time>', audit)
    assert shown, audit[:3000]
    assert all(label.endswith(" JST") for _, label in shown)


@pytest.mark.parametrize(
    "value",
    [
        "Mars/Olympus_Mons",
        "",
        "../../etc/passwd",
        "/etc/localtime",
        "right/Europe/Paris",
        "posix/Europe/Paris",
        "localtime",
        "posixrules",
        "Factory",
        "Europe/Paris\x00",
        "UTC;DROP",
        "x" * 300,
    ],
)
async def test_a_zone_that_is_not_one_is_a_problem_naming_the_field(
    app: Any, org: OrgHandle, owner_conn: asyncpg.Connection, value: str
) -> None:
    async with asgi_client(app) as browser:
        admin, csrf = await signed_in_admin(browser, org)
        refused = await browser.post(
            "/account/time-zone", {"csrf": csrf, "time_zone": value}, headers=JSON
        )
    assert 400 <= refused.status_code < 500, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in refused.json()["errors"]] == ["time_zone"]
    assert await stored_zone(owner_conn, admin["id"]) is None


@pytest.mark.browser
async def test_chromium_reports_its_zone_and_another_browser_shows_the_stored_one(
    tabs: OpenTab, org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    await set_local_sign_in(org.id, True)
    admin = await make_member(org, name="Zoe Zone", roles=["owner"])
    await set_password(org.id, admin["id"], PASSWORD)

    tokyo = await tabs(timezone_id="Asia/Tokyo")
    await sign_in_with_password(tokyo, org, admin["email"])
    await tokyo.page.wait_for_url(f"{tokyo.base_url}/console")
    await tokyo.page.goto(f"{tokyo.base_url}/console/audit")
    for _ in range(50):
        if await stored_zone(owner_conn, admin["id"]) == "Asia/Tokyo":
            break
        await asyncio.sleep(0.1)
    assert await stored_zone(owner_conn, admin["id"]) == "Asia/Tokyo"
    first = tokyo.page.locator("main time").first
    await expect(first).to_have_text(re.compile(r"(JST|GMT\+9)$"))
    assert (await first.get_attribute("title") or "").endswith(" UTC")
    assert tokyo.csp_complaints() == [], tokyo.logged

    # Scripts off, another zone: nothing detected, the stored zone is used.
    elsewhere = await tabs(javascript=False, timezone_id="America/New_York")
    await sign_in_with_password(elsewhere, org, admin["email"])
    await elsewhere.page.wait_for_url(f"{elsewhere.base_url}/console")
    await elsewhere.page.goto(f"{elsewhere.base_url}/console/audit")
    label = await elsewhere.page.locator("main time").first.inner_text()
    assert label.endswith(" JST"), label
    assert await stored_zone(owner_conn, admin["id"]) == "Asia/Tokyo"


#: A time shown in the viewer's zone (Asia/Tokyo here), UTC on hover.
TOKYO_TIME = r'<time datetime="[^"]+" title="[^"]+ UTC">\d{4}-\d\d-\d\d \d\d:\d\d JST</time>'


async def in_tokyo(browser: Any, csrf: str) -> None:
    saved = await browser.post(
        "/account/time-zone", {"csrf": csrf, "time_zone": "Asia/Tokyo"}, headers=JSON
    )
    assert saved.status_code == 204, saved.text


async def test_the_account_pages_sign_ins_say_when_in_the_zone_their_header_names(
    app: Any, org: OrgHandle
) -> None:
    async with asgi_client(app) as browser:
        _, csrf = await signed_in_admin(browser, org)
        await in_tokyo(browser, csrf)
        page = (await browser.get("/account")).text
    section = page.split('id="sign-ins-h"')[1].split("</section>")[0]
    assert '<th scope="col">When</th>' in section and "UTC</th>" not in section
    assert re.search(rf"<tr><td>{TOKYO_TIME}</td><td>Password</td>", section), section


async def test_privacy_request_timelines_are_in_the_viewers_zone(app: Any, org: OrgHandle) -> None:
    async with asgi_client(app) as browser:
        admin, csrf = await signed_in_admin(browser, org)
        await in_tokyo(browser, csrf)
        sent = await org.post(
            "/v1/privacy-requests",
            {"member_id": admin["id"], "kind": "access", "message": "What do you hold?"},
        )
        assert sent.status_code == 201, sent.text
        pages = [
            (await browser.get(f"{where}/privacy-requests/{sent.json()['id']}")).text
            for where in ("/console", "/account")
        ]
    for page in pages:
        timeline = page.split('<ol class="timeline privacy-timeline">')[1].split("</ol>")[0]
        assert re.search(TOKYO_TIME, timeline), timeline
        assert " UTC</time>" not in timeline


async def test_the_note_that_the_connection_was_changed_is_in_the_viewers_zone(
    app: Any, org: OrgHandle, settings: Settings
) -> None:
    for client_id in ("before", "after"):
        await configure_sso(
            settings,
            org.id,
            issuer="http://127.0.0.1:9",
            client_id=client_id,
            client_secret="s" * 24,
        )
    async with asgi_client(app) as browser:
        _, csrf = await signed_in_admin(browser, org)
        await in_tokyo(browser, csrf)
        page = (await browser.get("/console/settings")).text
    note = page.split('id="restore-previous"')[1].split("</p>")[0]
    assert re.search(
        rf"The connection was changed {TOKYO_TIME}\. Until {TOKYO_TIME} the configuration", note
    ), note


def test_templates_import_macros_that_show_times_with_their_context() -> None:
    """``localtime`` finds the viewer's zone in the page's context: a macro imported without
    it shows UTC (the privacy timelines did)."""
    root = TEMPLATES
    showing_times = {
        str(path.relative_to(root))
        for path in root.rglob("*.html")
        if "|localtime" in path.read_text()
    }
    without = [
        f"{path.relative_to(root)}: {found.group(0)}"
        for path in root.rglob("*.html")
        for found in re.finditer(r"{%-? *(?:import|from) +\"([^\"]+)\"[^%]*%}", path.read_text())
        if found.group(1) in showing_times and "with context" not in found.group(0)
    ]
    assert without == []


async def test_a_time_inside_an_audit_events_change_is_in_the_viewers_zone(
    app: Any, org: OrgHandle
) -> None:
    """A revoked token's event read "revoked_at: 2026-12-07T08:04:30.126281+00:00"."""
    async with asgi_client(app) as browser:
        _, csrf = await signed_in_admin(browser, org)
        await browser.post(
            "/account/time-zone", {"csrf": csrf, "time_zone": "Asia/Tokyo"}, headers=JSON
        )
        async with db.tenant_transaction(org.id):
            made, _ = await tokens.create_token(
                "Short lived", ["members:read"], expires_in=None, actor=ACTOR
            )
            await tokens.revoke_token(made.id, actor=ACTOR)
        audit = (await browser.get("/console/audit", params={"action": "api_token."})).text
    # The change as read (the raw JSON below it keeps the stored text).
    row = audit[audit.index("revoked_at") :].split("<details>", 1)[0]
    shown = re.search(r"<time datetime=\"[^\"]+\"[^>]*>([^<]+)</time>", row)
    assert shown is not None and shown.group(1).endswith(" JST"), row
    assert "+00:00" not in row.replace(shown.group(0), "")
