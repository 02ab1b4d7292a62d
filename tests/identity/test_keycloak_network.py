"""The Keycloak adapter's connections obey the outbound network policy, as webhooks and
identity providers do: the server is sent the client secret, so an address the policy
refuses gets no request at all, not even the token request."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from app.settings import Settings
from tenants import network
from tenants.identity.setup import CheckName
from tests.conftest import OrgHandle, make_member
from tests.identity.conftest import job_rows, point_at, run_jobs, set_up
from tests.support.keycloak_fake import KeycloakFakeServer


@pytest.fixture
def production_network() -> Iterator[None]:
    """The policy of a production deployment: this machine is not a destination."""
    before = network.current()
    network.configure(network.NetworkPolicy(loopback=False, private=False))
    try:
        yield
    finally:
        network.configure(before)


async def test_a_keycloak_server_the_policy_refuses_is_sent_nothing(
    org: OrgHandle, keycloak: KeycloakFakeServer, settings: Settings, production_network: None
) -> None:
    await point_at(org, keycloak, settings)
    [check] = await set_up(org, prepare=False)
    assert check.name is CheckName.SERVER_ADDRESS and not check.ok
    assert check.detail == (
        "Keycloak was sent nothing (read the server's version): its server "
        "URL names 127.0.0.1, which is this machine's own"
    )
    assert "TENANTRY_PRIVATE_NETWORKS" in check.fix
    assert keycloak.fake.requests == []


async def test_a_mirroring_job_to_a_refused_server_stops_at_once_saying_why(
    org: OrgHandle, keycloak: KeycloakFakeServer, settings: Settings, production_network: None
) -> None:
    keycloak.fake.prepared()
    await point_at(org, keycloak, settings)
    await make_member(org)
    await run_jobs(ahead=timedelta(0))
    jobs = await job_rows(org)
    assert jobs and {j["status"] for j in jobs} == {"dead"}, jobs
    assert "its server URL names 127.0.0.1" in jobs[0]["last_error"]
    assert keycloak.fake.requests == []


async def test_the_same_server_is_reached_where_the_policy_allows_it(
    org: OrgHandle, keycloak: KeycloakFakeServer, settings: Settings
) -> None:
    keycloak.fake.prepared()
    await point_at(org, keycloak, settings)
    checks = await set_up(org, prepare=False)
    assert all(c.ok for c in checks), checks
    assert keycloak.fake.requests
