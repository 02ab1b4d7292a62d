"""The OAuth 2.0 token endpoint for products (client credentials, RFC 6749 §4.4) and the
JWKS that publishes the keys its tokens are signed with."""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from collections import Counter
from functools import partial
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from app.auth import API_AUDIENCE
from tenants.clients import service as clients
from tenants.clients.keys import KeyRing
from tenants.db import tenant_transaction
from tenants.errors import AuthenticationError
from tenants.ratelimits import RateLimiter
from tenants.signins import service as sign_ins
from tenants.signins.rules import Reason, SignInMethod

TOKEN_LIFETIME = 900
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _error(error: str, description: str, status: int = 400) -> JSONResponse:
    headers = dict(NO_STORE)
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="tenantry"'
    return JSONResponse(
        {"error": error, "error_description": description}, status_code=status, headers=headers
    )


def _basic(request: Request) -> tuple[str, str] | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    return (unquote(client_id), unquote(secret)) if sep else None


def routes(keyring: KeyRing, issuer: str) -> list[BaseRoute]:
    limiter = RateLimiter("oauth-token", 120, 60)

    async def token(request: Request) -> Response:
        sent = [(k, v) for k, v in (await request.form()).multi_items() if isinstance(v, str)]
        form = dict(sent)
        if repeated := sorted(k for k, n in Counter(k for k, _ in sent).items() if n > 1):
            # RFC 6749 §3.2: "Request and response parameters MUST NOT be included more
            # than once": which of two grant types or scopes was meant is not guessed.
            return _error("invalid_request", f"{repeated[0]} is sent more than once")
        basic = _basic(request)
        posted = (form.get("client_id"), form.get("client_secret"))
        # Naming the client in the body beside HTTP Basic is one way of authenticating
        # (§2.3.1 forbids two); some libraries send it so. A secret in both is two.
        if basic and (posted[1] or (posted[0] and posted[0] != basic[0])):
            return _error("invalid_request", "authenticate the client one way only")
        client_id, secret = basic or posted
        if not client_id or not secret:
            return _error("invalid_client", "client authentication is required", 401)
        if not form.get("grant_type"):
            return _error("invalid_request", "grant_type is required")
        if form["grant_type"] != "client_credentials":
            return _error("unsupported_grant_type", "only client_credentials is supported")
        address = request.client.host if request.client else "unknown"
        if (wait := await limiter.retry_after(address)) is not None:
            response = _error("slow_down", "too many token requests", 429)
            response.headers["Retry-After"] = str(wait)
            return response
        org_id = clients.org_of_client_id(client_id)
        if org_id is None:
            return _error("invalid_client", "the client credentials are not valid", 401)
        attempt = partial(
            sign_ins.SignInAttempt,
            SignInMethod.PRODUCT_CLIENT,
            idp=client_id,
            client_addr=address,
            user_agent=request.headers.get("user-agent"),
        )
        try:
            async with tenant_transaction(org_id):
                found = await clients.authenticate_client(client_id, secret)
                granted = {s.value for s in found.scopes}
                requested = set((form.get("scope") or "").split()) or granted
                refused = not requested <= granted
                await sign_ins.record(attempt(reason=Reason.INVALID_SCOPE if refused else None))
        except AuthenticationError as exc:
            await sign_ins.record_for(org_id, attempt(reason=Reason.INVALID_CLIENT))
            return _error("invalid_client", exc.message, 401)
        if refused:
            extra = " ".join(sorted(requested - granted))
            return _error("invalid_scope", f"the client may not request: {extra}")
        now = int(time.time())
        scope = " ".join(sorted(requested))
        access_token = await keyring.sign(
            {
                "iss": issuer,
                "sub": client_id,
                "aud": API_AUDIENCE,
                "org": str(org_id),
                "product": found.product.key,
                "scope": scope,
                "iat": now,
                "exp": now + TOKEN_LIFETIME,
                "jti": secrets.token_urlsafe(16),
                "client_id": client_id,
            }
        )
        return JSONResponse(
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME,
                "scope": scope,
            },
            headers=NO_STORE,
        )

    async def jwks(request: Request) -> Response:
        return JSONResponse(await keyring.jwks(), headers={"Cache-Control": "public, max-age=300"})

    async def metadata(request: Request) -> Response:
        """RFC 8414 authorization server metadata, so clients can discover the endpoints."""
        return JSONResponse(
            {
                "issuer": issuer,
                "token_endpoint": f"{issuer}/oauth/token",
                "jwks_uri": f"{issuer}/.well-known/jwks.json",
                "grant_types_supported": ["client_credentials"],
                # Required by RFC 8414 §2, and not empty (validators refuse []): there is
                # no authorization endpoint, so its only response type is "none" (OAuth
                # 2.0 Multiple Response Type Encoding Practices §4), never a code or token.
                "response_types_supported": ["none"],
                "scopes_supported": sorted(p.value for p in clients.GRANTABLE),
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                ],
            }
        )

    return [
        Route("/oauth/token", token, methods=["POST"]),
        Route("/.well-known/jwks.json", jwks, methods=["GET"]),
        Route("/.well-known/oauth-authorization-server", metadata, methods=["GET"]),
    ]
