"""Fixtures of the web tests: the real test OpenID provider and two organisations signed up
to it (alpha and bravo), each with its own client at the provider; and, from
``tests/web/browser.py``, real Chromium with its tabs.

The provider is session-scoped and only started when a test asks for it: one node process
for every module, and no stale discovery or key cache in the app from a restarted provider
that happened to get the same port.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from app.settings import Settings
from tests.conftest import OrgHandle, make_member
from tests.support.oidc_provider import (
    OidcAccount,
    OidcClient,
    ProviderConfig,
    RunningProvider,
    run_oidc_provider,
)
from tests.web.browser import chromium, tab, tabs  # noqa: F401  (fixtures of the folder)
from tests.web.flows import configure_sso

ALPHA, BRAVO = "alpha", "bravo"

#: People at the identity provider. The login name used at the provider is the ``sub``.
ADA = OidcAccount("alpha-admin-ada", "ada@alpha.example", name="Ada Admin")
MAX = OidcAccount("alpha-member-max", "max@alpha.example", name="Max Member")
BEA = OidcAccount("bravo-member-bea", "bea@bravo.example", name="Bea Bravo")
NORA = OidcAccount("alpha-newcomer-nora", "nora@alpha.example", name="Nora Newcomer")
EVE = OidcAccount("foreign-eve", "eve@evil.example", name="Eve Outsider")
#: Another identity at the provider carrying Ada's address (a reused or edited email).
IMPOSTOR = OidcAccount("alpha-impostor", ADA.email, name="Not Ada")
#: People whose address the provider says it has not verified.
UNVERIFIED_MAX = OidcAccount(
    "alpha-unverified-max", MAX.email, email_verified=False, name="Unverified Max"
)
UNVERIFIED_UMA = OidcAccount(
    "alpha-unverified-uma", "uma@alpha.example", email_verified=False, name="Uma"
)
ACCOUNTS = (ADA, MAX, BEA, NORA, EVE, IMPOSTOR, UNVERIFIED_MAX, UNVERIFIED_UMA)


def client_id(slug: str) -> str:
    return f"tenantry-{slug}"


def client_secret(slug: str) -> str:
    return f"{slug}-client-secret-0123456789"


def provider_config(base_url: str, *, claims_in_id_token: bool) -> ProviderConfig:
    clients = [
        OidcClient(
            client_id(slug),
            client_secret(slug),
            redirect_uris=[f"{base_url}/oidc/{slug}/callback"],
            post_logout_redirect_uris=[f"{base_url}/oidc/{slug}/signed-out"],
            backchannel_logout_uri=f"{base_url}/oidc/{slug}/backchannel-logout",
        )
        for slug in (ALPHA, BRAVO)
    ]
    return ProviderConfig(clients=clients, accounts=ACCOUNTS, claims_in_id_token=claims_in_id_token)


async def _run(config: ProviderConfig) -> AsyncIterator[RunningProvider]:
    # Starting blocks until node prints READY: run it in a thread so the loop keeps serving.
    manager = run_oidc_provider(config)
    provider = await asyncio.to_thread(manager.__enter__)
    try:
        yield provider
    finally:
        await asyncio.to_thread(manager.__exit__, None, None, None)


@pytest.fixture(scope="session")
async def idp(live_server: str) -> AsyncIterator[RunningProvider]:
    """The real provider releasing email and name from userinfo only (its default)."""
    async for provider in _run(provider_config(live_server, claims_in_id_token=False)):
        yield provider


@pytest.fixture(scope="session")
async def idp_claims_in_id_token(live_server: str) -> AsyncIterator[RunningProvider]:
    """The real provider putting email and name in the ID token as well."""
    async for provider in _run(provider_config(live_server, claims_in_id_token=True)):
        yield provider


@dataclass
class SsoWorld:
    """alpha and bravo, both signing in through ``idp``; ada (admin) and max (member) in
    alpha, bea (member) in bravo, as members whose IdP subject is not linked yet."""

    alpha: OrgHandle
    bravo: OrgHandle
    ada: dict[str, Any]
    max: dict[str, Any]
    bea: dict[str, Any]
    settings: Settings

    async def use_issuer(self, org: OrgHandle, provider: RunningProvider, **options: Any) -> None:
        await configure_sso(
            self.settings,
            org.id,
            issuer=provider.issuer,
            client_id=client_id(org.slug),
            client_secret=client_secret(org.slug),
            **options,
        )


@pytest.fixture
async def world(
    two_orgs: tuple[OrgHandle, OrgHandle], idp: RunningProvider, settings: Settings
) -> SsoWorld:
    alpha, bravo = two_orgs
    assert (alpha.slug, bravo.slug) == (ALPHA, BRAVO)
    ada = await make_member(alpha, email=ADA.email, name=ADA.name, roles=["admin"])
    max_ = await make_member(alpha, email=MAX.email, name=MAX.name)
    bea = await make_member(bravo, email=BEA.email, name=BEA.name)
    world = SsoWorld(alpha, bravo, ada, max_, bea, settings)
    await world.use_issuer(alpha, idp)
    await world.use_issuer(bravo, idp)
    return world
