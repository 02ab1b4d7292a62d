"""The OpenID Connect relying party: discovery, authorization requests, the code exchange,
and ID-token and logout-token validation. No web framework here; HTTP goes through an
injected ``httpx.AsyncClient``.

Validation follows OpenID Connect Core 1.0 §3.1.3.7 (ID token) and Back-Channel Logout
1.0 §2.6 (logout token). Every failure raises ``SignInError`` with a reason a person can
act on; library errors are translated here so callers never see joserfc or httpx types.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import re
import secrets
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard
from urllib.parse import quote, urlencode

import httpx
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import JWKRegistry, KeySet, RSAKey

from tenants.errors import TenantryError
from tenants.signins.rules import Reason
from tenants.sso.rules import accepted_issuers, endpoint_problem
from tenants.text import is_control, is_storable

#: Asymmetric algorithms only: HS256 would let anyone holding the client secret mint tokens,
#: and "none" is never acceptable.
ALLOWED_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
LEEWAY_SECONDS = 60
#: The smallest RSA modulus a provider may sign with: 1024-bit keys are disallowed for
#: signatures (NIST SP 800-131A) and a key set's such key is ignored like an unusable one.
MIN_RSA_BITS = 2048
#: OIDC Core §2: ``sub`` "MUST NOT exceed 255 ASCII characters"; ``sid`` and a logout
#: token's ``jti`` are identifiers of the same kind, kept in columns of that size.
MAX_IDENTIFIER = 255
MAX_AGE_SECONDS = 600
BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
#: An OAuth error code as RFC 6749 §5.2 allows it (printable ASCII, no quote or backslash);
#: anything else an identity provider sends is not shown.
_OAUTH_ERROR = re.compile(r"^[\x20-\x21\x23-\x5B\x5D-\x7E]{1,64}$")


class SignInError(TenantryError):
    """Sign-in through the identity provider failed; the message says why in plain words
    (never a library's exception name) and ``reason`` is the stable code the sign-in log
    records."""

    code = "sign_in_failed"
    title = "Sign-in failed"

    def __init__(self, message: str, reason: Reason) -> None:
        super().__init__(message)
        self.reason = reason
        #: Who the provider said the person is, when it failed after the ID token
        #: validated (userinfo): the sign-in log names them.
        self.subject: str | None = None
        self.email: str | None = None


#: The endpoints a discovery document must name, and those Tenantry uses when it does.
REQUIRED_ENDPOINTS = ("authorization_endpoint", "token_endpoint", "jwks_uri")
OPTIONAL_ENDPOINTS = ("userinfo_endpoint", "end_session_endpoint")


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None = None
    end_session_endpoint: str | None = None
    #: ``token_endpoint_auth_methods_supported``; empty when the document does not say
    #: (then ``client_secret_basic``, the default of OIDC Discovery §3).
    token_auth_methods: tuple[str, ...] = ()
    #: ``authorization_response_iss_parameter_supported`` (RFC 9207 §3): the provider names
    #: itself in every authorization response, so one that does not is refused.
    iss_in_response: bool = False

    @classmethod
    def from_document(cls, issuer: str, document: Mapping[str, Any]) -> ProviderMetadata:
        """Validate a discovery document (OpenID Connect Discovery 1.0 §4.3).

        Every endpoint must be an https URL (http on this machine only, as for the issuer):
        Tenantry sends the client secret and codes to the token endpoint, fetches the keys
        it trusts from ``jwks_uri`` and sends people's browsers to the authorization and
        logout endpoints, so a document naming ``file:``, ``javascript:`` or plain http
        elsewhere is the provider's mistake or an attack, refused before any of it is used.
        """
        if not isinstance(document, Mapping):
            raise SignInError(
                "the discovery document is not a JSON object", Reason.IDP_METADATA_INVALID
            )
        if document.get("issuer") != issuer:
            raise SignInError(
                f"the discovery document names issuer {document.get('issuer')!r}, not {issuer!r}",
                Reason.IDP_METADATA_INVALID,
            )
        missing = [k for k in REQUIRED_ENDPOINTS if document.get(k) in (None, "")]
        if missing:
            raise SignInError(
                f"the discovery document lacks {', '.join(missing)}", Reason.IDP_METADATA_INVALID
            )
        for key in (*REQUIRED_ENDPOINTS, *OPTIONAL_ENDPOINTS):
            value = document.get(key)
            if value in (None, "") and key in OPTIONAL_ENDPOINTS:
                continue  # an empty string for an endpoint a provider does not have
            problem = endpoint_problem(value)
            if problem is not None:
                raise SignInError(
                    f"the discovery document's {key} {problem}", Reason.IDP_METADATA_INVALID
                )
        return cls(
            issuer=issuer,
            authorization_endpoint=document["authorization_endpoint"],
            token_endpoint=document["token_endpoint"],
            jwks_uri=document["jwks_uri"],
            userinfo_endpoint=document.get("userinfo_endpoint") or None,
            end_session_endpoint=document.get("end_session_endpoint") or None,
            token_auth_methods=_strings(document.get("token_endpoint_auth_methods_supported")),
            iss_in_response=document.get("authorization_response_iss_parameter_supported") is True,
        )


def _strings(value: Any) -> tuple[str, ...]:
    """The strings of a JSON list (a discovery document's list field); () otherwise."""
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def client_auth_method(supported: tuple[str, ...]) -> str:
    """How to authenticate at the token endpoint with a client secret: HTTP Basic unless
    the provider says it takes only the secret in the form (``client_secret_post``).
    ``private_key_jwt`` and the rest need no secret and are not offered."""
    if supported and "client_secret_basic" not in supported and "client_secret_post" in supported:
        return "client_secret_post"
    return "client_secret_basic"


def basic_credentials(client_id: str, client_secret: str) -> httpx.BasicAuth:
    """RFC 6749 §2.3.1: the id and the secret are form-encoded before they are joined for
    HTTP Basic, so a secret holding ``+``, ``/``, ``%`` or ``:`` reaches the provider as
    it is (providers that decode, node ``oidc-provider`` among them, refused it raw)."""
    return httpx.BasicAuth(quote(client_id, safe=""), quote(client_secret, safe=""))


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    url: str
    state: str
    nonce: str
    code_verifier: str


def new_authorization_request(
    metadata: ProviderMetadata, *, client_id: str, redirect_uri: str, scopes: list[str]
) -> AuthorizationRequest:
    """An authorization-code request with PKCE (S256), state and nonce (all fresh)."""
    state = secrets.token_urlsafe(32)
    nonce = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(dict.fromkeys(["openid", *scopes])),
        "state": state,
        "nonce": nonce,
        "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
    }
    return AuthorizationRequest(
        _with_params(metadata.authorization_endpoint, params), state, nonce, verifier
    )


def _with_params(endpoint: str, params: Mapping[str, str]) -> str:
    """``endpoint`` with ``params`` added to the query it may already have (Entra's and
    Azure B2C's endpoints name their policy there)."""
    separator = "&" if "?" in endpoint else "?"
    return f"{endpoint}{separator}{urlencode(params)}"


def end_session_url(
    metadata: ProviderMetadata,
    *,
    client_id: str,
    post_logout_redirect_uri: str,
    id_token_hint: str | None,
) -> str | None:
    """Where to send the browser to sign out at the provider too (OpenID Connect
    RP-Initiated Logout 1.0 §2), or None when the provider has no sign-out endpoint
    (Google). ``client_id`` names the client when there is no hint (§2: a provider needs
    one of the two to accept the post-logout address; Okta requires the hint)."""
    if metadata.end_session_endpoint is None:
        return None
    params = {"client_id": client_id, "post_logout_redirect_uri": post_logout_redirect_uri}
    if id_token_hint:
        params["id_token_hint"] = id_token_hint
    return _with_params(metadata.end_session_endpoint, params)


def validate_id_token(
    token: str,
    keys: KeySet,
    *,
    issuer: str,
    client_id: str,
    nonce: str,
    now: int | None = None,
) -> dict[str, Any]:
    """The ID token's claims after every check of OIDC Core §3.1.3.7; SignInError otherwise.

    Checks: signature with a key of the IdP (asymmetric algorithms only), ``iss``,
    ``aud`` contains the client (and ``azp`` is the client when there are several
    audiences), ``exp`` in the future, ``nbf`` (when present) not in the future (RFC 7519
    §4.1.5), ``iat`` not in the future nor too old, ``nonce`` equal to the one sent,
    ``sub`` present.
    """
    claims = _decode(token, keys, "ID token")
    now = int(time.time()) if now is None else now
    _check_common(claims, issuer=issuer, client_id=client_id, now=now, what="ID token")
    exp = claims.get("exp")
    if not _numeric_date(exp) or exp <= now - LEEWAY_SECONDS:
        raise SignInError("the ID token has expired", Reason.ID_TOKEN_EXPIRED)
    nbf = claims.get("nbf")
    if nbf is not None and (not _numeric_date(nbf) or nbf > now + LEEWAY_SECONDS):
        raise SignInError(
            "the ID token is not valid yet (nbf); check the clocks", Reason.ID_TOKEN_NOT_YET_VALID
        )
    audiences = _audiences(claims["aud"])
    if len(audiences) > 1 and claims.get("azp") != client_id:
        raise SignInError(
            "the ID token has several audiences but is not authorised for this client (azp)",
            Reason.ID_TOKEN_WRONG_AZP,
        )
    if "azp" in claims and claims["azp"] != client_id:
        raise SignInError(
            "the ID token was issued to another client (azp)", Reason.ID_TOKEN_WRONG_AZP
        )
    if not isinstance(claims.get("nonce"), str):
        raise SignInError("the ID token carries no nonce", Reason.NONCE_MISSING)
    if not secrets.compare_digest(claims["nonce"], nonce):
        raise SignInError(
            "the ID token's nonce does not match this sign-in (replayed or mixed up)",
            Reason.NONCE_MISMATCH,
        )
    return claims


@dataclass(frozen=True, slots=True)
class LogoutClaims:
    subject: str | None
    sid: str | None
    jti: str


def validate_logout_token(
    token: str, keys: KeySet, *, issuer: str, client_id: str, now: int | None = None
) -> LogoutClaims:
    """A back-channel logout token's claims (Back-Channel Logout 1.0 §2.6); SignInError otherwise."""
    claims = _decode(token, keys, "logout token")
    now = int(time.time()) if now is None else now
    _check_common(claims, issuer=issuer, client_id=client_id, now=now, what="logout token")
    exp = claims.get("exp")
    if exp is not None and (not _numeric_date(exp) or exp <= now - LEEWAY_SECONDS):
        raise SignInError("the logout token has expired", Reason.LOGOUT_TOKEN_INVALID)
    events = claims.get("events")
    if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_LOGOUT_EVENT), dict):
        raise SignInError(
            "the logout token lacks the back-channel logout event", Reason.LOGOUT_TOKEN_INVALID
        )
    if "nonce" in claims:
        raise SignInError("a logout token must not contain a nonce", Reason.LOGOUT_TOKEN_INVALID)
    subject, sid = claims.get("sub"), claims.get("sid")
    if not isinstance(subject, str) and not isinstance(sid, str):
        raise SignInError("the logout token names neither sub nor sid", Reason.LOGOUT_TOKEN_INVALID)
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise SignInError("the logout token has no jti", Reason.LOGOUT_TOKEN_INVALID)
    for name, value in (("sub", subject), ("sid", sid), ("jti", jti)):
        problem = identifier_problem(value) if isinstance(value, str) else None
        if problem is not None:
            raise SignInError(f"the logout token's {name} {problem}", Reason.LOGOUT_TOKEN_INVALID)
    return LogoutClaims(
        subject if isinstance(subject, str) else None, sid if isinstance(sid, str) else None, jti
    )


