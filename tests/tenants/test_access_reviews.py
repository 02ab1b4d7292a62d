"""Access reviews on the real database: a campaign run through with approve, revoke and
default-on-due (the revoked role, grant and client really end, through their own audited
paths), the worker's catch-up and recurrence, the reviewer emails, the CSV export, and the
API's validation and isolation."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from tenants import db
from tenants.errors import PermissionDeniedError
from tenants.jobs.worker import Worker
from tenants.permissions import permissions_of
from tenants.reviews import rules, service
from tests.conftest import OrgHandle, make_member, make_org, make_product
from tests.support.access import as_member, decide_as, request_as
from tests.support.smtp_server import mail_to, smtp_server

#: The zone of the test organisations' days (none set: UTC).
UTC_ZONE = ZoneInfo("UTC")


def today() -> str:
    return datetime.now(UTC).date().isoformat()


def in_days(days: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


async def people(org: OrgHandle) -> dict[str, Any]:
    """A manager (no admin role) of an admin and a helpdesk person; a privacy officer who
    approves the admin's access to a member's data; a product with one client."""
    manager = await make_member(org, name="Mona Manager")
    admin = await make_member(org, name="Ada Admin", roles=["admin"], manager_id=manager["id"])
    helpdesk = await make_member(
        org, name="Hal Helpdesk", roles=["helpdesk"], manager_id=manager["id"]
    )
    officer = await make_member(
        org, name="Olga Officer", roles=["privacy_officer"], manager_id=manager["id"]
    )
    subject = await make_member(org, name="Mia Member")
    grant_id = await request_as(org, admin, subject)
    await decide_as(org, officer, grant_id)
    product = await make_product(org)
    client = await org.post(
        f"/v1/products/{product['id']}/clients", {"name": "sync", "scopes": ["members:read"]}
    )
    assert client.status_code == 201, client.text
    return {
        "manager": manager, "admin": admin, "helpdesk": helpdesk, "officer": officer,
        "subject": subject, "grant_id": grant_id, "client": client.json(),
    }


def campaign(**fields: Any) -> dict[str, Any]:
    return {
        "name": "Quarterly recertification",
        "scopes": ["admin_roles", "data_access", "product_clients"],
        "reviewer_rule": "manager",
        "starts_on": today(),
        "due_on": in_days(2),
        "default_on_due": "revoke",
        **fields,
    }


async def items_of(org: OrgHandle, review_id: str) -> list[dict[str, Any]]:
    listed = await org.get(f"/v1/access-reviews/{review_id}/items", params={"limit": 500})
    assert listed.status_code == 200, listed.text
    return list(listed.json()["items"])


async def test_a_campaign_runs_through_approve_revoke_and_default_on_due(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    p = await people(org)
    named = await make_member(org, name="Nina Named")
    created = await org.post(
        "/v1/access-reviews",
        campaign(named_reviewer_ids=[named["id"]], recurrence={"every": 1, "unit": "months"}),
    )
    assert created.status_code == 201, created.text
    review = created.json()
    assert review["status"] == "open"  # starts today: opened at once
    items = await items_of(org, review["id"])
    by_label = {i["subject_label"]: i for i in items}
    assert review["items_total"] == len(items) == 5  # 3 roles, 1 grant, 1 client
    role_of = {(i["member_id"], i["role"]): i for i in items if i["kind"] == "admin_role"}
    admin_item = role_of[(p["admin"]["id"], "admin")]
    helpdesk_item = role_of[(p["helpdesk"]["id"], "helpdesk")]
    officer_item = role_of[(p["officer"]["id"], "privacy_officer")]
    (grant_item,) = [i for i in items if i["kind"] == "access_grant"]
    (client_item,) = [i for i in items if i["kind"] == "product_client"]
    assert grant_item["grant_id"] == str(p["grant_id"])
    assert grant_item["member_id"] == p["admin"]["id"]
    assert "Mia Member's interaction data" in grant_item["subject_label"]
    assert client_item["client_id"] == p["client"]["id"], by_label
    # The manager reviews their reports' access; the client (nobody's) goes to the named.
    for item in (admin_item, helpdesk_item, officer_item, grant_item):
        assert item["reviewer_ids"] == [p["manager"]["id"]]
    assert client_item["reviewer_ids"] == [named["id"]]

    # One email per reviewer, with their count.
    mails = await owner_conn.fetch(
        "SELECT recipients, subject FROM mail_messages WHERE tenant_id = $1 "
        "AND template = 'access_review_opened' ORDER BY subject",
        org.id,
    )
    assert sorted((json.loads(m["recipients"])[0], m["subject"]) for m in mails) == sorted([
        (p["manager"]["email"], "Access review: 4 items wait for your decision"),
        (named["email"], "Access review: 1 item waits for your decision"),
    ])

    # Nobody decides on their own access, not even with reviews:write.
    with pytest.raises(PermissionDeniedError):
        async with db.tenant_transaction(org.id):
            await service.decide_item(
                uuid.UUID(review["id"]), uuid.UUID(admin_item["id"]), approve=True,
                reason="I am fine", permissions=permissions_of(["admin"]),
                actor=as_member(p["admin"]),
            )
    # The manager, as themselves (no admin role), approves the admin role...
    async with db.tenant_transaction(org.id):
        await service.decide_item(
            uuid.UUID(review["id"]), uuid.UUID(admin_item["id"]), approve=True,
            reason="Still runs the directory.", permissions=permissions_of([]),
            actor=as_member(p["manager"]),
        )
    # ...and through the API revokes the helpdesk role and the data access.
    url = f"/v1/access-reviews/{review['id']}/items"
    for item, reason in ((helpdesk_item, "Moved to sales."), (grant_item, "=Case closed")):
        decided = await org.post(
            f"{url}/{item['id']}/decision", {"decision": "revoke", "reason": reason}
        )
        assert decided.status_code == 200, decided.text
        assert decided.json()["state"] == "revoked"
    again = await org.post(
        f"{url}/{helpdesk_item['id']}/decision", {"decision": "approve", "reason": "oops"}
    )
    assert again.status_code == 409, again.text

    # The revocations are real, each through its own audited path.
    helpdesk = (await org.get(f"/v1/members/{p['helpdesk']['id']}")).json()
    assert helpdesk["roles"] == []
    grant = (await org.get(f"/v1/access/grants/{p['grant_id']}")).json()
    assert grant["status"] == "revoked"
    assert "Case closed" in grant["revoke_reason"]
    progress = (await org.get(f"/v1/access-reviews/{review['id']}")).json()
    assert (progress["items_decided"], progress["items_total"]) == (3, 5)

    # The due day passes (a controlled clock): the undecided follow the rule (revoke).
    closing = rules.closes_at(datetime.fromisoformat(review["due_on"]).date(), UTC_ZONE)
    async with db.tenant_transaction(org.id):
        before = await service.advance_review(
            uuid.UUID(review["id"]), now=closing - timedelta(seconds=1)
        )
        assert before.status is rules.CampaignStatus.OPEN
        closed = await service.advance_review(uuid.UUID(review["id"]), now=closing)
    assert closed.status is rules.CampaignStatus.COMPLETED
    states = {i["id"]: i["state"] for i in await items_of(org, review["id"])}
    assert states == {
        admin_item["id"]: "approved",
        helpdesk_item["id"]: "revoked",
        grant_item["id"]: "revoked",
        officer_item["id"]: "revoked_on_due",
        client_item["id"]: "revoked_on_due",
    }
    officer = (await org.get(f"/v1/members/{p['officer']['id']}")).json()
    assert officer["roles"] == []
    admin = (await org.get(f"/v1/members/{p['admin']['id']}")).json()
    assert admin["roles"] == ["admin"]
    revoked_at = await owner_conn.fetchval(
        "SELECT revoked_at FROM product_clients WHERE id = $1", uuid.UUID(p["client"]["id"])
    )
    assert revoked_at is not None

    actions = [
        r["action"]
        for r in await owner_conn.fetch(
            "SELECT action FROM audit_events WHERE tenant_id = $1 ORDER BY id", org.id
        )
    ]
    for expected in ("access_review.created", "access_review.opened",
                     "access_review.item_decided", "access_grant.revoked",
                     "product_client.revoked", "access_review.completed"):
        assert expected in actions, expected
    assert actions.count("access_review.item_decided") == 3

    # Recurrence: the successor starts a month after this one, as long, not yet open.
    listed = (await org.get("/v1/access-reviews")).json()["items"]
    (successor,) = [r for r in listed if r["previous_id"] == review["id"]]
    start = datetime.fromisoformat(review["starts_on"]).date()
    assert successor["starts_on"] == rules.add_months(start, 1).isoformat()
    assert successor["status"] == "scheduled"
    # Closing again at a later moment changes nothing (and makes no second successor).
    async with db.tenant_transaction(org.id):
        await service.advance_review(uuid.UUID(review["id"]), now=closing + timedelta(days=1))
    assert len((await org.get("/v1/access-reviews")).json()["items"]) == 2

    # The export: every item, its decision and reason, formula cells defused.
    exported = await org.get(f"/v1/access-reviews/{review['id']}/export")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(rows) == 5
    grant_row = next(r for r in rows if r["item_id"] == grant_item["id"])
    assert grant_row["reason"] == "'=Case closed"
    assert grant_row["reviewers"] == "Mona Manager"
    assert grant_row["state"] == "revoked"


async def test_the_worker_reminds_before_the_due_day_and_a_late_close_keeps_by_default(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    p = await people(org)
    created = await org.post(
        "/v1/access-reviews",
        campaign(scopes=["admin_roles"], due_on=in_days(10), default_on_due="keep"),
    )
    assert created.status_code == 201, created.text
    review = created.json()
    # Three days before the close the manager is reminded; the campaign stays open.
    await Worker(name="reviews-tests").run_until_idle(ahead=timedelta(days=8, hours=1))
    assert (await org.get(f"/v1/access-reviews/{review['id']}")).json()["status"] == "open"
    reminders = await owner_conn.fetchval(
        "SELECT count(*) FROM mail_messages WHERE tenant_id = $1 "
        "AND template = 'access_review_reminder'",
        org.id,
    )
    assert reminders == 1  # one reviewer (the manager) with undecided items
    # The worker comes back long after the due day: the close catches up.
    await Worker(name="reviews-tests").run_until_idle(ahead=timedelta(days=30))
    after = (await org.get(f"/v1/access-reviews/{review['id']}")).json()
    assert after["status"] == "completed"
    assert {i["state"] for i in await items_of(org, review["id"])} == {"kept_on_due"}
    for person in ("admin", "helpdesk", "officer"):
        assert (await org.get(f"/v1/members/{p[person]['id']}")).json()["roles"] != []


async def test_a_campaign_starting_later_opens_on_its_day_with_the_access_standing_then(
    org: OrgHandle,
) -> None:
    p = await people(org)
    created = await org.post(
        "/v1/access-reviews",
        campaign(scopes=["product_clients"], starts_on=in_days(3), due_on=in_days(5),
                 reviewer_rule="named", named_reviewer_ids=[p["manager"]["id"]]),
    )
    assert created.status_code == 201, created.text
    review = created.json()
    assert review["status"] == "scheduled"
    assert await items_of(org, review["id"]) == []
    product = await make_product(org)
    later = await org.post(
        f"/v1/products/{product['id']}/clients", {"name": "late", "scopes": ["members:read"]}
    )
    assert later.status_code == 201, later.text
    opening = rules.opens_at(datetime.fromisoformat(review["starts_on"]).date(), UTC_ZONE)
    async with db.tenant_transaction(org.id):
        opened = await service.advance_review(uuid.UUID(review["id"]), now=opening)
    assert opened.status is rules.CampaignStatus.OPEN
    assert {i["client_id"] for i in await items_of(org, review["id"])} == {
        p["client"]["id"], later.json()["id"]
    }


async def test_unit_admins_review_and_nobody_reviews_their_own_access(org: OrgHandle) -> None:
    unit = (await org.post("/v1/units", {"name": "Lab", "parent_id": str(org.root_unit_id)})).json()
    lab_admin = await make_member(org, name="Lab Admin", roles=["admin"], unit=unit["id"])
    top_owner = await make_member(org, name="Top Owner", roles=["owner"])
    auditor = await make_member(org, name="Lab Auditor", roles=["auditor"], unit=unit["id"])
    created = await org.post(
        "/v1/access-reviews", campaign(scopes=["admin_roles"], reviewer_rule="unit_admins")
    )
    assert created.status_code == 201, created.text
    items = {i["member_id"]: i for i in await items_of(org, created.json()["id"])}
    assert items[auditor["id"]]["reviewer_ids"] == [lab_admin["id"]]
    # The lab's only admin is reviewed by the admins above (the root unit's owner).
    assert items[lab_admin["id"]]["reviewer_ids"] == [top_owner["id"]]
    # The owner has nobody above and no named reviewer: nobody but reviews:write holders.
    assert items[top_owner["id"]]["reviewer_ids"] == []


async def test_bad_campaigns_and_decisions_are_refused_naming_the_field(org: OrgHandle) -> None:
    cases = [
        (campaign(due_on=in_days(-1)), "due_on"),
        (campaign(starts_on=in_days(-2), due_on=in_days(1)), "starts_on"),
        (campaign(reviewer_rule="named"), "named_reviewer_ids"),
        (campaign(named_reviewer_ids=[str(uuid.uuid4())]), "named_reviewer_ids"),
        (campaign(due_on=in_days(40), recurrence={"every": 1, "unit": "months"}),
         "recurrence_every"),
        (campaign(scopes=[]), "scopes"),
        (campaign(default_on_due="maybe"), "default_on_due"),
    ]
    for body, field in cases:
        refused = await org.post("/v1/access-reviews", body)
        assert refused.status_code == 422, (field, refused.text)
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert field in refused.text, (field, refused.text)
    assert (await org.get("/v1/access-reviews")).json()["items"] == []

    await make_member(org, name="Some Admin", roles=["admin"])
    review = (await org.post("/v1/access-reviews", campaign(scopes=["admin_roles"]))).json()
    (item,) = await items_of(org, review["id"])
    url = f"/v1/access-reviews/{review['id']}/items/{item['id']}/decision"
    blank = await org.post(url, {"decision": "revoke", "reason": "  "})
    assert blank.status_code == 422 and "reason" in blank.text
    wrong = await org.post(url, {"decision": "delete", "reason": "x"})
    assert wrong.status_code == 422 and "decision" in wrong.text


async def test_another_organisations_campaigns_are_not_found(org: OrgHandle) -> None:
    other = await make_org(org.client)
    await make_member(other, name="Other Admin", roles=["admin"])
    theirs = (await other.post("/v1/access-reviews", campaign(scopes=["admin_roles"]))).json()
    (item,) = await items_of(other, theirs["id"])
    base = f"/v1/access-reviews/{theirs['id']}"
    for path in (base, f"{base}/items", f"{base}/export"):
        assert (await org.get(path)).status_code == 404, path
    decided = await org.post(
        f"{base}/items/{item['id']}/decision", {"decision": "revoke", "reason": "not mine"}
    )
    assert decided.status_code == 404
    assert (await org.get("/v1/access-reviews")).json()["items"] == []
    assert (await other.get(base)).json()["items_decided"] == 0


async def test_the_list_pages_by_cursor(org: OrgHandle) -> None:
    for n in range(3):
        made = await org.post("/v1/access-reviews", campaign(name=f"Review {n}", scopes=["product_clients"]))
        assert made.status_code == 201, made.text
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await org.get("/v1/access-reviews", params=params)).json()
        seen += [r["name"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["Review 2", "Review 1", "Review 0"]


async def test_the_last_owner_is_never_revoked_by_a_review(org: OrgHandle) -> None:
    owner = await make_member(org, name="Only Owner", roles=["owner"])
    admin = await make_member(org, name="Ada Admin", roles=["admin"])
    made = await org.post("/v1/access-reviews", campaign(
        scopes=["admin_roles"], reviewer_rule="named", named_reviewer_ids=[admin["id"]]))
    assert made.status_code == 201, made.text
    review = made.json()
    items = {i["member_id"]: i for i in await items_of(org, review["id"])}
    url = f"/v1/access-reviews/{review['id']}/items/{items[owner['id']]['id']}/decision"
    refused = await org.post(url, {"decision": "revoke", "reason": "Spring cleaning"})
    assert refused.status_code == 409, refused.text
    assert "always keeps an owner" in refused.text
    closing = rules.closes_at(datetime.fromisoformat(review["due_on"]).date(), UTC_ZONE)
    async with db.tenant_transaction(org.id):
        await service.advance_review(uuid.UUID(review["id"]), now=closing)
    after = {i["member_id"]: i for i in await items_of(org, review["id"])}
    assert after[owner["id"]]["state"] == "kept_on_due"
    assert after[owner["id"]]["outcome_note"].startswith("kept: an organisation always keeps")
    assert (await org.get(f"/v1/members/{owner['id']}")).json()["roles"] == ["owner"]
    assert after[admin["id"]]["state"] == "revoked_on_due"
    assert (await org.get(f"/v1/members/{admin['id']}")).json()["roles"] == []


async def test_each_reviewer_gets_one_email_with_their_count_through_smtp(org: OrgHandle) -> None:
    p = await people(org)
    async with smtp_server() as (server, port):
        made = await org.post("/v1/access-reviews", campaign(scopes=["admin_roles"]))
        assert made.status_code == 201, made.text
        with mail_to(port):
            await Worker(name="reviews-mail").run_until_idle()
    # (The set-up's own emails, such as the grant's approval, go out too.)
    (sent,) = [d for d in server.delivered if "Access review" in str(d.message["Subject"])]
    assert sent.rcpt_tos == [p["manager"]["email"]]
    assert str(sent.message["Subject"]) == "Access review: 3 items wait for your decision"
    text = sent.part("plain")
    assert "Hello Mona Manager," in text
    assert "Quarterly recertification" in text and "Items waiting for you: 3" in text
    assert "/account/access-reviews" in text  # a manager without an admin role


async def test_a_monthly_series_from_the_31st_keeps_to_months_ends(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    """Successors are counted from the series' first campaign (its start and due plus n
    months): from 2027-01-31 they start 02-28 and 03-31, not 02-28 and 03-28."""
    owner = await make_member(org, roles=["owner"])
    created = await org.post("/v1/access-reviews", campaign(
        scopes=["admin_roles"], reviewer_rule="named", named_reviewer_ids=[owner["id"]],
        default_on_due="keep", recurrence={"every": 1, "unit": "months"},
    ))  # fmt: skip
    assert created.status_code == 201, created.text
    first = uuid.UUID(created.json()["id"])
    await owner_conn.execute(
        "UPDATE access_reviews SET starts_on = '2027-01-31', due_on = '2027-02-14' WHERE id = $1",
        first,
    )
    series = [first]
    for due in ("2027-02-14", "2027-03-14", "2027-04-14"):
        async with db.tenant_transaction(org.id):
            await service.advance_review(
                series[-1], now=rules.closes_at(datetime.fromisoformat(due).date(), UTC_ZONE)
            )
        following = await owner_conn.fetchval(
            "SELECT id FROM access_reviews WHERE previous_id = $1", series[-1]
        )
        assert following is not None, due
        series.append(following)
    rows = await owner_conn.fetch(
        "SELECT id, starts_on, due_on FROM access_reviews WHERE id = ANY($1::uuid[])", series
    )
    by_id = {r["id"]: (r["starts_on"].isoformat(), r["due_on"].isoformat()) for r in rows}
    assert [by_id[i] for i in series] == [
        ("2027-01-31", "2027-02-14"), ("2027-02-28", "2027-03-14"),
        ("2027-03-31", "2027-04-14"), ("2027-04-30", "2027-05-14"),
    ]  # fmt: skip
