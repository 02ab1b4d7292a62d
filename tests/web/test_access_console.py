"""The data-access console and the member's "who accessed your data", in process (no
server): four eyes on the buttons and behind them, the request form, disclosure delays,
and each member seeing exactly their own log."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from tenants import db
from tenants.access import log as access_log
from tenants.access.models import DataCategory
from tests.conftest import OrgHandle, make_member, make_product, make_unit, row_counts
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

WHY = "Investigating a reported data leak, ticket SEC-42."


@pytest.fixture
async def local_org(org: OrgHandle) -> OrgHandle:
    await set_local_sign_in(org.id, True)
    return org


async def person(org: OrgHandle, name: str, *roles: str, unit: Any = None) -> dict[str, Any]:
    made = await make_member(org, name=name, roles=list(roles or ["member"]), unit=unit)
    await set_password(org.id, made["id"], PASSWORD)
    return made


async def signed_in(browser: WebClient, org: OrgHandle, who: dict[str, Any]) -> str:
    return await browser.signed_in(org.slug, who["email"])


async def request_in_console(
    browser: WebClient, csrf: str, member: dict[str, Any], **form: str
) -> str:
    """Submit the request form; the new grant's id."""
    response = await browser.post(
        "/console/data-access/new",
        {
            "csrf": csrf,
            "subject": "member",
            "member_email": member["email"],
            "categories": "files",
            "all_products": "1",
            "justification": WHY,
            "duration_hours": "8",
            **form,
        },
    )
    assert response.status_code == 303, response.text
    match = re.fullmatch(
        r"/console/data-access/grants/([0-9a-f-]{36})", response.headers["location"]
    )
    assert match, response.headers["location"]
    return match.group(1)


async def check(
    org: OrgHandle, admin: dict[str, Any], member: dict[str, Any], product: Any
) -> None:
    """A product's check, recorded in the log (through the service, as the API does)."""
    async with db.tenant_transaction(org.id):
        await access_log.check_access(
            access_log.CheckQuestion(
                member_id=uuid.UUID(member["id"]),
                product_id=uuid.UUID(product["id"]),
                category=DataCategory.FILES,
                admin_id=uuid.UUID(admin["id"]),
            ),
            checked_by="product:test",
        )