def _decode(token: str, keys: KeySet, what: str, reason: Reason | None = None) -> dict[str, Any]:
    if reason is None:
        reason = (
            Reason.ID_TOKEN_BAD_SIGNATURE if what == "ID token" else Reason.LOGOUT_TOKEN_INVALID
        )
    refused = SignInError(f"the {what} is not validly signed by the identity provider", reason)
    header = jws_header(token)
    if header is None:  # before joserfc, which assumes the header is an object
        raise refused
    kid = header.get("kid")
    if isinstance(kid, str) and kid not in {key.kid for key in keys.keys}:
        raise SignInError(
            f"the {what} is signed with a key the provider's key set does not hold"
            f" (kid {kid[:64]!r}); if the provider has just changed its keys, try again in a"
            " minute",
            reason,
        )
    try:
        decoded = jwt.decode(token, keys, algorithms=list(ALLOWED_ALGORITHMS))
    except (JoseError, ValueError, TypeError, RecursionError) as exc:
        raise refused from exc
    claims = dict(decoded.claims)
    check_storable(
        claims,
        what,
        Reason.ID_TOKEN_BAD_CLAIMS if what == "ID token" else reason,
    )
    return claims


def check_storable(
    claims: Mapping[str, Any], what: str, reason: Reason = Reason.ID_TOKEN_BAD_CLAIMS
) -> None:
    """SignInError (``reason``) when ``claims`` (a token's, or a userinfo answer merged
    into an ID token's) hold text PostgreSQL cannot store."""
    unstorable = _unstorable_claim(claims)
    if unstorable is not None:
        raise SignInError(
            f"the {what}'s claim {unstorable} holds a NUL character or a lone surrogate,"
            " which is not text",
            reason,
        )


