"""The member's privacy settings on the account page: each setting with its value and
whether the organisation set it (with its reason), it is the organisation's default the
member may change, or it is their own choice; changing and resetting a choice; refusals.
In process (no server); the browser scenario is in test_policies_ui.py.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import asyncpg
import pytest

from tests.conftest import OrgHandle, make_group, make_member, make_unit, row_counts
from tests.web.flows import (
    PASSWORD,
    WebClient,
    asgi_client,
    audit_events,
    set_local_sign_in,
    set_password,
    text_of,
)

ADS = "advertising.personalised_ads"
#: Off by default and resting on no consent: a rule may switch it on.
USE_DATA = "improvement.use_data"


@pytest.fixture
async def local_org(org: OrgHandle) -> OrgHandle:
    await set_local_sign_in(org.id, True)
    return org


async def member_of(org: OrgHandle, unit: Any = None, name: str = "Mia Member") -> dict[str, Any]:
    made = await make_member(org, name=name, unit=unit)
    await set_password(org.id, made["id"], PASSWORD)
    return made


async def signed_in(browser: WebClient, org: OrgHandle, who: dict[str, Any]) -> str:
    response = await browser.password_sign_in(org.slug, who["email"], PASSWORD)
    assert response.status_code == 303 and response.headers["location"] == "/account", response.text
    return await browser.csrf_of("/account")


def block(page: str, key: str) -> str:
    """The visible text of one setting's block on the account page."""
    anchor = "setting-" + re.sub(r"[^a-z0-9]+", "-", key)
    match = re.search(rf'<article class="privacy-setting" id="{anchor}".*?</article>', page, re.S)
    assert match, f"no block for {key}"
    return text_of(match.group(0))


async def set_rule(
    org: OrgHandle, kind: str, target: Any, setting: str, value: Any, *, enforced: bool, reason: str
) -> None:
    response = await org.put(
        "/v1/policy/rules",
        json={
            "target_kind": kind,
            "target_id": str(target),
            "setting": setting,
            "value": value,
            "enforced": enforced,
            "reason": reason,
        },
    )
    assert response.status_code == 200, response.text


async def test_every_setting_is_listed_with_a_badge_that_says_who_decides(
    app: Any,
    local_org: OrgHandle,
) -> None:
    school = await make_unit(local_org, "Year 7")
    club = await make_group(local_org, name="Chess club")
    mia = await member_of(local_org, unit=school["id"])
    await local_org.put(f"/v1/groups/{club['id']}/members/{mia['id']}")
    await set_rule(
        local_org, "unit", school["id"], ADS, False, enforced=True, reason="No ads for pupils"
    )
    await set_rule(
        local_org,
        "group",
        club["id"],
        "social.activity_visibility",
        "nobody",
        enforced=True,
        reason="Club games stay private",
    )
    await set_rule(
        local_org,
        "unit",
        local_org.root_unit_id,
        "sharing.obtain_from_third_parties",
        True,
        enforced=False,
        reason="Partners fill in missing school records",
    )
    chose = await local_org.post(
        f"/v1/members/{mia['id']}/choices", json={"setting": "cookies.preferences", "value": False}
    )
    assert chose.status_code == 200
    org_name = local_org.slug.title()
    async with asgi_client(app) as browser:
        await signed_in(browser, local_org, mia)
        page = (await browser.get("/account")).text
    assert page.count('<article class="privacy-setting"') == 16
    assert block(page, ADS).startswith(
        f"Personalised ads Off Set by {org_name} Ads you see are chosen using your activity. "
        "Why: No ads for pupils. Set for Year 7. You cannot change it. When off: You still may see ads"
    )
    assert "Set for Chess club" in block(page, "social.activity_visibility")
    assert "Why: Club games stay private." in block(page, "social.activity_visibility")
    analytics = block(page, "sharing.obtain_from_third_parties")
    assert analytics.startswith(f"Data about you from third parties On {org_name} default — you can change it")
    assert "Your choice for Data about you from third parties" in analytics
    # A default's reason reaches the member as a lock's does, with where it is set.
    assert (
        f"Why {org_name} chose this default: Partners fill in missing school records. "
        f"Set for {org_name}. You can change it." in analytics
    )
    preferences = block(page, "cookies.preferences")
    assert preferences.startswith("Preference cookies Off Your choice")
    assert f"Use {org_name}'s default (On) for Preference cookies" in preferences
    assert "When off: Your preferences are forgotten between visits." in preferences
    necessary = block(page, "cookies.necessary")
    assert necessary.startswith(f"Necessary cookies On Set by {org_name}")
    assert "Members cannot change this setting: the products need it to work." in necessary
    for fixed in (ADS, "social.activity_visibility", "cookies.necessary"):
        assert 'type="radio"' not in re.search(
            rf'id="setting-{re.sub(r"[^a-z0-9]+", "-", fixed)}".*?</article>', page, re.S
        ).group(0)
    # Accessible forms: every choice is a fieldset with a legend, every radio inside a label.
    assert page.count("<legend>Your choice for ") == 13
    assert not re.search(r'(?<!<label>)<input type="radio"', page)


