"""Local passwords (argon2id): for organisations without an identity provider and for the
break-glass admin. Repeated failures from one client lock that client out of that address
for a while."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from tenants import db
from tenants.actors import Actor
from tenants.audit import service as audit
from tenants.errors import FieldProblem, InvalidInputError
from tenants.members.lifecycle import can_sign_in
from tenants.members.models import Member
from tenants.models_base import max_length_of
from tenants.ratelimits import RateLimiter
from tenants.sessions.models import LocalCredential
from tenants.signins.rules import Reason, member_status_reason
from tenants.text import is_storable

HASHER = PasswordHasher()
MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
MIN_LENGTH = 12
#: Wrong passwords, counted per address typed and client, on every node.
FAILURES = RateLimiter("password-failures", MAX_FAILURES, int(LOCKOUT.total_seconds()))


@cache
def _dummy_hash() -> str:
    """Verified against when the email is unknown, so a wrong email costs as long as a wrong
    password. Made on first use, not at import: an argon2 hash costs every process that
    imports this module (each ``serve`` and ``worker`` start) a tenth of a second."""
    return HASHER.hash(secrets.token_urlsafe(16))


def check_password_strength(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise InvalidInputError(
            f"the password must have at least {MIN_LENGTH} characters",
            fields=[FieldProblem("password", f"shorter than {MIN_LENGTH} characters")],
        )


def generate_password() -> str:
    return secrets.token_urlsafe(15)


async def set_password(member: Member, password: str, *, break_glass: bool, actor: Actor) -> None:
    check_password_strength(password)
    existing = await LocalCredential.filter(member_id=member.id).first()
    hashed = HASHER.hash(password)
    if existing:
        await LocalCredential.filter(id=existing.id).update(
            password_hash=hashed, break_glass=break_glass, failed_attempts=0, locked_until=None
        )
    else:
        await LocalCredential.create(
            tenant_id=db.current_org(),
            member_id=member.id,
            password_hash=hashed,
            break_glass=break_glass,
        )
    await audit.record(
        "credential.password_set",
        "member",
        member.id,
        actor=actor,
        after={"break_glass": break_glass},
    )


@dataclass(frozen=True, slots=True)
class PasswordCheck:
    """The outcome of a password sign-in. ``refusal`` is None when it succeeded.

    A refusal is returned rather than raised so that the caller commits the failure
    count and its audit event; raising would roll them back with the transaction.
    """

    member: Member | None
    credential: LocalCredential | None
    #: Why it was refused (its words: ``tenants.signins.rules.MESSAGES``).
    refusal: Reason | None


async def check_password(email: str, password: str, *, actor: Actor) -> PasswordCheck:
    """Check a password sign-in. After MAX_FAILURES wrong passwords for an address from
    one client (``actor.client_addr``) within LOCKOUT, that client may not try that
    address again until the oldest failure leaves the window; other clients still may, so
    nobody can lock a member (the break-glass owner included) out by failing on purpose.
    An unknown address, a wrong password and a locked one are told apart by no one
    outside: unknown addresses lock the same way, and a password is hashed in every case,
    so each costs the same time. Failures on a known address are audited."""
    wrong = Reason.BAD_CREDENTIALS
    address = email.strip().lower()
    # An address longer than the column names nobody (and the ORM refuses to compare it).
    fits = is_storable(address) and len(address) <= max_length_of(Member, "email")
    member = await Member.filter(email=address).first() if fits else None
    credential = (
        await LocalCredential.filter(member_id=member.id).select_for_update().first()
        if member
        else None
    )
    tried = f"{address}\x00{actor.client_addr or 'unknown'}"
    # Attempts at one address from one client take turns, known address or not: only a
    # known one had a row to lock, and a burst of attempts at an unknown address was
    # counted in parallel, past the limit, which told the two apart.
    turn = hashlib.sha256(f"password\x00{tried}".encode()).hexdigest()  # no address in clear
    await db.connection().execute_query(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [turn]
    )
    right = _verify(credential.password_hash if credential else _dummy_hash(), password)
    if await FAILURES.waiting(tried) is not None:
        return PasswordCheck(member, credential, Reason.CREDENTIAL_LOCKED)
    if member is None or credential is None or not right:
        await FAILURES.retry_after(tried)  # counts this failure
        if member is None or credential is None:
            return PasswordCheck(None, None, wrong)
        await audit.record(
            "session.sign_in_refused",
            "member",
            member.id,
            actor=actor,
            after={
                "reason": "wrong password",
                "locked": await FAILURES.waiting(tried) is not None,
                "break_glass": credential.break_glass,
            },
        )
        return PasswordCheck(member, credential, wrong)
    if not can_sign_in(member.status):
        await audit.record(
            "session.sign_in_refused",
            "member",
            member.id,
            actor=actor,
            after={"reason": f"member is {member.status.value}"},
        )
        return PasswordCheck(member, credential, member_status_reason(member.status.value))
    await LocalCredential.filter(id=credential.id).update(last_used_at=datetime.now(UTC))
    return PasswordCheck(member, credential, None)


def _verify(hashed: str, password: str) -> bool:
    try:
        return HASHER.verify(hashed, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def has_password(member_id: uuid.UUID) -> bool:
    return await LocalCredential.filter(member_id=member_id).exists()
