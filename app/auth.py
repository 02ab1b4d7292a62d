"""Who is calling: credentials found in a request, verified inside the tenant transaction.

Authentication has two halves because row-level security needs the organisation before
any lookup: ``identify`` reads the credential without touching the database and says
which organisation it claims; ``verify`` checks it inside that organisation's
transaction. A credential claiming the wrong organisation finds nothing there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from starlette.requests import Request

from tenants.actors import Actor, ActorKind
from tenants.errors import AuthenticationError
from tenants.ids import OrgId
from tenants.permissions import Permission
from tenants.tokens import service as tokens


@dataclass(frozen=True, slots=True)
class Principal:
    org_id: OrgId
    permissions: frozenset[Permission]
    actor: Actor


class Credential(Protocol):
    @property
    def org_id(self) -> OrgId: ...

    async def verify(self, request: Request) -> Principal: ...


class Authenticator(Protocol):
    def identify(self, request: Request) -> Credential:
        """The credential in ``request``; AuthenticationError if there is none or it is malformed."""
        ...


def request_origin(request: Request) -> tuple[str | None, str | None]:
    """The request id and client address to record with the actor."""
    client = request.client.host if request.client else None
    return getattr(request.state, "request_id", None), client


@dataclass(frozen=True, slots=True)
class ApiTokenCredential:
    parsed: tokens.ParsedToken

    @property
    def org_id(self) -> OrgId:
        return self.parsed.org_id

    async def verify(self, request: Request) -> Principal:
        found = await tokens.authenticate(self.parsed)
        request_id, client = request_origin(request)
        actor = Actor(
            ActorKind.API_TOKEN, str(found.token_id), f"API token {found.name}",
            request_id=request_id, client_addr=client,
        )
        return Principal(found.org_id, found.permissions, actor)


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise AuthenticationError("send an API token as Authorization: Bearer <token>")
    return value.strip()


class BearerAuthenticator:
    """API tokens in ``Authorization: Bearer``."""

    def identify(self, request: Request) -> Credential:
        return ApiTokenCredential(tokens.parse_token(bearer_token(request)))
