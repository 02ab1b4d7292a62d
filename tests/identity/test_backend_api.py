"""The identity backend settings over the API: local by default, Keycloak with every field
it needs, the client secret write-only, failures visible."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.settings import Settings
from tests.conftest import OrgHandle, make_member
from tests.identity.conftest import job_rows, run_jobs
from tests.support.keycloak_fake import KeycloakFakeServer


@pytest.fixture(autouse=True)
def prepared_realm(keycloak: KeycloakFakeServer) -> None:
    """These tests are about the settings API: the realm is one setup already prepared."""
    keycloak.fake.prepared()


def keycloak_body(keycloak: KeycloakFakeServer, **changes: object) -> dict[str, object]:
    return {
        "kind": "keycloak",
        "server_url": keycloak.url,
        "realm": keycloak.fake.realm,
        "client_id": keycloak.fake.client_id,
        "client_secret": keycloak.fake.client_secret,
        **changes,
    }


async def test_an_organisation_starts_local(org: OrgHandle) -> None:
    response = await org.get("/v1/identity-backend")
    assert response.status_code == 200
    assert response.json()["kind"] == "local" and response.json()["has_client_secret"] is False


async def test_keycloak_needs_every_connection_field_each_named(org: OrgHandle) -> None:
    response = await org.put("/v1/identity-backend", json={"kind": "keycloak"})
    assert response.status_code == 422
    named = {e["field"] for e in response.json()["errors"]}
    assert named == {"server_url", "realm", "client_id", "client_secret"}
    response = await org.put(
        "/v1/identity-backend",
        json={"kind": "keycloak", "server_url": "ftp://kc", "realm": "a/b", "client_id": "x"},
    )
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"server_url", "realm"}
    assert (await org.get("/v1/identity-backend")).json()["kind"] == "local"


async def test_the_keycloak_server_must_be_reached_over_https_as_it_receives_the_secret(
    org: OrgHandle,
) -> None:
    for url, reason in [
        ("http://keycloak.example.com", "must use https:// (http:// only for localhost"),
        ("https://admin:pw@keycloak.example.com", "must not carry a user name or password"),
    ]:
        response = await org.put(
            "/v1/identity-backend",
            json={"kind": "keycloak", "server_url": url, "realm": "acme", "client_id": "tenantry",
                  "client_secret": "s3cret-s3cret"},
        )
        assert response.status_code == 422, response.text
        [error] = response.json()["errors"]
        assert error["field"] == "server_url" and reason in error["reason"], error
    assert (await org.get("/v1/identity-backend")).json()["kind"] == "local"


async def test_the_client_secret_is_stored_sealed_and_never_shown(
    org: OrgHandle, keycloak: KeycloakFakeServer
) -> None:
    secret = keycloak.fake.client_secret
    response = await org.put("/v1/identity-backend", json=keycloak_body(keycloak))
    assert response.status_code == 200, response.text
    assert secret not in response.text and response.json()["has_client_secret"] is True
    # Changing another field keeps the stored secret.
    response = await org.put(
        "/v1/identity-backend", json=keycloak_body(keycloak, client_secret=None)
    )
    assert response.status_code == 200 and response.json()["has_client_secret"] is True
    events = (await org.get("/v1/audit-events", params={"action": "identity.backend_saved"})).json()
    assert events["items"][-1]["after"]["client_secret"] == "(changed)"
    assert secret not in str(events)
    kinds = [r["kind"] for r in await job_rows(org)]
    assert kinds == ["identity.reconcile"]
    await run_jobs()
    assert (await org.get("/v1/identity-backend")).json()["last_error"] is None
    assert len(keycloak.fake.organizations) == 1


async def test_a_failing_backend_shows_why_and_catches_up_once_fixed(
    org: OrgHandle, keycloak: KeycloakFakeServer, settings: Settings
) -> None:
    response = await org.put(
        "/v1/identity-backend", json=keycloak_body(keycloak, client_secret="wrong-secret")
    )
    assert response.status_code == 200, response.text
    member = await make_member(org)
    await run_jobs(ahead=timedelta(0))
    view = (await org.get("/v1/identity-backend")).json()
    assert "HTTP 401" in view["last_error"]
    assert keycloak.fake.user_by_username(member["id"]) is None
    response = await org.put("/v1/identity-backend", json=keycloak_body(keycloak))
    assert response.status_code == 200
    await run_jobs()
    assert keycloak.fake.user_by_username(member["id"]) is not None
    assert (await org.get("/v1/identity-backend")).json()["last_error"] is None


async def test_reconcile_can_be_queued_for_a_keycloak_organisation_only(
    org: OrgHandle, keycloak: KeycloakFakeServer
) -> None:
    response = await org.post("/v1/identity-backend/reconcile")
    assert (response.status_code, response.json()) == (202, {"queued": False})
    await org.put("/v1/identity-backend", json=keycloak_body(keycloak))
    response = await org.post("/v1/identity-backend/reconcile")
    assert (response.status_code, response.json()) == (202, {"queued": True})
    await run_jobs()
    assert {r["status"] for r in await job_rows(org)} == {"done"}


async def test_switching_back_to_local_stops_mirroring(
    org: OrgHandle, keycloak: KeycloakFakeServer
) -> None:
    await org.put("/v1/identity-backend", json=keycloak_body(keycloak))
    await run_jobs()
    response = await org.put("/v1/identity-backend", json={"kind": "local"})
    assert response.status_code == 200 and response.json()["kind"] == "local"
    before = len(await job_rows(org))
    await make_member(org)
    assert len(await job_rows(org)) == before
