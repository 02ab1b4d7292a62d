"""The console's Identity backend page, in process: an admin points the organisation at
Keycloak (the secret never shown), queues a reconcile, configures the Shared Signals
transmitter; bad input is refused naming the field; roles without sso:write see it read-only."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import OrgHandle, make_member
from tests.identity.conftest import job_rows, run_jobs
from tests.support.keycloak_fake import KeycloakFakeServer
from tests.web.flows import (
    PASSWORD,
    WebClient,
    asgi_client,
    set_local_sign_in,
    set_password,
    text_of,
)


@pytest.fixture
async def local_org(org: OrgHandle) -> OrgHandle:
    await set_local_sign_in(org.id, True)
    return org


async def signed_in(browser: WebClient, org: OrgHandle, role: str = "admin") -> str:
    who = await make_member(org, name=f"{role.title()} Person", roles=[role])
    await set_password(org.id, who["id"], PASSWORD)
    return await browser.signed_in(org.slug, who["email"])


async def test_an_admin_points_the_organisation_at_keycloak_and_reconciles(
    app: Any, local_org: OrgHandle, keycloak: KeycloakFakeServer
) -> None:
    org = local_org
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, org)
        page = await browser.get("/console/identity")
        assert page.status_code == 200
        assert 'href="/console/identity"' in page.text
        assert f"/ssf/{org.slug}/events" in page.text
        assert "Reconcile now" not in page.text
        form = {
            "csrf": csrf,
            "kind": "keycloak",
            "server_url": keycloak.url,
            "realm": keycloak.fake.realm,
            "client_id": keycloak.fake.client_id,
            "client_secret": keycloak.fake.client_secret,
        }
        saved = await browser.post("/console/identity/backend", data=form)
        assert saved.status_code == 303
        page = await browser.get("/console/identity")
        assert "Saved the identity backend." in page.text
        assert keycloak.fake.client_secret not in page.text
        assert "stored encrypted; leave empty to keep it" in page.text
        assert "Reconcile now" in page.text
        # A realm with Keycloak's defaults: the reconcile the save queued dies at once,
        # naming the setup that is missing.
        await run_jobs()
        page = await browser.get("/console/identity")
        assert "Organizations are not enabled for the realm" in text_of(page.text)
        prepared = await browser.post("/console/identity/setup", data={"csrf": csrf})
        assert prepared.status_code == 200
        table = prepared.text.split('id="setup-checks"')[1].split("</table>")[0]
        for name, status in (
            ("server_address", "ok"),
            ("credentials", "ok"),
            ("service_account_roles", "ok"),
            ("server_version", "ok"),
            ("organizations_enabled", "fixed"),
            ("user_profile_attributes", "fixed"),
            ("organisation_domain", "ok"),
        ):
            assert f"<code>{name}</code></td>\n      <td>{status}</td>" in table, name
        assert keycloak.fake.organizations_enabled is True
        queued = await browser.post("/console/identity/reconcile", data={"csrf": csrf})
        assert queued.status_code == 303
        await run_jobs()
        page = await browser.get("/console/identity")
        assert "Reconcile queued" in text_of(page.text)
        assert len(keycloak.fake.organizations) == 1
        assert {r["status"] for r in await job_rows(org)} == {"done"}


async def test_bad_input_is_refused_naming_the_field(app: Any, local_org: OrgHandle) -> None:
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, local_org)
        refused = await browser.post(
            "/console/identity/backend",
            data={"csrf": csrf, "kind": "keycloak", "server_url": "not a url"},
            headers={"Referer": "/console/identity"},
        )
        assert refused.status_code == 303
        page = await browser.get("/console/identity")
        assert "Not done" in page.text and "server_url" in page.text

        async def transmitter(**fields: str) -> str:
            """Post the transmitter form with ``fields``; the page's text after it."""
            await browser.post(
                "/console/identity/transmitter",
                data={
                    "csrf": csrf,
                    "issuer": "https://ssf.example",
                    "jwks_uri": "https://ssf.example/jwks",
                    **fields,
                },
                headers={"Referer": "/console/identity"},
            )
            return text_of((await browser.get("/console/identity")).text)

        page_text = await transmitter()
        assert "audience" in page_text and "Not done" in page_text
        page_text = await transmitter(audience="ten\u202eantry")
        assert "contains the bidirectional control character U+202E" in page_text
        saved = await browser.post(
            "/console/identity/transmitter",
            data={
                "csrf": csrf,
                "issuer": "https://ssf.example",
                "jwks_uri": "https://ssf.example/jwks",
                "audience": "tenantry",
                "enabled": "on",
            },
        )
        assert saved.status_code == 303
        page = await browser.get("/console/identity")
        assert 'value="https://ssf.example/jwks"' in page.text


async def test_a_helpdesk_member_cannot_open_it_and_a_missing_csrf_token_is_refused(
    app: Any, local_org: OrgHandle
) -> None:
    async with asgi_client(app) as browser:
        await signed_in(browser, local_org, role="helpdesk")
        assert (await browser.get("/console/identity")).status_code == 403
    async with asgi_client(app) as browser:
        await signed_in(browser, local_org)
        response = await browser.post("/console/identity/backend", data={"kind": "local"})
        assert response.status_code == 403