def _numeric_date(value: Any) -> TypeGuard[int | float]:
    """A NumericDate (RFC 7519 §2): a finite JSON number. NaN and Infinity, which Python's
    JSON reader accepts, would pass every comparison they fail."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def identifier_problem(value: str) -> str | None:
    """Why ``value`` cannot be a subject, session or token identifier; None when it can."""
    if not value:
        return "is empty"
    if len(value) > MAX_IDENTIFIER:
        return f"is longer than {MAX_IDENTIFIER} characters"
    if any(is_control(char) for char in value):
        return "contains a control character"
    return None


def _unstorable_claim(claims: Mapping[str, Any]) -> str | None:
    """The first claim holding, anywhere inside it, a string PostgreSQL cannot store (a NUL
    or a lone surrogate); None when there is none. Iterative: the claims' depth is the
    provider's."""
    for name, value in claims.items():
        stack = [value]
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                if not is_storable(item):
                    return repr(name) if is_storable(name) else "(unnamed)"
            elif isinstance(item, dict):
                stack.extend(item.keys())
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
        if not is_storable(name):
            return "(unnamed)"
    return None


def _check_common(
    claims: dict[str, Any], *, issuer: str, client_id: str, now: int, what: str
) -> None:
    id_token = what == "ID token"

    def reason(for_id_token: Reason) -> Reason:
        return for_id_token if id_token else Reason.LOGOUT_TOKEN_INVALID

    if not _names_issuer(claims.get("iss"), issuer):
        raise SignInError(
            f"the {what} was issued by {claims.get('iss')!r}, not {issuer!r}",
            reason(Reason.ID_TOKEN_WRONG_ISSUER),
        )
    audience = claims.get("aud")
    audiences = _audiences(audience)
    if client_id not in audiences:
        raise SignInError(
            f"the {what} is meant for another client (aud)", reason(Reason.ID_TOKEN_WRONG_AUDIENCE)
        )
    iat = claims.get("iat")
    if not _numeric_date(iat):
        raise SignInError(
            f"the {what} has no issue time (iat)", reason(Reason.ID_TOKEN_NO_ISSUE_TIME)
        )
    if iat > now + LEEWAY_SECONDS:
        raise SignInError(
            f"the {what} was issued in the future (iat); check the clocks",
            reason(Reason.ID_TOKEN_ISSUED_IN_FUTURE),
        )
    if iat < now - MAX_AGE_SECONDS - LEEWAY_SECONDS:
        raise SignInError(
            f"the {what} was issued too long ago (iat)", reason(Reason.ID_TOKEN_TOO_OLD)
        )
    if id_token:
        subject = claims.get("sub")
        if not isinstance(subject, str):
            raise SignInError("the ID token has no subject (sub)", Reason.ID_TOKEN_NO_SUBJECT)
        # An empty subject would be one identity shared by everyone the provider sends it
        # for: the first to sign in would be who all later ones are.
        problem = identifier_problem(subject)
        if problem is not None:
            raise SignInError(f"the ID token's subject (sub) {problem}", Reason.ID_TOKEN_BAD_CLAIMS)
        sid = claims.get("sid")
        problem = identifier_problem(sid) if isinstance(sid, str) else None
        if problem is not None:
            raise SignInError(
                f"the ID token's session id (sid) {problem}", Reason.ID_TOKEN_BAD_CLAIMS
            )