async def test_the_requester_sees_no_approve_button_and_is_refused_behind_it(
    app: Any, local_org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    both = await person(local_org, "Bo Both", "admin", "privacy_officer")
    officer = await person(local_org, "Olga Officer", "privacy_officer")
    member = await make_member(local_org, name="Mia Member")
    async with asgi_client(app) as bo, asgi_client(app) as olga:
        csrf = await signed_in(bo, local_org, both)
        grant_id = await request_in_console(bo, csrf, member)
        page = await bo.get(f"/console/data-access/grants/{grant_id}")
        assert page.status_code == 200
        # The title names whose data (it said "Access grant" on every grant).
        assert title_of(page.text).startswith("Access to Mia Member's data · ")
        text = text_of(page.text)
        assert "requested" in text and "Approve" not in text and "Deny" not in text
        assert (
            "You cannot decide on access to data for yourself: another privacy officer must."
            in text
        )

        counts = await row_counts(owner_conn)
        refused = await bo.post(
            f"/console/data-access/grants/{grant_id}/approve",
            {"csrf": csrf},
            headers={"referer": f"/console/data-access/grants/{grant_id}"},
        )
        assert refused.status_code == 303
        flashed = text_of((await bo.get(refused.headers["location"])).text)
        assert "Not done: you cannot decide on access to data for yourself" in flashed
        assert await row_counts(owner_conn) == counts

        olga_csrf = await signed_in(olga, local_org, officer)
        page = await olga.get(f"/console/data-access/grants/{grant_id}")
        assert 'action="/console/data-access/grants/' + grant_id + '/approve"' in page.text
        approved = await olga.post(
            f"/console/data-access/grants/{grant_id}/approve", {"csrf": olga_csrf}
        )
        assert approved.status_code == 303
        page = await olga.get(f"/console/data-access/grants/{grant_id}")
        assert '<span class="badge active" id="grant-state">active</span>' in page.text
        assert "Approved by Olga Officer" in text_of(page.text)
    events = await audit_events(owner_conn, local_org.id, "access_grant.approved")
    assert [e.target_id for e in events] == [grant_id]
    assert events[0].actor == f"member:{officer['id']}"


async def test_the_request_form_refuses_a_short_justification_and_writes_nothing(
    app: Any, local_org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    admin = await person(local_org, "Ada Admin", "admin")
    member = await make_member(local_org)
    async with asgi_client(app) as ada:
        csrf = await signed_in(ada, local_org, admin)
        form = await ada.get("/console/data-access/new")
        assert form.status_code == 200 and "Justification" in form.text
        counts = await row_counts(owner_conn)
        response = await ada.post(
            "/console/data-access/new",
            {
                "csrf": csrf,
                "subject": "member",
                "member_email": member["email"],
                "categories": "files",
                "all_products": "1",
                "justification": "curious",
                "duration_hours": "8",
            },
            headers={"referer": "/console/data-access/new"},
        )
        assert response.status_code == 303
        flashed = text_of((await ada.get(response.headers["location"])).text)
        assert "Not done: the request cannot be made as it is (Justification:" in flashed
        assert await row_counts(owner_conn) == counts
        no_csrf = await ada.post("/console/data-access/new", {"justification": WHY})
        assert no_csrf.status_code == 403
        assert await row_counts(owner_conn) == counts


async def test_members_cannot_open_the_data_access_console(app: Any, local_org: OrgHandle) -> None:
    member = await person(local_org, "Mia Member")
    async with asgi_client(app) as mia:
        await signed_in(mia, local_org, member)
        for path in ("/console/data-access", "/console/data-access/log"):
            assert (await mia.get(path)).status_code == 403


async def test_each_member_sees_exactly_their_own_accesses(app: Any, local_org: OrgHandle) -> None:
    admin = await person(local_org, "Ada Admin", "admin")
    officer = await person(local_org, "Olga Officer", "privacy_officer")
    mia = await person(local_org, "Mia Member")
    noor = await person(local_org, "Noor Neighbour")
    product = await make_product(local_org, name="Mailbox")
    async with asgi_client(app) as ada, asgi_client(app) as olga:
        csrf = await signed_in(ada, local_org, admin)
        for who, why in ((mia, WHY), (noor, "Recovering files for the matter L-7.")):
            grant_id = await request_in_console(ada, csrf, who, justification=why)
            olga_csrf = await signed_in(olga, local_org, officer)
            await olga.post(f"/console/data-access/grants/{grant_id}/approve", {"csrf": olga_csrf})
            await check(local_org, admin, who, product)

    async with asgi_client(app) as browser:
        await signed_in(browser, local_org, mia)
        page = text_of((await browser.get("/account")).text)
    assert "Ada Admin (" in page and "viewed your files in Mailbox." in page
    assert f"Purpose: {WHY}" in page
    assert "the matter L-7" not in page
    assert page.count("Ada Admin (") == 2  # the grant and the access, nothing of Noor's

    async with asgi_client(app) as browser:
        await signed_in(browser, local_org, noor)
        page = text_of((await browser.get("/account")).text)
    assert "Recovering files for the matter L-7" in page and WHY not in page


async def test_a_member_of_another_organisation_sees_none_of_these_accesses(
    app: Any, two_orgs: tuple[OrgHandle, OrgHandle]
) -> None:
    alpha, bravo = two_orgs
    await set_local_sign_in(alpha.id, True)
    await set_local_sign_in(bravo.id, True)
    admin = await person(alpha, "Ada Admin", "admin")
    officer = await person(alpha, "Olga Officer", "privacy_officer")
    mia = await person(alpha, "Mia Member")
    bea = await person(bravo, "Bea Bravo")
    product = await make_product(alpha)
    async with asgi_client(app) as ada, asgi_client(app) as olga:
        grant_id = await request_in_console(ada, await signed_in(ada, alpha, admin), mia)
        olga_csrf = await signed_in(olga, alpha, officer)
        await olga.post(f"/console/data-access/grants/{grant_id}/approve", {"csrf": olga_csrf})
    await check(alpha, admin, mia, product)
    async with asgi_client(app) as browser:
        await signed_in(browser, bravo, bea)
        page = text_of((await browser.get("/account")).text)
    assert "Nobody at Bravo has been given access to your data." in page
    assert "Ada Admin" not in page and WHY not in page


async def test_a_delayed_grant_is_hidden_from_its_member_until_the_delay_ends(
    app: Any, local_org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    admin = await person(local_org, "Ada Admin", "admin")
    officer = await person(local_org, "Olga Officer", "privacy_officer")
    mia = await person(local_org, "Mia Member")
    product = await make_product(local_org)
    assert (
        await local_org.patch("/v1/access/policy", {"max_disclosure_delay_days": 30})
    ).status_code == 200
    until = (datetime.now(UTC) + timedelta(days=10)).date()
    async with asgi_client(app) as ada, asgi_client(app) as olga:
        grant_id = await request_in_console(ada, await signed_in(ada, local_org, admin), mia)
        csrf = await signed_in(olga, local_org, officer)
        await olga.post(f"/console/data-access/grants/{grant_id}/approve", {"csrf": csrf})
        short = await olga.post(
            f"/console/data-access/grants/{grant_id}/delay",
            {"csrf": csrf, "until": until.isoformat(), "reason": "secret"},
            headers={"referer": f"/console/data-access/grants/{grant_id}"},
        )
        assert "Not done" in text_of((await olga.get(short.headers["location"])).text)
        delayed = await olga.post(
            f"/console/data-access/grants/{grant_id}/delay",
            {"csrf": csrf, "until": until.isoformat(), "reason": "Fraud investigation, case F-3."},
        )
        assert delayed.status_code == 303
        page = text_of((await olga.get(delayed.headers["location"])).text)
        assert f"The member is shown this access from {until.isoformat()}." in page
    await check(local_org, admin, mia, product)

    async with asgi_client(app) as browser:
        await signed_in(browser, local_org, mia)
        account = text_of((await browser.get("/account")).text)
        assert "Ada Admin" not in account
        # The page says an access may be listed late, as the policy now allows.
        assert "an access may be listed up to 30 days late" in account
        # The end date passes.
        await owner_conn.execute(
            "UPDATE access_grants SET disclosure_delayed_until = now() - interval '1 second' "
            "WHERE id = $1",
            uuid.UUID(grant_id),
        )
        page = text_of((await browser.get("/account")).text)
        assert "Ada Admin" in page and "viewed your files" in page
    events = await audit_events(owner_conn, local_org.id, "access_grant.disclosure_delayed")
    assert [e.after["reason"] for e in events] == ["Fraud investigation, case F-3."]


async def test_the_account_log_pages_from_newest_to_oldest(app: Any, local_org: OrgHandle) -> None:
    admin = await person(local_org, "Ada Admin", "admin")
    officer = await person(local_org, "Olga Officer", "privacy_officer")
    mia = await person(local_org, "Mia Member")
    product = await make_product(local_org)
    async with asgi_client(app) as ada, asgi_client(app) as olga:
        grant_id = await request_in_console(ada, await signed_in(ada, local_org, admin), mia)
        csrf = await signed_in(olga, local_org, officer)
        await olga.post(f"/console/data-access/grants/{grant_id}/approve", {"csrf": csrf})
    for _ in range(24):
        await check(local_org, admin, mia, product)
    async with asgi_client(app) as browser:
        await signed_in(browser, local_org, mia)
        first = (await browser.get("/account")).text
        assert first.count('class="moment active" id="access-l') == 20
        link = re.search(r'href="(/account\?access_after=[^"#]+)#who-accessed"', first)
        assert link, "no link to older entries"
        second = (await browser.get(link.group(1))).text
    assert second.count('class="moment active" id="access-l') == 4
    assert "was given access to your files" in text_of(second)


async def test_unit_grants_show_on_the_page_of_members_below_the_unit(
    app: Any, local_org: OrgHandle
) -> None:
    lab = await make_unit(local_org, "Lab")
    bench = await make_unit(local_org, "Bench", parent=uuid.UUID(lab["id"]))
    admin = await person(local_org, "Ada Admin", "admin")
    officer = await person(local_org, "Olga Officer", "privacy_officer")
    inside = await person(local_org, "Ivy Inside", unit=bench["id"])
    outside = await person(local_org, "Otto Outside")
    async with asgi_client(app) as ada, asgi_client(app) as olga:
        csrf = await signed_in(ada, local_org, admin)
        response = await ada.post(
            "/console/data-access/new",
            {
                "csrf": csrf,
                "subject": "unit",
                "unit_id": lab["id"],
                "categories": "diagnostic",
                "all_products": "1",
                "justification": "Lab telemetry investigation since Monday.",
                "duration_hours": "8",
            },
        )
        grant_id = response.headers["location"].rsplit("/", 1)[-1]
        olga_csrf = await signed_in(olga, local_org, officer)
        await olga.post(f"/console/data-access/grants/{grant_id}/approve", {"csrf": olga_csrf})
    async with asgi_client(app) as browser:
        await signed_in(browser, local_org, inside)
        page = text_of((await browser.get("/account")).text)
    assert "was given access to diagnostic data of everyone in your unit" in page
    async with asgi_client(app) as browser:
        await signed_in(browser, local_org, outside)
        assert "Lab telemetry" not in text_of((await browser.get("/account")).text)


@pytest.mark.parametrize(
    ("roles", "says"),
    [
        (("admin",), "Request sent; a privacy officer decides."),
        (("owner", "privacy_officer"), "Request sent; another privacy officer decides."),
    ],
)
async def test_the_request_is_said_to_go_to_another_officer_only_when_the_requester_is_one(
    app: Any, local_org: OrgHandle, roles: tuple[str, ...], says: str
) -> None:
    requester = await person(local_org, "Rita Requester", *roles)
    mia = await person(local_org, "Mia Member")
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, local_org, requester)
        grant_id = await request_in_console(browser, csrf, mia)
        page = await browser.get(f"/console/data-access/grants/{grant_id}")
        assert says in page.text


async def test_a_request_is_withdrawn_by_who_asked_and_denied_by_an_officer_not_withdrawn(
    app: Any, local_org: OrgHandle
) -> None:
    admin = await person(local_org, "Ada Admin", "admin")
    officer = await person(local_org, "Olga Officer", "privacy_officer")
    subject = await person(local_org, "Sue Subject")
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, local_org, admin)
        grant = await request_in_console(browser, csrf, subject)
        mine = (await browser.get(f"/console/data-access/grants/{grant}")).text
        assert "Withdraw the request" in mine
    async with asgi_client(app) as browser:
        await signed_in(browser, local_org, officer)
        theirs = (await browser.get(f"/console/data-access/grants/{grant}")).text
        assert "Withdraw the request" not in theirs
        assert 'id="deny-reason"' in theirs and "Approve" in theirs


def test_a_suspension_says_what_becomes_of_the_sessions_in_words() -> None:
    from app.web.console.members import sessions_ending

    assert sessions_ending(0) == " (they have no live session)"
    assert sessions_ending(1) == "; their 1 live session ends now"
    assert sessions_ending(3) == "; their 3 live sessions end now"


async def test_a_policy_that_protects_members_less_is_saved_only_once_confirmed(
    app: Any, local_org: OrgHandle
) -> None:
    """One privacy officer allowed emergency access and a 92-day disclosure delay with one
    click: members' protection changed without a second look."""
    olivia = await person(local_org, "Olivia Officer", "privacy_officer")
    form = {
        "max_duration_hours": "168",
        "emergency_max_hours": "24",
        "max_disclosure_delay_days": "92",
        "emergency_allowed": "1",
        "notify_member_per_access": "1",
    }
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, local_org, olivia)
        asked = await browser.post("/console/data-access/policy", {"csrf": csrf, **form})
        assert asked.status_code == 200, asked.text[:300]
        shown = text_of(asked.text)
        assert "Save a policy that protects members less?" in shown
        assert "without a privacy officer's approval" in shown and "up to 92 days" in shown
        policy = (await local_org.get("/v1/access/policy")).json()
        assert policy["emergency_allowed"] is False and policy["max_disclosure_delay_days"] == 0
        saved = await browser.post(
            "/console/data-access/policy", {"csrf": csrf, **form, "confirmed": "1"}
        )
        assert saved.status_code == 303
        policy = (await local_org.get("/v1/access/policy")).json()
        assert policy["emergency_allowed"] is True and policy["max_disclosure_delay_days"] == 92
        # Back to stricter: nothing to ask.
        stricter = {**form, "max_disclosure_delay_days": "0", "emergency_allowed": ""}
        done = await browser.post("/console/data-access/policy", {"csrf": csrf, **stricter})
        assert done.status_code == 303
        # Two bad numbers are both named.
        bad = await browser.post(
            "/console/data-access/policy",
            {"csrf": csrf, **form, "max_duration_hours": "x", "emergency_max_hours": "y"},
            headers={"referer": "/console/data-access/policy"},
        )
        said = text_of((await browser.get(bad.headers["location"])).text)
        assert "Longest access takes a whole number" in said
