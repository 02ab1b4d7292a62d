"""The identity provider connection through the API: the secret is write-only and
encrypted, and "test connection" says plainly what works."""

from __future__ import annotations

import asyncpg

from tests.conftest import OrgHandle
from tests.support.hostile_idp import run_hostile_idp


async def test_the_client_secret_is_stored_encrypted_and_never_returned(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    body = {
        "issuer": "https://idp.example.org",
        "client_id": "tenantry",
        "client_secret": "s3cret-value",
        "jit_provisioning": True,
        "allowed_domains": ["Example.ORG"],
    }
    saved = await org.put("/v1/sso-connection", json=body)
    assert saved.status_code == 200, saved.text
    view = saved.json()
    assert view["has_client_secret"] is True and "client_secret" not in view
    assert view["allowed_domains"] == ["example.org"]
    assert view["redirect_uri"].endswith(f"/oidc/{org.slug}/callback")
    stored = await owner_conn.fetchval(
        "SELECT client_secret_enc FROM sso_connections WHERE tenant_id = $1", org.id
    )
    assert stored and "s3cret-value" not in stored
    kept = await org.put(
        "/v1/sso-connection", json={**body, "client_secret": None, "client_id": "renamed"}
    )
    assert kept.json()["has_client_secret"] is True and kept.json()["client_id"] == "renamed"
    assert (
        await owner_conn.fetchval(
            "SELECT client_secret_enc FROM sso_connections WHERE tenant_id = $1", org.id
        )
        == stored
    )
    events = (await org.get("/v1/audit-events", params={"action": "sso.connection_saved"})).json()[
        "items"
    ]
    assert len(events) == 2 and all("s3cret" not in str(e) for e in events)


async def test_an_issuer_that_is_not_a_url_is_refused(org: OrgHandle) -> None:
    response = await org.put("/v1/sso-connection", json={"issuer": "not a url", "client_id": "x"})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "issuer"
    assert (await org.get("/v1/sso-connection")).status_code == 404


async def test_testing_the_connection_reports_each_step(org: OrgHandle) -> None:
    with run_hostile_idp() as idp:
        await org.put(
            "/v1/sso-connection",
            json={
                "issuer": idp.issuer,
                "client_id": idp.client_id,
                "client_secret": idp.client_secret,
            },
        )
        good = (await org.post("/v1/sso-connection/test")).json()
    assert good["ok"] is True and [s["step"] for s in good["steps"]][:2] == ["discovery", "keys"]
    await org.put("/v1/sso-connection", json={"issuer": "http://127.0.0.1:9", "client_id": "x"})
    bad = (await org.post("/v1/sso-connection/test")).json()
    assert bad["ok"] is False
    assert any(not s["ok"] and "discovery document" in s["detail"] for s in bad["steps"])