def jws_header(token: str) -> dict[str, Any] | None:
    """The protected header of a compact JWS, or None when it is not a JSON object (RFC 7515
    §4: a list, a number or JSON nested past the reader's depth are refused as unsigned)."""
    try:
        part = token.split(".", 1)[0]
        header = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (ValueError, RecursionError):  # UnicodeDecodeError and binascii.Error are ValueErrors
        return None
    return header if isinstance(header, dict) else None


def kid_of(token: str) -> str | None:
    """The ``kid`` in a compact JWS header, or None; for choosing to refresh the JWKS."""
    header = jws_header(token)
    kid = header.get("kid") if header is not None else None
    return kid if isinstance(kid, str) else None


@dataclass
class _Cached:
    value: Any
    fetched_at: float


@dataclass
class JwksCache:
    """Key sets by URL, cached; refetched when a token names a ``kid`` we do not know (key
    rotation), at most once per ``min_refresh`` seconds per URL so a hostile token cannot
    make us hammer the provider."""

    http: httpx.AsyncClient
    ttl: float = 600.0
    min_refresh: float = 30.0
    _sets: dict[str, _Cached] = field(default_factory=dict)

    async def get(self, url: str, *, wanted_kid: str | None = None, fresh: bool = False) -> KeySet:
        cached = self._sets.get(url)
        age = time.monotonic() - cached.fetched_at if cached else None
        stale = cached is None or age is None or age >= self.ttl or fresh
        if cached and not stale and wanted_kid is not None:
            known = {k.kid for k in cached.value.keys}
            stale = wanted_kid not in known and age is not None and age >= self.min_refresh
        if not stale and cached:
            return cached.value  # type: ignore[no-any-return]
        document = await get_json(self.http, url, "the key set (JWKS)")
        keys = usable_keys(document, url)
        self._sets[url] = _Cached(keys, time.monotonic())
        return keys


