"""Console forms apply the same text policy as the API (tenants/text.py)."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from tests.conftest import OrgHandle, make_member
from tests.web.flows import asgi_client, set_local_sign_in, set_password

PASSWORD = "correct-horse-battery-staple"


async def test_a_unit_name_with_a_bidi_override_is_refused_by_the_console_and_nothing_is_made(
    app: Any, org: OrgHandle
) -> None:
    admin = await make_member(org, name="Ada Admin", roles=["admin"])
    await set_password(org.id, admin["id"], PASSWORD)
    await set_local_sign_in(org.id, True)
    before = (await org.get("/v1/units")).json()["items"]
    async with asgi_client(app) as browser:
        assert (await browser.password_sign_in(org.slug, admin["email"], PASSWORD)).status_code == 303
        csrf = await browser.csrf_of("/console/units")
        refused = await browser.post(
            "/console/units",
            {"csrf": csrf, "name": "Sales\u202eselaS", "parent_id": str(org.root_unit_id)},
            headers={"referer": "/console/units"},
        )
        assert refused.status_code == 303
        page = await browser.get("/console/units")
        assert "U+202E" in unquote(page.text) or "U+202E" in page.text, page.text[:2000]
        made = await browser.post(
            "/console/units",
            {"csrf": csrf, "name": "Re\u0301seau", "parent_id": str(org.root_unit_id)},
            headers={"referer": "/console/units"},
        )
        assert made.status_code == 303
    names = [u["name"] for u in (await org.get("/v1/units")).json()["items"]]
    assert len(names) == len(before) + 1
    assert "R\u00e9seau" in names
