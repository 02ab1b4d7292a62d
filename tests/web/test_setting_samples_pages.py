"""Diagnostic-data samples in the policy editor's preview and on the member's account page:
what is sent at the current and at the selected value, side by side, escaped."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import OrgHandle, make_member, make_product
from tests.web.flows import PASSWORD, asgi_client, set_local_sign_in, set_password, text_of

LEVEL = "diagnostics.level"


@pytest.fixture
async def local_org(org: OrgHandle) -> OrgHandle:
    await set_local_sign_in(org.id, True)
    return org


async def person(org: OrgHandle, role: str = "member") -> dict[str, Any]:
    made = await make_member(org, roles=[role])
    await set_password(org.id, made["id"], PASSWORD)
    return made


async def test_the_preview_shows_what_is_sent_now_and_at_the_chosen_level(
    app: Any, local_org: OrgHandle
) -> None:
    admin = await person(local_org, "admin")
    async with asgi_client(app) as browser:
        assert (
            await browser.password_sign_in(local_org.slug, admin["email"], PASSWORD)
        ).status_code == 303
        csrf = await browser.csrf_of("/account")
        form = {
            "csrf": csrf,
            "target": f"unit:{local_org.root_unit_id}",
            "setting": LEVEL,
            "value": "optional",
            "reason": "Help improve the product",
        }
        for headers in ({}, {"HX-Request": "true"}):
            preview = await browser.post("/console/policies/preview", form, headers=headers)
            assert preview.status_code == 200, preview.text
            text = text_of(preview.text)
            now = text.index("Now: Required data only")
            selected = text.index("Selected: Required and optional data")
            assert now < selected
            assert "a random device id" in text[now:selected]
            assert '"feature": "export_to_pdf"' in text[selected:]
            assert "<pre" in preview.text and "&#34;feature&#34;" in preview.text
        # The same value as now: one sample, not two of the same.
        same = await browser.post(
            "/console/policies/preview",
            {**form, "value": "required"},
            headers={"HX-Request": "true"},
        )
        assert "Now: Required data only" in text_of(same.text) and "Selected:" not in same.text
        # A setting without samples shows none.
        ads = await browser.post(
            "/console/policies/preview",
            {**form, "setting": "advertising.personalised_ads", "value": "false"},
            headers={"HX-Request": "true"},
        )
        assert ads.status_code == 200 and "sample-compare" not in ads.text


async def test_the_account_page_shows_the_current_level_and_compares_with_a_chosen_one(
    app: Any, local_org: OrgHandle
) -> None:
    product = await make_product(local_org, key="chat")
    declared = await local_org.put(
        "/v1/settings/declared",
        json={
            "product_id": product["id"],
            "settings": [
                {
                    "key": "chat.typing",
                    "type": "bool",
                    "default": False,
                    "title": "Typing indicator",
                    "samples": {
                        "true": {
                            "document": {"typing": "<script>alert(1)</script>"},
                            "description": "That you are typing <b>now</b>.",
                        },
                        "false": {"document": {}, "description": "Nothing about typing."},
                    },
                }
            ],
        },
    )
    assert declared.status_code == 200, declared.text
    member = await person(local_org)
    async with asgi_client(app) as browser:
        assert (
            await browser.password_sign_in(local_org.slug, member["email"], PASSWORD)
        ).status_code == 303
        page = await browser.get("/account")
        assert page.status_code == 200
        text = text_of(page.text)
        assert "What the products send for Diagnostic data" in text
        assert "Now: Required data only" in text and "Now: Off — Nothing about typing." in text
        assert "Selected:" not in text
        compared = await browser.get("/account", params={"sample": LEVEL, "level": "off"})
        text = text_of(compared.text)
        now = text.index("Now: Required data only")
        assert text.index("Selected: Off — Nothing is sent about the product's health.") > now
        assert '<details class="samples" open>' in compared.text
        typing = await browser.get("/account", params={"sample": "chat.typing", "level": "true"})
        assert "<script>alert(1)</script>" not in typing.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in typing.text
        assert "That you are typing &lt;b&gt;now&lt;/b&gt;." in typing.text
        # A level the setting has no sample for is ignored, not an error.
        odd = await browser.get("/account", params={"sample": LEVEL, "level": "loud"})
        assert odd.status_code == 200 and "Selected:" not in odd.text