def usable_keys(document: Any, url: str) -> KeySet:
    """The keys of a JWKS Tenantry can verify a provider's signature with. A member it
    cannot use (an unknown ``kty``, a malformed key, a symmetric one, an RSA key under
    MIN_RSA_BITS) is left out, as RFC 7517 §5 asks, instead of failing the whole set: one
    odd key published beside the signing key stopped every sign-in. SignInError when no
    key is left."""
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise SignInError(f"the key set (JWKS) at {url} is not valid", Reason.IDP_METADATA_INVALID)
    keys = []
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("kty") == "oct":
            continue
        if entry.get("use") == "enc" or entry.get("crv") in ("X25519", "X448"):
            continue  # for encryption or key agreement: signs nothing
        with warnings.catch_warnings():  # joserfc warns of a weak key: it is not used
            warnings.simplefilter("error", SecurityWarning)
            try:
                key = JWKRegistry.import_key(entry)
            except (JoseError, SecurityWarning, ValueError, TypeError, KeyError, AttributeError):
                continue
        if isinstance(key, RSAKey) and key.raw_value.key_size < MIN_RSA_BITS:
            continue
        keys.append(key)
    if not keys:
        raise SignInError(
            f"the key set (JWKS) at {url} holds no key Tenantry can verify a signature with",
            Reason.IDP_METADATA_INVALID,
        )
    return KeySet(keys)


