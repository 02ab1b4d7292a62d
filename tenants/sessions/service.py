"""Sign-in sessions: created at sign-in, checked on every console/account request,
revocable one by one, per member, or by the identity provider (back-channel logout).

The browser holds ``<organisation id>.<secret>``; only the SHA-256 of the secret is
stored, so a database leak yields no usable session.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tortoise import connections

from tenants import db
from tenants.actors import Actor, ActorKind
from tenants.audit import service as audit
from tenants.errors import AuthenticationError
from tenants.ids import OrgId
from tenants.members.lifecycle import can_sign_in
from tenants.members.models import Member
from tenants.outages import run_periodically
from tenants.sessions.models import AuthMethod, Session
from tenants.signins import service as sign_ins

log = logging.getLogger(__name__)

IDLE_TIMEOUT = timedelta(hours=8)
ABSOLUTE_TIMEOUT = timedelta(hours=24)
BREAK_GLASS_TIMEOUT = timedelta(hours=1)
TOUCH_GRANULARITY = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class SessionToken:
    org_id: OrgId
    secret: str

    def __str__(self) -> str:
        return f"{self.org_id.hex}.{self.secret}"

    @classmethod
    def parse(cls, text: str) -> SessionToken | None:
        org_hex, _, secret = text.partition(".")
        if len(org_hex) != 32 or not 20 <= len(secret) <= 100:
            return None
        try:
            return cls(OrgId(uuid.UUID(hex=org_hex)), secret)
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class ActiveSession:
    session: Session
    member: Member

    @property
    def actor(self) -> Actor:
        return Actor(
            ActorKind.MEMBER, str(self.member.id), f"{self.member.name} <{self.member.email}>"
        )


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


#: The session and its ``session.signed_in`` event in one statement
#: (``audit.record_change``; the session's parameters follow the event's).
_OPEN_SESSION_SQL = """
INSERT INTO sessions (id, tenant_id, created_at, updated_at, member_id, secret_hash, auth_method,
                      last_seen_at, expires_at, idp_sid, idp_subject, client_addr, user_agent,
                      idp_id_token_enc)
