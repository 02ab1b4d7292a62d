"""Who is calling the API: credentials found in a request, verified inside the tenant
transaction.

Authentication has two halves because row-level security needs the organisation before
any tenant lookup: ``identify`` reads the credential (checking signatures where there
are any) and says which organisation it belongs to; ``verify`` finishes the check inside
that organisation's transaction. A credential claiming the wrong organisation finds
nothing there. Three kinds are accepted on ``Authorization: Bearer``:

- API tokens for scripts (``tnt_…``);
- access tokens this service issued to products (client credentials, ES256 JWTs);
- access tokens from configured trusted issuers (e.g. a Keycloak realm).
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from joserfc import jwt
from joserfc.errors import JoseError
from starlette.requests import Request

from app.settings import TrustedIssuer
from tenants.actors import Actor, ActorKind
from tenants.clients.keys import KeyRing, TokenError
from tenants.clients.models import ProductClient
from tenants.errors import AuthenticationError, CredentialsMissingError
from tenants.identity import entra
from tenants.ids import OrgId
from tenants.organisations import service as organisations
from tenants.permissions import Permission
from tenants.sso.oidc import ALLOWED_ALGORITHMS, JwksCache, SignInError, kid_of
from tenants.tokens import service as tokens

API_AUDIENCE = "tenantry-api"


@dataclass(frozen=True, slots=True)
class Principal:
    org_id: OrgId
    permissions: frozenset[Permission]
    actor: Actor
    #: Epoch seconds after which the credential is no longer valid (None: no expiry).
    valid_until: float | None = None
    #: The product whose own client this is (client credentials); None for other callers.
    product_id: uuid.UUID | None = None

    def for_request(self, request: Request) -> Principal:
        """The same principal acting in ``request`` (its id and client address on the actor)."""
        request_id, client = request_origin(request)
        actor = Actor(
            self.actor.kind,
            self.actor.id,
            self.actor.display,
            request_id=request_id,
            client_addr=client,
        )
        return Principal(self.org_id, self.permissions, actor, self.valid_until, self.product_id)


class Credential(Protocol):
    @property
    def org_id(self) -> OrgId: ...

    async def verify(self, request: Request) -> Principal: ...


class Authenticator(Protocol):
    async def identify(self, request: Request) -> Credential:
        """The credential in ``request``; AuthenticationError if there is none or it is invalid."""
        ...


def request_origin(request: Request) -> tuple[str | None, str | None]:
    client = request.client.host if request.client else None
    return getattr(request.state, "request_id", None), client


def _actor(request: Request, kind: ActorKind, id_: str, display: str) -> Actor:
    request_id, client = request_origin(request)
    return Actor(kind, id_, display, request_id=request_id, client_addr=client)


@dataclass(frozen=True, slots=True)
class ApiTokenCredential:
    parsed: tokens.ParsedToken

    @property
    def org_id(self) -> OrgId:
        return self.parsed.org_id

    @property
    def cache_key(self) -> tuple[str, str, str, str]:
        # The organisation is part of the key: the token was checked inside that
        # organisation's transaction, and only there does the check hold.
        return ("api_token", str(self.parsed.org_id), str(self.parsed.token_id), self.parsed.secret)

    async def verify(self, request: Request) -> Principal:
        found = await tokens.authenticate(self.parsed)
        actor = _actor(request, ActorKind.API_TOKEN, str(found.token_id), f"API token {found.name}")
        until = found.expires_at.timestamp() if found.expires_at else None
        return Principal(found.org_id, found.permissions, actor, until)


@dataclass(frozen=True, slots=True)
class ProductTokenCredential:
    """An access token this service issued; the signature is already checked."""

    org_id: OrgId
    client_id: str
    scopes: frozenset[Permission]

    @property
    def cache_key(self) -> tuple[str, str, str, frozenset[Permission]]:
        return ("product", str(self.org_id), self.client_id, self.scopes)

    async def verify(self, request: Request) -> Principal:
        client = await ProductClient.filter(client_id=self.client_id).first()
        if client is None or client.revoked_at is not None:
            raise AuthenticationError("the product's client was revoked")
        actor = _actor(request, ActorKind.PRODUCT, self.client_id, f"product client {client.name}")
        return Principal(self.org_id, self.scopes, actor, product_id=client.product_id)


@dataclass(frozen=True, slots=True)
class ExternalTokenCredential:
    """An access token from a trusted issuer; signature, issuer and audience checked."""

    org_id: OrgId
    issuer: str
    subject: str
    scopes: frozenset[Permission]

    @property
    def cache_key(self) -> tuple[str, str, str, str, frozenset[Permission]]:
        return ("external", str(self.org_id), self.issuer, self.subject, self.scopes)

    async def verify(self, request: Request) -> Principal:
        actor = _actor(
            request, ActorKind.PRODUCT, f"{self.issuer}#{self.subject}", f"token from {self.issuer}"
        )
        return Principal(self.org_id, self.scopes, actor)


@dataclass(frozen=True, slots=True)
class EntraCalloutCredential:
    """An access token Entra issued for an organisation's app registration (signature and
    time claims checked); ``verify`` holds its claims to the organisation's Entra claims
    provider, in its transaction. No cache key: each callout is checked afresh."""

    org_id: OrgId
    claims: dict[str, Any]

    async def verify(self, request: Request) -> Principal:
        provider = await entra.get_provider()
        if provider is None:
            raise AuthenticationError("the organisation has no Entra claims provider")
        entra.check_callout_claims(self.claims, entra.view(provider))
        actor = _actor(
            request,
            ActorKind.IDENTITY_PROVIDER,
            f"{entra.ACTOR_PREFIX}{provider.entra_tenant_id}/{provider.app_id}",
            "Entra custom claims provider",
        )
        exp = self.claims.get("exp")
        return Principal(
            self.org_id, frozenset({Permission.CLAIMS_CALLOUT}), actor, float(exp) if exp else None
        )


def is_entra_callout(principal: Principal) -> bool:
    """Whether ``principal`` is Entra's token-issuance callout (and nothing else)."""
    return principal.actor.kind is ActorKind.IDENTITY_PROVIDER and principal.actor.id.startswith(
        entra.ACTOR_PREFIX
    )


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise CredentialsMissingError("send a token as Authorization: Bearer <token>")
    return value.strip()


