"""The console's Provisioning (SCIM) page: the endpoint, SCIM tokens shown once, rotated
and revoked, the provisioning rules; CSRF on every form; roles."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.conftest import OrgHandle, make_member, make_unit
from tests.web.flows import PASSWORD, asgi_client, set_local_sign_in, set_password, text_of

TOKEN = re.compile(r"<code[^>]*>(tnt_[^<]+)</code>")


async def signed_in(browser: Any, org: OrgHandle, role: str) -> str:
    who = await make_member(org, name=f"{role.title()} Person", roles=[role])
    await set_password(org.id, who["id"], PASSWORD)
    return await browser.signed_in(org.slug, who["email"])


@pytest.fixture
async def local_org(org: OrgHandle) -> OrgHandle:
    await set_local_sign_in(org.id, True)
    return org


async def test_an_admin_creates_a_token_that_provisions_then_rotates_and_revokes_it(
    app: Any, local_org: OrgHandle
) -> None:
    org = local_org
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, org, "admin")
        page = await browser.get("/console/provisioning")
        assert page.status_code == 200
        assert "/scim/v2</code>" in page.text
        assert 'href="/console/provisioning"' in page.text
        form_id = re.search(r'name="form_id" value="([^"]+)"', page.text)
        assert form_id is not None
        create = {"csrf": csrf, "name": "Entra", "form_id": form_id.group(1)}
        created = await browser.post("/console/provisioning/tokens", create)
        # The page showing the token, reloaded, sends the form again: no second token.
        resent = await browser.post("/console/provisioning/tokens", create)
        assert resent.status_code == 303 and TOKEN.search(resent.text) is None
        assert "This form was already sent" in text_of(
            (await browser.get(resent.headers["location"])).text
        )
        token = TOKEN.search(created.text)
        assert 'data-copy="new-scim-token"' in created.text and "/static/copy.js" in created.text
        assert token is not None, created.text
        headers = {"Authorization": f"Bearer {token.group(1)}"}
        assert (await org.client.get("/scim/v2/Users", headers=headers)).status_code == 200
        assert token.group(1) not in (await browser.get("/console/provisioning")).text
        token_id = re.search(r'name="token_id" value="([^"]+)"', created.text)
        assert token_id is not None
        rotate = {"csrf": csrf, "token_id": token_id.group(1)}
        asked = await browser.post("/console/provisioning/tokens/rotate", rotate)
        assert "Rotate the SCIM token Entra?" in text_of(asked.text)
        assert "It stops working at once" in text_of(asked.text)
        assert TOKEN.search(asked.text) is None
        assert (await org.client.get("/scim/v2/Users", headers=headers)).status_code == 200
        rotated = await browser.post(
            "/console/provisioning/tokens/rotate", {**rotate, "confirmed": "1"}
        )
        fresh = TOKEN.search(rotated.text)
        assert fresh is not None
        assert (await org.client.get("/scim/v2/Users", headers=headers)).status_code == 401
        # A reload sends the rotation again: refused, no third token.
        again = await browser.post(
            "/console/provisioning/tokens/rotate", {**rotate, "confirmed": "1"}
        )
        assert again.status_code == 303 and TOKEN.search(again.text) is None
        assert "already revoked or rotated" in text_of(
            (await browser.get(again.headers["location"])).text
        )
        fresh_headers = {"Authorization": f"Bearer {fresh.group(1)}"}
        assert (await org.client.get("/scim/v2/Users", headers=fresh_headers)).status_code == 200
        listing = (await browser.get("/console/provisioning")).text
        assert "revoked" in listing
        new_id = re.findall(r'name="token_id" value="([^"]+)"', listing)
        assert len(new_id) == 2  # rotate and revoke of the one active token
        asked = await browser.post(
            "/console/provisioning/tokens/revoke", {"csrf": csrf, "token_id": new_id[0]}
        )
        assert asked.status_code == 200, asked.text[:500]
        assert "Revoke the SCIM token" in text_of(asked.text)
        assert "joiners and leavers stop arriving" in text_of(asked.text)
        # Its last use, in the viewer's zone as every time on the console is (not UTC).
        assert "It was last used" in text_of(asked.text) and "<time" in asked.text
        # Asking changed nothing: the identity provider's token still works.
        assert (await org.client.get("/scim/v2/Users", headers=fresh_headers)).status_code == 200
        revoked = await browser.post(
            "/console/provisioning/tokens/revoke",
            {"csrf": csrf, "token_id": new_id[0], "confirmed": "1"},
        )
        assert revoked.status_code == 303
        assert (await org.client.get("/scim/v2/Users", headers=fresh_headers)).status_code == 401


async def test_rules_are_saved_and_bad_ones_refused(app: Any, local_org: OrgHandle) -> None:
    org = local_org
    unit = await make_unit(org, "Landing")
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, org, "admin")
        saved = await browser.post(
            "/console/provisioning/rules",
            {
                "csrf": csrf,
                "unit_attribute": "division",
                "default_unit_id": unit["id"],
                "deprovisioning": "departure",
                "adopt_groups": "on",
            },
        )
        assert saved.status_code == 303
        page = (await browser.get("/console/provisioning")).text
        assert '<option value="division" selected>' in page
        assert 'value="departure" checked' in page
        assert (
            f'name="default_unit_id" value="{unit["id"]}" checked' in page
        )  # picked in the typeahead
        refused = await browser.post(
            "/console/provisioning/rules",
            {"csrf": csrf, "unit_attribute": "title", "deprovisioning": "suspend"},
        )
        assert refused.status_code == 303
        assert (
            '<option value="division" selected>'
            in (await browser.get("/console/provisioning")).text
        )
        forged = await browser.post("/console/provisioning/tokens", {"csrf": "forged", "name": "x"})
        assert forged.status_code == 403


async def test_auditors_see_the_page_but_cannot_change_it_and_members_cannot_see_it(
    app: Any, local_org: OrgHandle
) -> None:
    org = local_org
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, org, "auditor")
        page = await browser.get("/console/provisioning")
        assert page.status_code == 200
        assert "Create a SCIM token" not in page.text
        refused = await browser.post("/console/provisioning/tokens", {"csrf": csrf, "name": "x"})
        assert refused.status_code == 403
    async with asgi_client(app) as browser:
        await signed_in(browser, org, "member")
        assert (await browser.get("/console/provisioning")).status_code == 403


async def test_an_overlong_token_name_is_refused_beside_the_field_not_cut(
    app: Any, local_org: OrgHandle
) -> None:
    long_name = "Entra " + "x" * 200
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, local_org, "admin")
        refused = await browser.post(
            "/console/provisioning/tokens", {"csrf": csrf, "name": long_name}
        )
        assert refused.status_code == 303, refused.text[:500]
        again = await browser.get(refused.headers["location"])
        assert TOKEN.search(again.text) is None, "no token may be made"
        assert "Name: has more than 200 characters" in text_of(again.text)
        assert f'value="{long_name}"' in again.text  # what was typed comes back whole
        assert 'name="token_id"' not in again.text
