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

from tortoise.expressions import Q

from tenants import db, notifications, text
from tenants.actors import Actor, ActorKind
from tenants.audit import service as audit
from tenants.errors import (
    AuthenticationError,
    ConflictError,
    FieldProblem,
    InvalidInputError,
    Problems,
)
from tenants.ids import OrgId, TokenId
from tenants.models_base import get_by_id
from tenants.pagination import Page, Sort, paginate
from tenants.permissions import Permission, parse_scopes
from tenants.tokens.models import ApiToken
from tenants.tokens.rules import NAME_MAX_LENGTH, TokenStatus, check_may_give

PREFIX = "tnt"
#: The order of the tokens list unless another is asked for.
NEWEST_FIRST = Sort("created_at", descending=True)
#: What the tokens list may be ordered by.
SORTABLE = ("created_at", "name")
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


def _check_name(name: str) -> None:
    if not name:
        raise InvalidInputError("give the token a name", fields=[FieldProblem("name", "is empty")])
    text.check_length(name, NAME_MAX_LENGTH, field="name", what="token name")


def _permissions_of(scopes: list[str]) -> frozenset[Permission]:
    try:
        permissions = parse_scopes(scopes)
    except ValueError as exc:
        raise InvalidInputError(str(exc), fields=[FieldProblem("scopes", str(exc))]) from None
    if not permissions:
        raise InvalidInputError(
            "a token needs at least one scope", fields=[FieldProblem("scopes", "is empty")]
        )
    return permissions


class FormAlreadySentError(ConflictError):
    """The form was sent before and made ``token``, whose text cannot be shown again."""

    def __init__(self, token: ApiToken) -> None:
        super().__init__(
            f"this form was already sent and made the API token {token.name!r}; its text "
            "cannot be shown again"
        )
        self.token = token


async def create_token(
    name: str,
    scopes: list[str],
    *,
    expires_in: timedelta | None,
    actor: Actor,
    issuer: frozenset[Permission] | None = None,
    form: uuid.UUID | None = None,
) -> tuple[ApiToken, str]:
    """Issue a token; returns the row and the token text, which is never shown again (nor
    stored, logged or audited: the audit event holds the name, scopes and expiry).

    ``issuer``: the permissions of whoever gives the scopes; a scope beyond them is refused
    (``rules.check_may_give``, PermissionDeniedError naming ``scopes``). Work nobody did
    over HTTP (the demo seed, tests' fixtures) may leave it out when its actor is the
    system; a request of anyone else without it is a caller's bug (RuntimeError), never
    allowed. The CLI passes ``members.roles.ANY_ASSIGNER``; the SCIM service the one scope
    it fixes. InvalidInputError naming ``name`` for an
    empty name or one past NAME_MAX_LENGTH (refused, never shortened), naming ``scopes``
    for an unknown scope or none. Nothing is written when anything is refused.

    ``form``: the id of the console form sending the request; a form that already made a
    token (sent again by a reload) makes none: FormAlreadySentError names that token.
    """
    name = name.strip()
    problems = Problems()  # the name's and the scopes' problems named together
    problems.check(lambda: _check_name(name), None)
    no_scopes: frozenset[Permission] = frozenset()
    permissions = problems.check(lambda: _permissions_of(scopes), no_scopes)
    problems.raise_any()
    if issuer is None:
        if actor.kind is not ActorKind.SYSTEM:
            raise RuntimeError("a token made for a member's request needs the issuer's permissions")
    else:
        check_may_give(issuer, permissions)
    org = db.current_org()
    if form is not None:
        made = await ApiToken.get_or_none(made_by_form=form)
        if made is not None:
            raise FormAlreadySentError(made)
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
        made_by_form=form,
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


async def get_token(token_id: uuid.UUID) -> ApiToken:
    """One token of the current organisation; NotFoundError for an unknown id or one of
    another organisation (row-level security hides it)."""
    return await get_by_id(ApiToken, token_id, "API token")


def _status_filter(status: TokenStatus, now: datetime) -> Q:
    if status is TokenStatus.REVOKED:
        return Q(revoked_at__isnull=False)
    live = Q(revoked_at__isnull=True)
    if status is TokenStatus.EXPIRED:
        return live & Q(expires_at__lte=now)
    return live & (Q(expires_at__isnull=True) | Q(expires_at__gt=now))


async def list_tokens(
    *,
    status: TokenStatus | None = None,
    sort: Sort = NEWEST_FIRST,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[ApiToken]:
    """One keyset page of the organisation's tokens (revoked and expired ones included
    unless ``status`` picks one state), ordered by ``sort`` (one of SORTABLE).
    InvalidInputError naming ``cursor`` for a cursor that is not this list's."""
    query = ApiToken.all()
    if status is not None:
        query = query.filter(_status_filter(status, datetime.now(UTC)))
    return await paginate(query, sort, cursor=cursor, limit=limit)


async def token_counts() -> dict[TokenStatus, int]:
    """How many of the organisation's tokens are in each state, in one query."""
    row = await db.fetch_one(
        "SELECT count(*) FILTER (WHERE revoked_at IS NOT NULL) AS revoked, "
        "count(*) FILTER (WHERE revoked_at IS NULL AND expires_at <= $2) AS expired, "
        "count(*) FILTER (WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)) "
        "AS active FROM api_tokens WHERE tenant_id = $1",
        db.current_org(),
        datetime.now(UTC),
    )
    return {s: int(row[s.value]) if row else 0 for s in TokenStatus}
