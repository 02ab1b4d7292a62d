"""An OpenID provider that misbehaves on demand, to prove the app refuses bad tokens.

A real provider (tests/oidc/provider.mjs) only ever issues correct ID tokens, so it cannot
show that the relying party *rejects* a wrong issuer, a wrong audience, an expired token, a
forged signature and so on. This one is fully controlled by the test: set
``idp.misbehaviour`` before the sign-in and the next ID token carries exactly that defect,
while everything else (discovery, redirects, PKCE, client authentication) stays correct so
the defect is the only reason to refuse.

    with run_hostile_idp() as idp:
        idp.misbehaviour = Misbehaviour.WRONG_AUDIENCE
        ...  # the app's sign-in against idp.issuer must fail cleanly

It runs in-process (uvicorn in a background thread) on 127.0.0.1 with a free port.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import enum
import hashlib
import json
import secrets
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

import httpx
import uvicorn
from joserfc import jwt
from joserfc.jwk import KeySet, KeySetSerialization, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
ID_TOKEN_TTL_S = 600
LOGOUT_TOKEN_TTL_S = 120


class Misbehaviour(enum.Enum):
    """The one defect the next sign-in carries; NONE issues a correct ID token."""

    NONE = "none"
    WRONG_ISSUER = "wrong_issuer"
    WRONG_AUDIENCE = "wrong_audience"
    EXPIRED = "expired"
    IAT_IN_FUTURE = "iat_in_future"
    NBF_IN_FUTURE = "nbf_in_future"  # RFC 7519 §4.1.5: not to be accepted before nbf
    MISSING_NONCE = "missing_nonce"
    WRONG_NONCE = "wrong_nonce"
    BAD_SIGNATURE = "bad_signature"  # right kid, signed by another key
    UNKNOWN_KID = "unknown_kid"  # signed by a key the JWKS never publishes
    ALG_NONE = "alg_none"  # unsigned token, header alg "none"
    MISSING_SUB = "missing_sub"
    EMPTY_SUB = "empty_sub"  # one identity for everyone the provider sends it for
    LONG_SUB = "long_sub"  # OIDC Core §2: at most 255 characters
    NAN_EXPIRY = "nan_expiry"  # exp NaN: passes every comparison it fails
    NUL_IN_CLAIM = "nul_in_claim"  # text PostgreSQL cannot store
    HEADER_NOT_OBJECT = "header_not_object"  # a JWS header that is a JSON list
    TOKEN_ENDPOINT_ERROR = "token_endpoint_error"  # /token answers 500


class LogoutTokenMisbehaviour(enum.Enum):
    """Defects of a back-channel logout token (OIDC Back-Channel Logout 1.0, section 2.4/2.6)."""

    NONE = "none"
    BAD_SIGNATURE = "bad_signature"
    WRONG_AUDIENCE = "wrong_audience"
    WRONG_ISSUER = "wrong_issuer"
    EXPIRED = "expired"
    MISSING_EVENTS = "missing_events"
    CONTAINS_NONCE = "contains_nonce"  # the spec forbids a nonce in a logout token


@dataclass
class _PendingCode:
    client_id: str
    redirect_uri: str
    nonce: str | None
    code_challenge: str
    scope: str


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _s256(verifier: str) -> str:
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def _with_query(url: str, params: Mapping[str, str]) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def _generate_key(kid: str) -> RSAKey:
    return RSAKey.generate_key(
        2048, parameters={"kid": kid, "alg": "RS256", "use": "sig"}, private=True
    )


class HostileIdp:
    """State and token factory of the hostile provider; the tests mutate its attributes.

    Attributes the tests set: ``misbehaviour``, ``claims_in_id_token`` (False: email, name and
    groups only from /userinfo), ``account`` (the claims of whoever "signs in"),
    ``client_id``/``client_secret`` (checked at /token), ``discovery_changes`` (fields of the
    discovery document replaced, or left out when None), ``discovery_raw`` (bytes served as
    the discovery document instead of it, e.g. JSON that is no object).
    """

    def __init__(
        self,
        issuer: str,
        *,
        client_id: str = "hostile-client",
        client_secret: str = "hostile-secret",  # noqa: S107 (test-only client)
        account: Mapping[str, Any] | None = None,
    ) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self.client_secret = client_secret
        self.account: dict[str, Any] = dict(
            account
            or {
                "sub": "hostile-user-1",
                "email": "mallory@example.com",
                "email_verified": True,
                "name": "Mallory",
                "groups": ["staff"],
            }
        )
        self.misbehaviour = Misbehaviour.NONE
        self.claims_in_id_token = True
        #: Fields the discovery document serves instead of its own (None: left out).
        self.discovery_changes: dict[str, Any] = {}
        self.discovery_raw: bytes | None = None
        #: Seconds the token endpoint waits before it answers.
        self.token_delay = 0.0
        #: How the token endpoint takes the client's secret (as its discovery says), and
        #: what /userinfo answers instead of the claims (an HTTP status), when set.
        self.token_auth_methods = ["client_secret_basic", "client_secret_post"]
        self.userinfo_status: int | None = None
        #: /userinfo answers a JWT signed with the signing key (``application/jwt``,
        #: OIDC Core §5.3.2) carrying this audience, instead of JSON, when set.
        self.userinfo_signed_for: str | None = None
        #: Whether the authorization response carries ``iss`` (RFC 9207), as discovery says.
        self.iss_in_response = True
        self.signing_key = _generate_key("hostile-signing-1")
        # Lazily made: forging keys are only needed by a few tests and RSA generation costs time.
        self._other_key: RSAKey | None = None
        self._codes: dict[str, _PendingCode] = {}
        self._access_tokens: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.issued_id_tokens: list[str] = []

    # --- keys -----------------------------------------------------------------------------

    @property
    def public_jwks(self) -> dict[str, Any]:
        """What /jwks serves: only the genuine signing key."""
        return {"keys": [self.signing_key.as_dict(private=False)]}

    def key_set(self) -> KeySet:
        """The public JWKS as a joserfc KeySet, for verifying in tests."""
        return KeySet.import_key_set(cast(KeySetSerialization, self.public_jwks))

    def _forging_key(self, kid: str) -> RSAKey:
        if self._other_key is None:
            self._other_key = _generate_key("forger")
        return RSAKey.import_key(
            {**self._other_key.as_dict(private=True), "kid": kid, "alg": "RS256", "use": "sig"}
        )

    def _sign(self, claims: dict[str, Any], *, forge: str | None = None, typ: str = "JWT") -> str:
        """Sign RS256; ``forge`` is None, "bad_signature", "unknown_kid" or "alg_none"."""
        if forge == "alg_none":
            header = {"alg": "none", "typ": typ}
            return f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}."
        if forge == "bad_signature":
            key = self._forging_key(self.signing_key.kid or "")
        elif forge == "unknown_kid":
            key = self._forging_key(f"unknown-{uuid.uuid4().hex[:8]}")
        else:
            key = self.signing_key
        return jwt.encode(
            {"alg": "RS256", "kid": key.kid, "typ": typ}, claims, key, algorithms=["RS256"]
        )

    # --- tokens ---------------------------------------------------------------------------

    def id_token(
        self, *, aud: str, nonce: str | None, misbehaviour: Misbehaviour | None = None
    ) -> str:
        """An ID token for ``account`` carrying ``misbehaviour`` (default: the current one)."""
        mb = self.misbehaviour if misbehaviour is None else misbehaviour
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": self.account["sub"],
            "aud": aud,
            "iat": now,
            "exp": now + ID_TOKEN_TTL_S,
            "auth_time": now,
        }
        if nonce is not None:
            claims["nonce"] = nonce
        if self.claims_in_id_token:
            claims.update({k: v for k, v in self.account.items() if k != "sub"})
        if mb is Misbehaviour.WRONG_ISSUER:
            claims["iss"] = "http://127.0.0.1:1/not-the-issuer"
        elif mb is Misbehaviour.WRONG_AUDIENCE:
            claims["aud"] = "some-other-client"
        elif mb is Misbehaviour.EXPIRED:
            claims.update(iat=now - 7200, auth_time=now - 7200, exp=now - 3600)
        elif mb is Misbehaviour.IAT_IN_FUTURE:
            claims.update(iat=now + 3600, auth_time=now + 3600, exp=now + 3600 + ID_TOKEN_TTL_S)
        elif mb is Misbehaviour.NBF_IN_FUTURE:
            claims["nbf"] = now + 3600
        elif mb is Misbehaviour.MISSING_NONCE:
            claims.pop("nonce", None)
        elif mb is Misbehaviour.WRONG_NONCE:
            claims["nonce"] = f"not-{nonce}-{secrets.token_urlsafe(8)}"
        elif mb is Misbehaviour.MISSING_SUB:
            claims.pop("sub")
        elif mb is Misbehaviour.EMPTY_SUB:
            claims["sub"] = ""
        elif mb is Misbehaviour.LONG_SUB:
            claims["sub"] = "s" * 256
        elif mb is Misbehaviour.NAN_EXPIRY:
            claims["exp"] = float("nan")
        elif mb is Misbehaviour.NUL_IN_CLAIM:
            claims["name"] = "Mia\x00Gamma"
        elif mb is Misbehaviour.HEADER_NOT_OBJECT:
            token = ".".join(
                (_b64url(b'["RS256"]'), _b64url(json.dumps(claims).encode()), _b64url(b"sig"))
            )
            self.issued_id_tokens.append(token)
            return token
        forge = {
            Misbehaviour.BAD_SIGNATURE: "bad_signature",
            Misbehaviour.UNKNOWN_KID: "unknown_kid",
            Misbehaviour.ALG_NONE: "alg_none",
        }.get(mb)
        token = self._sign(claims, forge=forge)
        self.issued_id_tokens.append(token)
        return token

    def logout_token(
        self,
        sub: str | None,
        aud: str,
        *,
        sid: str | None = None,
        misbehaviour: LogoutTokenMisbehaviour = LogoutTokenMisbehaviour.NONE,
    ) -> str:
        """A back-channel logout token (valid, or with one forged defect) for ``aud``."""
        if sub is None and sid is None:
            raise ValueError("a logout token needs sub, sid or both")
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": aud,
            "iat": now,
            "exp": now + LOGOUT_TOKEN_TTL_S,
            "jti": uuid.uuid4().hex,
            "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
        }
        if sub is not None:
            claims["sub"] = sub
        if sid is not None:
            claims["sid"] = sid
        mb = misbehaviour
        if mb is LogoutTokenMisbehaviour.WRONG_AUDIENCE:
            claims["aud"] = "some-other-client"
        elif mb is LogoutTokenMisbehaviour.WRONG_ISSUER:
            claims["iss"] = "http://127.0.0.1:1/not-the-issuer"
        elif mb is LogoutTokenMisbehaviour.EXPIRED:
            claims.update(iat=now - 7200, exp=now - 3600)
        elif mb is LogoutTokenMisbehaviour.MISSING_EVENTS:
            del claims["events"]
        elif mb is LogoutTokenMisbehaviour.CONTAINS_NONCE:
            claims["nonce"] = secrets.token_urlsafe(12)
        forge = "bad_signature" if mb is LogoutTokenMisbehaviour.BAD_SIGNATURE else None
        return self._sign(claims, forge=forge, typ="logout+jwt")

    def send_logout_token(self, backchannel_logout_uri: str, token: str) -> int:
        """POST a logout token the way a provider does; returns the receiver's HTTP status."""
        response = httpx.post(backchannel_logout_uri, data={"logout_token": token}, timeout=10)
        return response.status_code

    def reset(self) -> None:
        """Back to a well-behaved provider with no pending codes or tokens."""
        with self._lock:
            self.misbehaviour = Misbehaviour.NONE
            self.claims_in_id_token = True
            self.discovery_changes = {}
            self.discovery_raw = None
            self.token_delay = 0.0
            self.token_auth_methods = ["client_secret_basic", "client_secret_post"]
            self.userinfo_status = None
            self.userinfo_signed_for = None
            self.iss_in_response = True
            self._codes.clear()
            self._access_tokens.clear()
            self.issued_id_tokens.clear()

    # --- HTTP endpoints -------------------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        document = self._discovery_document()
        for key, value in self.discovery_changes.items():
            if value is None:
                document.pop(key, None)
            else:
                document[key] = value
        return document

    def _discovery_document(self) -> dict[str, Any]:
        base = self.issuer.rstrip("/")  # Auth0's issuer ends in "/", its endpoints do not
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token",
            "userinfo_endpoint": f"{base}/userinfo",
            "jwks_uri": f"{base}/jwks",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": self.token_auth_methods,
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "email", "profile", "groups"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", *self.account.keys()],
            "authorization_response_iss_parameter_supported": True,
            "backchannel_logout_supported": True,
            "backchannel_logout_session_supported": True,
        }

    async def _discovery(self, request: Request) -> Response:
        if self.discovery_raw is not None:
            return Response(self.discovery_raw, media_type="application/json")
        return JSONResponse(self.discovery())

    async def _jwks(self, request: Request) -> Response:
        return JSONResponse(self.public_jwks)

    async def _authorize(self, request: Request) -> Response:
        params = request.query_params
        redirect_uri = params.get("redirect_uri")
        if not redirect_uri or params.get("client_id") != self.client_id:
            # Like a real provider: never redirect to an unverified target.
            return PlainTextResponse("invalid client_id or redirect_uri", status_code=400)
        reply: dict[str, str] = {}
        if "state" in params:
            reply["state"] = params["state"]
        if self.iss_in_response:
            reply["iss"] = self.issuer
        if params.get("response_type") != "code":
            return RedirectResponse(
                _with_query(redirect_uri, {"error": "unsupported_response_type", **reply}), 302
            )
        challenge = params.get("code_challenge")
        if not challenge or params.get("code_challenge_method") != "S256":
            error = {"error": "invalid_request", "error_description": "PKCE S256 is required"}
            return RedirectResponse(_with_query(redirect_uri, {**error, **reply}), 302)
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = _PendingCode(
                client_id=params["client_id"],
                redirect_uri=redirect_uri,
                nonce=params.get("nonce"),
                code_challenge=challenge,
                scope=params.get("scope", ""),
            )
        return RedirectResponse(_with_query(redirect_uri, {"code": code, **reply}), 302)

    def _client_credentials(
        self, request: Request, form: Mapping[str, str]
    ) -> tuple[str | None, str | None]:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("basic ") and "client_secret_basic" in self.token_auth_methods:
            try:
                decoded = base64.b64decode(auth[6:]).decode("utf-8")
            except ValueError:
                return None, None
            client_id, _, secret = decoded.partition(":")
            return unquote_plus(client_id), unquote_plus(secret)
        if "client_secret_post" not in self.token_auth_methods:
            return None, None
        return form.get("client_id"), form.get("client_secret")

    async def _token(self, request: Request) -> Response:
        if self.token_delay:
            await asyncio.sleep(self.token_delay)
        if self.misbehaviour is Misbehaviour.TOKEN_ENDPOINT_ERROR:
            return PlainTextResponse("internal server error", status_code=500)
        form = {k: str(v) for k, v in (await request.form()).items()}
        client_id, secret = self._client_credentials(request, form)
        if client_id != self.client_id or not secrets.compare_digest(
            secret or "", self.client_secret
        ):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        if form.get("grant_type") != "authorization_code":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        with self._lock:
            pending = self._codes.pop(form.get("code", ""), None)  # codes are single-use
        if pending is None or pending.client_id != client_id:
            return JSONResponse(
                {"error": "invalid_grant", "error_description": "unknown code"}, status_code=400
            )
        if form.get("redirect_uri") != pending.redirect_uri:
            return JSONResponse(
                {"error": "invalid_grant", "error_description": "redirect_uri mismatch"}, 400
            )
        verifier = form.get("code_verifier")
        if not verifier or not secrets.compare_digest(_s256(verifier), pending.code_challenge):
            return JSONResponse(
                {"error": "invalid_grant", "error_description": "PKCE verification failed"}, 400
            )
        access_token = secrets.token_urlsafe(32)
        with self._lock:
            self._access_tokens[access_token] = dict(self.account)
        return JSONResponse(
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": 3600,
                "scope": pending.scope,
                "id_token": self.id_token(aud=client_id, nonce=pending.nonce),
            },
            headers={"Cache-Control": "no-store"},
        )

    async def _userinfo(self, request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else ""
        with self._lock:
            claims = self._access_tokens.get(token)
        if self.userinfo_status is not None:
            return JSONResponse({"error": "invalid_token"}, status_code=self.userinfo_status)
        if claims is not None and self.userinfo_signed_for is not None:
            signed = self._sign({**claims, "iss": self.issuer, "aud": self.userinfo_signed_for})
            return Response(signed, media_type="application/jwt")
        if claims is None:
            return JSONResponse(
                {"error": "invalid_token"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        return JSONResponse(claims)

    def asgi_app(self) -> Starlette:
        """The Starlette app serving this provider (also usable in-process with TestClient)."""
        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self._discovery),
                Route("/jwks", self._jwks),
                Route("/authorize", self._authorize),
                Route("/token", self._token, methods=["POST"]),
                Route("/userinfo", self._userinfo, methods=["GET", "POST"]),
            ]
        )


@contextlib.contextmanager
def run_hostile_idp(
    *,
    client_id: str = "hostile-client",
    client_secret: str = "hostile-secret",  # noqa: S107 (test-only client)
    account: Mapping[str, Any] | None = None,
) -> Iterator[HostileIdp]:
    """Serve a HostileIdp over real HTTP on 127.0.0.1 (free port) for the block's duration."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # bound before the server starts: no free-port race
    port = sock.getsockname()[1]
    idp = HostileIdp(
        f"http://127.0.0.1:{port}",
        client_id=client_id,
        client_secret=client_secret,
        account=account,
    )
    server = uvicorn.Server(uvicorn.Config(idp.asgi_app(), log_level="warning", lifespan="off"))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="hostile-idp", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("hostile IdP did not start")
            time.sleep(0.01)
        yield idp
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextlib.asynccontextmanager
async def hostile_idp(**options: Any) -> AsyncIterator[HostileIdp]:
    """``run_hostile_idp`` for async fixtures: its start and stop (which wait on a
    thread) run off the event loop."""
    manager = run_hostile_idp(**options)
    idp = await asyncio.to_thread(manager.__enter__)
    try:
        yield idp
    finally:
        await asyncio.to_thread(manager.__exit__, None, None, None)
