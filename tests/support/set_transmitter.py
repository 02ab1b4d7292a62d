"""A Shared Signals transmitter for tests: it publishes a JWKS over real HTTP (uvicorn on a
free port, like tests/support/hostile_idp.py) and mints Security Event Tokens (RFC 8417)
with joserfc, correct by default and with exactly one defect on request.

    with run_transmitter() as tx:
        token = tx.set_for(SESSION_REVOKED, {"format": "email", "email": "a@b.example"})
        token = tx.set_for(..., audience="someone-else")      # one defect
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

CAEP = "https://schemas.openid.net/secevent/caep/event-type/"
RISC = "https://schemas.openid.net/secevent/risc/event-type/"
SESSION_REVOKED = CAEP + "session-revoked"
CREDENTIAL_CHANGE = CAEP + "credential-change"
ACCOUNT_DISABLED = RISC + "account-disabled"
ACCOUNT_PURGED = RISC + "account-purged"
VERIFICATION = "https://schemas.openid.net/secevent/ssf/event-type/verification"
AUDIENCE = "https://tenantry.test/ssf"

_UNSET: Any = object()


def _key(kid: str) -> RSAKey:
    return RSAKey.generate_key(
        2048, parameters={"kid": kid, "alg": "RS256", "use": "sig"}, private=True
    )


class Transmitter:
    """Its ``key`` is published at ``jwks_uri``; ``forger`` has the same kid but is not."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer
        self.jwks_uri = f"{issuer}/jwks"
        self.key = _key("tx-1")
        self.forger = _key("tx-1")
        self.jwks_requests = 0

    def set_for(
        self,
        event_type: str,
        subject: dict[str, Any] | None,
        *,
        payload: dict[str, Any] | None = None,
        issuer: str | None = None,
        audience: str = AUDIENCE,
        iat: int | None = None,
        jti: str | None = None,
        typ: str | None = "secevent+jwt",
        key: RSAKey | None = None,
        kid: str | None = _UNSET,
        events: dict[str, Any] | None = None,
    ) -> str:
        """A signed SET carrying one event about ``subject`` (in ``sub_id``, SSF 1.0)."""
        claims: dict[str, Any] = {
            "iss": issuer or self.issuer,
            "aud": audience,
            "iat": int(time.time()) if iat is None else iat,
            "jti": jti or secrets.token_hex(16),
            "events": events if events is not None else {event_type: payload or {}},
        }
        if subject is not None:
            claims["sub_id"] = subject
        signer = key or self.key
        header: dict[str, Any] = {"alg": "RS256", "kid": signer.kid if kid is _UNSET else kid}
        if header["kid"] is None:
            del header["kid"]
        if typ is not None:
            header["typ"] = typ
        return jwt.encode(header, claims, signer)

    def asgi_app(self) -> Starlette:
        async def jwks(request: Request) -> JSONResponse:
            self.jwks_requests += 1
            return JSONResponse({"keys": [self.key.as_dict(private=False)]})

        return Starlette(routes=[Route("/jwks", jwks)])


@contextlib.contextmanager
def run_transmitter() -> Iterator[Transmitter]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    transmitter = Transmitter(f"http://127.0.0.1:{sock.getsockname()[1]}")
    server = uvicorn.Server(
        uvicorn.Config(transmitter.asgi_app(), log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test transmitter did not start")
            time.sleep(0.01)
        yield transmitter
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