def scopes_from(value: Any) -> frozenset[Permission]:
    """Known permissions in a space-separated scope string (or list); others are ignored."""
    items = value.split() if isinstance(value, str) else value if isinstance(value, list) else []
    known = {p.value for p in Permission}
    return frozenset(Permission(s) for s in items if isinstance(s, str) and s in known)


def unverified_claims(token: str) -> dict[str, Any]:
    """Claims read without checking the signature: only to choose how to verify."""
    try:
        part = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (IndexError, ValueError, UnicodeDecodeError):
        raise AuthenticationError("the bearer token is malformed") from None
    if not isinstance(claims, dict):
        raise AuthenticationError("the bearer token is malformed")
    return claims


def organisation_slug(value: Any) -> str | None:
    """Keycloak puts organisations in a claim as a string, a list, or a map keyed by alias."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
        return value[0]
    if isinstance(value, dict) and len(value) == 1:
        key = next(iter(value))
        return key if isinstance(key, str) else None
    return None


class BearerAuthenticator:
    def __init__(
        self,
        *,
        keyring: KeyRing,
        issuer: str,
        trusted: tuple[TrustedIssuer, ...] = (),
        jwks: JwksCache | None = None,
        entra_jwks_url: str | None = None,
    ) -> None:
        self.keyring = keyring
        self.issuer = issuer
        self.trusted = {t.issuer: t for t in trusted}
        self.jwks = jwks
        self.entra_jwks_url = entra_jwks_url

    async def identify(self, request: Request) -> Credential:
        token = bearer_token(request)
        if token.startswith(f"{tokens.PREFIX}_"):
            return ApiTokenCredential(tokens.parse_token(token))
        if token.count(".") != 2:
            raise AuthenticationError("the bearer token is not a token this service accepts")
        iss = unverified_claims(token).get("iss")
        if iss == self.issuer:
            return await self._own(token)
        if isinstance(iss, str) and iss in self.trusted:
            return await self._external(token, self.trusted[iss])
        if entra.entra_tenant_of(iss) is not None:
            return await self._entra(token)
        raise AuthenticationError(
            "the bearer token comes from an issuer this service does not trust"
        )

    async def _own(self, token: str) -> Credential:
        try:
            claims = await self.keyring.verify(token, issuer=self.issuer, audience=API_AUDIENCE)
        except TokenError as exc:
            raise AuthenticationError(str(exc)) from None
        try:
            org = OrgId(uuid.UUID(str(claims.get("org"))))
        except ValueError:
            raise AuthenticationError("the access token names no organisation") from None
        return ProductTokenCredential(org, str(claims.get("sub")), scopes_from(claims.get("scope")))

    async def _entra(self, token: str) -> Credential:
        """An Entra access token: the organisation is the one whose Entra app is the
        token's audience; the signature is checked against the tenant's keys (cached,
        fetched again for a key id not seen yet)."""
        if self.jwks is None or self.entra_jwks_url is None:
            raise AuthenticationError("Entra tokens are not accepted here")
        claims = unverified_claims(token)
        tenant = entra.entra_tenant_of(claims.get("iss"))
        assert tenant is not None
        audiences = claims.get("aud")
        org_id = None
        for audience in audiences if isinstance(audiences, list) else [audiences]:
            if isinstance(audience, str) and org_id is None:
                org_id = await entra.organisation_for(tenant, audience)
        if org_id is None:
            raise AuthenticationError("the token is for no Entra app an organisation uses here")
        try:
            keys = await self.jwks.get(
                self.entra_jwks_url.replace("{tenant}", tenant), wanted_kid=kid_of(token)
            )
            decoded = jwt.decode(token, keys, algorithms=["RS256"])
            jwt.JWTClaimsRegistry(
                leeway=300, exp={"essential": True}, nbf={"essential": False}
            ).validate(decoded.claims)
        except (SignInError, JoseError, ValueError) as exc:
            raise AuthenticationError("the token from Entra is not valid") from exc
        return EntraCalloutCredential(org_id, dict(decoded.claims))

    async def _external(self, token: str, trusted: TrustedIssuer) -> Credential:
        if self.jwks is None:
            raise AuthenticationError("external tokens are not accepted here")
        try:
            keys = await self.jwks.get(trusted.jwks_uri, wanted_kid=kid_of(token))
            decoded = jwt.decode(token, keys, algorithms=list(ALLOWED_ALGORITHMS))
            registry = jwt.JWTClaimsRegistry(
                leeway=30,
                iss={"essential": True, "value": trusted.issuer},
                aud={"essential": True, "value": trusted.audience},
                exp={"essential": True},
            )
            registry.validate(decoded.claims)
        except (SignInError, JoseError, ValueError) as exc:
            raise AuthenticationError(f"the token from {trusted.issuer} is not valid") from exc
        slug = organisation_slug(decoded.claims.get(trusted.organisation_claim))
        org_id = await organisations.id_by_slug(slug) if slug else None
        if org_id is None:
            raise AuthenticationError("the token names no organisation known here")
        return ExternalTokenCredential(
            org_id,
            trusted.issuer,
            str(decoded.claims.get("sub")),
            scopes_from(decoded.claims.get(trusted.scope_claim)),
        )
