"""The Shared Signals receiver (OpenID SSF 1.0, CAEP, RISC; SETs per RFC 8417 pushed per
RFC 8935): valid events act at once; forged, misaddressed, replayed, stale or unknown
events are refused with RFC 8935 errors and change nothing; those from the transmitter are
audited, posts nobody authenticated are only counted (an anonymous sender cannot write to an
organisation's audit trail) and answer alike for every slug."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from app.settings import Settings
from tenants import db
from tenants.members.models import Member
from tenants.sessions import service as sessions
from tenants.sessions.models import AuthMethod, Session
from tests.conftest import ACTOR, OrgHandle, make_member, row_counts
from tests.identity.conftest import point_at, run_jobs, set_up
from tests.support import set_transmitter as sets
from tests.support.keycloak_fake import KeycloakFakeServer
from tests.support.set_transmitter import AUDIENCE, Transmitter, run_transmitter


@pytest.fixture
def transmitter() -> Iterator[Transmitter]:
    with run_transmitter() as tx:
        yield tx


@pytest.fixture
async def receiving(org: OrgHandle, transmitter: Transmitter) -> OrgHandle:
    response = await org.put(
        "/v1/signal-transmitter",
        json={"issuer": transmitter.issuer, "jwks_uri": transmitter.jwks_uri, "audience": AUDIENCE},
    )
    assert response.status_code == 200, response.text
    assert response.json()["receiver_url"].endswith(f"/ssf/{org.slug}/events")
    return org


async def test_the_transmitters_keys_must_come_over_https(org: OrgHandle) -> None:
    """Its keys decide which events end sessions and suspend members: fetched over plain
    http, anyone on the path could sign such events."""
    response = await org.put(
        "/v1/signal-transmitter",
        json={"issuer": "https://ssf.example.com", "jwks_uri": "http://ssf.example.com/jwks",
              "audience": AUDIENCE},
    )
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["field"] == "jwks_uri" and "must use https://" in error["reason"], error
    assert (await org.get("/v1/signal-transmitter")).status_code == 404


def by_email(member: dict[str, Any]) -> dict[str, str]:
    return {"format": "email", "email": member["email"]}


async def push(
    org: OrgHandle, token: str, *, media: str = "application/secevent+jwt"
) -> httpx.Response:
    return await org.client.post(
        f"/ssf/{org.slug}/events",
        content=token.encode(),
        headers={"Content-Type": media, "Accept": "application/json"},
    )


async def open_sessions(org: OrgHandle, member: dict[str, Any], count: int = 2) -> None:
    async with db.tenant_transaction(org.id):
        row = await Member.get(id=member["id"])
        for _ in range(count):
            await sessions.create_session(row, AuthMethod.OIDC, actor=ACTOR)


async def live_sessions(org: OrgHandle, member: dict[str, Any]) -> int:
    async with db.tenant_transaction(org.id):
        return await Session.filter(member_id=member["id"], revoked_at=None).count()


async def status_of(org: OrgHandle, member: dict[str, Any]) -> str:
    response = await org.get(f"/v1/members/{member['id']}")
    return str(response.json()["status"])


async def audit_actions(org: OrgHandle, action: str) -> list[dict[str, Any]]:
    response = await org.get("/v1/audit-events", params={"action": action, "limit": 100})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_session_revoked_ends_the_members_sessions(
    receiving: OrgHandle, transmitter: Transmitter
) -> None:
    member = await make_member(receiving)
    other = await make_member(receiving)
    await open_sessions(receiving, member)
    await open_sessions(receiving, other)
    response = await push(receiving, transmitter.set_for(sets.SESSION_REVOKED, by_email(member)))
    assert response.status_code == 202, response.text
    assert response.content == b""
    assert await live_sessions(receiving, member) == 0
    assert await live_sessions(receiving, other) == 2
    (accepted,) = await audit_actions(receiving, "signals.event_accepted")
    assert accepted["after"]["event"] == sets.SESSION_REVOKED
    assert accepted["after"]["outcome"] == "ended 2 session(s)"
    assert accepted["actor"].startswith("identity_provider:")


async def test_credential_change_forces_reauthentication(
    receiving: OrgHandle, transmitter: Transmitter
) -> None:
    member = await make_member(receiving, idp_subject=f"sub-{uuid.uuid4().hex[:6]}")
    await open_sessions(receiving, member)
    subject = {"format": "iss_sub", "iss": transmitter.issuer, "sub": member["idp_subject"]}
    token = transmitter.set_for(
        sets.CREDENTIAL_CHANGE,
        subject,
        payload={"credential_type": "password", "change_type": "update"},
    )
    assert (await push(receiving, token)).status_code == 202
    assert await live_sessions(receiving, member) == 0


async def test_account_disabled_suspends_the_member(
    receiving: OrgHandle, transmitter: Transmitter
) -> None:
    member = await make_member(receiving, external_id=f"ext-{uuid.uuid4().hex[:6]}")
    await open_sessions(receiving, member)
    subject = {"format": "opaque", "id": member["external_id"]}
    token = transmitter.set_for(sets.ACCOUNT_DISABLED, subject, payload={"reason": "hijacking"})
    assert (await push(receiving, token)).status_code == 202
    assert await status_of(receiving, member) == "suspended"
    assert await live_sessions(receiving, member) == 0
    # The same news again (a new SET) changes nothing and is still accepted.
    again = transmitter.set_for(sets.ACCOUNT_DISABLED, subject)
    assert (await push(receiving, again)).status_code == 202
    outcomes = [
        e["after"]["outcome"] for e in await audit_actions(receiving, "signals.event_accepted")
    ]
    assert sorted(outcomes) == ["already suspended", "suspended"]


async def test_account_purged_starts_a_departure_with_the_default_policy(
    receiving: OrgHandle, transmitter: Transmitter
) -> None:
    member = await make_member(receiving)
    complex_subject = {"format": "complex", "user": by_email(member)}
    token = transmitter.set_for(sets.ACCOUNT_PURGED, complex_subject)
    assert (await push(receiving, token)).status_code == 202
    assert await status_of(receiving, member) == "departing"
    response = await receiving.get("/v1/departures")
    assert response.status_code == 200, response.text
    (departure,) = [d for d in response.json()["items"] if d["member_id"] == member["id"]]
    assert departure["reason"] == "account purged at the identity provider"


async def test_a_verification_event_is_acknowledged(
    receiving: OrgHandle, transmitter: Transmitter
) -> None:
    token = transmitter.set_for(sets.VERIFICATION, None, payload={"state": "probe"})
    assert (await push(receiving, token)).status_code == 202


async def test_session_revoked_also_logs_the_member_out_of_a_mirroring_keycloak(
    receiving: OrgHandle,
    transmitter: Transmitter,
    keycloak: KeycloakFakeServer,
    settings: Settings,
) -> None:
    await point_at(receiving, keycloak, settings)
    await set_up(receiving)
    member = await make_member(receiving)
    await run_jobs()
    user = keycloak.fake.user_by_username(member["id"])
    assert user is not None
    keycloak.fake.add_session(user["id"])
    assert (
        await push(receiving, transmitter.set_for(sets.SESSION_REVOKED, by_email(member)))
    ).status_code == 202
    await run_jobs()
    assert keycloak.fake.sessions.get(user["id"]) is None
    assert user["enabled"] is True  # a revoked session is not a disabled account


def forged(tx: Transmitter, member: dict[str, Any]) -> str:
    return tx.set_for(sets.ACCOUNT_DISABLED, by_email(member), key=tx.forger)


#: Refused before anything proved the sender is the transmitter: counted, not audited.
UNAUTHENTICATED = {"forged signature", "unknown key", "not a JWS"}

REFUSALS: dict[str, tuple[Any, str]] = {
    "forged signature": (forged, "authentication_failed"),
    "unknown key": (
        lambda tx, m: tx.set_for(
            sets.ACCOUNT_DISABLED, by_email(m), key=sets._key("other"), kid="other"
        ),
        "authentication_failed",
    ),
    "wrong audience": (
        lambda tx, m: tx.set_for(
            sets.ACCOUNT_DISABLED, by_email(m), audience="https://elsewhere.example"
        ),
        "invalid_audience",
    ),
    "wrong issuer": (
        lambda tx, m: tx.set_for(sets.ACCOUNT_DISABLED, by_email(m), issuer="https://evil.example"),
        "invalid_issuer",
    ),
    "stale iat": (
        lambda tx, m: tx.set_for(sets.ACCOUNT_DISABLED, by_email(m), iat=int(time.time()) - 3600),
        "invalid_request",
    ),
    "iat in the future": (
        lambda tx, m: tx.set_for(sets.ACCOUNT_DISABLED, by_email(m), iat=int(time.time()) + 3600),
        "invalid_request",
    ),
    "unknown event type": (
        lambda tx, m: tx.set_for(sets.CAEP + "assurance-level-change", by_email(m)),
        "invalid_request",
    ),
    "two events": (
        lambda tx, m: tx.set_for(
            "", by_email(m), events={sets.ACCOUNT_DISABLED: {}, sets.SESSION_REVOKED: {}}
        ),
        "invalid_request",
    ),
    "not explicitly typed": (
        lambda tx, m: tx.set_for(sets.ACCOUNT_DISABLED, by_email(m), typ=None),
        "invalid_request",
    ),
    "typed as an ID token": (
        lambda tx, m: tx.set_for(sets.ACCOUNT_DISABLED, by_email(m), typ="JWT"),
        "invalid_request",
    ),
    "unknown subject": (
        lambda tx, m: tx.set_for(
            sets.ACCOUNT_DISABLED, {"format": "email", "email": "nobody@x.example"}
        ),
        "invalid_request",
    ),
    "unsupported subject format": (
        lambda tx, m: tx.set_for(
            sets.ACCOUNT_DISABLED, {"format": "phone_number", "phone_number": "+1"}
        ),
        "invalid_request",
    ),
    "subject of another issuer": (
        lambda tx, m: tx.set_for(
            sets.ACCOUNT_DISABLED,
            {"format": "iss_sub", "iss": "https://other.example", "sub": m["id"]},
        ),
        "invalid_request",
    ),
    "not a JWS": (lambda tx, m: "not.a.jws", "invalid_request"),
}


@pytest.mark.parametrize("defect", sorted(REFUSALS))
async def test_a_defective_set_is_refused_changes_nothing_and_is_audited(
    receiving: OrgHandle, transmitter: Transmitter, owner_conn: asyncpg.Connection, defect: str
) -> None:
    member = await make_member(receiving)
    await open_sessions(receiving, member)
    make, err = REFUSALS[defect]
    counts = await row_counts(owner_conn)
    response = await push(receiving, make(transmitter, member))
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["err"] == err
    assert isinstance(response.json()["description"], str)
    assert await status_of(receiving, member) == "active"
    assert await live_sessions(receiving, member) == 2
    after = await row_counts(owner_conn)
    changed = {t for t in counts if counts[t] != after[t]}
    if defect in UNAUTHENTICATED:
        assert changed == set()
        assert await audit_actions(receiving, "signals.event_rejected") == []
        return
    assert changed <= {"audit_events", "audit_pending", "audit_chain", "audit_heads"}
    (rejected,) = await audit_actions(receiving, "signals.event_rejected")
    assert rejected["after"]["err"] == err


async def test_a_replayed_set_is_refused(receiving: OrgHandle, transmitter: Transmitter) -> None:
    member = await make_member(receiving)
    token = transmitter.set_for(sets.SESSION_REVOKED, by_email(member))
    assert (await push(receiving, token)).status_code == 202
    await open_sessions(receiving, member)
    replay = await push(receiving, token)
    assert replay.status_code == 400
    assert replay.json() == {
        "err": "invalid_request",
        "description": "this SET was already received (jti)",
    }
    assert await live_sessions(receiving, member) == 2


async def test_the_set_must_come_as_secevent_jwt(
    receiving: OrgHandle, transmitter: Transmitter
) -> None:
    member = await make_member(receiving)
    token = transmitter.set_for(sets.ACCOUNT_DISABLED, by_email(member))
    response = await push(receiving, token, media="application/jwt")
    assert (response.status_code, response.json()["err"]) == (400, "invalid_request")
    assert await status_of(receiving, member) == "active"


async def test_an_organisation_without_a_transmitter_accepts_nothing(
    org: OrgHandle, transmitter: Transmitter
) -> None:
    member = await make_member(org)
    token = transmitter.set_for(sets.ACCOUNT_DISABLED, by_email(member))
    refusals = org.client._transport.app.state.ssf_refusals  # type: ignore[attr-defined]
    counted = sum(refusals.counts.values())
    response = await push(org, token)
    assert (response.status_code, response.json()["err"]) == (400, "authentication_failed")
    assert await status_of(org, member) == "active"
    assert await audit_actions(org, "signals.event_rejected") == []
    assert sum(refusals.counts.values()) == counted + 1
    # An organisation that does not exist answers exactly alike.
    elsewhere = await org.client.post(
        f"/ssf/no-such-{uuid.uuid4().hex[:6]}/events", content=token.encode(),
        headers={"Content-Type": "application/secevent+jwt", "Accept": "application/json"},
    )
    assert (elsewhere.status_code, elsewhere.json()) == (400, response.json())


async def test_unauthenticated_posts_are_rate_limited_per_address(
    org: OrgHandle, transmitter: Transmitter, owner_conn: asyncpg.Connection
) -> None:
    from app.v1.signals import REFUSALS_PER_MINUTE

    # Every test client has the same address: start and end with an empty window.
    await owner_conn.execute("DELETE FROM rate_limit_hits")
    token = transmitter.set_for(sets.ACCOUNT_DISABLED, {"format": "email", "email": "a@x.example"})
    answers = [(await push(org, token)).status_code for _ in range(REFUSALS_PER_MINUTE + 1)]
    await owner_conn.execute("DELETE FROM rate_limit_hits")
    assert answers[:-1] == [400] * REFUSALS_PER_MINUTE and answers[-1] == 429
    assert await audit_actions(org, "signals.event_rejected") == []