VALUES ($12, $13, $14, $14, $15, $16, $17, $14, $18, $19, $20, $21, $22, $23)
RETURNING id
"""
#: Where the sign-in log entry's parameters start in that statement.
_LOG_PARAMS_FROM = 24


async def create_session(
    member: Member,
    method: AuthMethod,
    *,
    actor: Actor,
    idp_sid: str | None = None,
    idp_subject: str | None = None,
    idp_id_token_enc: str | None = None,
    user_agent: str | None = None,
    sign_in: sign_ins.SignInAttempt | None = None,
) -> SessionToken:
    """Open a session for ``member`` and audit the sign-in; returns the cookie token.
    ``sign_in``: the sign-in log's entry for it, written by the same statement.
    ``idp_id_token_enc``: the encrypted ID token, for signing out at the provider."""
    now = datetime.now(UTC)
    lifetime = BREAK_GLASS_TIMEOUT if method is AuthMethod.BREAK_GLASS else ABSOLUTE_TIMEOUT
    secret = secrets.token_urlsafe(32)
    session_id = uuid.uuid4()
    org = db.current_org()
    await audit.record_change(
        _OPEN_SESSION_SQL,
        [
            session_id,
            org,
            now,
            member.id,
            _digest(secret),
            method.value,
            now + lifetime,
            idp_sid,
            idp_subject,
            actor.client_addr,
            (user_agent or "")[:300] or None,
            idp_id_token_enc,
        ],
        "session.signed_in",
        "member",
        member.id,
        actor=actor,
        after={
            "method": method,
            "session_id": session_id,
            "break_glass": method is AuthMethod.BREAK_GLASS,
        },
        also=sign_ins.record_statement(sign_in, first=_LOG_PARAMS_FROM) if sign_in else None,
    )
    if sign_in is not None:
        sign_ins.counted(sign_in)
    return SessionToken(org, secret)


async def authenticate_session(token: SessionToken) -> ActiveSession:
    """The live session for ``token`` in the current organisation.

    Raises AuthenticationError when it is unknown, revoked, idle too long, past its
    absolute lifetime, or its member may no longer sign in. Refreshes ``last_seen_at``
    at most once a minute (idle timeout) to keep reads cheap.
    """
    session = await Session.filter(secret_hash=_digest(token.secret)).first()
    if session is None or session.revoked_at is not None:
        raise AuthenticationError("your session has ended; sign in again")
    now = datetime.now(UTC)
    if now >= session.expires_at or now - session.last_seen_at > IDLE_TIMEOUT:
        raise AuthenticationError("your session has expired; sign in again")
    member = await Member.filter(id=session.member_id).first()
    if member is None or not can_sign_in(member.status):
        raise AuthenticationError("this account can no longer sign in")
    if now - session.last_seen_at > TOUCH_GRANULARITY:
        await Session.filter(id=session.id).update(last_seen_at=now)
    return ActiveSession(session, member)


async def end_session(session: Session, *, reason: str, actor: Actor) -> None:
    if session.revoked_at is not None:
        return
    await Session.filter(id=session.id).update(
        revoked_at=datetime.now(UTC), revoked_reason=reason, idp_id_token_enc=None
    )
    await audit.record(
        "session.ended",
        "member",
        session.member_id,
        actor=actor,
        after={"session_id": session.id, "reason": reason},
    )


async def end_member_sessions(member_id: uuid.UUID, *, reason: str, actor: Actor) -> int:
    """Revoke every live session of a member ("sign out everywhere"); returns how many."""
    count = await Session.filter(member_id=member_id, revoked_at=None).update(
        revoked_at=datetime.now(UTC), revoked_reason=reason, idp_id_token_enc=None
    )
    if count:
        await audit.record(
            "session.ended_all",
            "member",
            member_id,
            actor=actor,
            after={"sessions": count, "reason": reason},
        )
    return int(count)


async def end_idp_sessions(*, sid: str | None, subject: str | None, actor: Actor) -> int:
    """Back-channel logout: end the sessions the IdP names by ``sid`` or else by ``sub``."""
    query = Session.filter(revoked_at=None)
    query = query.filter(idp_sid=sid) if sid else query.filter(idp_subject=subject)
    sessions = await query
    now = datetime.now(UTC)
    for session in sessions:
        await Session.filter(id=session.id).update(
            revoked_at=now, revoked_reason="identity provider logout", idp_id_token_enc=None
        )
    if sessions:
        await audit.record(
            "session.ended_by_idp",
            "member",
            sessions[0].member_id,
            actor=actor,
            after={"sessions": len(sessions), "sid": sid, "sub": subject},
        )
    return len(sessions)


def csrf_token(secret_key: str, token: SessionToken | str) -> str:
    """The CSRF token of a session (or of a pre-sign-in browser id): HMAC, nothing stored."""
    return hmac.new(secret_key.encode(), f"csrf:{token}".encode(), hashlib.sha256).hexdigest()


def is_valid_csrf(secret_key: str, token: SessionToken | str, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(csrf_token(secret_key, token), presented or "")


#: How many expired sessions one sweep deletes at most (one short statement).
SWEEP_BATCH = 5000


async def delete_expired_sessions(*, limit: int = SWEEP_BATCH) -> int:
    """Delete sessions past their absolute lifetime, in every organisation; returns how
    many went (at most ``limit``). Expired sessions can never be used again, and without
    this the table (read on every request) would only grow. Runs outside any tenant
    transaction, through a SECURITY DEFINER function that returns a count only."""
    _, rows = await connections.get("default").execute_query(
        "SELECT delete_expired_sessions($1) AS n", [limit]
    )
    return int(rows[0]["n"])


async def sweep_expired_sessions(stop: asyncio.Event, *, every: float = 300.0) -> None:
    """Delete expired sessions every ``every`` seconds until ``stop`` is set (the worker
    runs this beside its jobs); batches follow each other while a sweep finds a full one.
    A database restart (57P03 included) costs a round, never the loop."""

    async def sweep() -> None:
        while await delete_expired_sessions() >= SWEEP_BATCH and not stop.is_set():
            pass

    await run_periodically("sweeping expired sessions", sweep, stop, every=every)
