"""Legal holds as an admin's daily work in the console (they were placed through the API
only): a member's items, a hold placed on one with what the member is told and a review
date, the organisation's list of holds, and lifting one, asked first, each step in the
audit log with its reason and the reason never shown to the member."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from tests.conftest import OrgHandle, make_member, make_product
from tests.departures.support import make_items
from tests.web.flows import asgi_client, text_of
from tests.web.test_console_directory import signed_in_admin


async def item_ids(owner_conn: asyncpg.Connection, member_id: str) -> list[uuid.UUID]:
    rows = await owner_conn.fetch(
        "SELECT id FROM content_items WHERE member_id = $1 ORDER BY title", uuid.UUID(member_id)
    )
    return [r["id"] for r in rows]


async def test_an_admin_places_a_hold_from_the_members_items_sees_it_listed_and_lifts_it(
    app: Any, org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    mia = await make_member(org, name="Mia Member")
    drive = await make_product(org, name="Drive")
    await make_items(org, mia["id"], drive["id"], 3, prefix="doc")
    first, *_ = await item_ids(owner_conn, mia["id"])
    review = (datetime.now(UTC).date() + timedelta(days=90)).isoformat()
    async with asgi_client(app) as browser:
        _, csrf = await signed_in_admin(browser, org, roles=["admin"])
        member_page = (await browser.get(f"/console/members/{mia['id']}")).text
        assert f'href="/console/members/{mia["id"]}/content"' in member_page
        items = await browser.get(f"/console/members/{mia['id']}/content")
        assert items.status_code == 200
        shown = text_of(items.text)
        assert "3 items match; showing 3" in shown and "Drive" in shown
        assert f'href="/console/holds/{first}"' in items.text

        # Without a reason: refused beside the field, what was typed kept, nothing held.
        hold = {
            "csrf": csrf,
            "form": "hold",
            "member_text": "Kept for an open claim.",
            "review_on": review,
            "reason": "",
        }
        refused = await browser.post(f"/console/holds/{first}", hold)
        assert refused.status_code == 400
        assert re.search(r'id="hold-reason-error"[^>]*>Reason: why', refused.text)
        assert "Kept for an open claim." in refused.text
        assert (
            await owner_conn.fetchval(
                "SELECT count(*) FROM content_items WHERE legal_hold AND member_id = $1",
                uuid.UUID(mia["id"]),
            )
            == 0
        )

        placed = await browser.post(f"/console/holds/{first}", {**hold, "reason": "Claim 7"})
        assert placed.status_code == 303 and placed.headers["location"] == "/console/holds"
        listed = await browser.get("/console/holds")
        text = text_of(listed.text)
        assert "1 item under hold matches; showing 1" in text
        assert "Mia Member" in text and review in text and "Kept for an open claim." in text
        assert "Claim 7" not in text  # the reason is the audit trail's alone

        # Lifting asks first, naming what follows; the confirmed form lifts the hold.
        asked = await browser.post(
            f"/console/holds/{first}/lift", {"csrf": csrf, "form": "lift", "reason": "Settled"}
        )
        assert asked.status_code == 200
        assert "Lift the legal hold on" in text_of(asked.text)
        assert await owner_conn.fetchval(
            "SELECT legal_hold FROM content_items WHERE id = $1", first
        )
        lifted = await browser.post(
            f"/console/holds/{first}/lift",
            {"csrf": csrf, "form": "lift", "reason": "Settled", "confirmed": "1"},
        )
        assert lifted.status_code == 303
        assert "No item is under legal hold." in text_of((await browser.get("/console/holds")).text)
    logged = await org.get(
        "/v1/audit-events", params={"target_type": "content_item", "target_id": str(first)}
    )
    events = list(reversed(logged.json()["items"]))
    assert [e["action"] for e in events] == ["content.legal_hold_set", "content.legal_hold_lifted"]
    assert [e["after"]["reason"] for e in events] == ["Claim 7", "Settled"]


async def test_a_lift_without_a_reason_is_refused_beside_its_own_field(
    app: Any, org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    mia = await make_member(org, name="Mia Member")
    drive = await make_product(org, name="Drive")
    await make_items(org, mia["id"], drive["id"], 1, legal_hold=True)
    [held] = await item_ids(owner_conn, mia["id"])
    async with asgi_client(app) as browser:
        _, csrf = await signed_in_admin(browser, org, roles=["admin"])
        refused = await browser.post(
            f"/console/holds/{held}/lift",
            {"csrf": csrf, "form": "lift", "reason": " "},
            headers={"referer": f"/console/holds/{held}"},
        )
        assert refused.status_code == 303
        page = (await browser.get(refused.headers["location"])).text
        assert 'id="lift-reason-error"' in page and 'id="hold-reason-error"' not in page
    assert await owner_conn.fetchval("SELECT legal_hold FROM content_items WHERE id = $1", held)


async def test_odd_addresses_of_the_holds_pages_are_refused_readably(
    app: Any, org: OrgHandle, client: Any
) -> None:
    """Ids that are no ids, of nothing, or of another organisation's item; cursors and
    sorts made up: a 404 or 400 page, never a 500, and nothing of the other organisation."""
    from tests.conftest import make_org

    other = await make_org(client)
    stranger = await make_member(other, name="Sam Stranger")
    drive = await make_product(other, name="Drive")
    await make_items(other, stranger["id"], drive["id"], 1, legal_hold=True)
    async with asgi_client(app) as browser:
        _, csrf = await signed_in_admin(browser, org, roles=["admin"])
        foreign = await other.get(f"/v1/members/{stranger['id']}/content")
        foreign_item = foreign.json()["items"][0]["id"]
        for path in (
            "/console/holds/not-an-id",
            f"/console/holds/{uuid.uuid4()}",
            f"/console/holds/{foreign_item}",
            "/console/members/not-an-id/content",
            f"/console/members/{stranger['id']}/content",
        ):
            answer = await browser.get(path)
            assert answer.status_code == 404, (path, answer.status_code)
            assert "Sam Stranger" not in answer.text
        for query, status in (
            ("cursor=garbage", 400),
            ("sort=password", 200),
            ("size=-1", 200),
            ("trail=%00", 400),
        ):
            answer = await browser.get(f"/console/holds?{query}")
            assert answer.status_code == status, (query, answer.status_code)
        lift = await browser.post(
            f"/console/holds/{foreign_item}/lift",
            {"csrf": csrf, "form": "lift", "reason": "x", "confirmed": "1"},
        )
        # Refused as a form is (back to the page with why), and nothing lifted.
        assert lift.status_code == 303, lift.status_code
    still = await other.get(f"/v1/members/{stranger['id']}/content")
    assert still.json()["items"][0]["legal_hold"] is True


async def test_every_mistake_of_the_hold_form_is_named_at_once(
    app: Any, org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    mia = await make_member(org, name="Mia Member")
    drive = await make_product(org, name="Drive")
    await make_items(org, mia["id"], drive["id"], 1)
    [item] = await item_ids(owner_conn, mia["id"])
    async with asgi_client(app) as browser:
        _, csrf = await signed_in_admin(browser, org, roles=["admin"])
        refused = await browser.post(
            f"/console/holds/{item}",
            {
                "csrf": csrf,
                "form": "hold",
                "member_text": "",
                "review_on": "2020-01-01",
                "reason": "r" * 1001,
            },
        )
        assert refused.status_code == 400
        for field, words in (
            ("member_text", "tell the member why"),
            ("review_on", "must be in the future"),
            ("reason", "at most 1000 characters"),
        ):
            assert re.search(f'id="hold-{field}-error"[^>]*>[^<]*{words}', refused.text), field
        assert "What the member is told: tell the member" in text_of(refused.text)


async def test_holds_past_or_without_a_review_date_are_listed_apart_and_named_on_the_overview(
    app: Any, org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    mia = await make_member(org, name="Mia Member")
    drive = await make_product(org, name="Drive")
    await make_items(org, mia["id"], drive["id"], 3, legal_hold=True)
    first, second, third = await item_ids(owner_conn, mia["id"])
    past = datetime.now(UTC).date() - timedelta(days=3)
    future = datetime.now(UTC).date() + timedelta(days=30)
    await owner_conn.execute(
        "UPDATE content_items SET hold_review_on = $2, hold_member_text = 'Kept.' WHERE id = $1",
        first,
        past,
    )
    await owner_conn.execute(
        "UPDATE content_items SET hold_review_on = $2, hold_member_text = 'Kept.' WHERE id = $1",
        second,
        future,
    )
    async with asgi_client(app) as browser:
        await signed_in_admin(browser, org, roles=["admin"])
        overdue = await browser.get("/console/holds?due=overdue")
        assert f'id="hold-{first}"' in overdue.text
        assert (
            f'id="hold-{second}"' not in overdue.text and f'id="hold-{third}"' not in overdue.text
        )
        undated = await browser.get("/console/holds?due=undated")
        assert f'id="hold-{third}"' in undated.text and f'id="hold-{first}"' not in undated.text
        every = text_of((await browser.get("/console/holds")).text)
        assert "All 3" in every and "Past their review date 1" in every
        assert "Without a review date 1" in every
        overview = await browser.get("/console")
        assert "1 legal hold past its review date" in text_of(overview.text)
        assert 'href="/console/holds?due=overdue"' in overview.text
    async with asgi_client(app) as auditor:
        await signed_in_admin(auditor, org, roles=["auditor"])
        seen = await auditor.get("/console/holds")
        assert seen.status_code == 200 and f'id="hold-{first}"' in seen.text
        assert f'href="/console/holds/{first}"' not in seen.text  # reads, does not review


def test_a_long_list_shows_its_total_up_to_the_cap_then_or_more() -> None:
    from tenants.pagination import COUNT_CAP, shown_total

    assert shown_total(COUNT_CAP) == COUNT_CAP
    assert shown_total(COUNT_CAP + 1) == "10,000 or more"
    assert shown_total(3, cap=2) == "2 or more"
