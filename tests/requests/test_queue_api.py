"""The privacy queue through /v1/privacy-requests: routing to the right organisation,
assignment, internal notes, deadline extension, answers, reminders, and refusals that
name the field and write nothing. On the real database; jobs run in process."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta

import asyncpg

from tenants import db
from tenants.requests import rules, service
from tenants.requests.models import PrivacyRequest
from tests.conftest import OrgHandle, make_member, make_product, row_counts
from tests.requests.support import (
    mails,
    officer,
    product_client_headers,
    run_jobs,
    submit,
)
from tests.support.api_schema import assert_problem, error_fields


async def test_a_request_lands_in_its_members_organisation_and_nowhere_else(
    two_orgs: tuple[OrgHandle, OrgHandle], owner_conn: asyncpg.Connection
) -> None:
    alpha, bravo = two_orgs
    mia = await make_member(alpha, name="Mia Alpha")
    olivia = await officer(alpha)
    bravo_officer = await officer(bravo, "Bruno Bravo")
    # Mia's manager, an admin: who may work on requests, but is not whom they are for.
    manager = await make_member(alpha, name="Max Manager", roles=["admin"])

    created = await submit(alpha, mia, "access")

    today = datetime.now(UTC).date()
    assert created["status"] == "received" and created["source"] == "api"
    assert created["due_on"] == rules.due_date(today).isoformat()
    listed = (await alpha.get("/v1/privacy-requests")).json()["items"]
    assert [r["id"] for r in listed] == [created["id"]]
    assert (await bravo.get("/v1/privacy-requests")).json()["items"] == []
    assert_problem(await bravo.get(f"/v1/privacy-requests/{created['id']}"), 404)
    # The member is acknowledged; alpha's privacy officers are told; bravo's are not.
    received = await mails(owner_conn, alpha, "request_received")
    assert [m["recipients"] for m in received] == [[mia["email"]]]
    queued = await mails(owner_conn, alpha, "request_queued")
    assert queued[0]["recipients"] == [olivia["email"]]  # the privacy officers only
    assert manager["email"] not in json.dumps(queued)
    assert "Access: a copy of their data" in queued[0]["subject"]  # the team's wording
    assert bravo_officer["email"] not in json.dumps(queued)
    assert await mails(owner_conn, bravo) == []
    # With no privacy officer, those who may answer are told: no request waits unseen.
    quiet = await make_member(bravo, name="Quinn Bravo")
    bravo_admin = await make_member(bravo, name="Ada Admin", roles=["admin"])
    await bravo.patch(f"/v1/members/{bravo_officer['id']}", {"roles": []})
    await submit(bravo, quiet, "objection")
    [told] = await mails(owner_conn, bravo, "request_queued")
    assert bravo_admin["email"] in told["recipients"]


async def test_an_organisation_cannot_file_a_request_for_another_organisations_member(
    two_orgs: tuple[OrgHandle, OrgHandle], owner_conn: asyncpg.Connection
) -> None:
    alpha, bravo = two_orgs
    bea = await make_member(bravo)
    counts = await row_counts(owner_conn)

    response = await alpha.post(
        "/v1/privacy-requests", {"member_id": bea["id"], "kind": "erasure", "message": "x"}
    )

    assert "member_id" in error_fields(assert_problem(response, 422))
    assert await row_counts(owner_conn) == counts


async def test_a_product_forwards_requests_for_itself_once_per_reference(
    org: OrgHandle,
) -> None:
    mia, product, other = await make_member(org), await make_product(org), await make_product(org)
    headers = await product_client_headers(org, product)
    body = {"member_id": mia["id"], "kind": "objection", "message": "Stop the profiling.",
            "product_reference": "ticket-77"}

    first = await org.client.post("/v1/privacy-requests", json=body, headers=headers)
    again = await org.client.post("/v1/privacy-requests", json=body, headers=headers)
    foreign = await org.client.post(
        "/v1/privacy-requests", json={**body, "product_id": other["id"]}, headers=headers
    )

    assert first.status_code == 201, first.text
    assert first.json()["product_id"] == product["id"] and first.json()["source"] == "product"
    assert again.json()["id"] == first.json()["id"]
    assert "product_id" in error_fields(assert_problem(foreign, 403))
    assert len((await org.get("/v1/privacy-requests")).json()["items"]) == 1


async def test_assignment_goes_to_privacy_officers_only_and_starts_the_work(
    org: OrgHandle,
) -> None:
    mia, olivia, plain = await make_member(org), await officer(org), await make_member(org)
    request = await submit(org, mia)
    url = f"/v1/privacy-requests/{request['id']}"

    refused = await org.post(f"{url}/assign", {"assignee_id": plain["id"]})
    assigned = await org.post(f"{url}/assign", {"assignee_id": olivia["id"]})

    assert "assignee_id" in error_fields(assert_problem(refused, 422))
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["assignee_id"] == olivia["id"]
    assert assigned.json()["status"] == "in_progress"
    mine = await org.get("/v1/privacy-requests", params={"assignee_id": olivia["id"]})
    assert [r["id"] for r in mine.json()["items"]] == [request["id"]]


async def test_notes_are_in_the_organisations_timeline_but_never_in_the_members(
    org: OrgHandle,
) -> None:
    mia = await make_member(org)
    request = await submit(org, mia)
    url = f"/v1/privacy-requests/{request['id']}"

    note = await org.post(f"{url}/notes", {"text": "Ask HR about the 2019 files first."})

    assert note.status_code == 201 and note.json()["internal"] is True
    detail = (await org.get(url)).json()
    assert "Ask HR about the 2019 files first." in [e["body"] for e in detail["timeline"]]
    async with db.tenant_transaction(org.id):
        seen = await service.timeline(uuid.UUID(request["id"]), for_member=True)
    assert [e.kind for e in seen] == ["received"]
    assert all("2019" not in e.body for e in seen)


async def test_an_extension_moves_the_deadline_from_the_day_of_receipt_and_tells_the_member(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    mia = await make_member(org)
    request = await submit(org, mia)
    # Received ten days ago: still within the month in which an extension may be told.
    received_at = datetime.now(UTC) - timedelta(days=10)
    received = received_at.date()
    await owner_conn.execute(
        "UPDATE privacy_requests SET received_at = $2, due_on = $3 WHERE id = $1",
        uuid.UUID(request["id"]), received_at, rules.due_date(received),
    )
    url = f"/v1/privacy-requests/{request['id']}"

    once = await org.post(f"{url}/extend", {"months": 1, "reason": "Six products hold data."})
    twice = await org.post(f"{url}/extend", {"months": 1, "reason": "One product is late."})
    counts = await row_counts(owner_conn)
    beyond = await org.post(f"{url}/extend", {"months": 1, "reason": "Still more."})

    assert once.json()["due_on"] == rules.due_date(received, 1).isoformat()
    assert twice.json()["due_on"] == rules.due_date(received, 2).isoformat()
    assert twice.json()["extension_months"] == 2
    assert "months" in error_fields(assert_problem(beyond, 422))
    assert await row_counts(owner_conn) == counts
    told = await mails(owner_conn, org, "request_extended")
    assert [m["recipients"] for m in told] == [[mia["email"]], [mia["email"]]]
    assert "One product is late." in told[-1]["text"]
    assert rules.due_date(received, 2).isoformat() in told[-1]["text"]


async def test_a_request_that_came_by_post_runs_from_its_day_of_receipt(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    """An officer keys in a letter received twelve days ago: the deadline is a month from
    that day, not from the day it was typed in, and the audit event says when it came."""
    mia = await make_member(org)
    today = datetime.now(UTC).date()
    came = today - timedelta(days=12)

    request = await submit(org, mia, received_on=came.isoformat())

    assert request["due_on"] == rules.due_date(came).isoformat()
    assert request["received_at"] == f"{came.isoformat()}T00:00:00Z"
    after = await owner_conn.fetchval(
        "SELECT after FROM audit_events WHERE tenant_id = $1 AND action = $2",
        org.id, "privacy_request.received",
    )
    assert json.loads(after)["received_on"] == came.isoformat()
    counts = await row_counts(owner_conn)
    for received_on, reason in [
        ((today + timedelta(days=1)).isoformat(), "cannot be in the future"),
        (rules.add_months(today, -12) - timedelta(days=1), "at most a year ago"),
        ("1796774400", "YYYY-MM-DD"),
    ]:
        refused = await org.post("/v1/privacy-requests", {
            "member_id": mia["id"], "kind": "access", "message": "A copy.",
            "received_on": str(received_on),
        })  # fmt: skip
        assert reason in error_fields(assert_problem(refused, 422))["received_on"]
    assert await row_counts(owner_conn) == counts


async def test_an_overdue_request_cannot_be_extended_and_nothing_is_written_or_told(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    """The audit's repro: received 2026-10-01, due 2026-11-01, extended weeks later. GDPR
    art. 12(3) wants the member told of an extension within one month of receipt."""
    mia = await make_member(org)
    request = await submit(org, mia)
    received_at = datetime.now(UTC) - timedelta(days=70)
    due = rules.due_date(received_at.date())
    await owner_conn.execute(
        "UPDATE privacy_requests SET received_at = $2, due_on = $3 WHERE id = $1",
        uuid.UUID(request["id"]), received_at, due,
    )
    url = f"/v1/privacy-requests/{request['id']}"
    counts = await row_counts(owner_conn)

    late = await org.post(f"{url}/extend", {"months": 2, "reason": "complex request"})

    problem = assert_problem(late, 422)
    assert "months" in error_fields(problem)
    assert f"by {due.isoformat()}" in late.text and "too late" in late.text
    assert await row_counts(owner_conn) == counts
    detail = (await org.get(url)).json()
    assert detail["due_on"] == due.isoformat() and detail["overdue"] is True
    assert await mails(owner_conn, org, "request_extended") == []


async def test_an_answer_closes_the_request_once_and_the_member_reads_it(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    mia = await make_member(org)
    request = await submit(org, mia, "inquiry", "Which products see my grades?")
    url = f"/v1/privacy-requests/{request['id']}"

    empty = await org.post(f"{url}/answer", {"answer": "   "})
    answered = await org.post(f"{url}/answer", {"answer": "Only the gradebook does."})
    again = await org.post(f"{url}/reject", {"reason": "Changed my mind."})

    assert "answer" in error_fields(assert_problem(empty, 422))
    assert answered.json()["status"] == "answered" and answered.json()["closed_at"]
    assert_problem(again, 409)
    told = await mails(owner_conn, org, "request_answered")
    assert told[0]["recipients"] == [mia["email"]]
    assert "Only the gradebook does." in told[0]["text"]
    assert "supervisory authority" not in told[0]["text"]  # answered: nothing to complain of
    open_ = await org.get("/v1/privacy-requests", params={"open": "true"})
    assert open_.json()["items"] == []


async def test_a_rejected_member_is_told_they_may_complain_to_a_supervisory_authority(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    """GDPR Art. 12(4): a controller that does not act on a request tells the member of
    the complaint to a supervisory authority and the judicial remedy open to them."""
    mia = await make_member(org)
    request = await submit(org, mia, "erasure", "Delete my photos.")
    rejected = await org.post(
        f"/v1/privacy-requests/{request['id']}/reject", {"reason": "They are under legal hold."}
    )
    assert rejected.status_code == 200, rejected.text
    told = await mails(owner_conn, org, "request_answered")
    for part in ("text", "html"):
        assert "complaint with a data protection supervisory authority" in told[0][part]
        assert "judicial remedy" in told[0][part]


async def test_bad_filters_and_bodies_are_refused_naming_the_field(org: OrgHandle) -> None:
    mia = await make_member(org)
    request = await submit(org, mia)
    url = f"/v1/privacy-requests/{request['id']}"

    cases = [
        (await org.get("/v1/privacy-requests", params={"sort": "nonsense"}), "sort"),
        (await org.get("/v1/privacy-requests", params={"status": "lost"}), "query.status"),
        (await org.post(f"{url}/extend", {"months": 3, "reason": "x"}), "months"),
        (await org.post(f"{url}/extend", {"months": 1}), "reason"),
        (await org.post("/v1/privacy-requests", {"member_id": mia["id"], "kind": "gossip",
                                                 "message": "x"}), "kind"),
        (await org.put("/v1/privacy-request-policy", json={"reminder_days": 90}),
         "reminder_days"),
    ]
    for response, field in cases:
        assert field in error_fields(assert_problem(response, 422)), response.text


async def test_the_reminder_is_queued_days_before_the_deadline_and_emails_the_assignee(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    policy = await org.put("/v1/privacy-request-policy", json={"reminder_days": 5})
    assert policy.status_code == 200, policy.text
    mia, olivia = await make_member(org), await officer(org)
    request = await submit(org, mia)
    await org.post(f"/v1/privacy-requests/{request['id']}/assign", {"assignee_id": olivia["id"]})

    job = await owner_conn.fetchrow(
        "SELECT run_at, payload FROM jobs WHERE kind = 'privacy_request.reminder'"
    )
    due = date.fromisoformat(request["due_on"])
    assert job["run_at"] == datetime.combine(due - timedelta(days=5), rules.REMINDER_TIME)
    assert await mails(owner_conn, org, "deadline_approaching") == []

    await run_jobs(ahead=timedelta(days=40))

    reminded = await mails(owner_conn, org, "deadline_approaching")
    assert [m["recipients"] for m in reminded] == [[olivia["email"]]]
    assert mia["name"] in reminded[0]["text"]


async def test_a_reminder_for_an_answered_request_sends_nothing(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    mia = await make_member(org)
    await officer(org)
    request = await submit(org, mia)
    await org.post(f"/v1/privacy-requests/{request['id']}/answer", {"answer": "Done."})

    await run_jobs(ahead=timedelta(days=40))

    assert await mails(owner_conn, org, "deadline_approaching") == []


async def test_the_queue_lists_overdue_requests_soonest_due_first(org: OrgHandle) -> None:
    mia = await make_member(org)
    first, second, third = [await submit(org, mia) for _ in range(3)]
    async with db.tenant_transaction(org.id):
        today = datetime.now(UTC).date()
        for request, days_ago in ((first, 3), (second, 10)):
            await PrivacyRequest.filter(id=request["id"]).update(
                due_on=today - timedelta(days=days_ago)
            )

    overdue = await org.get("/v1/privacy-requests", params={"overdue": "true"})
    page = await org.get("/v1/privacy-requests", params={"limit": 1})
    after = await org.get("/v1/privacy-requests",
                          params={"limit": 5, "cursor": page.json()["next_cursor"]})

    assert [r["id"] for r in overdue.json()["items"]] == [second["id"], first["id"]]
    assert overdue.json()["items"][0]["days_left"] == -10
    assert overdue.json()["items"][0]["overdue"] is True
    assert [r["id"] for r in page.json()["items"] + after.json()["items"]] == [
        second["id"], first["id"], third["id"]
    ]


async def test_an_unassigned_requests_reminder_goes_to_every_privacy_officer(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    mia = await make_member(org)
    olivia, otto = await officer(org), await officer(org, "Otto Officer")
    admin = await make_member(org, name="Ada Admin", roles=["admin"])
    await make_member(org, name="Helga Helpdesk", roles=["helpdesk"])
    await submit(org, mia)

    await run_jobs(ahead=timedelta(days=40))

    [reminded] = await mails(owner_conn, org, "deadline_approaching")
    # The privacy officers, whom the work is for; not every admin (a request can be about
    # one of them, or about someone they manage).
    assert sorted(reminded["recipients"]) == sorted([olivia["email"], otto["email"]])
    assert admin["email"] not in reminded["recipients"]
