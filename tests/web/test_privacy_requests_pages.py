"""Privacy requests on the web, in process: a member sends one from the account page and
follows it; the privacy officer works it in the console queue (deadline badges, internal
notes the member never sees, extension told to the member, the answer); the export is
downloaded through its signed link by that member only."""

from __future__ import annotations

import io
import re
import uuid
import zipfile
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest

from tests.conftest import OrgHandle, make_member
from tests.requests.support import run_jobs
from tests.web.flows import (
    PASSWORD,
    WebClient,
    asgi_client,
    set_local_sign_in,
    set_password,
    text_of,
    title_of,
)


@pytest.fixture
async def local_org(org: OrgHandle) -> OrgHandle:
    await set_local_sign_in(org.id, True)
    return org


async def person(org: OrgHandle, name: str, roles: list[str] | None = None) -> dict[str, Any]:
    made = await make_member(org, name=name, roles=roles or ["member"])
    await set_password(org.id, made["id"], PASSWORD)
    return made


async def sign_in(browser: WebClient, org: OrgHandle, who: dict[str, Any]) -> str:
    return await browser.signed_in(org.slug, who["email"])


async def send_request(browser: WebClient, csrf: str, kind: str, message: str) -> str:
    sent = await browser.post(
        "/account/privacy-requests", {"csrf": csrf, "kind": kind, "message": message}
    )
    assert sent.status_code == 303, sent.text
    location = sent.headers["location"]
    assert location.startswith("/account/privacy-requests/"), location
    return location.rsplit("/", 1)[-1]


async def test_a_member_sends_a_request_and_follows_it_while_the_officer_works_on_it(
    app: Any, local_org: OrgHandle
) -> None:
    mia = await person(local_org, "Mia Member")
    olivia = await person(local_org, "Olivia Officer", ["privacy_officer"])
    async with asgi_client(app) as member, asgi_client(app) as officer:
        csrf = await sign_in(member, local_org, mia)
        request_id = await send_request(
            member, csrf, "rectification", "My surname is misspelt everywhere."
        )
        status = text_of((await member.get(f"/account/privacy-requests/{request_id}")).text)
        assert "Sent." in status and "Rectification: correct your data" in status
        assert "due in" in status and "Request received" in status

        officer_csrf = await sign_in(officer, local_org, olivia)
        queue = await officer.get("/console/privacy-requests")
        assert queue.status_code == 200
        assert "Mia Member" in queue.text and 'class="deadline ok"' in queue.text
        # The privacy team reads the kind as about the member's data, not "your" data.
        assert "Rectification: correct their data" in text_of(queue.text)
        assert "correct your data" not in text_of(queue.text)
        page = f"/console/privacy-requests/{request_id}"
        heading = text_of((await officer.get(page)).text)
        assert "Rectification: correct their data" in heading
        for path, form in (
            ("assign", {"assignee_id": olivia["id"]}),
            ("notes", {"text": "Check the spelling in the HR export too."}),
            ("extend", {"months": "1", "reason": "Three products store your name."}),
            # Closing asks first (its own test): confirmed here.
            (
                "close",
                {"outcome": "answer", "answer": "Corrected in every product.", "confirmed": "1"},
            ),
        ):
            done = await officer.post(f"{page}/{path}", {"csrf": officer_csrf, **form})
            assert done.status_code == 303 and done.headers["location"] == page, (path, done.text)
        console = text_of((await officer.get(page)).text)
        assert "Check the spelling in the HR export too." in console
        assert "internal: the member does not see this" in console

        seen = text_of((await member.get(f"/account/privacy-requests/{request_id}")).text)
        assert "Corrected in every product." in seen
        assert "Deadline extended" in seen and "Three products store your name." in seen
        assert "HR export" not in seen and "Assigned" not in seen
        home = text_of((await member.get("/account")).text)
        assert "Your privacy requests" in home and "Answered" in home


