"""Erasure requests: the member's personal content goes, items under legal hold and work
content stay, products are told, and durable evidence is kept on the request and in an
audit chain that still verifies."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import asyncpg

from tenants import db
from tenants.audit import service as audit
from tenants.audit.sealer import seal_all
from tenants.privacy.datamap import add_years
from tests.conftest import OrgHandle, make_member, make_product
from tests.departures.support import make_items
from tests.requests.support import officer, submit
from tests.support.access import decide_as, make_people, request_as
from tests.support.api_schema import assert_problem, error_fields


async def remaining(conn: asyncpg.Connection, member_id: str) -> dict[tuple[str, bool], int]:
    rows = await conn.fetch(
        "SELECT kind, legal_hold, count(*) AS n FROM content_items WHERE member_id = $1 "
        "GROUP BY kind, legal_hold",
        uuid.UUID(member_id),
    )
    return {(r["kind"], r["legal_hold"]): r["n"] for r in rows}


async def test_erasure_deletes_personal_items_keeps_held_and_work_items_and_records_evidence(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    mia, other = await make_member(org, name="Mia Member"), await make_member(org)
    olivia = await officer(org)
    store, drive = await make_product(org, key="store"), await make_product(org, key="drive")
    await make_items(org, mia["id"], store["id"], 12, kind="personal")
    await make_items(org, mia["id"], drive["id"], 3, kind="personal", legal_hold=True)
    await make_items(org, mia["id"], drive["id"], 7, kind="organisation")
    await make_items(org, other["id"], store["id"], 4, kind="personal")
    request = await submit(org, mia, "erasure", "Delete what I bought myself.")
    await org.post(f"/v1/privacy-requests/{request['id']}/assign", {"assignee_id": olivia["id"]})

    erased = await org.post(f"/v1/privacy-requests/{request['id']}/erasure", {})

    assert erased.status_code == 200, erased.text
    evidence = erased.json()
    assert evidence["kinds"] == ["personal"]
    assert evidence["by_product"] == {
        store["id"]: {"deleted": 12, "held": 0},
        drive["id"]: {"deleted": 0, "held": 3},
    }
    assert evidence["kept_by_kind"] == {"personal": 3, "organisation": 7}
    assert await remaining(owner_conn, mia["id"]) == {
        ("personal", True): 3,
        ("organisation", False): 7,
    }
    assert await remaining(owner_conn, other["id"]) == {("personal", False): 4}
    detail = (await org.get(f"/v1/privacy-requests/{request['id']}")).json()
    assert detail["erasure_evidence"]["runs"][0]["audit_event_id"] == evidence["audit_event_id"]
    body = detail["timeline"][-1]["body"]
    assert body.startswith("Deleted 12 items in 2 products; 3 kept under legal hold\n")
    # The member is told what stays and why.
    assert "Kept, and why:" in body and "under legal hold" in body.split("\n", 1)[1]
    kept = [(k["table"], k["rows"]) for k in evidence["member_erasure"]["kept"]]
    assert ("content_items", 3) in kept and ("content_items", 7) in kept
    assert all(
        k["reason"] and k["legal_basis"] and k["review_on"]
        for k in evidence["member_erasure"]["kept"]
    )
    actions = [
        r["action"]
        for r in await owner_conn.fetch(
            "SELECT action FROM audit_events WHERE tenant_id = $1 ORDER BY id", org.id
        )
    ]
    assert actions.index("content.erased") < actions.index("privacy_request.erased")
    told = await owner_conn.fetch(
        "SELECT topic, payload FROM outbox_events WHERE tenant_id = $1 AND topic = 'content.erased'",
        org.id,
    )
    assert len(told) == 1  # one product lost items; the held product is not told
    # The member, who can no longer sign in to read the timeline, is emailed the outcome
    # (what went, what stays, why, until when) at the address the erasure removed, and it
    # is the only message left to that address.
    mails = await owner_conn.fetch(
        "SELECT template, recipients, text FROM mail_messages WHERE tenant_id = $1"
        " AND recipients ? $2",
        org.id,
        mia["email"],
    )
    assert [m["template"] for m in mails] == ["request_erased"]
    text = mails[0]["text"]
    assert "Deleted 12 items in 2 products; 3 kept under legal hold." in text
    assert "Kept, and why:" in text and "supervisory authority" in text

    await seal_all(wait=True)
    async with db.tenant_transaction(org.id):
        verification = await audit.verify()
    assert verification.ok and verification.pending == 0
    assert verification.checked >= len(actions)


async def test_erasure_is_only_for_open_erasure_requests_and_needs_a_kind(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    mia = await make_member(org)
    access = await submit(org, mia, "access")
    erasure = await submit(org, mia, "erasure")
    await org.post(f"/v1/privacy-requests/{erasure['id']}/reject", {"reason": "Held by law."})

    wrong_kind = await org.post(f"/v1/privacy-requests/{access['id']}/erasure", {})
    closed = await org.post(f"/v1/privacy-requests/{erasure['id']}/erasure", {})
    other = await submit(org, mia, "erasure")
    no_kinds = await org.post(f"/v1/privacy-requests/{other['id']}/erasure", {"kinds": []})

    assert_problem(wrong_kind, 409)
    assert_problem(closed, 409)
    assert "kinds" in error_fields(assert_problem(no_kinds, 422))


async def test_an_erased_member_cannot_be_changed_nor_given_a_role(org: OrgHandle) -> None:
    """An owner once gave an erased member the admin role from their console page."""
    mia = await make_member(org, name="Mia Member")
    unit = await org.post("/v1/units", {"name": "Elsewhere", "parent_id": str(org.root_unit_id)})
    request = await submit(org, mia, "erasure", "Delete everything about me.")
    assert (await org.post(f"/v1/privacy-requests/{request['id']}/erasure", {})).status_code == 200
    for change in ({"roles": ["admin"]}, {"name": "Back again"}):
        refused = await org.patch(f"/v1/members/{mia['id']}", change)
        assert error_fields(assert_problem(refused, 409)) == {"status": "is purged"}
    moved = await org.post(f"/v1/members/{mia['id']}/move", {"unit_id": unit.json()["id"]})
    assert assert_problem(moved, 409)["errors"] == [{"field": "status", "reason": "is purged"}]
    group = await org.post("/v1/groups", {"name": "Afterwards"})
    product = await make_product(org)
    joined = await org.put(f"/v1/groups/{group.json()['id']}/members/{mia['id']}")
    assert error_fields(assert_problem(joined, 409)) == {"status": "is purged"}
    given = await org.post(
        "/v1/product-accounts", {"member_id": mia["id"], "product_id": product["id"]}
    )
    assert error_fields(assert_problem(given, 409)) == {"status": "is purged"}
    after = (await org.get(f"/v1/members/{mia['id']}")).json()
    assert after["status"] == "purged" and after["roles"] == []  # erasure took them
    assert after["unit_id"] == mia["unit_id"]


async def test_access_to_an_erased_members_data_ends_with_them(org: OrgHandle) -> None:
    """A request for access to an erased member's data stayed waiting for approval, the
    overview still asking an officer to decide about "erased member"."""
    people = await make_people(org)
    mia = await make_member(org, name="Mia Member")
    waiting = await request_as(org, people["admin"], mia)
    open_access = await request_as(org, people["admin"], mia)
    await decide_as(org, people["officer"], open_access)
    elsewhere = await request_as(org, people["admin"], people["member"])
    request = await submit(org, mia, "erasure", "Delete everything about me.")
    assert (await org.post(f"/v1/privacy-requests/{request['id']}/erasure", {})).status_code == 200
    states = {
        grant: (await org.get(f"/v1/access/grants/{grant}")).json()["state"]
        for grant in (waiting, open_access, elsewhere)
    }
    assert states == {waiting: "denied", open_access: "revoked", elsewhere: "requested"}
    denied = (await org.get(f"/v1/access/grants/{waiting}")).json()
    assert denied["decision_reason"] == "the member was erased"
    events = (await org.get("/v1/audit-events", params={"target_type": "access_grant"})).json()
    ended = {(e["action"], e["target_id"]) for e in events["items"]}
    assert ("access_grant.denied", str(waiting)) in ended
    assert ("access_grant.revoked", str(open_access)) in ended


async def test_the_evidence_reviews_held_items_on_their_holds_date_and_years_as_calendar_years(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    """Held items were to be reviewed 90 days after the erasure whatever the hold said,
    and "6 years" was 6 x 365 days (a day or two short)."""
    mia, olivia = await make_member(org, name="Mia Member"), await officer(org)
    drive = await make_product(org, key="drive")
    await make_items(org, mia["id"], drive["id"], 3, kind="personal", legal_hold=True)
    ids = [r["id"] for r in await owner_conn.fetch(
        "SELECT id FROM content_items WHERE member_id = $1 ORDER BY id", uuid.UUID(mia["id"])
    )]  # fmt: skip
    for item_id, review_on in zip(ids, [date(2027, 3, 1), date(2027, 6, 30), None], strict=True):
        await owner_conn.execute(
            "UPDATE content_items SET hold_review_on = $2 WHERE id = $1", item_id, review_on
        )
    request = await submit(org, mia, "erasure", "Delete what I bought myself.")
    await org.post(f"/v1/privacy-requests/{request['id']}/assign", {"assignee_id": olivia["id"]})

    erased = await org.post(f"/v1/privacy-requests/{request['id']}/erasure", {})

    assert erased.status_code == 200, erased.text
    today = datetime.now(UTC).date()
    kept = erased.json()["member_erasure"]["kept"]
    (held,) = [k for k in kept if k["table"] == "content_items"]
    assert held["reason"] == "under legal hold" and held["review_on"] == "2027-06-30"
    (trail,) = [k for k in kept if k["table"] == "audit_events"]
    assert trail["review_on"] == add_years(today, 6).isoformat()
