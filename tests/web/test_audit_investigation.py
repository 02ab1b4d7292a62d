"""Investigating the audit log: filters by actor, action prefix, target, dates and
outcome; changes shown as "field: before → after" with names linked; the filtered events
exported as CSV and NDJSON from the console and the API (formula cells neutralised)."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from tenants import db
from tenants.audit import service as audit
from tenants.audit.sealer import seal_all
from tenants.jobs.worker import Worker
from tests.conftest import OrgHandle, make_member, make_product, make_unit
from tests.web.flows import PASSWORD, asgi_client, set_local_sign_in, set_password, text_of


async def test_filters_readable_changes_and_exports_in_the_console(
    app: Any, org: OrgHandle
) -> None:
    await set_local_sign_in(org.id, True)
    owner = await make_member(org, name="Owen Owner", email="owen@example.org", roles=["owner"])
    await set_password(org.id, owner["id"], PASSWORD)
    sales = await make_unit(org, "Sales")
    subject = await make_member(org, name="=cmd|' /C calc'!A0", email="subject@example.org")
    assert (
        await org.post(f"/v1/members/{subject['id']}/move", {"unit_id": sales["id"]})
    ).status_code == 200
    async with asgi_client(app) as browser:
        await browser.password_sign_in(org.slug, owner["email"], PASSWORD)
        csrf = await browser.csrf_of("/console/members")
        renamed = await browser.post(
            f"/console/members/{subject['id']}/details",
            {"csrf": csrf, "name": "Sam Subject", "email": "subject@example.org"},
        )
        assert renamed.status_code == 303
        page = await browser.get(
            "/console/audit", params={"actor": "owen@example.org", "action": "member."}
        )
        assert page.status_code == 200
        text = text_of(page.text)
        # Only the owner's member events: the rename, not the API's move or creations.
        assert "member.updated" in text and "member.moved" not in text
        assert "Member: updated member.updated" in text  # in words, its code beside them
        assert "name : =cmd|' /C calc'!A0 → Sam Subject" in text
        assert f'href="/console/members/{subject["id"]}">Sam Subject</a>' in page.text
        assert f'href="/console/members/{owner["id"]}">Owen Owner</a>' in page.text
        assert "<details><summary>Raw JSON" in page.text
        # The action field suggests the organisation's own actions, in words.
        assert '<option value="member.moved" label="Member: moved"></option>' in page.text
        assert 'list="known-actions"' in page.text
        moved = text_of(
            (await browser.get("/console/audit", params={"action": "member.moved"})).text
        )
        assert "unit_id : Org" in moved and "→ Sales" in moved
        tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
        later = text_of((await browser.get("/console/audit", params={"since": tomorrow})).text)
        assert "No events match." in later
        bad = await browser.get(
            "/console/audit", params={"since": "last week", "actor": "x@nowhere.example"}
        )
        assert "From: is not a date (YYYY-MM-DD)" in text_of(bad.text)
        backwards = await browser.get(
            "/console/audit", params={"since": "2026-03-10", "until": "2026-03-09"}
        )
        assert "To: is before From (2026-03-10): nothing can match" in text_of(backwards.text)
        assert 'aria-describedby="until-error"' in backwards.text
        assert "Who: no member has this email" in text_of(bad.text)
        # Who, by the start of a name, as people remember who did it.
        by_name = text_of((await browser.get("/console/audit", params={"actor": "owen o"})).text)
        assert "member.updated" in by_name and "member.moved" not in by_name
        nobody = text_of((await browser.get("/console/audit", params={"actor": "Zed"})).text)
        assert "Who: no member's name or email starts with this" in nobody
        refused = text_of((await browser.get("/console/audit", params={"outcome": "refused"})).text)
        assert "No events match." in refused

        exported = await browser.get(
            "/console/audit/export", params={"format": "csv", "action": "member.updated"}
        )
        assert exported.status_code == 200 and exported.headers["content-type"].startswith(
            "text/csv"
        )
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        assert [r["action"] for r in rows] == ["member.updated"]
        assert json.loads(rows[0]["before"]) == {"name": "=cmd|' /C calc'!A0"}
        assert rows[0]["actor_display"] == "Owen Owner <owen@example.org>"
        lines = (
            await browser.get(
                "/console/audit/export", params={"format": "ndjson", "action": "member."}
            )
        ).text.splitlines()
        events = [json.loads(line) for line in lines]
        assert {e["action"] for e in events} == {"member.created", "member.moved", "member.updated"}


async def test_a_wrong_filter_offers_no_export_and_the_export_refuses_it_naming_why(
    app: Any, org: OrgHandle
) -> None:
    """/console/audit?since=2026-12-32&action=member. said "From: is not a date" and
    offered an export of every member. event; a date the browser's date input would not
    send (ISO week or basic form) is not a date either."""
    await set_local_sign_in(org.id, True)
    owner = await make_member(org, name="Owen Owner", roles=["owner"])
    await set_password(org.id, owner["id"], PASSWORD)
    await make_member(org)
    async with asgi_client(app) as browser:
        await browser.password_sign_in(org.slug, owner["email"], PASSWORD)
        for since in ("2026-12-32", "2026-W51-1", "20261214"):
            filters = {"since": since, "action": "member."}
            page = await browser.get("/console/audit", params=filters)
            assert page.status_code == 200
            assert "From: is not a date" in text_of(page.text), since
            assert "/console/audit/export" not in page.text, since
            assert "Correct the filters above to export" in text_of(page.text)
            exported = await browser.get(
                "/console/audit/export", params={**filters, "format": "csv"}
            )
            assert exported.status_code == 400, since
            assert exported.headers["content-type"].startswith("text/html")
            assert "Nothing was exported" in text_of(exported.text)
            assert "From: is not a date" in text_of(exported.text)
        fine = await browser.get("/console/audit", params={"since": "2026-01-01"})
        assert "/console/audit/export?since=2026-01-01" in fine.text


async def test_the_api_filters_by_prefix_and_streams_csv_and_ndjson(org: OrgHandle) -> None:
    member = await make_member(org, name="@SUM(1+1)")
    await org.post(f"/v1/members/{member['id']}/transitions", {"action": "suspend"})
    page = (await org.get("/v1/audit-events", params={"action": "member."})).json()
    assert {e["action"] for e in page["items"]} == {"member.created", "member.suspend"}
    # Without a dot it is the start of the action, as people type it ("member", "departure").
    bare = (await org.get("/v1/audit-events", params={"action": "member"})).json()
    assert [e["id"] for e in bare["items"]] == [e["id"] for e in page["items"]]
    capital = (await org.get("/v1/audit-events", params={"action": "Member"})).json()
    assert [e["id"] for e in capital["items"]] == [e["id"] for e in page["items"]]
    partial = (await org.get("/v1/audit-events", params={"action": "mem"})).json()
    assert {e["action"] for e in partial["items"]} == {"member.created", "member.suspend"}
    exact = (await org.get("/v1/audit-events", params={"action": "member.suspend"})).json()
    assert [e["action"] for e in exact["items"]] == ["member.suspend"]
    exported = await org.get("/v1/audit-events", params={"action": "member.", "format": "csv"})
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["action"] for r in rows] == ["member.suspend", "member.created"]
    created = rows[1]
    assert json.loads(created["after"])["name"] == "@SUM(1+1)"  # JSON cell starts with {
    ndjson = await org.get(
        "/v1/audit-events",
        params={"target_type": "member", "target_id": member["id"], "format": "ndjson"},
    )
    assert ndjson.headers["content-type"].startswith("application/x-ndjson")
    assert [json.loads(x)["action"] for x in ndjson.text.splitlines()] == [
        "member.suspend",
        "member.created",
    ]
    wrong = await org.get("/v1/audit-events", params={"format": "xlsx"})
    assert wrong.status_code == 422
    backwards = await org.get(
        "/v1/audit-events",
        params={"since": "2026-03-10T00:00:00Z", "until": "2026-03-09T00:00:00Z"},
    )
    assert backwards.status_code == 422, backwards.text
    assert [e["field"] for e in backwards.json()["errors"]] == ["query.until"]


async def test_an_event_is_named_by_the_number_its_row_shows(
    app: Any, two_orgs: tuple[OrgHandle, OrgHandle]
) -> None:
    org, other = two_orgs
    for n in range(3):
        await make_unit(org, f"Numbered {n}")
        await make_unit(other, f"Between {n}")  # event ids are shared by organisations
    await seal_all(wait=True)
    await set_local_sign_in(org.id, True)
    owner = await make_member(org, name="Nia Numbers", roles=["owner"])
    await set_password(org.id, owner["id"], PASSWORD)
    async with asgi_client(app) as browser:
        await browser.password_sign_in(org.slug, owner["email"], PASSWORD)
        page = (await browser.get("/console/audit", params={"action": "unit."})).text
    rows = re.findall(r"<tr><td>(\d+)</td>.*?of event ([^<]+)</span>", page, flags=re.S)
    assert len(rows) >= 3  # the three, and the root unit's creation
    assert all(shown == named for shown, named in rows), rows


async def test_an_auditor_verifies_the_chain_from_the_console_and_watches_it_run(
    app: Any, org: OrgHandle
) -> None:
    """Reading roles may verify (it checks and records, nothing else): a button, progress
    polled while the worker walks the chain, then the finding on the page."""
    await set_local_sign_in(org.id, True)
    auditor = await make_member(org, name="Ann Auditor", roles=["auditor"])
    await set_password(org.id, auditor["id"], PASSWORD)
    for i in range(3):
        await make_member(org, name=f"Person {i}")
    await seal_all(wait=True)
    async with asgi_client(app) as browser:
        await browser.password_sign_in(org.slug, auditor["email"], PASSWORD)
        page = text_of((await browser.get("/console/audit")).text)
        assert "Not verified from the console yet." in page and "Verify the chain now" in page
        csrf = await browser.csrf_of("/console/audit")
        started = await browser.post("/console/audit/verify", {"csrf": csrf})
        assert started.headers["location"] == "/console/audit#verification"
        page = (await browser.get(started.headers["location"])).text
        assert "Verification started; its progress is below." in text_of(page)
        assert 'hx-get="/console/audit/verification" hx-trigger="every 2s"' in page
        assert re.search(
            r"Verifying, asked by Ann Auditor <[^>]+>: 0 of 0 events checked", text_of(page)
        )
        assert "Verify the chain now" not in text_of(page)  # one at a time
        assert '<p id="verification-news" class="sr-only" role="status"></p>' in page
        assert page.index('id="verification-news"') < page.index('<section id="verification"')

        await Worker(concurrency=1).run_until_idle()
        card = await browser.get("/console/audit/verification", headers={"HX-Request": "true"})
        shown = text_of(card.text)
        assert "<html" not in card.text and "hx-trigger" not in card.text  # done: no more polling
        assert re.search(r"intact .*: the \d+ events up to event \d+ were checked", shown), shown
        # The card is replaced, so its new lines need not be read out: the finding is put
        # in the page's live region, which stays where it is (out of band).
        assert re.search(
            r'<p id="verification-news" hx-swap-oob="innerHTML">Chain verification finished: '
            r"intact, \d+ events checked\.</p>",
            card.text,
        ), card.text
        assert "Verify the chain now" in shown
    async with db.tenant_transaction(org.id):
        [event] = await audit.list_events(
            audit.AuditFilter(action="audit.verified"), before_id=None, limit=5
        )
    assert event["actor_display"] == "the audit chain verification"
    assert event["after"]["intact"] is True
    # The asker by reference (their name is looked up when shown): an erasure of them
    # leaves no name behind in the log.
    assert event["after"]["requested_by"] == f"member:{auditor['id']}"


async def test_people_a_departure_or_a_grant_names_are_shown_by_name(
    app: Any, org: OrgHandle
) -> None:
    """A successor, the admin a grant is for, who decided: linked names, not bare ids."""
    from tenants.actors import system_actor

    await set_local_sign_in(org.id, True)
    owner = await make_member(org, name="Owen Owner", email="owen@example.org", roles=["owner"])
    await set_password(org.id, owner["id"], PASSWORD)
    heir = await make_member(org, name="Hana Heir")
    boss = await make_member(org, name="Dora Decider")
    mail = await make_product(org, name="Mailbox")
    async with db.tenant_transaction(org.id):
        await audit.record(
            "departure.started",
            "departure",
            "d-1",
            actor=system_actor("tests"),
            after={
                "successor_id": heir["id"],
                "decided_by_id": boss["id"],
                "product_id": mail["id"],
            },
        )
        await audit.record(
            "product.renamed",
            "product",
            mail["id"],
            actor=system_actor("tests"),
            after={"name": "Mailbox"},
        )
        await audit.record(
            "product.updated",
            "product",
            mail["id"],
            actor=system_actor("tests"),
            before={"support_url": "https://help.example.org"},
            after={},
        )
    async with asgi_client(app) as browser:
        await browser.password_sign_in(org.slug, owner["email"], PASSWORD)
        page = (await browser.get("/console/audit", params={"action": "departure"})).text
        products = (await browser.get("/console/audit", params={"action": "product"})).text
    assert f'href="/console/members/{heir["id"]}">Hana Heir</a>' in page
    assert f'href="/console/members/{boss["id"]}">Dora Decider</a>' in page
    # Products too, as a value and as a target (their ids were shown bare).
    assert f'href="/console/products/{mail["id"]}/webhooks">Mailbox</a>' in page
    assert f'href="/console/products/{mail["id"]}/webhooks">Mailbox</a>' in products
    # A removed value is struck through, and said in words for those who do not see it.
    assert "support_url : removed, was https://help.example.org" in text_of(products)
    assert "<s>https://help.example.org</s>" in products
    # The table says what it holds.
    assert (
        '<table class="audit">\n  <caption class="sr-only">Audit events matching the filter, '
        "newest first</caption>" in products
    )