@dataclass
class RelyingParty:
    """Talks to identity providers; caches discovery and keys per issuer. One per process."""

    http: httpx.AsyncClient
    metadata_ttl: float = 300.0
    #: How long a provider that could not be reached is answered from memory. Anyone may
    #: open a login page or post to back-channel logout, and each needs the document:
    #: without this, a provider that is down, or hangs for the whole read timeout, would be
    #: asked again (and hold a request that long) for every one of them. A document that
    #: came but is wrong is remembered only for those who waited for that fetch: an admin
    #: fixing it wants the next try to see the fix.
    failure_ttl: float = 10.0
    _metadata: dict[str, _Cached] = field(default_factory=dict)
    _failures: dict[str, _Cached] = field(default_factory=dict)
    #: One fetch per issuer at a time; those who arrive meanwhile take its outcome.
    _fetching: dict[str, asyncio.Lock] = field(default_factory=dict)
    jwks: JwksCache = field(init=False)

    def __post_init__(self) -> None:
        self.jwks = JwksCache(self.http)

    async def metadata(self, issuer: str, *, fresh: bool = False) -> ProviderMetadata:
        """The issuer's discovery document, validated; cached for ``metadata_ttl``, a
        failure for ``failure_ttl``. ``fresh`` (an admin testing the connection) asks
        again whatever is cached."""
        known = None if fresh else self._known(issuer)
        if known is not None:
            return known
        waiting_since = time.monotonic()
        async with self._fetching.setdefault(issuer, asyncio.Lock()):
            known = None if fresh else self._known(issuer, failed_since=waiting_since)
            if known is not None:
                return known
            url = issuer.rstrip("/") + "/.well-known/openid-configuration"
            try:
                document = await get_json(self.http, url, "the discovery document")
                metadata = ProviderMetadata.from_document(issuer, document)
            except SignInError as exc:
                self._failures[issuer] = _Cached(exc, time.monotonic())
                raise
            self._failures.pop(issuer, None)
            self._metadata[issuer] = _Cached(metadata, time.monotonic())
            return metadata

    def _known(self, issuer: str, *, failed_since: float | None = None) -> ProviderMetadata | None:
        """The cached document while fresh; raises the cached failure while it is recent:
        an unreachable provider's for ``failure_ttl``, and any failure learnt since
        ``failed_since`` (a caller that waited for the fetch takes its outcome, rather
        than fetching again in turn)."""
        now = time.monotonic()
        cached = self._metadata.get(issuer)
        if cached and now - cached.fetched_at < self.metadata_ttl:
            return cached.value  # type: ignore[no-any-return]
        failed = self._failures.get(issuer)
        if failed is not None and (
            (
                failed.value.reason is Reason.IDP_UNREACHABLE
                and now - failed.fetched_at < self.failure_ttl
            )
            or (failed_since is not None and failed.fetched_at >= failed_since)
        ):
            raise SignInError(failed.value.message, failed.value.reason)
        return None

    async def keys(self, metadata: ProviderMetadata, *, fresh: bool = False) -> KeySet:
        return await self.jwks.get(metadata.jwks_uri, fresh=fresh)

    async def keys_for(self, metadata: ProviderMetadata, token: str) -> KeySet:
        return await self.jwks.get(metadata.jwks_uri, wanted_kid=kid_of(token))

    async def exchange_code(
        self,
        metadata: ProviderMetadata,
        *,
        client_id: str,
        client_secret: str,
        code: str,
        redirect_uri: str,
        code_verifier: str,
    ) -> dict[str, Any]:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        auth: httpx.Auth = basic_credentials(client_id, client_secret)
        if client_auth_method(metadata.token_auth_methods) == "client_secret_post":
            form |= {"client_id": client_id, "client_secret": client_secret}
            auth = httpx.Auth()  # no Authorization header: the secret is in the form
        try:
            response = await self.http.post(
                metadata.token_endpoint,
                data=form,
                auth=auth,
                headers={"Accept": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise SignInError(
                "the identity provider's token endpoint did not answer", Reason.IDP_UNREACHABLE
            ) from exc
        body = _json_or_none(response)
        if response.status_code != 200 or not isinstance(body, dict):
            error = body.get("error") if isinstance(body, dict) else None
            shown = error if isinstance(error, str) and _OAUTH_ERROR.match(error) else None
            raise SignInError(
                f"the identity provider refused the code exchange (HTTP {response.status_code}"
                + (f", {shown}" if shown else "")
                + ")",
                Reason.TOKEN_EXCHANGE_FAILED,
            )
        if not isinstance(body.get("id_token"), str):
            raise SignInError("the identity provider returned no ID token", Reason.NO_ID_TOKEN)
        return body

    async def userinfo(
        self, metadata: ProviderMetadata, access_token: str, *, client_id: str
    ) -> dict[str, Any]:
        """The userinfo answer's claims: a JSON object, or a JWT signed by the provider
        (``application/jwt``, OIDC Core §5.3.2, as Keycloak and PingFederate can be set to
        answer), whose ``iss`` and ``aud``, when present, must be the provider and this
        client."""
        if not metadata.userinfo_endpoint:
            return {}
        try:
            response = await self.http.get(
                metadata.userinfo_endpoint, headers={"Authorization": f"Bearer {access_token}"}
            )
        except httpx.HTTPError as exc:
            raise SignInError(
                "the identity provider's userinfo endpoint did not answer", Reason.USERINFO_FAILED
            ) from exc
        if response.status_code == 200 and _media_type(response) == "application/jwt":
            return await self._signed_userinfo(metadata, response.text.strip(), client_id)
        body = _json_or_none(response)
        if response.status_code != 200 or not isinstance(body, dict):
            raise SignInError(
                f"the identity provider's userinfo endpoint answered HTTP {response.status_code}"
                + ("" if response.status_code != 200 else ", not a JSON object"),
                Reason.USERINFO_FAILED,
            )
        return body

    async def _signed_userinfo(
        self, metadata: ProviderMetadata, token: str, client_id: str
    ) -> dict[str, Any]:
        if token.count(".") != 2:
            raise SignInError(
                "the identity provider's userinfo answer is encrypted, which Tenantry does not"
                " read; switch userinfo encryption off for this client",
                Reason.USERINFO_FAILED,
            )
        keys = await self.keys_for(metadata, token)
        claims = _decode(token, keys, "userinfo answer", Reason.USERINFO_FAILED)
        if not _names_issuer(claims.get("iss", metadata.issuer), metadata.issuer) or (
            client_id not in _audiences(claims.get("aud", client_id))
        ):
            raise SignInError(
                "the identity provider's signed userinfo answer names another issuer or client",
                Reason.USERINFO_FAILED,
            )
        return claims


def _names_issuer(value: Any, issuer: str) -> bool:
    """Whether a token's ``iss`` names ``issuer`` (text only: a list or an object there was
    a TypeError, a 500)."""
    return isinstance(value, str) and value in accepted_issuers(issuer)


def _audiences(value: Any) -> list[Any]:
    """A token's ``aud``: one audience or a list of them (RFC 7519 §4.1.3), as a list."""
    return value if isinstance(value, list) else [value]


def _media_type(response: httpx.Response) -> str:
    media: str = response.headers.get("content-type", "")
    return media.split(";", 1)[0].strip().lower()


async def get_json(http: httpx.AsyncClient, url: str, what: str) -> Any:
    try:
        response = await http.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise SignInError(f"cannot fetch {what} from {url}", Reason.IDP_UNREACHABLE) from exc
    body = _json_or_none(response)
    if response.status_code != 200 or body is None:
        raise SignInError(
            f"cannot fetch {what} from {url} (HTTP {response.status_code})",
            Reason.IDP_UNREACHABLE,
        )
    return body


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (ValueError, RecursionError):  # not JSON, or nested past the reader's depth
        return None
