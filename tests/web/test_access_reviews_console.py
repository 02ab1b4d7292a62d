"""Access reviews in the console: an owner creates a campaign (a refused form shows its error
beside the field), a manager sees "N access review decisions waiting for you" on the overview, keeps
or revokes from their queue (a blank reason is refused beside the field; a revocation is
confirmed first and then really ends the role), and the campaign page shows the progress
and links its CSV export. The browser test drives the same pages in real Chromium and saves
the campaign page (docs/screenshots/access-review.png when TENANTRY_SCREENSHOTS says so)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from tests.conftest import OrgHandle, make_member
from tests.web.browser import OpenTab, sign_in_with_password
from tests.web.flows import PASSWORD, asgi_client, csrf_in, set_local_sign_in, set_password, text_of
from tests.web.test_console_browser import shots_dir


def in_days(days: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


async def cast(org: OrgHandle) -> dict[str, Any]:
    """An owner who runs reviews; a manager (helpdesk) of two admins and an auditor."""
    await set_local_sign_in(org.id, True)
    owner = await make_member(org, name="Olive Owner", roles=["owner"])
    manager = await make_member(org, name="Max Manager", roles=["helpdesk"])
    reports = [
        await make_member(org, name=name, roles=[role], manager_id=manager["id"])
        for name, role in (
            ("Ada Admin", "admin"),
            ("Abe Admin", "admin"),
            ("Ann Auditor", "auditor"),
        )
    ]
    for who in (owner, manager):
        await set_password(org.id, who["id"], PASSWORD)
    return {"owner": owner, "manager": manager, "reports": reports}


def campaign_form(csrf: str, **fields: str) -> dict[str, str]:
    return {
        "csrf": csrf,
        "name": "Admin recertification",
        "scope_admin_roles": "1",
        "reviewer_rule": "manager",
        "starts_on": in_days(0),
        "due_on": in_days(14),
        "default_on_due": "revoke",
        **fields,
    }


async def test_a_manager_reviews_from_the_overview_and_queue_and_revocations_are_real(
    app: Any, org: OrgHandle
) -> None:
    people = await cast(org)
    ada, abe, _ = people["reports"]
    async with asgi_client(app) as owner:
        await owner.password_sign_in(org.slug, people["owner"]["email"], PASSWORD)
        new = await owner.get("/console/access-reviews/new")
        assert new.status_code == 200
        csrf = csrf_in(new.text)
        refused = await owner.post(
            "/console/access-reviews",
            campaign_form(csrf, due_on=in_days(-3)),
            headers={"referer": "http://tenantry.test/console/access-reviews/new"},
        )
        assert refused.headers["location"] == "/console/access-reviews/new"
        again = await owner.get("/console/access-reviews/new")
        assert 'id="due_on-error"' in again.text
        assert 'aria-describedby="due_on-error"' in again.text
        assert "must be on or after the start date" in text_of(again.text)
        created = await owner.post("/console/access-reviews", campaign_form(csrf))
        assert created.status_code == 303
        campaign_path = created.headers["location"]
        page = await owner.get(campaign_path)
        assert page.status_code == 200
        assert "0 of 5 items decided" in text_of(page.text)  # 3 reports, manager, owner
        assert f'href="{campaign_path}/export.csv"' in page.text

    async with asgi_client(app) as manager:
        await manager.password_sign_in(org.slug, people["manager"]["email"], PASSWORD)
        overview = await manager.get("/console")
        assert "3 access review decisions waiting for you" in text_of(overview.text)
        queue = await manager.get("/console/access-reviews/queue")
        assert queue.status_code == 200
        csrf = csrf_in(queue.text)
        body = text_of(queue.text)
        assert "Ada Admin" in body and "Helpdesk role" not in body  # never their own role
        items = {
            row["member_id"]: row["id"]
            for row in (
                await org.get(f"/v1/access-reviews/{campaign_path.rsplit('/', 1)[1]}/items")
            ).json()["items"]
        }
        ada_item, abe_item = items[ada["id"]], items[abe["id"]]
        url = f"/console/access-review-items/{ada_item}/decision"
        form = {"csrf": csrf, "form": f"item-{ada_item}", "back": "/console/access-reviews/queue"}
        blank = await manager.post(
            url,
            {**form, "decision": "revoke", "reason": " "},
            headers={"referer": "http://tenantry.test/console/access-reviews/queue"},
        )
        assert blank.status_code == 303
        shown = await manager.get(blank.headers["location"])
        assert f'id="item-{ada_item}-reason-error"' in shown.text
        asked = await manager.post(url, {**form, "decision": "revoke", "reason": "Left the team"})
        assert asked.status_code == 200
        assert "Revoke now" in asked.text and "The role Admin is taken away now." in text_of(
            asked.text
        )
        assert (await org.get(f"/v1/members/{ada['id']}")).json()["roles"] == ["admin"]
        done = await manager.post(
            url, {**form, "decision": "revoke", "reason": "Left the team", "confirmed": "1"}
        )
        assert (
            done.status_code == 303 and done.headers["location"] == "/console/access-reviews/queue"
        )
        assert (await org.get(f"/v1/members/{ada['id']}")).json()["roles"] == []
        kept = await manager.post(
            f"/console/access-review-items/{abe_item}/decision",
            {**form, "form": f"item-{abe_item}", "decision": "approve", "reason": "Still needed"},
        )
        assert kept.status_code == 303
        assert (await org.get(f"/v1/members/{abe['id']}")).json()["roles"] == ["admin"]
        overview = await manager.get("/console")
        assert "1 access review decision waiting for you" in text_of(overview.text)
        # A reviewer cannot decide someone else's item, even by posting the form.
        owner_item = next(i for m, i in items.items() if m == people["owner"]["id"])
        refused = await manager.post(
            f"/console/access-review-items/{owner_item}/decision",
            {**form, "decision": "approve", "reason": "not mine"},
            headers={"referer": "http://tenantry.test/console/access-reviews/queue"},
        )
        assert "Not done:" in text_of((await manager.get(refused.headers["location"])).text)
        bogus = await manager.post(
            f"/console/access-review-items/{uuid.uuid4()}/decision",
            {**form, "decision": "approve", "reason": "x"},
        )
        assert bogus.status_code == 303  # refused back to the page, nothing written

    async with asgi_client(app) as owner:
        await owner.password_sign_in(org.slug, people["owner"]["email"], PASSWORD)
        page = text_of((await owner.get(campaign_path)).text)
        assert "2 of 5 items decided" in page
        assert "“Left the team” — Max Manager" in page
        exported = await owner.get(f"{campaign_path}/export.csv")
        assert exported.status_code == 200
        assert exported.headers["content-type"].startswith("text/csv")
        assert "Left the team" in exported.text


async def test_roles_read_as_names_in_the_queue_and_the_directory_never_as_codes(
    app: Any, org: OrgHandle
) -> None:
    people = await cast(org)
    olga = await make_member(
        org, name="Olga Officer", roles=["privacy_officer"], manager_id=people["manager"]["id"]
    )
    made = await org.post(
        "/v1/access-reviews",
        {
            "name": "Officers' review",
            "scopes": ["admin_roles"],
            "reviewer_rule": "manager",
            "starts_on": in_days(0),
            "due_on": in_days(7),
            "default_on_due": "keep",
        },
    )
    assert made.status_code == 201, made.text
    async with asgi_client(app) as manager:
        await manager.password_sign_in(org.slug, people["manager"]["email"], PASSWORD)
        queue = text_of((await manager.get("/console/access-reviews/queue")).text)
        assert f"Olga Officer <{olga['email']}>: Privacy officer role" in queue
        assert "Ann Auditor" in queue and "Auditor role" in queue
        assert "privacy_officer" not in queue
        olga_item = next(
            i["id"]
            for i in (await org.get(f"/v1/access-reviews/{made.json()['id']}/items")).json()[
                "items"
            ]
            if i["member_id"] == olga["id"]
        )
        asked = await manager.post(
            f"/console/access-review-items/{olga_item}/decision",
            {
                "csrf": csrf_in((await manager.get("/console/access-reviews/queue")).text),
                "back": "/console/access-reviews/queue",
                "decision": "revoke",
                "reason": "Moved on",
            },
        )
        assert "The role Privacy officer is taken away now." in text_of(asked.text)
        assert "privacy_officer" not in text_of(asked.text)
    async with asgi_client(app) as owner:
        await owner.password_sign_in(org.slug, people["owner"]["email"], PASSWORD)
        for path in (
            "/console/members",
            f"/console/members/{olga['id']}",
            "/console/access-reviews/new",
        ):
            shown = text_of((await owner.get(path)).text)
            assert "Privacy officer" in shown, path
            assert "privacy_officer" not in shown, path


async def test_a_manager_without_an_admin_role_reviews_from_the_account_page(
    app: Any, org: OrgHandle, owner_conn: Any
) -> None:
    await set_local_sign_in(org.id, True)
    boss = await make_member(org, name="Bea Boss")
    await set_password(org.id, boss["id"], PASSWORD)
    report = await make_member(org, name="Rob Report", roles=["admin"], manager_id=boss["id"])
    made = await org.post(
        "/v1/access-reviews",
        {
            "name": "Managers' review",
            "scopes": ["admin_roles"],
            "reviewer_rule": "manager",
            "starts_on": in_days(0),
            "due_on": in_days(7),
            "default_on_due": "keep",
        },
    )
    assert made.status_code == 201, made.text
    link = await owner_conn.fetchval(
        "SELECT text FROM mail_messages WHERE tenant_id = $1 AND template = 'access_review_opened'",
        org.id,
    )
    assert "/account/access-reviews" in link  # not the console, which they cannot open
    async with asgi_client(app) as browser:
        await browser.password_sign_in(org.slug, boss["email"], PASSWORD)
        home = await browser.get("/account")
        assert "1 access review decision waiting for you" in text_of(home.text)
        queue = await browser.get("/account/access-reviews")
        assert "Rob Report" in text_of(queue.text)
        csrf = csrf_in(queue.text)
        (item,) = (await org.get(f"/v1/access-reviews/{made.json()['id']}/items")).json()["items"]
        url = f"/account/access-review-items/{item['id']}/decision"
        form = {
            "csrf": csrf,
            "form": f"item-{item['id']}",
            "back": "/account/access-reviews",
            "decision": "revoke",
            "reason": "No longer runs the team",
        }
        asked = await browser.post(url, form)
        assert asked.status_code == 200 and "Revoke now" in asked.text
        assert "Admin console" not in asked.text
        done = await browser.post(url, {**form, "confirmed": "1"})
        assert done.status_code == 303 and done.headers["location"] == "/account/access-reviews"
    assert (await org.get(f"/v1/members/{report['id']}")).json()["roles"] == []


@pytest.mark.browser
async def test_the_campaign_page_and_queue_in_chromium(
    org: OrgHandle, tabs: OpenTab, tmp_path: Path
) -> None:
    people = await cast(org)
    console = await tabs()
    page = console.page
    await sign_in_with_password(console, org, people["owner"]["email"])
    await console.land("/console", tmp_path, "01-overview")
    await page.goto(f"{console.base_url}/console/access-reviews/new")
    await page.get_by_label("Name", exact=True).fill("Quarterly admin recertification")
    await page.get_by_label("Product clients (API credentials)").uncheck()
    await page.get_by_label("Due on").fill(in_days(14))
    await page.get_by_label("Repeat every").fill("3")
    await page.get_by_role("button", name="Create campaign").click()
    await console.land("^/console/access-reviews/[0-9a-f-]+$", tmp_path, "02-campaign")
    await expect(page.get_by_text("0 of 5 items decided")).to_be_visible()

    reviewer = await tabs()
    await sign_in_with_password(reviewer, org, people["manager"]["email"])
    await reviewer.land("/console", tmp_path, "03-reviewer-overview")
    await reviewer.page.get_by_role(
        "link", name="3 access review decisions waiting for you"
    ).click()
    await reviewer.land("/console/access-reviews/queue", tmp_path, "04-queue")
    queue = reviewer.page
    await queue.get_by_label("Reason for Abe Admin", exact=False).fill("Runs the directory")
    row = queue.get_by_role("row").filter(has_text="Abe Admin")
    await row.get_by_role("button", name="Keep").click()
    await reviewer.land("/console/access-reviews/queue", tmp_path, "05-kept")
    await queue.get_by_label("Reason for Ann Auditor", exact=False).fill("Audit finished")
    await (
        queue.get_by_role("row")
        .filter(has_text="Ann Auditor")
        .get_by_role("button", name="Revoke…")
        .click()
    )
    await expect(queue.get_by_role("button", name="Revoke now")).to_be_visible()
    await queue.get_by_role("button", name="Revoke now").click()
    await reviewer.land("/console/access-reviews/queue", tmp_path, "06-revoked")
    await expect(queue.get_by_text("Revoked: Ann Auditor")).to_be_visible()

    await page.reload()
    await expect(page.get_by_text("2 of 5 items decided")).to_be_visible()
    # TENANTRY_SCREENSHOTS=docs/screenshots makes the documentation's picture.
    await page.screenshot(path=str(shots_dir(tmp_path) / "access-review.png"), full_page=True)


async def test_the_new_campaign_form_names_every_admin_not_only_those_among_the_first_names(
    app: Any, org: OrgHandle
) -> None:
    from tenants import db
    from tenants.members import service as members
    from tenants.members.roles import ANY_ASSIGNER
    from tenants.permissions import Role
    from tests.conftest import ACTOR

    await set_local_sign_in(org.id, True)
    owner = await make_member(org, name="Aaron Owner", roles=["owner"])
    await set_password(org.id, owner["id"], PASSWORD)
    async with db.tenant_transaction(org.id):
        for i in range(501):  # plain members whose names sort before the admin's
            await members.create_member(
                members.NewMember(f"m{i}@example.org", f"Bea {i:03}", org.root_unit_id),
                actor=ACTOR,
            )
        await members.create_member(
            members.NewMember(
                "zed@example.org",
                "Zed Admin",
                org.root_unit_id,
                roles=(Role.ADMIN,),
                status=members.MemberStatus.ACTIVE,
            ),
            actor=ACTOR,
            assigner=ANY_ASSIGNER,
        )
    async with asgi_client(app) as browser:
        await browser.password_sign_in(org.slug, owner["email"], PASSWORD)
        form = text_of((await browser.get("/console/access-reviews/new")).text)
    assert "Zed Admin" in form and "Aaron Owner" in form
    assert "Bea 000" not in form
