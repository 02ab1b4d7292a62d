"""The departures console and the member's side of a departure, in process (no server):
the preview before starting, refusals beside their fields with nothing written, the
departure's page and its live progress fragment, reinstatement, retries of dead jobs and
deliveries, the policy form, and the account page's "what leaving would mean for you" with
its exports. The browser scenario is in test_departure_browser.py.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from tenants import db
from tests.conftest import OrgHandle, make_member, make_product, row_counts
from tests.departures.support import make_items, run_jobs
from tests.web.flows import (
    PASSWORD,
    WebClient,
    asgi_client,
    audit_events,
    csrf_in,
    set_local_sign_in,
    set_password,
    text_of,
)


def today() -> str:
    """Read at each use: a suite that runs across midnight UTC must not offer yesterday."""
    return datetime.now(UTC).date().isoformat()


PAST_RETENTION = timedelta(days=400)


@pytest.fixture
async def local_org(org: OrgHandle) -> OrgHandle:
    await set_local_sign_in(org.id, True)
    return org


async def person(
    org: OrgHandle, name: str, *, role: str = "member", **fields: Any
) -> dict[str, Any]:
    made = await make_member(org, name=name, roles=[role], **fields)
    await set_password(org.id, made["id"], PASSWORD)
    return made


async def signed_in(browser: WebClient, org: OrgHandle, who: dict[str, Any]) -> str:
    return await browser.signed_in(org.slug, who["email"])


@pytest.fixture
async def world(local_org: OrgHandle) -> dict[str, Any]:
    """Bo (manager) and Lea (leaving), Drive and Mail; Mail's work content is deleted after
    retention; Lea holds 30 Drive and 25 Mail work items (5 under legal hold) and 4 personal
    Drive items."""
    org = local_org
    boss = await make_member(org, name="Bo Boss")
    leaver = await person(org, "Lea Leaver", manager_id=boss["id"])
    drive = await make_product(org, name="Drive")
    mail = await make_product(org, name="Mail")
    response = await org.put(
        "/v1/departure-policy", json={"product_actions": {mail["id"]: "delete"}}
    )
    assert response.status_code == 200, response.text
    await make_items(org, leaver["id"], drive["id"], 30)
    await make_items(org, leaver["id"], mail["id"], 20)
    await make_items(org, leaver["id"], mail["id"], 5, legal_hold=True)
    await make_items(org, leaver["id"], drive["id"], 4, kind="personal", prefix="photo")
    admin = await person(org, "Ada Admin", role="admin")
    return {
        "org": org,
        "boss": boss,
        "leaver": leaver,
        "drive": drive,
        "mail": mail,
        "admin": admin,
    }


def start_form(csrf: str, **fields: str) -> dict[str, str]:
    return {"csrf": csrf, "last_day": today(), "successor": "", "reason": "moving on", **fields}


async def departures_of(conn: asyncpg.Connection, org: OrgHandle) -> list[asyncpg.Record]:
    return list(await conn.fetch("SELECT * FROM departures WHERE tenant_id = $1", org.id))


# --- preview and start -------------------------------------------------------------------


async def test_the_preview_shows_successor_dates_and_totals_and_writes_nothing(
    app: Any, world: dict[str, Any], owner_conn: asyncpg.Connection
) -> None:
    org, leaver = world["org"], world["leaver"]
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, org, world["admin"])
        member_page = await browser.get(f"/console/members/{leaver['id']}")
        assert f'href="/console/members/{leaver["id"]}/departure"' in member_page.text
        form = await browser.get(f"/console/members/{leaver['id']}/departure")
        assert form.status_code == 200
        assert "Default: their manager, Bo Boss" in text_of(form.text)
        # The last day proposed leaves the policy's export window (14 days) as notice.
        proposed = (datetime.now(UTC).date() + timedelta(days=14)).isoformat()
        assert f'name="last_day" type="date" value="{proposed}"' in form.text
        before = await row_counts(owner_conn)
        preview = await browser.post(
            f"/console/members/{leaver['id']}/departure/preview", start_form(csrf)
        )
        assert preview.status_code == 200, preview.text
        text = text_of(preview.text)
        assert "Successor Bo Boss — their manager" in text
        assert f"Last day {today()}" in text
        assert "59 items" in text and "of which 5 kept from deletion by legal hold" in text
        assert "Transferred to the successor 30" in text
        assert "Deleted when retention ends 20" in text
        assert "Kept in the organisation archive 5" in text
        assert "Personal: exportable, then deleted 4" in text
        assert "Drive 34" in text and "Mail 25" in text
        assert "Work content 55" in text and "Personal items 4" in text
        # Notice shorter than the policy's export window is flagged.
        assert "Short notice: the member has 0 days to export personal items" in text
        assert 'class="seg act-transfer w-50"' in preview.text  # 30 of 59 in 5 % steps
        assert "Confirm and start the departure" in text
        # A successor typed but not chosen is refused beside the field, not replaced by
        # the default (the manager took over from the "Grace" an admin had typed).
        typed = await browser.post(
            f"/console/members/{leaver['id']}/departure/preview",
            start_form(csrf, successor_q="Grace"),
        )
        assert typed.status_code == 422, typed.status_code
        said = text_of(typed.text)
        assert "“Grace” is typed but not chosen: choose them from the list" in said
        assert "Confirm and start the departure" not in said
        # As a fragment for htmx: the form and the plan, no page around them.
        fragment = await browser.post(
            f"/console/members/{leaver['id']}/departure/preview",
            start_form(csrf),
            headers={"HX-Request": "true"},
        )
        assert fragment.status_code == 200
        assert "<html" not in fragment.text and 'id="start-departure"' in fragment.text
        assert "Transferred to the successor" in fragment.text
        # htmx puts the plan in the slot, a live region that stays (it replaced the slot,
        # and the button pressed: nothing was announced and the focus was lost), and the
        # fields out of band; the plan's heading can take the focus.
        assert 'hx-target="#start-preview" hx-swap="innerHTML"' in fragment.text
        assert 'hx-select="#start-preview > *" hx-select-oob="#departure-fields"' in fragment.text
        assert '<h2 id="preview-h" class="impact-title" tabindex="-1">' in fragment.text
    assert await row_counts(owner_conn) == before


async def test_a_leaver_without_successor_is_warned_in_the_preview(
    app: Any, local_org: OrgHandle
) -> None:
    loner = await make_member(local_org, name="Lone Leaver")
    drive = await make_product(local_org, name="Drive")
    await make_items(local_org, loner["id"], drive["id"], 3)
    admin = await person(local_org, "Ada Admin", role="admin")
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, local_org, admin)
        preview = await browser.post(
            f"/console/members/{loner['id']}/departure/preview", start_form(csrf)
        )
    assert preview.status_code == 200
    assert '<li class="warning severe" data-code="no_successor">' in preview.text
    text = text_of(preview.text)
    assert "No successor: nobody can receive this member's work content" in text
    assert "Successor Nobody: no active manager and no fallback successor" in text
    assert "Kept in the organisation archive 3" in text


async def test_bad_input_is_refused_beside_its_field_and_changes_nothing(
    app: Any, world: dict[str, Any], owner_conn: asyncpg.Connection
) -> None:
    org, leaver = world["org"], world["leaver"]
    invited = await make_member(org, name="Ivy Invited", status="invited")
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, org, world["admin"])
        before = await row_counts(owner_conn)
        start = f"/console/members/{leaver['id']}/departure"
        past = await browser.post(start, start_form(csrf, last_day="2020-01-01"))
        assert past.status_code == 422
        assert 'aria-invalid="true" aria-describedby="last_day-error"' in past.text
        error = re.search(r'<p class="field-error" id="last_day-error">([^<]*)</p>', past.text)
        assert error and error.group(1).startswith("The last day cannot be in the past.")
        assert 'value="2020-01-01"' in past.text and 'value="moving on"' in past.text
        garbled = await browser.post(start, start_form(csrf, last_day="next friday"))
        assert garbled.status_code == 422
        assert "Enter the last day as a date (YYYY-MM-DD)." in text_of(garbled.text)
        himself = await browser.post(start, start_form(csrf, successor=leaver["id"]))
        assert himself.status_code == 422
        assert 'id="successor-error"' in himself.text
        preview = await browser.post(f"{start}/preview", start_form(csrf, last_day="2020-01-01"))
        assert preview.status_code == 422 and 'id="last_day-error"' in preview.text
        assert "Confirm and start" not in preview.text
        # A member who is not active: the form says so, and starting answers 409.
        page = await browser.get(f"/console/members/{invited['id']}/departure")
        assert "Ivy Invited is invited: only an active member can start a departure." in text_of(
            page.text
        )
        conflict = await browser.post(
            f"/console/members/{invited['id']}/departure", start_form(csrf)
        )
        assert conflict.status_code == 409
        assert '<p class="error-summary" role="alert" id="departure-refusal"' in conflict.text
        assert "Cannot start the departure of a member who is invited" in text_of(conflict.text)
        unknown = await browser.get(f"/console/members/{uuid.uuid4()}/departure")
        assert unknown.status_code == 404
    assert await row_counts(owner_conn) == before
    assert await departures_of(owner_conn, org) == []


async def start_departure(browser: WebClient, csrf: str, leaver: dict[str, Any]) -> str:
    response = await browser.post(f"/console/members/{leaver['id']}/departure", start_form(csrf))
    assert response.status_code == 303, response.text
    match = re.fullmatch(r"/console/departures/([0-9a-f-]{36})", response.headers["location"])
    assert match, response.headers["location"]
    return match.group(1)


async def test_a_started_departure_shows_its_plan_and_its_progress_until_complete(
    app: Any, world: dict[str, Any], owner_conn: asyncpg.Connection
) -> None:
    org, leaver = world["org"], world["leaver"]
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, org, world["admin"])
        departure_id = await start_departure(browser, csrf, leaver)
        page = await browser.get(f"/console/departures/{departure_id}")
        assert page.status_code == 200
        text = text_of(page.text)
        assert f"Departure of Lea Leaver started: their last day is {today()}." in text  # flash
        assert "Departure of Lea Leaver running" in text
        assert "Successor Bo Boss — their manager" in text
        assert "The plan confirmed at the start 59 items" in text
        assert "Transferred to the successor 30" in text
        assert '<progress id="step-transfer-bar" max="59" value="0"' in page.text
        assert "0 of 59 items" in text and "1 of 1 tasks" in text
        assert 'hx-get="/console/departures/' in page.text and 'hx-trigger="every 2s"' in page.text
        # The live region is one status line, outside the card polled every 2 s (the card
        # was live, and was read out again at every poll).
        progress = page.text[page.text.index('<section aria-labelledby="progress-h">'):]
        progress = progress[: progress.index("</section>")]
        assert "aria-live" not in progress and progress.count('role="status"') == 1
        assert '<p id="departure-news" class="progress-status" role="status">' in progress
        assert "Status: running · 1 of 4 steps done; next: " in text
        assert "Departure: started by Ada Admin" in text  # the log
        assert "Reason moving on" in text
        listed = text_of((await browser.get("/console/departures?status=running")).text)
        assert "Lea Leaver running" in listed
        # The current step is the first one not done: suspension, due after the last day.
        assert "End sign-in and suspend product accounts pending" in listed
        assert "No departures completed" in text_of(
            (await browser.get("/console/departures?status=completed")).text
        )

        assert "/progress?seen=running%3A1" in page.text  # one step (the notice) is done
        same = await browser.get(
            f"/console/departures/{departure_id}/progress?seen=running%3A1",
            headers={"HX-Request": "true"},
        )
        assert same.status_code == 200 and "hx-swap-oob" not in same.text  # nothing new
        await run_jobs(ahead=PAST_RETENTION)
        # The page polling with what it shows gets, with the steps, the parts of the page
        # that changed since (it was told to reload, losing the focus and typed text).
        polled = await browser.get(
            f"/console/departures/{departure_id}/progress?seen=running%3A1",
            headers={"HX-Request": "true"},
        )
        assert polled.status_code == 200 and "hx-refresh" not in polled.headers
        assert "<html" not in polled.text and 'id="departure-progress"' in polled.text
        news = re.search(
            r'<p id="departure-news" hx-swap-oob="innerHTML">(.*?)</p>', polled.text, re.S
        )
        assert news and "Status: completed" in text_of(news.group(1))
        assert "4 of 4 steps done" in text_of(news.group(1))
        assert '<span id="departure-badge" class="badge dep-completed" hx-swap-oob="true">' in (
            polled.text
        )
        assert '<ol id="departure-log" class="log card" hx-swap-oob="true">' in polled.text
        assert '<div id="departure-failures" hx-swap-oob="true">' in polled.text
        assert "it can no longer be reinstated" in text_of(polled.text)
        assert 'name="reason"' not in polled.text  # the reason being typed is left alone
        fragment = await browser.get(f"/console/departures/{departure_id}/progress")
        assert fragment.status_code == 200 and "<html" not in fragment.text
        assert "hx-trigger" not in fragment.text  # finished: the page stops asking
        done = text_of(fragment.text)
        assert "59 of 59 items" in done
        assert fragment.text.count('<span class="badge step-done">done</span>') == 4
        completed = text_of((await browser.get("/console/departures?status=completed")).text)
        assert "erased member completed" in completed and "all steps done" in completed
        log = text_of((await browser.get(f"/console/departures/{departure_id}")).text)
        order = [
            log.index(a)
            for a in (
                "Departure: started",
                "Departure: suspend done",
                "Departure: transfer done",
                "Departure: purge done",
            )
        ]
        assert order == sorted(order)  # newest last


async def test_reinstating_cancels_the_departure_and_makes_the_member_active(
    app: Any, world: dict[str, Any], owner_conn: asyncpg.Connection
) -> None:
    org, leaver = world["org"], world["leaver"]
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, org, world["admin"])
        departure_id = await start_departure(browser, csrf, leaver)
        page = await browser.get(f"/console/departures/{departure_id}")
        assert "Reinstate and cancel the departure" in page.text
        asked = await browser.post(
            f"/console/departures/{departure_id}/reinstate", {"csrf": csrf, "reason": "stays"}
        )
        assert asked.status_code == 200  # asks first, naming what it undoes
        shown = text_of(asked.text)
        assert "Reinstate Lea Leaver and cancel the departure?" in shown
        assert "Lea Leaver becomes active again: they can sign in" in shown
        assert re.search(r"The \d+ steps? not yet done (is|are) cancelled\.", shown), shown
        assert "Reason recorded: stays" in shown
        assert (await org.get(f"/v1/members/{leaver['id']}")).json()["status"] == "departing"
        response = await browser.post(
            f"/console/departures/{departure_id}/reinstate",
            {"csrf": csrf, "reason": "stays", "confirmed": "1"},
        )
        assert response.status_code == 303
        landing = await browser.get(response.headers["location"])
        text = text_of(landing.text)
        assert "Lea Leaver is reinstated; the departure is cancelled." in text
        assert "Reinstate and cancel" not in text and "hx-trigger" not in landing.text
        again = await browser.post(
            f"/console/departures/{departure_id}/reinstate", {"csrf": csrf, "reason": "twice"}
        )
        assert again.status_code == 303  # refused, said on the page it came from
        assert "Not done: this departure is cancelled" in text_of(
            (await browser.get(again.headers["location"])).text
        )
    assert (await org.get(f"/v1/members/{leaver['id']}")).json()["status"] == "active"
    [row] = await departures_of(owner_conn, org)
    assert row["status"] == "cancelled"
    [event] = await audit_events(owner_conn, org.id, "departure.cancelled")
    assert event.target_id == departure_id and event.after["reason"] == "stays"
    assert event.actor == f"member:{world['admin']['id']}"


async def test_a_dead_step_and_a_dead_delivery_are_shown_and_retried(
    app: Any, world: dict[str, Any], owner_conn: asyncpg.Connection
) -> None:
    org, leaver = world["org"], world["leaver"]
    await owner_conn.execute(
        "UPDATE products SET webhook_url = 'https://hooks.example/tenantry' WHERE id = $1",
        uuid.UUID(world["drive"]["id"]),
    )
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, org, world["admin"])
        departure_id = await start_departure(browser, csrf, leaver)
        key = f"departure:{departure_id}:"
        job_id = await owner_conn.fetchval(
            "UPDATE jobs SET status = 'dead', attempts = 8, last_error = 'boom: database away' "
            "WHERE key = $1 RETURNING id",
            key + "suspend",
        )
        delivery_id = await owner_conn.fetchval(
            "UPDATE webhook_deliveries SET status = 'dead', attempts = 15, last_status_code = 503, "
            "last_error = 'receiver down' WHERE idempotency_key = $1 RETURNING id",
            key + "notify",
        )
        await owner_conn.execute(
            "UPDATE jobs SET status = 'dead' WHERE key = $1", f"webhook:{delivery_id}"
        )
        page = text_of((await browser.get(f"/console/departures/{departure_id}")).text)
        assert "Steps that ran out of attempts" in page
        assert "departure.suspend 8 boom: database away Retry departure.suspend" in page
        assert "member.departing Drive 15 HTTP 503 receiver down Retry" in page
        jobs_page = text_of((await browser.get("/console/jobs")).text)
        assert "departure.suspend" in jobs_page and "boom: database away" in jobs_page

        retried = await browser.post(
            f"/console/departures/{departure_id}/retry", {"csrf": csrf, "job": str(job_id)}
        )
        assert retried.status_code == 303
        assert "Queued the departure.suspend job again." in text_of(
            (await browser.get(retried.headers["location"])).text
        )
        resent = await browser.post(
            f"/console/departures/{departure_id}/retry",
            {"csrf": csrf, "delivery": str(delivery_id)},
        )
        assert resent.status_code == 303
        # An id that is not this departure's answers like one that does not exist.
        other = await browser.post(
            f"/console/departures/{departure_id}/retry", {"csrf": csrf, "job": str(uuid.uuid4())}
        )
        assert "Not done: this departure has no such job" in text_of(
            (await browser.get(other.headers["location"])).text
        )
        # A job that is not an id is named as such, not taken for a missing delivery.
        garbage = await browser.post(
            f"/console/departures/{departure_id}/retry",
            {"csrf": csrf, "job": "garbage", "delivery": "garbage"},
        )
        assert "Not done: the job to retry is not an id of one" in text_of(
            (await browser.get(garbage.headers["location"])).text
        )
        page = text_of((await browser.get(f"/console/departures/{departure_id}")).text)
        assert "Steps that ran out of attempts" not in page
    job = await owner_conn.fetchrow("SELECT status, attempts FROM jobs WHERE id = $1", job_id)
    assert (job["status"], job["attempts"]) == ("queued", 0)
    delivery = await owner_conn.fetchval(
        "SELECT status FROM webhook_deliveries WHERE id = $1", delivery_id
    )
    assert delivery == "pending"
    retries = await audit_events(owner_conn, org.id, "job.retried")
    assert retries[0].target_id == str(job_id)  # then the delivery's own job
    assert {r.actor for r in retries} == {f"member:{world['admin']['id']}"}
    assert len(await audit_events(owner_conn, org.id, "webhook_delivery.retried")) == 1


async def test_the_background_jobs_page_retries_a_dead_job(
    app: Any, local_org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    admin = await person(local_org, "Ada Admin", role="admin")
    auditor = await person(local_org, "Aud Auditor", role="auditor")
    job_id = await owner_conn.fetchval(
        "INSERT INTO jobs (id, tenant_id, kind, payload, key, status, run_at, attempts, "
        "max_attempts, claims, checkpoint, last_error, created_at, updated_at) VALUES "
        "(gen_random_uuid(), $1, 'mail.send', '{}', 'mail:1', 'dead', now(), 8, 8, 8, '{}', "
        "'SMTP refused', now(), now()) RETURNING id",
        local_org.id,
    )
    async with asgi_client(app) as browser:
        await signed_in(browser, local_org, auditor)
        page = await browser.get("/console/jobs")
        assert "mail.send" in page.text and "SMTP refused" in page.text
        assert "/retry" not in page.text  # auditors read, they do not retry
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, local_org, admin)
        page = text_of((await browser.get("/console/jobs")).text)
        assert "1 out of attempts" in page and "8 of 8 SMTP refused" in page
        response = await browser.post(f"/console/jobs/{job_id}/retry", {"csrf": csrf})
        assert response.status_code == 303
        landing = text_of((await browser.get("/console/jobs")).text)
        assert "Queued the mail.send job again." in landing
        assert "No job is out of attempts." in landing
        again = await browser.post(f"/console/jobs/{job_id}/retry", {"csrf": csrf})
        assert "Not done: only a dead job can be retried" in text_of(
            (await browser.get(again.headers["location"])).text
        )
    assert await owner_conn.fetchval("SELECT status FROM jobs WHERE id = $1", job_id) == "queued"


async def test_the_background_jobs_page_shows_live_workers_and_the_oldest_waiting_job(
    app: Any, local_org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    auditor = await person(local_org, "Aud Auditor", role="auditor")
    live, silent = f"live-{uuid.uuid4().hex[:6]}", f"silent-{uuid.uuid4().hex[:6]}"
    await owner_conn.execute(
        "INSERT INTO workers (name, host, pid, concurrency, running, started_at, heartbeat_at) "
        "VALUES ($1, 'h', 1, 4, 3, now(), now() - interval '2 seconds'), "
        "($2, 'h', 2, 4, 0, now(), now() - interval '5 minutes')",
        live,
        silent,
    )
    try:
        await owner_conn.execute(
            "INSERT INTO jobs (id, tenant_id, kind, payload, key, status, run_at, attempts, "
            "max_attempts, claims, checkpoint, created_at, updated_at) VALUES "
            "(gen_random_uuid(), $1, 'mail.send', '{}', 'mail:old', 'queued', "
            "now() - interval '90 seconds', 0, 8, 0, '{}', now(), now()), "
            "(gen_random_uuid(), $1, 'webhook.deliver', '{}', 'hook:new', 'queued', "
            "now() - interval '5 seconds', 0, 8, 0, '{}', now(), now()), "
            "(gen_random_uuid(), $1, 'departure.purge', '{}', 'purge:later', 'queued', "
            "now() + interval '30 days', 0, 8, 0, '{}', now(), now())",
            local_org.id,
        )
        async with asgi_client(app) as browser:
            await signed_in(browser, local_org, auditor)
            page = text_of((await browser.get("/console/jobs")).text)
        assert re.search(
            r"2 jobs due now; the oldest, mail\.send ?, has waited (9\d|1\d\d) s", page
        )
        # The stat counts the job queued for later too, and says how many are due.
        assert "3 queued, 2 due now" in page
        assert re.search(
            r"\. 1 more job is queued for later; the next is due \d{4}-\d\d-\d\d", page
        )
        assert re.search(rf"{live} 3 of 4 [2-9] s ago Out|{live} 3 of 4 [2-9] s ago {silent}", page)
        assert re.search(rf"{silent} 0 of 4 \d+ s ago not answering", page)
    finally:
        await owner_conn.execute("DELETE FROM workers WHERE name = ANY($1::text[])", [live, silent])


async def test_jobs_queued_only_for_later_are_not_shown_as_waiting_nor_as_nothing(
    app: Any, local_org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    auditor = await person(local_org, "Aud Auditor", role="auditor")
    await owner_conn.execute(
        "INSERT INTO jobs (id, tenant_id, kind, payload, key, status, run_at, attempts, "
        "max_attempts, claims, checkpoint, created_at, updated_at) "
        "SELECT gen_random_uuid(), $1, 'webhook.deliver', '{}', 'hook:' || n, 'queued', "
        "now() + n * interval '1 hour', 1, 8, 0, '{}', now(), now() FROM generate_series(1, 7) n",
        local_org.id,
    )
    async with asgi_client(app) as browser:
        await signed_in(browser, local_org, auditor)
        page = text_of((await browser.get("/console/jobs")).text)
    assert "7 queued, none due now" in page
    assert re.search(r"None due yet\. 7 jobs are queued for later; the next is due \d{4}-", page)
    assert "No job is waiting" not in page


# --- the policy ---------------------------------------------------------------------------


async def test_the_policy_form_saves_and_refuses_bad_values_beside_their_fields(
    app: Any, world: dict[str, Any], owner_conn: asyncpg.Connection
) -> None:
    org, drive, mail, boss = world["org"], world["drive"], world["mail"], world["boss"]
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, org, world["admin"])
        page = await browser.get("/console/departures/policy")
        assert page.status_code == 200
        assert '<option value="delete" selected>' in page.text  # Mail's override
        form = {
            "csrf": csrf,
            "fallback": boss["id"],
            "default_action": "archive",
            f"product.{drive['id']}": "transfer",
            f"product.{mail['id']}": "",
            "retention_days": "60",
            "export_window_days": "21",
            "personal_outcome": "archive",
        }
        before = await row_counts(owner_conn)
        bad = await browser.post(
            "/console/departures/policy",
            {**form, "retention_days": "-3", "export_window_days": "three weeks"},
        )
        assert bad.status_code == 422
        assert 'id="export_window_days-error">Enter a whole number of days.' in bad.text
        assert 'value="three weeks"' in bad.text  # what was typed stays
        bad = await browser.post("/console/departures/policy", {**form, "retention_days": "-3"})
        assert bad.status_code == 422
        assert 'id="retention_days-error">Must be 0 to 3650.' in bad.text
        assert 'aria-invalid="true" aria-describedby="retention_days-error"' in bad.text
        assert await row_counts(owner_conn) == before
        saved = await browser.post("/console/departures/policy", form)
        assert saved.status_code == 303
        assert "Saved the departure policy." in text_of(
            (await browser.get(saved.headers["location"])).text
        )
    policy = (await org.get("/v1/departure-policy")).json()
    assert policy == {
        "fallback_successor_id": boss["id"],
        "default_action": "archive",
        "product_actions": {drive["id"]: "transfer"},
        "retention_days": 60,
        "export_window_days": 21,
        "personal_outcome": "archive",
        "reinstatement_returns_items": False,
    }
    changes = await audit_events(owner_conn, org.id, "departure_policy.changed")
    assert changes[-1].after["retention_days"] == 60
    assert changes[-1].actor == f"member:{world['admin']['id']}"


# --- the member's side ----------------------------------------------------------------------


async def set_export_urls(org: OrgHandle, prefix: str, url: str, count: int) -> list[uuid.UUID]:
    """Give the first ``count`` items whose external id starts with ``prefix`` an export link."""
    async with db.tenant_transaction(org.id):
        rows = await db.fetch(
            # A statement starting with WITH: the ORM answers a bare UPDATE with a count.
            "WITH picked AS (SELECT id FROM content_items WHERE external_id LIKE $1 "
            "ORDER BY external_id LIMIT $3) UPDATE content_items c SET export_url = $2 || "
            "external_id FROM picked WHERE c.id = picked.id RETURNING c.id",
            prefix + "-%",
            url,
            count,
        )
    return [r["id"] for r in rows]


def personal_item_ids(page: str) -> list[str]:
    return re.findall(r'action="/account/content/([0-9a-f-]{36})/export"', page)


async def test_the_account_page_says_what_leaving_would_mean_and_exports_are_recorded(
    app: Any, world: dict[str, Any], owner_conn: asyncpg.Connection
) -> None:
    org, leaver = world["org"], world["leaver"]
    exportable = await set_export_urls(org, "photo", "https://drive.example/export/", 3)
    other = await person(org, "Oli Other")
    await make_items(org, other["id"], world["drive"]["id"], 1, kind="personal", prefix="oli")
    [oli_item] = await set_export_urls(org, "oli", "https://drive.example/export/", 1)
    work_item = await owner_conn.fetchval(
        "SELECT id FROM content_items WHERE member_id = $1 AND kind = 'organisation' LIMIT 1",
        uuid.UUID(leaver["id"]),
    )
    no_link = await owner_conn.fetchval(
        "SELECT id FROM content_items WHERE member_id = $1 AND kind = 'personal' "
        "AND export_url IS NULL",
        uuid.UUID(leaver["id"]),
    )
    account = await org.post(
        "/v1/product-accounts", {"member_id": leaver["id"], "product_id": world["drive"]["id"]}
    )
    assert account.status_code in (200, 201), account.text
    async with asgi_client(app) as browser:
        await signed_in(browser, org, leaver)
        page = await browser.get("/account")
        assert page.status_code == 200
        text = text_of(page.text)
        assert "What leaving would mean for you Nothing is planned." in text
        # Each product account: when it ends, said once.
        assert re.search(r"Drive ?: your account ends \d{4}-\d\d-\d\d", text)
        assert "last day ends" not in text
        assert "30 items in Drive: handed to Bo Boss (your manager)." in text
        assert "20 items in Mail: deleted on" in text and "30 days after your last day" in text
        assert (
            "5 items in Mail: kept by" in text and "(a legal hold keeps them from deletion)" in text
        )
        assert "4 items in Drive: yours to export until" in text
        # The timeline reads as a sentence; one item would be "it", more are "they".
        assert re.search(r"\d{4}-\d\d-\d\d the last day: export", text)
        assert sorted(personal_item_ids(page.text)) == sorted(str(i) for i in exportable)
        assert "ask Drive to export it" in text
        assert "Export your personal items one by one (4)" in text
        everything = await browser.get("/account/export")
        assert sorted(personal_item_ids(everything.text)) == sorted(str(i) for i in exportable)
        # Some have links, one has none: the page says how to get each (it promised a
        # link for every item, whether the product gave one or not).
        assert 'An "Export" button takes you to the product' in text_of(everything.text)
        assert "for the others, ask the product named" in text_of(everything.text)

        item = exportable[0]
        csrf = csrf_in(page.text)
        # A link any site could open recorded an export: it takes the session's form.
        assert (await browser.get(f"/account/content/{item}/export")).status_code == 405
        forged = await browser.post(f"/account/content/{item}/export", {"csrf": "forged"})
        assert forged.status_code == 403
        exported = await browser.post(f"/account/content/{item}/export", {"csrf": csrf})
        assert exported.status_code == 200
        location = re.search(r'<a class="button" href="([^"]+)">Continue to Drive', exported.text)
        assert location is not None and f'content="0; url={location[1]}"' in exported.text
        location = location[1]
        assert location.startswith("https://drive.example/export/photo-")
        # Refused back on the page the member was on, the reason beside it.
        for forbidden, said in (
            (oli_item, f"Not done: you have no personal item with id {oli_item}"),
            (work_item, f"Not done: you have no personal item with id {work_item}"),
            (stranger := uuid.uuid4(), f"Not done: you have no personal item with id {stranger}"),
            ("not-an-id", "Not done: you have no such personal item"),
            (no_link, "ask the product to export it for you"),
        ):
            refused = await browser.post(
                f"/account/content/{forbidden}/export", {"csrf": csrf},
                headers={"referer": "/account/export"},
            )
            assert refused.status_code == 303, forbidden
            back = await browser.get(refused.headers["location"])
            assert said in text_of(back.text), (forbidden, text_of(back.text)[:300])
    [event] = await audit_events(owner_conn, org.id, "content.exported")
    assert event.target_id == str(item) and event.actor == f"member:{leaver['id']}"
    assert event.after["member_id"] == leaver["id"] and event.after["export_url"] == location


async def test_a_departing_member_sees_their_real_last_day_and_export_deadline(
    app: Any, world: dict[str, Any]
) -> None:
    org, leaver = world["org"], world["leaver"]
    last_day = (datetime.now(UTC).date() + timedelta(days=3)).isoformat()
    response = await org.post(
        "/v1/departures",
        {"member_id": leaver["id"], "last_day": last_day, "successor_id": world["admin"]["id"]},
    )
    assert response.status_code == 201, response.text
    export_until = response.json()["export_until"][:10]
    async with asgi_client(app) as browser:
        await signed_in(browser, org, leaver)
        text = text_of((await browser.get("/account")).text)
    assert f"You are leaving {org.slug.title()}: your last day is {last_day}." in text
    assert (
        f"You are leaving {org.slug.title()} Your last day is {last_day} . "
        f"You can export your personal items until {export_until} 00:00 UTC"
    ) in text
    assert "30 items in Drive: handed to Ada Admin." in text
    assert "Ada Admin is chosen for this departure and receives your work content." in text
