"""The organisation's Shared Signals transmitter, and acting on its security events, in the
caller's tenant transaction.

What each event does (OpenID CAEP 1.0 §3, RISC 1.0 §2):

- CAEP ``session-revoked``: the member's sessions end, here and at the identity backend;
- CAEP ``credential-change``: the same, so the member re-authenticates with the new
  credential (a password or key changed at the IdP must not leave old sessions alive);
- RISC ``account-disabled``: the member is suspended (sign-in off, sessions ended);
- RISC ``account-purged``: a departure starts with the organisation's default departure
  policy and today as the last day (content moves as that policy says, nothing is
  destroyed silently);
- SSF ``verification``: acknowledged, nothing else.

Every accepted event is an audit event naming the transmitter and what was done; every
refused one too (``record_rejection``, in a transaction of its own, since the refusal
rolls back everything else).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from tenants import db, text
from tenants.actors import Actor, ActorKind
from tenants.audit import service as audit
from tenants.identity import changes as identity
from tenants.members.lifecycle import LifecycleAction, MemberStatus
from tenants.members.models import Member
from tenants.members.service import transition_member
from tenants.models_base import max_length_of
from tenants.signals.models import SignalTransmitter
from tenants.signals.tokens import (
    LEEWAY_SECONDS,
    MAX_AGE_SECONDS,
    EventType,
    SecurityEvent,
    SetError,
    SignalRejectedError,
    Subject,
)
from tenants.sso.models import SsoConnection
from tenants.sso.rules import check_endpoint

log = logging.getLogger(__name__)


def transmitter_view(transmitter: SignalTransmitter) -> dict[str, Any]:
    return {
        "issuer": transmitter.issuer,
        "jwks_uri": transmitter.jwks_uri,
        "audience": transmitter.audience,
        "enabled": transmitter.enabled,
        "last_event_at": transmitter.last_event_at,
    }


async def get_transmitter() -> SignalTransmitter | None:
    return await SignalTransmitter.filter().first()


#: What each field of the transmitter may hold, at most: its column.
MAX_LENGTHS = {
    name: max_length_of(SignalTransmitter, name) for name in ("issuer", "jwks_uri", "audience")
}


async def save_transmitter(changes: dict[str, Any], *, actor: Actor) -> SignalTransmitter:
    """Create or replace the organisation's transmitter; early return when nothing changes.
    A field past ``MAX_LENGTHS`` is refused (InvalidInputError naming it), never shortened."""
    text.check_lengths(changes, MAX_LENGTHS)
    if changes.get("jwks_uri") is not None:
        check_endpoint("jwks_uri", changes["jwks_uri"])  # the keys whose events end sessions
    transmitter = await SignalTransmitter.filter().select_for_update().first()
    before = transmitter_view(transmitter) if transmitter else None
    if transmitter is None:
        transmitter = SignalTransmitter(tenant_id=db.current_org(), **changes)
    else:
        for key, value in changes.items():
            setattr(transmitter, key, value)
    old, new = audit.changed_fields(before or {}, transmitter_view(transmitter))
    if before is not None and not new:
        return transmitter
    await transmitter.save()
    await audit.record(
        "signals.transmitter_saved",
        "signal_transmitter",
        transmitter.id,
        actor=actor,
        before=old if before else None,
        after=new,
    )
    return transmitter


def transmitter_actor(
    transmitter: SignalTransmitter, *, request_id: str | None, client: str | None
) -> Actor:
    return Actor(
        ActorKind.IDENTITY_PROVIDER,
        transmitter.issuer,
        f"security events from {transmitter.issuer}",
        request_id=request_id,
        client_addr=client,
    )


async def _remember(jti: str) -> None:
    """Refuse a SET seen before (``jti``); remember this one while its ``iat`` keeps it
    acceptable (older ones fail the freshness check anyway)."""
    now = datetime.now(UTC)
    await db.connection().execute_query(
        "DELETE FROM seen_security_events WHERE tenant_id = $1 AND expires_at < $2",
        [db.current_org(), now],
    )
    row = await db.fetch_one(
        # A CTE, so the driver reads the RETURNING row (a bare INSERT answers no rows here).
        "WITH remembered AS (INSERT INTO seen_security_events "
        "(id, tenant_id, jti, expires_at, created_at, updated_at) "
        "VALUES (gen_random_uuid(), $1, $2, $3, now(), now()) "
        "ON CONFLICT (tenant_id, jti) DO NOTHING RETURNING id) SELECT id FROM remembered",
        db.current_org(),
        jti,
        now + timedelta(seconds=MAX_AGE_SECONDS + 2 * LEEWAY_SECONDS),
    )
    if row is None:
        raise SignalRejectedError(SetError.INVALID_REQUEST, "this SET was already received (jti)")


async def _member_for(subject: Subject, transmitter: SignalTransmitter) -> Member:
    """The member an RFC 9493 subject names: by email; by IdP subject when the issuer is
    the transmitter or the organisation's own identity provider; opaque ids as IdP
    subject or SCIM externalId."""
    member: Member | None = None
    if subject.email:
        member = await Member.filter(email=subject.email).first()
    elif subject.sub:
        issuers = {transmitter.issuer}
        connection = await SsoConnection.filter().first()
        if connection is not None:
            issuers.add(connection.issuer)
        if subject.iss in issuers:
            member = await Member.filter(idp_subject=subject.sub).first()
    elif subject.opaque:
        member = await Member.filter(idp_subject=subject.opaque).first()
        member = member or await Member.filter(external_id=subject.opaque).first()
    if member is None or member.status == MemberStatus.PURGED:
        raise SignalRejectedError(
            SetError.INVALID_REQUEST, f"the subject {subject.describe()} is not a member here"
        )
    return member


async def _end_sessions(member: Member, why: str, actor: Actor) -> str:
    from tenants.sessions.service import end_member_sessions

    ended = await end_member_sessions(member.id, reason=why, actor=actor)
    await identity.member_changed(member.id, "log_out")
    return f"ended {ended} session(s)"


async def _suspend(member: Member, actor: Actor) -> str:
    if member.status == MemberStatus.SUSPENDED:
        return "already suspended"
    if member.status not in (MemberStatus.INVITED, MemberStatus.ACTIVE, MemberStatus.DEPARTING):
        return f"not suspended: the member is {member.status.value}"
    await transition_member(
        member.id,
        LifecycleAction.SUSPEND,
        reason="account disabled at the identity provider",
        actor=actor,
    )
    return "suspended"


async def _depart(member: Member, event: SecurityEvent, actor: Actor) -> str:
    if member.status != MemberStatus.ACTIVE:
        return f"no departure started: the member is {member.status.value}"
    from tenants.departures.service import start_departure
    from tenants.organisations import days
    from tenants.organisations import service as organisations

    departure = await start_departure(
        member.id,
        # Today in the organisation's zone (a UTC date ahead of it was refused as past).
        last_day=days.today(await organisations.time_zone()),
        successor_id=None,
        reason="account purged at the identity provider",
        actor=actor,
    )
    return f"started departure {departure.id}"


async def receive(event: SecurityEvent, transmitter: SignalTransmitter, *, actor: Actor) -> str:
    """Act on a verified event once; SignalRejectedError for a replay or an unknown subject.
    Returns what was done (also recorded as the audit event ``signals.event_accepted``)."""
    await _remember(event.jti)
    member: Member | None = None
    if event.type is EventType.VERIFICATION:
        outcome = "verification acknowledged"
    else:
        assert event.subject is not None
        member = await _member_for(event.subject, transmitter)
        if event.type is EventType.SESSION_REVOKED:
            outcome = await _end_sessions(member, "session revoked at the identity provider", actor)
        elif event.type is EventType.CREDENTIAL_CHANGE:
            outcome = await _end_sessions(member, "credential changed: sign in again", actor)
        elif event.type is EventType.ACCOUNT_DISABLED:
            outcome = await _suspend(member, actor)
        else:
            outcome = await _depart(member, event, actor)
    await SignalTransmitter.filter(id=transmitter.id).update(last_event_at=datetime.now(UTC))
    await audit.record(
        "signals.event_accepted",
        "member" if member else "signal_transmitter",
        member.id if member else transmitter.id,
        actor=actor,
        after={
            "event": event.type.value,
            "jti": event.jti,
            "subject": event.subject.describe() if event.subject else None,
            "outcome": outcome,
        },
    )
    return outcome


async def record_rejection(
    error: SignalRejectedError, *, actor: Actor, jti: str | None = None
) -> None:
    """Leave a trace of a refused SET (audit event ``signals.event_rejected``)."""
    log.warning("security event refused: %s (%s)", error.message, error.err.value)
    await audit.record(
        "signals.event_rejected",
        "organisation",
        db.current_org(),
        actor=actor,
        after={"err": error.err.value, "reason": error.message, "jti": jti},
    )
