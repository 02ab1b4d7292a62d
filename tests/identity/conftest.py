"""Fixtures for the identity tests: the Keycloak Admin API contract fake served over HTTP
(a realm with Keycloak's defaults: Organizations off, a user profile that drops undeclared
attributes, expiring tokens), and an organisation whose identity backend points at it and
that ``tenantry identity setup`` prepared."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from app.settings import Settings
from tenants import db
from tenants.identity import service, sync
from tenants.identity.models import BackendKind
from tenants.identity.setup import SetupCheck
from tenants.jobs.worker import Worker
from tests.conftest import ACTOR, OrgHandle
from tests.support.keycloak_fake import KeycloakFakeServer, run_keycloak_fake


@pytest.fixture
def keycloak() -> Iterator[KeycloakFakeServer]:
    with run_keycloak_fake() as server:
        yield server


@pytest.fixture(autouse=True)
def identity_sync(settings: Settings) -> None:
    """The worker's identity handlers, given the service's secret key (as app/worker does)."""
    sync.configure(settings.secret_key)


async def point_at(org: OrgHandle, keycloak: KeycloakFakeServer, settings: Settings) -> None:
    """Configure ``org`` to mirror into the fake's realm (queues a full reconcile)."""
    async with db.tenant_transaction(org.id):
        await service.save_config(
            {
                "kind": BackendKind.KEYCLOAK,
                "server_url": keycloak.url,
                "realm": keycloak.fake.realm,
                "client_id": keycloak.fake.client_id,
                "client_secret": keycloak.fake.client_secret,
            },
            box=service.secret_box(settings.secret_key),
            actor=ACTOR,
        )


async def set_up(org: OrgHandle, **options: Any) -> list[SetupCheck]:
    """``tenantry identity setup --org SLUG`` (what the CLI and the console button run)."""
    return await sync.set_up(org.id, prepare=options.pop("prepare", True), actor=ACTOR, **options)


@pytest.fixture
async def mirrored(org: OrgHandle, keycloak: KeycloakFakeServer, settings: Settings) -> OrgHandle:
    await point_at(org, keycloak, settings)
    checks = await set_up(org)
    assert all(c.ok for c in checks), checks
    await run_jobs()
    return org


async def run_jobs(*, ahead: timedelta = timedelta(hours=1)) -> int:
    """Run every due job (and those due within ``ahead``: retries after a backoff)."""
    return await Worker(name="identity-tests").run_until_idle(ahead=ahead)


async def job_rows(org: OrgHandle, kind_prefix: str = "identity.") -> list[dict[str, Any]]:
    async with db.tenant_transaction(org.id):
        return await db.fetch(
            "SELECT kind, status, attempts, queue, payload, last_error FROM jobs "
            "WHERE kind LIKE $1 ORDER BY created_at, id",
            kind_prefix + "%",
        )
