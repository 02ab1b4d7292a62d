"""The service's token-signing keys: rotated automatically, private halves encrypted,
public halves published as a JWKS.

A key signs for ``SIGNING_PERIOD`` and stays published for ``PUBLISH_AFTER`` after it
stops signing, longer than any token it signed lives, so rotation never breaks a valid
token. Several nodes may each create a key at the same moment; all of them are
published, which is harmless.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet

from tenants.clients.models import SigningKey
from tenants.secrets import SecretBox

ALGORITHM = "ES256"
SIGNING_PERIOD = timedelta(days=30)
PUBLISH_AFTER = timedelta(days=2)
CACHE_SECONDS = 60.0


class TokenError(Exception):
    """An access token is not one of ours, or no longer valid."""


@dataclass
class KeyRing:
    box: SecretBox
    _signing: tuple[str, ECKey] | None = None
    _public: KeySet | None = None
    _loaded_at: float = 0.0
    _private_cache: dict[str, ECKey] = field(default_factory=dict)

    async def _load(self, *, force: bool = False) -> None:
        if (
            not force
            and time.monotonic() - self._loaded_at < CACHE_SECONDS
            and self._public is not None
        ):
            return
        now = datetime.now(UTC)
        rows = await SigningKey.filter(
            created_at__gt=now - SIGNING_PERIOD - PUBLISH_AFTER
        ).order_by("-created_at")
        current = next(
            (r for r in rows if r.retired_at is None and r.created_at > now - SIGNING_PERIOD), None
        )
        if current is None:
            current = await self._create()
            rows = [current, *rows]
        published = [r for r in rows if r.retired_at is None or r.retired_at > now - PUBLISH_AFTER]
        self._public = KeySet([ECKey.import_key(r.public_jwk) for r in published])  # type: ignore[arg-type]
        if current.kid not in self._private_cache:
            self._private_cache[current.kid] = ECKey.import_key(
                json.loads(self.box.decrypt(current.private_jwk_enc))
            )
        self._signing = (current.kid, self._private_cache[current.kid])
        self._loaded_at = time.monotonic()

    async def _create(self) -> SigningKey:
        kid = secrets.token_hex(8)
        key = ECKey.generate_key("P-256", parameters={"kid": kid, "use": "sig", "alg": ALGORITHM})
        return await SigningKey.create(
            kid=kid,
            private_jwk_enc=self.box.encrypt(json.dumps(key.as_dict(private=True))),
            public_jwk=key.as_dict(private=False),
        )

    async def jwks(self) -> dict[str, Any]:
        await self._load()
        assert self._public is not None
        return {"keys": [k.as_dict(private=False) for k in self._public.keys]}

    async def sign(self, claims: dict[str, Any]) -> str:
        await self._load()
        assert self._signing is not None
        kid, key = self._signing
        return jwt.encode({"alg": ALGORITHM, "kid": kid, "typ": "at+jwt"}, claims, key)

    async def verify(self, token: str, *, issuer: str, audience: str) -> dict[str, Any]:
        """The claims of a token we issued; TokenError when the signature, issuer,
        audience or expiry does not hold."""
        await self._load()
        assert self._public is not None
        try:
            decoded = jwt.decode(token, self._public, algorithms=[ALGORITHM])
        except JoseError:
            await self._load(force=True)  # maybe a key another node just created
            try:
                decoded = jwt.decode(token, self._public, algorithms=[ALGORITHM])
            except (JoseError, ValueError) as exc:
                raise TokenError("the access token is not validly signed") from exc
        except ValueError as exc:
            raise TokenError("the access token is malformed") from exc
        claims = dict(decoded.claims)
        now = time.time()
        if claims.get("iss") != issuer or claims.get("aud") != audience:
            raise TokenError("the access token is not meant for this service")
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or exp <= now:
            raise TokenError("the access token has expired")
        return claims

    async def retire_current(self) -> None:
        """Stop signing with the current key (it stays published for a while)."""
        await self._load(force=True)
        assert self._signing is not None
        await SigningKey.filter(kid=self._signing[0]).update(retired_at=datetime.now(UTC))
        self._loaded_at = 0.0
