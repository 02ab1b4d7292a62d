"""API tokens: issued once, stored as a SHA-256, carrying their organisation in the text.

A token reads ``tnt_<organisation id>_<token id>_<secret>``. Carrying the organisation
lets the service open that organisation's transaction before looking the token up, so
authentication needs no query across organisations. The secret has 256 bits of
entropy, which is why a fast hash (not argon2) is right here.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tenants import db, notifications
from tenants.actors import Actor
from tenants.audit import service as audit
from tenants.errors import AuthenticationError, FieldProblem, InvalidInputError
from tenants.ids import OrgId, TokenId
from tenants.models_base import get_by_id
from tenants.permissions import Permission, parse_scopes
from tenants.tokens.models import ApiToken

PREFIX = "tnt"
LAST_USED_GRANULARITY = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class ParsedToken:
    org_id: OrgId
    token_id: TokenId
    secret: str


@dataclass(frozen=True, slots=True)
class TokenPrincipal:
    org_id: OrgId
    token_id: TokenId
    name: str
    permissions: frozenset[Permission]
    expires_at: datetime | None = None


def parse_token(text: str) -> ParsedToken:
    """Split a presented token; AuthenticationError if it is not one of ours."""
    parts = text.split("_")
    if len(parts) != 4 or parts[0] != PREFIX:
        raise AuthenticationError("the bearer token is not a Tenantry API token")
    try:
        org = OrgId(uuid.UUID(hex=parts[1]))
        token = TokenId(uuid.UUID(hex=parts[2]))
    except ValueError:
        raise AuthenticationError("the bearer token is malformed") from None
    if not 20 <= len(parts[3]) <= 100:
        raise AuthenticationError("the bearer token is malformed")
    return ParsedToken(org, token, parts[3])


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def create_token(
    name: str, scopes: list[str], *, expires_in: timedelta | None, actor: Actor
) -> tuple[ApiToken, str]:
    """Issue a token; returns the row and the token text, which is never shown again."""
    try:
        permissions = parse_scopes(scopes)
    except ValueError as exc:
        raise InvalidInputError(str(exc), fields=[FieldProblem("scopes", str(exc))]) from None
    if not permissions:
        raise InvalidInputError(
            "a token needs at least one scope", fields=[FieldProblem("scopes", "is empty")]
        )
    org = db.current_org()
    token_id = uuid.uuid4()
    secret = secrets.token_urlsafe(32).replace("_", "-")
    expires_at = datetime.now(UTC) + expires_in if expires_in else None
    row = await ApiToken.create(
        id=token_id,
        tenant_id=org,
        name=name,
        secret_hash=_digest(secret),
        scopes=sorted(p.value for p in permissions),
        expires_at=expires_at,
        created_by=actor.ref,
    )
    await audit.record(
        "api_token.created",
        "api_token",
        token_id,
        actor=actor,
        after={"name": name, "scopes": row.scopes, "expires_at": expires_at},
    )
    return row, f"{PREFIX}_{org.hex}_{token_id.hex}_{secret}"


async def authenticate(parsed: ParsedToken) -> TokenPrincipal:
    """Check a parsed token inside its organisation's transaction.

    Raises AuthenticationError for unknown, revoked or expired tokens, with the same
    message for each so a caller learns nothing about which.
    """
    refused = AuthenticationError("the bearer token is not valid")
    # Hand-written: this runs on every API request, and the ORM's query building and row
    # loading cost more than the lookup itself (measured by bench/signin.py).
    row = await db.fetch_one(
        "SELECT name, secret_hash, scopes, expires_at, revoked_at, last_used_at FROM api_tokens "
        "WHERE tenant_id = $1 AND id = $2",
        db.current_org(),
        parsed.token_id,
    )
    if row is None or not hmac.compare_digest(row["secret_hash"], _digest(parsed.secret)):
        raise refused
    now = datetime.now(UTC)
    if row["revoked_at"] is not None or (
        row["expires_at"] is not None and row["expires_at"] <= now
    ):
        raise refused
    if row["last_used_at"] is None or now - row["last_used_at"] > LAST_USED_GRANULARITY:
        await db.connection().execute_query(
            "UPDATE api_tokens SET last_used_at = $3 WHERE tenant_id = $1 AND id = $2",
            [db.current_org(), parsed.token_id, now],
        )
    scopes = row["scopes"] if isinstance(row["scopes"], list) else json.loads(row["scopes"])
    return TokenPrincipal(
        parsed.org_id, parsed.token_id, row["name"], _permissions(tuple(scopes)), row["expires_at"]
    )


@functools.lru_cache(maxsize=1024)
def _permissions(scopes: tuple[str, ...]) -> frozenset[Permission]:
    return parse_scopes(scopes)


async def revoke_token(token_id: uuid.UUID, *, actor: Actor) -> ApiToken:
    row = await get_by_id(ApiToken, token_id, "API token", for_update=True)
    if row.revoked_at is not None:
        return row
    row.revoked_at = datetime.now(UTC)
    await row.save(update_fields=["revoked_at", "updated_at"])
    await notifications.credentials_revoked()
    await audit.record(
        "api_token.revoked", "api_token", row.id, actor=actor, after={"revoked_at": row.revoked_at}
    )
    return row