async def test_the_export_downloads_through_its_signed_link_for_its_member_only(
    app: Any, local_org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    mia, max_ = await person(local_org, "Mia Member"), await person(local_org, "Max Member")
    async with asgi_client(app) as member, asgi_client(app) as other:
        csrf = await sign_in(member, local_org, mia)
        request_id = await send_request(member, csrf, "access", "A copy of my data, please.")
        started = await local_org.post(f"/v1/privacy-requests/{request_id}/export")
        assert started.status_code == 202, started.text
        waiting = text_of((await member.get(f"/account/privacy-requests/{request_id}")).text)
        assert "being collected" in waiting
        await run_jobs()

        page = (await member.get(f"/account/privacy-requests/{request_id}")).text
        match = re.search(r'href="(/account/privacy-requests/[^"]+/export\?[^"]+)"', page)
        assert match, page
        link = match.group(1).replace("&amp;", "&")
        download = await member.get(link)
        assert download.status_code == 200, download.text
        assert download.headers["content-type"] == "application/zip"
        archive = zipfile.ZipFile(io.BytesIO(download.content))
        assert "README.txt" in archive.namelist()

        await sign_in(other, local_org, max_)
        assert (await other.get(link)).status_code == 404  # not Max's request at all
        query = dict(p.split("=", 1) for p in urlsplit(link).query.split("&"))
        forged = link.replace(query["sig"], "A" * len(query["sig"]))
        assert (await member.get(forged)).status_code == 403
        later = link.replace(f"expires={query['expires']}", f"expires={int(query['expires']) + 1}")
        assert (await member.get(later)).status_code == 403
    downloads = await owner_conn.fetchval(
        "SELECT count(*) FROM audit_events WHERE action = 'privacy_request.export_downloaded' "
        "AND target_id = $1",
        request_id,
    )
    assert downloads == 1


async def test_a_member_cannot_open_or_withdraw_another_members_request(
    app: Any, local_org: OrgHandle
) -> None:
    mia, max_ = await person(local_org, "Mia Member"), await person(local_org, "Max Member")
    async with asgi_client(app) as member, asgi_client(app) as other:
        csrf = await sign_in(member, local_org, mia)
        request_id = await send_request(member, csrf, "erasure", "Delete my photos.")
        other_csrf = await sign_in(other, local_org, max_)

        assert (await other.get(f"/account/privacy-requests/{request_id}")).status_code == 404
        for form in ({"csrf": other_csrf}, {"csrf": other_csrf, "confirmed": "1"}):
            await other.post(f"/account/privacy-requests/{request_id}/withdraw", form)
        assert (await other.get(f"/account/privacy-requests/{uuid.uuid4()}")).status_code == 404
        console = await other.get("/console/privacy-requests")
        assert console.status_code == 403

        still = text_of((await member.get(f"/account/privacy-requests/{request_id}")).text)
        assert "Received" in still and "Withdrawn" not in still
        withdraw = f"/account/privacy-requests/{request_id}/withdraw"
        # It asks first, on an account page (not the console's), and asking changes nothing.
        asked = await member.post(withdraw, {"csrf": csrf})
        assert asked.status_code == 200, asked.text[:300]
        shown = text_of(asked.text)
        assert "Withdraw your request?" in shown and "cannot be reopened" in shown
        assert "your account" in shown and "Members" not in shown
        still = text_of((await member.get(f"/account/privacy-requests/{request_id}")).text)
        assert "Withdrawn" not in still
        withdrawn = await member.post(withdraw, {"csrf": csrf, "confirmed": "1"})
        assert withdrawn.status_code == 303
        after = (await member.get(f"/account/privacy-requests/{request_id}")).text
        assert "Withdrawn" in text_of(after) and 'role="alert"' not in after
        # A refusal on this page is an alert, not a status styled as success (WCAG 4.1.3).
        again = await member.post(withdraw, {"csrf": csrf, "confirmed": "1"})
        refused = (await member.get(again.headers["location"])).text
        assert 'class="banner flash error-banner" role="alert">Not done' in refused


async def test_an_empty_message_is_refused_and_nothing_is_sent(
    app: Any, local_org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    mia = await person(local_org, "Mia Member")
    async with asgi_client(app) as member:
        csrf = await sign_in(member, local_org, mia)
        for blank in ("   ", " \u200b \ufeff "):  # spaces, or characters that show nothing
            refused = await member.post(
                "/account/privacy-requests",
                {"csrf": csrf, "kind": "rectification", "message": blank},
                headers={"referer": "/account/privacy-requests"},
            )
            assert refused.status_code == 303
            shown = text_of((await member.get(refused.headers["location"])).text)
            assert "Not done" in shown and "message" in shown
    assert await owner_conn.fetchval("SELECT count(*) FROM privacy_requests") == 0


async def test_running_an_erasure_asks_first_naming_the_account_and_what_goes(
    app: Any, local_org: OrgHandle
) -> None:
    """An erasure request erases the member, not only their content: the form said only
    "Erase the member's content" and an officer purged an active colleague unawares."""
    mia = await person(local_org, "Mia Member")
    olivia = await person(local_org, "Olivia Officer", ["privacy_officer"])
    async with asgi_client(app) as member, asgi_client(app) as officer:
        mia_csrf = await sign_in(member, local_org, mia)
        request_id = await send_request(member, mia_csrf, "erasure", "Please delete my data.")
        await send_request(member, mia_csrf, "access", "And a copy of it first.")
        csrf = await sign_in(officer, local_org, olivia)
        action = f"/console/privacy-requests/{request_id}/erasure"
        page = (await officer.get(f"/console/privacy-requests/{request_id}")).text
        assert "Erase the member" in page and "they can no longer sign in" in page
        # The title names the request and whose it is (it said "Privacy request" alone).
        assert title_of(page).startswith("Erasure: delete their data · Mia Member · ")
        asked = await officer.post(action, {"csrf": csrf, "kind_personal": "on"})
        assert asked.status_code == 200, asked.text[:500]
        # The confirmation's title is its question (every one was titled "Confirm").
        assert title_of(asked.text).startswith(f"Erase Mia Member ({mia['email']})? · ")
        shown = text_of(asked.text)
        assert f"Erase Mia Member ({mia['email']})?" in shown
        assert "they can no longer sign in" in shown and "0 product accounts are removed" in shown
        assert "0 personal items are deleted in the products" in shown
        assert "This cannot be undone." in shown
        assert "emailed, one last time, what was erased and what is kept" in shown
        # Nothing can be delivered for her other requests afterwards: named before.
        assert "Their other open requests (" in shown and "can no longer be delivered" in shown
        assert 'name="confirmed" value="1"' in asked.text
        # Asking erased nothing: the member still signs in.
        assert (await member.get("/account")).status_code == 200
        nothing = await officer.post(action, {"csrf": csrf, "confirmed": "1"})
        assert nothing.status_code == 303  # no kind chosen: refused beside the field
        assert (await member.get("/account")).status_code == 200
        done = await officer.post(action, {"csrf": csrf, "kind_personal": "on", "confirmed": "1"})
        assert done.status_code == 303
        assert "Erased 0 items" in text_of((await officer.get(done.headers["location"])).text)

        # Erased: the request page offers no second erasure nor an export, and says why;
        # a form sent from a page shown before is refused, and the answer is not emailed.
        page = text_of((await officer.get(f"/console/privacy-requests/{request_id}")).text)
        assert "The member is erased: nothing of theirs is left to export or erase" in page
        assert "Run erasure…" not in page and "Build export" not in page
        for path, form in (
            (action, {"csrf": csrf, "kind_personal": "on"}),
            (f"/console/privacy-requests/{request_id}/export", {"csrf": csrf}),
        ):
            again = await officer.post(path, form)
            assert again.status_code == 303
            assert "member was erased" in text_of(
                (await officer.get(again.headers["location"])).text
            )
        answer = {"csrf": csrf, "outcome": "answer", "answer": "Your data is erased."}
        asked = text_of(
            (await officer.post(f"/console/privacy-requests/{request_id}/close", answer)).text
        )
        # Not "the member is emailed at once": nothing reaches an erased member.
        assert (
            "The member is erased: your text is kept on the request's record and reaches no one"
            in asked
        )
        assert "emailed at once" not in asked
        closed = await officer.post(
            f"/console/privacy-requests/{request_id}/close", {**answer, "confirmed": "1"}
        )
        assert "the member is erased, so no email was sent; the answer is on record" in (
            text_of((await officer.get(closed.headers["location"])).text)
        )
    erased = await local_org.get(f"/v1/members/{mia['id']}")
    assert erased.json()["status"] == "purged"
    owner = await person(local_org, "Owen Owner", ["owner"])
    async with asgi_client(app) as console:
        await sign_in(console, local_org, owner)
        page = (await console.get(f"/console/members/{mia['id']}")).text
    assert "This member was erased" in page and "nothing here can be changed" in page
    for form in ("Save details", "Save roles", "Sign out everywhere", "Product accounts"):
        assert form not in page, form


@pytest.mark.parametrize("kind", ["erasure", "access"])
async def test_closing_a_request_asks_first_and_warns_when_no_erasure_was_run(
    app: Any, local_org: OrgHandle, owner_conn: asyncpg.Connection, kind: str
) -> None:
    """An officer answered "Your chat history was deleted" to an erasure request for which
    no erasure had run, and the member was told so at once, for good."""
    mia = await person(local_org, "Mia Member")
    olivia = await person(local_org, "Olivia Officer", ["privacy_officer"])
    async with asgi_client(app) as member, asgi_client(app) as officer:
        request_id = await send_request(
            member, await sign_in(member, local_org, mia), kind, "Please see to my data."
        )
        csrf = await sign_in(officer, local_org, olivia)
        close = f"/console/privacy-requests/{request_id}/close"
        form = {"csrf": csrf, "outcome": "answer", "answer": "Your chat history was deleted."}
        asked = await officer.post(close, form)
        assert asked.status_code == 200, asked.text[:500]
        shown = text_of(asked.text)
        assert "Send this answer and close the request?" in shown
        assert "closed for good" in shown
        assert ("No erasure was run for this erasure request" in shown) == (kind == "erasure")
        # An access request answered with no export built: the member gets no data.
        assert ("No export of the member's data is ready" in shown) == (kind == "access")
        status = "SELECT status FROM privacy_requests WHERE id = $1"
        assert await owner_conn.fetchval(status, uuid.UUID(request_id)) == "received"
        done = await officer.post(close, {**form, "confirmed": "1"})
        assert done.status_code == 303
        assert await owner_conn.fetchval(status, uuid.UUID(request_id)) == "answered"
        # A stale form of the same request is refused, not asked about again.
        again = await officer.post(close, {**form, "outcome": "reject"})
        assert again.status_code == 303
        said = text_of((await officer.get(again.headers["location"])).text)
        assert "this request is answered, which closed it: it can no longer be rejected" in said
