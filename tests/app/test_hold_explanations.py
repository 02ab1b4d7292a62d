"""Hold-aware explanations against the real database: placing a hold needs a member-facing
text and a future review date (problems name the field); the member's account page, their
privacy request's page and the erasure answer say what is kept, that a legal obligation
requires it, the text and the review date, and never the hold's confidential reason;
holds without a review date are listed on the overview of admins who may place holds and
get one through the console form."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.app.test_content_api import item
from tests.conftest import OrgHandle, make_member, make_product
from tests.departures.support import make_items
from tests.requests.support import officer, submit
from tests.support.api_schema import assert_problem, error_fields
from tests.web.flows import (
    PASSWORD,
    WebClient,
    asgi_client,
    set_local_sign_in,
    set_password,
    text_of,
)

CONFIDENTIAL = "Matter Zeta v. Acme (privileged)"
MEMBER_TEXT = "Some of your files must be kept while a legal claim is open."


def review_date(days: int = 90) -> str:
    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


async def held_item(org: OrgHandle, member: dict[str, Any], product: dict[str, Any],
                    n: int = 1, **hold: Any) -> Any:
    registered = (await org.post("/v1/content", item(member, product, n, kind="personal"))).json()
    body = {"legal_hold": True, "reason": CONFIDENTIAL, "member_text": MEMBER_TEXT,
            "review_on": review_date(), **hold}
    return await org.put(f"/v1/content/{registered['id']}/legal-hold", json=body)


async def signed_in(browser: WebClient, org: OrgHandle, who: dict[str, Any]) -> str:
    return await browser.signed_in(org.slug, who["email"])


@pytest.fixture
async def local_org(org: OrgHandle) -> OrgHandle:
    await set_local_sign_in(org.id, True)
    return org


async def test_placing_a_hold_needs_a_member_text_and_a_future_review_date(
    org: OrgHandle,
) -> None:
    member, product = await make_member(org), await make_product(org, name="Drive")

    missing = await held_item(org, member, product, 1, member_text=None, review_on=None)
    assert set(error_fields(assert_problem(missing, 422))) == {"member_text", "review_on"}
    past = await held_item(org, member, product, 2, review_on="2020-01-01")
    assert set(error_fields(assert_problem(past, 422))) == {"review_on"}
    today = await held_item(org, member, product, 3, review_on=review_date(0))
    assert set(error_fields(assert_problem(today, 422))) == {"review_on"}
    far = await held_item(org, member, product, 5, review_on="9999-12-31")
    assert set(error_fields(assert_problem(far, 422))) == {"review_on"}
    assert "or earlier" in error_fields(assert_problem(far, 422))["review_on"]
    control = await held_item(org, member, product, 4, member_text="bell \x07")
    assert set(error_fields(assert_problem(control, 422))) == {"member_text"}
    long = await held_item(org, member, product, 5, member_text="x" * 2001)
    assert set(error_fields(assert_problem(long, 422))) == {"member_text"}

    placed = await held_item(org, member, product, 6)
    assert placed.status_code == 200, placed.text
    body = placed.json()
    assert body["legal_hold"] is True and body["hold_member_text"] == MEMBER_TEXT
    assert body["hold_review_on"] == review_date()
    lifted = await org.put(f"/v1/content/{body['id']}/legal-hold",
                           json={"legal_hold": False, "reason": "closed"})
    assert lifted.json()["hold_member_text"] is None and lifted.json()["hold_review_on"] is None


async def test_the_member_is_told_what_is_kept_and_why_never_the_confidential_reason(
    app: Any, local_org: OrgHandle
) -> None:
    org = local_org
    mia = await make_member(org, name="Mia Member")
    await set_password(org.id, mia["id"], PASSWORD)
    drive = await make_product(org, name="Drive")
    for n in (1, 2):
        assert (await held_item(org, mia, drive, n)).status_code == 200
    await make_items(org, mia["id"], drive["id"], 4, kind="organisation", legal_hold=True)
    request = await submit(org, mia, "access")

    async with asgi_client(app) as browser:
        await signed_in(browser, org, mia)
        account = await browser.get("/account")
        request_page = await browser.get(f"/account/privacy-requests/{request['id']}")

    for page in (account, request_page):
        assert page.status_code == 200
        text = text_of(page.text)
        assert "Data kept because of a legal obligation" in text
        assert "personal items in Drive (2)" in text and "work content in Drive (4)" in text
        assert "A legal obligation requires the organisation to keep these items" in text
        assert MEMBER_TEXT in text
        assert f"The hold is reviewed by {review_date()}" in text
        assert "some of it has no review date yet" in text
        assert "Zeta" not in page.text and "privileged" not in page.text


async def test_a_member_without_held_items_sees_no_hold_section(
    app: Any, local_org: OrgHandle
) -> None:
    ben = await make_member(local_org, name="Ben")
    await set_password(local_org.id, ben["id"], PASSWORD)
    async with asgi_client(app) as browser:
        await signed_in(browser, local_org, ben)
        page = await browser.get("/account")
    assert "Data kept because of a legal obligation" not in page.text


async def test_the_erasure_answer_explains_the_hold_without_the_reason(org: OrgHandle) -> None:
    mia = await make_member(org, name="Mia Member")
    olivia = await officer(org)
    drive = await make_product(org, name="Drive")
    assert (await held_item(org, mia, drive)).status_code == 200
    request = await submit(org, mia, "erasure", "Delete my data.")
    await org.post(f"/v1/privacy-requests/{request['id']}/assign", {"assignee_id": olivia["id"]})

    erased = await org.post(f"/v1/privacy-requests/{request['id']}/erasure", {})

    assert erased.status_code == 200, erased.text
    detail = (await org.get(f"/v1/privacy-requests/{request['id']}")).json()
    body = detail["timeline"][-1]["body"]
    assert "Kept because of a legal hold: personal items in Drive (1)." in body
    assert MEMBER_TEXT in body and f"reviewed by {review_date()}" in body
    assert "Zeta" not in body


async def test_holds_without_a_review_date_are_listed_for_admins_who_place_holds(
    app: Any, local_org: OrgHandle
) -> None:
    org = local_org
    admin = await make_member(org, name="Ada Admin", roles=["admin"])
    plain = await make_member(org, name="Pia Plain")
    lea = await make_member(org, name="Lea Leaver")
    for who in (admin, plain):
        await set_password(org.id, who["id"], PASSWORD)
    drive = await make_product(org, name="Drive")
    await make_items(org, lea["id"], drive["id"], 2, kind="personal", legal_hold=True)

    async with asgi_client(app) as browser, asgi_client(app) as other:
        csrf = await signed_in(browser, org, admin)
        overview = text_of((await browser.get("/console")).text)
        assert "2 legal holds without a review date" in overview
        page = await browser.get("/console")
        hold_path = page.text.split('href="/console/holds/', 1)[1].split('"', 1)[0]
        form = await browser.get(f"/console/holds/{hold_path}")
        assert form.status_code == 200 and "What the member is told" in form.text

        refused = await browser.post(f"/console/holds/{hold_path}", {
            "csrf": csrf, "member_text": MEMBER_TEXT, "review_on": "2020-01-01",
            "reason": CONFIDENTIAL,
        })
        assert refused.status_code == 400 and 'id="hold-review_on-error"' in refused.text
        saved = await browser.post(f"/console/holds/{hold_path}", {
            "csrf": csrf, "member_text": MEMBER_TEXT, "review_on": review_date(),
            "reason": CONFIDENTIAL,
        })
        assert saved.status_code == 303, saved.text
        assert "1 legal hold without a review date" in text_of(
            (await browser.get("/console")).text)

        await signed_in(other, org, plain)
        assert (await other.get(f"/console/holds/{hold_path}")).status_code in (403, 303)
