"""Security Event Tokens as the Shared Signals Framework profiles them: validation and the
events Tenantry acts on. Plain Python over joserfc; no I/O (the caller fetches the keys).

- RFC 8417 (SET): a JWT whose ``events`` claim names what happened; ``iss``, ``aud``,
  ``iat`` and ``jti`` identify it; explicit typing ``typ: secevent+jwt`` (§2.3) keeps it
  from being mistaken for an ID token or access token (§4.3).
- OpenID SSF 1.0 §4.1: explicit typing is required, ``events`` carries exactly one event,
  the subject is the top-level ``sub_id`` (older CAEP/RISC events carry ``subject`` in the
  event; both are read).
- RFC 9493 subject identifiers: ``email``, ``iss_sub``, ``opaque`` (and ``complex`` with a
  ``user`` member in one of those formats).
- RFC 8935 §2.4: a SET that is refused gets ``400`` with ``{"err", "description"}``; the
  ``err`` codes are those of §2.4 (``invalid_request``, ``invalid_key``, ``invalid_issuer``,
  ``invalid_audience``, ``authentication_failed``, ``access_denied``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from tenants.errors import TenantryError
from tenants.sso.oidc import ALLOWED_ALGORITHMS

LEEWAY_SECONDS = 60
#: How old a SET may be (its ``iat``): a transmitter retries briefly, an old token is a replay.
MAX_AGE_SECONDS = 600

CAEP = "https://schemas.openid.net/secevent/caep/event-type/"
RISC = "https://schemas.openid.net/secevent/risc/event-type/"


class EventType(StrEnum):
    """The events Tenantry acts on, by their registered URIs."""

    SESSION_REVOKED = CAEP + "session-revoked"
    CREDENTIAL_CHANGE = CAEP + "credential-change"
    ACCOUNT_DISABLED = RISC + "account-disabled"
    ACCOUNT_PURGED = RISC + "account-purged"
    #: SSF 1.0 §8.1.4: sent by a transmitter to check the stream; acknowledged, no action.
    VERIFICATION = "https://schemas.openid.net/secevent/ssf/event-type/verification"


class SetError(StrEnum):
    """RFC 8935 §2.4 error codes."""

    INVALID_REQUEST = "invalid_request"
    INVALID_KEY = "invalid_key"
    INVALID_ISSUER = "invalid_issuer"
    INVALID_AUDIENCE = "invalid_audience"
    AUTHENTICATION_FAILED = "authentication_failed"
    ACCESS_DENIED = "access_denied"


class SignalRejectedError(TenantryError):
    """A Security Event Token was refused; ``err`` is the RFC 8935 error code."""

    code = "signal_rejected"
    title = "Security event refused"

    def __init__(self, err: SetError, message: str, *, authenticated: bool = True) -> None:
        super().__init__(message, extra={"err": err.value})
        self.err = err
        #: False when nobody proved to be the transmitter (no transmitter, not a JWS, an
        #: unknown key, a bad signature): such refusals are counted and sampled into the
        #: server log, never written to the organisation's audit trail.
        self.authenticated = authenticated


@dataclass(frozen=True, slots=True)
class Subject:
    """An RFC 9493 subject identifier reduced to what can name a member."""

    format: str
    email: str | None = None
    iss: str | None = None
    sub: str | None = None
    opaque: str | None = None

    def describe(self) -> str:
        return self.email or (f"{self.iss}#{self.sub}" if self.sub else self.opaque or "?")


@dataclass(frozen=True, slots=True)
class SecurityEvent:
    jti: str
    issuer: str
    issued_at: int
    type: EventType
    subject: Subject | None
    payload: dict[str, Any]


def _reject(err: SetError, message: str, *, authenticated: bool = True) -> SignalRejectedError:
    return SignalRejectedError(err, message, authenticated=authenticated)


def parse_subject(value: Any) -> Subject:
    """An RFC 9493 subject; ``complex`` subjects are read through their ``user`` member."""
    if not isinstance(value, dict) or not isinstance(value.get("format"), str):
        raise _reject(SetError.INVALID_REQUEST, "the subject is not an RFC 9493 identifier")
    kind = value["format"]
    if kind == "complex":
        return parse_subject(value.get("user"))
    required: dict[str, tuple[str, ...]] = {
        "email": ("email",),
        "iss_sub": ("iss", "sub"),
        "opaque": ("id",),
    }
    fields = required.get(kind, ())
    if not fields:
        raise _reject(SetError.INVALID_REQUEST, f"subject format {kind!r} cannot name a member")
    if not all(isinstance(value.get(f), str) and value[f] for f in fields):
        raise _reject(SetError.INVALID_REQUEST, f"the {kind} subject lacks {', '.join(fields)}")
    if kind == "email":
        return Subject(kind, email=value["email"].strip().lower())
    if kind == "iss_sub":
        return Subject(kind, iss=value["iss"], sub=value["sub"])
    return Subject(kind, opaque=value["id"])


def is_compact_jws(token: str) -> bool:
    """Whether ``token`` parses as a compact JWS (checked before anything is looked up, so
    a malformed post answers the same whatever organisation it names)."""
    try:
        jws.extract_compact(token.encode())
    except (JoseError, ValueError, TypeError, UnicodeError):
        return False
    return True


def verify_set(
    token: str, keys: KeySet, *, issuer: str, audience: str, now: int | None = None
) -> SecurityEvent:
    """The one event of a valid SET; SignalRejectedError naming the RFC 8935 code otherwise.

    Checks, in order: compact JWS signed by a key in ``keys`` with an asymmetric
    algorithm (``invalid_key`` / ``authentication_failed``), ``typ`` secevent+jwt, ``iss``,
    ``aud``, ``iat`` present, not in the future and at most MAX_AGE_SECONDS old, ``exp`` (if
    any) not passed, ``jti`` present, exactly one event of a type Tenantry acts on, a
    subject when the event needs one.
    """
    now = int(time.time()) if now is None else now
    try:
        header = jws.extract_compact(token.encode()).protected
    except (JoseError, ValueError, TypeError, UnicodeError) as exc:
        raise _reject(SetError.INVALID_REQUEST, "the body is not a compact JWS",
                      authenticated=False) from exc
    kid = header.get("kid")
    if kid is not None and kid not in {k.kid for k in keys.keys}:
        raise _reject(
            SetError.INVALID_KEY, "the SET is signed with a key the transmitter does not publish",
            authenticated=False,
        )
    try:
        claims = dict(jwt.decode(token, keys, algorithms=list(ALLOWED_ALGORITHMS)).claims)
    except (JoseError, ValueError, TypeError) as exc:
        raise _reject(
            SetError.AUTHENTICATION_FAILED,
            f"the SET's signature does not verify ({exc.__class__.__name__})",
            authenticated=False,
        ) from exc
    typ = str(header.get("typ", "")).lower()
    if typ not in ("secevent+jwt", "application/secevent+jwt"):
        raise _reject(SetError.INVALID_REQUEST, "the SET is not explicitly typed secevent+jwt")
    if claims.get("iss") != issuer:
        raise _reject(SetError.INVALID_ISSUER, f"the SET was issued by {claims.get('iss')!r}")
    aud = claims.get("aud")
    if audience not in (aud if isinstance(aud, list) else [aud]):
        raise _reject(SetError.INVALID_AUDIENCE, "the SET is addressed to another audience")
    iat = claims.get("iat")
    if not isinstance(iat, int | float) or isinstance(iat, bool):
        raise _reject(SetError.INVALID_REQUEST, "the SET has no issue time (iat)")
    if iat > now + LEEWAY_SECONDS:
        raise _reject(SetError.INVALID_REQUEST, "the SET was issued in the future (iat)")
    if iat < now - MAX_AGE_SECONDS - LEEWAY_SECONDS:
        raise _reject(SetError.INVALID_REQUEST, "the SET is too old (iat)")
    exp = claims.get("exp")
    if exp is not None and (not isinstance(exp, int | float) or exp <= now - LEEWAY_SECONDS):
        raise _reject(SetError.INVALID_REQUEST, "the SET has expired (exp)")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > 255:
        raise _reject(SetError.INVALID_REQUEST, "the SET has no usable jti")
    events = claims.get("events")
    if not isinstance(events, dict) or len(events) != 1:
        raise _reject(SetError.INVALID_REQUEST, "the SET must carry exactly one event")
    ((uri, payload),) = events.items()
    if not isinstance(payload, dict):
        raise _reject(SetError.INVALID_REQUEST, "the event's payload is not an object")
    try:
        kind = EventType(uri)
    except ValueError:
        raise _reject(
            SetError.INVALID_REQUEST, f"the event type {uri!r} is not supported"
        ) from None
    raw_subject = claims.get("sub_id", payload.get("subject"))
    subject = None
    if kind is not EventType.VERIFICATION:
        if raw_subject is None:
            raise _reject(SetError.INVALID_REQUEST, "the event names no subject (sub_id)")
        subject = parse_subject(raw_subject)
    return SecurityEvent(jti, issuer, int(iat), kind, subject, payload)
