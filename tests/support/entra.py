"""A stand-in for Microsoft Entra's token service in tests: RSA signing keys per Entra tenant,
published as a JWKS over real HTTP on 127.0.0.1 (``/{tenant}/discovery/v2.0/keys``, the path
of ``login.microsoftonline.com``), and access tokens shaped as Entra issues them to its
Authentication Events service for a custom claims provider (v2: ``iss``
``https://login.microsoftonline.com/{tid}/v2.0``, ``azp``; v1: ``iss``
``https://sts.windows.net/{tid}/``, ``appid``), from Microsoft's custom claims provider
reference. The service under test fetches the keys over HTTP like any JWKS; nothing is mocked.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

AUTHENTICATION_EVENTS_APP_ID = "99045fe1-7639-4a75-9d4a-577b6ca3810f"


@dataclass
class EntraKeys:
    """Signing keys by tenant id; ``rotate`` adds a new current key (the old one stays
    published unless ``retire`` is set)."""

    keys: dict[str, list[RSAKey]] = field(default_factory=dict)
    fetches: list[str] = field(default_factory=list)
    port: int = 0

    @property
    def jwks_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{{tenant}}/discovery/v2.0/keys"

    def current(self, tenant: str) -> RSAKey:
        if tenant not in self.keys:
            self.rotate(tenant)
        return self.keys[tenant][-1]

    def rotate(self, tenant: str, *, retire: bool = False) -> RSAKey:
        key = RSAKey.generate_key(2048, parameters={"kid": uuid.uuid4().hex, "use": "sig"})
        kept = [] if retire else self.keys.get(tenant, [])
        self.keys[tenant] = [*kept, key]
        return key

    def jwks(self, tenant: str) -> dict[str, Any]:
        return KeySet(list(self.keys.get(tenant, []))).as_dict(private=False)

    def token(
        self,
        tenant: str,
        audience: str,
        *,
        version: int = 2,
        caller: str = AUTHENTICATION_EVENTS_APP_ID,
        key: RSAKey | None = None,
        lifetime: int = 3600,
        **claims: Any,
    ) -> str:
        """An access token as Entra issues it for the callout (``claims`` override)."""
        now = int(time.time())
        body: dict[str, Any] = {
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "tid": tenant,
            "oid": str(uuid.uuid4()),
            "sub": str(uuid.uuid4()),
            "idp": f"https://sts.windows.net/{tenant}/",
            "rh": "0.AAAA",
            "uti": uuid.uuid4().hex,
        }
        if version == 2:
            body.update(
                iss=f"https://login.microsoftonline.com/{tenant}/v2.0",
                azp=caller,
                azpacr="2",
                ver="2.0",
            )
        else:
            body.update(
                iss=f"https://sts.windows.net/{tenant}/", appid=caller, appidacr="2", ver="1.0"
            )
        body.update(claims)
        signer = key or self.current(tenant)
        return jwt.encode({"alg": "RS256", "typ": "JWT", "kid": signer.kid}, body, signer)


@contextmanager
def serve_entra_keys(keys: EntraKeys | None = None) -> Iterator[EntraKeys]:
    """Serve ``keys`` as Entra's discovery key sets on a free port of 127.0.0.1."""
    entra = keys or EntraKeys()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = self.path.strip("/").split("/")
            if len(parts) != 4 or parts[1:] != ["discovery", "v2.0", "keys"]:
                self.send_error(404)
                return
            entra.fetches.append(parts[0])
            body = json.dumps(entra.jwks(parts[0])).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    entra.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="entra-keys")
    thread.start()
    try:
        yield entra
    finally:
        server.shutdown()
        server.server_close()