async def test_a_member_changes_a_setting_and_it_applies_at_once_with_an_audit_event(
    app: Any,
    local_org: OrgHandle,
    owner_conn: asyncpg.Connection,
) -> None:
    mia = await member_of(local_org)
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, local_org, mia)
        changed = await browser.post(
            "/account/settings", {"csrf": csrf, "setting": ADS, "value": "true"}
        )
        assert changed.status_code == 303
        assert (
            changed.headers["location"]
            == f"/account?setting={ADS}#setting-advertising-personalised-ads"
        )
        page = (await browser.get(changed.headers["location"])).text
        ads = block(page, ADS)
        assert ads.startswith("Personalised ads On Your choice")
        assert "Saved: Personalised ads is now On, in every product." in ads
        enum = await browser.post(
            "/account/settings",
            {"csrf": csrf, "setting": "social.activity_visibility", "value": "nobody"},
        )
        assert enum.status_code == 303
        assert block((await browser.get("/account")).text, "social.activity_visibility").startswith(
            "Who sees your activity Nobody Your choice"
        )
    settings = (await local_org.get(f"/v1/members/{mia['id']}/settings")).json()["settings"]
    assert settings[ADS]["value"] is True and settings[ADS]["source"]["kind"] == "member"
    assert settings["social.activity_visibility"]["value"] == "nobody"
    events = await audit_events(owner_conn, local_org.id, "policy.choice_set")
    assert [e.after for e in events] == [{ADS: True}, {"social.activity_visibility": "nobody"}]
    assert {e.actor for e in events} == {f"member:{mia['id']}"}


async def test_using_the_organisations_default_removes_the_members_choice(
    app: Any,
    local_org: OrgHandle,
    owner_conn: asyncpg.Connection,
) -> None:
    await set_rule(local_org, "unit", local_org.root_unit_id, USE_DATA, True, enforced=False, reason="")
    mia = await member_of(local_org)
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, local_org, mia)
        await browser.post("/account/settings", {"csrf": csrf, "setting": USE_DATA, "value": "false"})
        assert block((await browser.get("/account")).text, USE_DATA).startswith(
            "Use of data to improve products Off Your choice"
        )
        reset = await browser.post("/account/settings/default", {"csrf": csrf, "setting": USE_DATA})
        assert reset.status_code == 303
        ads = block((await browser.get(reset.headers["location"])).text, USE_DATA)
        org_name = local_org.slug.title()
        assert ads.startswith(f"Use of data to improve products On {org_name} default — you can change it")
        assert f"Use of data to improve products now follows {org_name}'s default: On." in ads
    assert (
        await owner_conn.fetchval(
            "SELECT count(*) FROM member_choices WHERE member_id = $1", uuid.UUID(mia["id"])
        )
        == 0
    )
    assert len(await audit_events(owner_conn, local_org.id, "policy.choice_cleared")) == 1


