"""The relying party's memory of discovery: a provider that cannot be reached is asked
once however many sign-ins, login pages or logout posts arrive meanwhile, and again once
the failure is old or an admin tests the connection; a wrong document is not remembered."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tenants.signins.rules import Reason
from tenants.sso.oidc import RelyingParty, SignInError

ISSUER = "https://idp.example"


def provider(answers: list[httpx.Response | None]) -> tuple[httpx.AsyncClient, list[str]]:
    """A client whose provider gives the next answer (None: cannot be reached)."""
    asked: list[str] = []

    async def handle(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        await asyncio.sleep(0.01)  # long enough for the others to arrive meanwhile
        answer = answers.pop(0) if answers else None
        if answer is None:
            raise httpx.ConnectError("down")
        return answer

    return httpx.AsyncClient(transport=httpx.MockTransport(handle)), asked


def document() -> dict[str, str]:
    return {
        "issuer": ISSUER,
        "authorization_endpoint": f"{ISSUER}/authorize",
        "token_endpoint": f"{ISSUER}/token",
        "jwks_uri": f"{ISSUER}/jwks",
    }


async def test_an_unreachable_provider_is_asked_once_for_many_and_again_when_it_is_old() -> None:
    http, asked = provider([None, httpx.Response(200, json=document())])
    rp = RelyingParty(http, failure_ttl=0.2)
    results = await asyncio.gather(*(rp.metadata(ISSUER) for _ in range(8)), return_exceptions=True)
    assert len(asked) == 1
    assert all(isinstance(r, SignInError) for r in results)
    assert {r.reason for r in results if isinstance(r, SignInError)} == {Reason.IDP_UNREACHABLE}
    with pytest.raises(SignInError, match="cannot fetch the discovery document"):
        await rp.metadata(ISSUER)
    assert len(asked) == 1
    await asyncio.sleep(0.25)
    assert (await rp.metadata(ISSUER)).token_endpoint == f"{ISSUER}/token"
    assert len(asked) == 2
    await rp.metadata(ISSUER)  # and the document is remembered
    assert len(asked) == 2


async def test_testing_the_connection_asks_again_at_once() -> None:
    http, asked = provider([None, httpx.Response(200, json=document())])
    rp = RelyingParty(http, failure_ttl=60)
    with pytest.raises(SignInError):
        await rp.metadata(ISSUER)
    assert (await rp.metadata(ISSUER, fresh=True)).issuer == ISSUER
    assert len(asked) == 2


async def test_a_wrong_document_is_not_remembered() -> None:
    wrong = {**document(), "issuer": "https://other.example"}
    http, asked = provider([httpx.Response(200, json=wrong), httpx.Response(200, json=document())])
    rp = RelyingParty(http, failure_ttl=60)
    with pytest.raises(SignInError) as refused:
        await rp.metadata(ISSUER)
    assert refused.value.reason is Reason.IDP_METADATA_INVALID
    assert (await rp.metadata(ISSUER)).issuer == ISSUER
    assert len(asked) == 2


async def test_callers_waiting_on_a_fetch_take_its_outcome_even_a_wrong_document() -> None:
    """A document that arrives slowly and is wrong: those who waited for that fetch take
    its refusal (they used to fetch again one after another, each waiting its turn); the
    next caller, arriving later, asks again."""
    wrong = {**document(), "issuer": "https://other.example"}
    http, asked = provider([httpx.Response(200, json=wrong), httpx.Response(200, json=document())])
    rp = RelyingParty(http, failure_ttl=60)
    results = await asyncio.gather(*(rp.metadata(ISSUER) for _ in range(6)), return_exceptions=True)
    assert len(asked) == 1
    assert {r.reason for r in results if isinstance(r, SignInError)} == {
        Reason.IDP_METADATA_INVALID
    }
    assert len([r for r in results if isinstance(r, SignInError)]) == 6
    assert (await rp.metadata(ISSUER)).issuer == ISSUER
    assert len(asked) == 2