async def test_a_locked_setting_cannot_be_changed_from_the_account_page(
    app: Any,
    local_org: OrgHandle,
    owner_conn: asyncpg.Connection,
) -> None:
    unit = await make_unit(local_org, "Sales")
    await set_rule(
        local_org,
        "unit",
        unit["id"],
        ADS,
        False,
        enforced=True,
        reason="No personalised ads in Sales",
    )
    mia = await member_of(local_org, unit=unit["id"])
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, local_org, mia)
        before = await row_counts(owner_conn)
        refused = await browser.post(
            "/account/settings", {"csrf": csrf, "setting": ADS, "value": "true"}
        )
        assert refused.status_code == 303
        assert (
            refused.headers["location"]
            == f"/account?setting={ADS}#setting-advertising-personalised-ads"
        )
        ads = block((await browser.get(refused.headers["location"])).text, ADS)
        assert (
            "Not changed: Personalised ads is set by your organisation: No personalised ads in Sales."
            in ads
        )
        assert ads.startswith(f"Personalised ads Off Set by {local_org.slug.title()}")
        # Nor a setting members may never choose.
        fixed = await browser.post(
            "/account/settings", {"csrf": csrf, "setting": "cookies.necessary", "value": "false"}
        )
        assert "Not changed: Necessary cookies is not yours to choose." in block(
            (await browser.get(fixed.headers["location"])).text, "cookies.necessary"
        )
        assert await row_counts(owner_conn) == before
    settings = (await local_org.get(f"/v1/members/{mia['id']}/settings")).json()["settings"]
    assert settings[ADS]["value"] is False and settings[ADS]["locked"] is True


async def test_a_bad_or_unknown_setting_is_refused_with_a_message(
    app: Any,
    local_org: OrgHandle,
    owner_conn: asyncpg.Connection,
) -> None:
    mia = await member_of(local_org)
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, local_org, mia)
        before = await row_counts(owner_conn)
        bad = await browser.post(
            "/account/settings",
            {"csrf": csrf, "setting": "diagnostics.level", "value": "everything"},
        )
        assert "Not changed: diagnostics.level takes one of off, required, optional." in block(
            (await browser.get(bad.headers["location"])).text, "diagnostics.level"
        )
        nameless = await browser.post(
            "/account/settings", {"csrf": csrf, "setting": "Call 555-0100 now", "value": "true"}
        )
        assert nameless.headers["location"] == "/account"
        shown = text_of((await browser.get(nameless.headers["location"])).text)
        assert "Not changed: there is no such setting." in shown
        assert "555" not in shown  # a crafted form's words are not repeated on the page
        unknown = await browser.post(
            "/account/settings/default", {"csrf": csrf, "setting": "no.such"}
        )
        assert unknown.status_code == 303
        assert "Not changed: there is no such setting." in text_of(
            (await browser.get(unknown.headers["location"])).text
        )
        assert await row_counts(owner_conn) == before


async def test_account_setting_forms_need_the_sessions_csrf_token(
    app: Any,
    local_org: OrgHandle,
    owner_conn: asyncpg.Connection,
) -> None:
    mia = await member_of(local_org)
    async with asgi_client(app) as browser:
        await signed_in(browser, local_org, mia)
        before = await row_counts(owner_conn)
        for path, form in [
            ("/account/settings", {"setting": ADS, "value": "true"}),
            ("/account/settings/default", {"setting": ADS}),
            ("/account/settings", {"setting": ADS, "value": "true", "csrf": "0" * 64}),
        ]:
            response = await browser.post(path, form)
            assert response.status_code == 403, path
            assert "This form was not sent from this session" in text_of(response.text)
        assert await row_counts(owner_conn) == before


async def test_signed_out_visitors_are_sent_to_sign_in(app: Any, local_org: OrgHandle) -> None:
    async with asgi_client(app) as browser:
        response = await browser.post("/account/settings", {"setting": ADS, "value": "true"})
        assert response.status_code == 303 and response.headers["location"].startswith("/login")
