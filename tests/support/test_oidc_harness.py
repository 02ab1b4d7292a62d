"""Self-tests of the OpenID Connect harnesses, so app sign-in tests can trust them.

Covers the real provider (tests/oidc/provider.mjs via oidc_provider.py) end to end with
authlib's OAuth2 client, and each defect the hostile IdP claims to produce.
"""

from __future__ import annotations

import base64
import http.server
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import BadSignatureError, InvalidKeyIdError, UnsupportedAlgorithmError
from joserfc.jwk import KeySet, KeySetSerialization

from . import oidc_provider
from .hostile_idp import (
    BACKCHANNEL_LOGOUT_EVENT,
    HostileIdp,
    LogoutTokenMisbehaviour,
    Misbehaviour,
    run_hostile_idp,
)
from .oidc_provider import (
    LoginRejected,
    OidcAccount,
    OidcClient,
    OidcHarnessError,
    ProviderConfig,
    RunningProvider,
    generate_private_jwks,
    login_with_browserless_flow,
    logout_with_browserless_flow,
    run_oidc_provider,
)

CLIENT_ID = "tenantry-app"
CLIENT_SECRET = "tenantry-secret"
REDIRECT_URI = "http://127.0.0.1:8765/auth/callback"
SCOPE = "openid email profile groups"
ALICE = OidcAccount(
    sub="alice-0001",
    email="alice@example.com",
    name="Alice Example",
    groups=("tenant-admins", "staff"),
    extra_claims={"tenant_hint": "acme"},
)


# --- helpers ------------------------------------------------------------------------------


@dataclass
class LogoutReceiver:
    """A throwaway back-channel logout endpoint recording what it was sent."""

    url: str
    answer_status: int = 200
    received: list[dict[str, list[str]]] = field(default_factory=list)


@contextmanager
def logout_receiver() -> Iterator[LogoutReceiver]:
    """Serve POST /backchannel-logout on 127.0.0.1 in a thread, for the block's duration."""
    receiver_ref: list[LogoutReceiver] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length).decode("utf-8")
            receiver = receiver_ref[0]
            receiver.received.append(
                {"content-type": [self.headers.get("content-type", "")], **parse_qs(body)}
            )
            self.send_response(receiver.answer_status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver_ref.append(
        LogoutReceiver(url=f"http://127.0.0.1:{server.server_address[1]}/backchannel-logout")
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver_ref[0]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def provider_config(
    *, claims_in_id_token: bool, backchannel_logout_uri: str | None = None
) -> ProviderConfig:
    return ProviderConfig(
        clients=[
            OidcClient(
                client_id=CLIENT_ID,
                client_secret=CLIENT_SECRET,
                redirect_uris=[REDIRECT_URI],
                post_logout_redirect_uris=["http://127.0.0.1:8765/"],
                backchannel_logout_uri=backchannel_logout_uri,
            )
        ],
        accounts=[ALICE],
        claims_in_id_token=claims_in_id_token,
    )


def fetch_jwks(jwks_uri: str) -> KeySet:
    response = httpx.get(jwks_uri, timeout=10)
    response.raise_for_status()
    return KeySet.import_key_set(response.json())


def verify(token: str, keys: KeySet, **expected: Any) -> dict[str, Any]:
    """Verify an RS256 JWT's signature and the given claims (plus exp/iat), return its claims."""
    claims = jwt.decode(token, keys, algorithms=["RS256"]).claims
    options: dict[str, Any] = {
        name: {"essential": True, "value": value} for name, value in expected.items()
    }
    jwt.JWTClaimsRegistry(
        leeway=30, exp={"essential": True}, iat={"essential": True}, **options
    ).validate(claims)
    return claims


def unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of a JWT without checking anything (to inspect forged tokens)."""
    header_b64, payload_b64, _ = token.split(".")

    def part(segment: str) -> dict[str, Any]:
        padded = segment + "=" * (-len(segment) % 4)
        decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(padded))
        return decoded

    return part(header_b64), part(payload_b64)


def sign_in_at_provider(
    op: RunningProvider, login: str
) -> tuple[dict[str, Any], str, OAuth2Client]:
    """A real authorization-code + PKCE sign-in; returns (token response, nonce, client)."""
    metadata = op.discovery()
    client = OAuth2Client(
        CLIENT_ID,
        CLIENT_SECRET,
        scope=SCOPE,
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    )
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(16)
    url, state = client.create_authorization_url(
        metadata["authorization_endpoint"], nonce=nonce, code_verifier=verifier
    )
    assert "code_challenge=" in url
    assert "code_challenge_method=S256" in url
    callback = login_with_browserless_flow(url, login)
    params = parse_qs(urlsplit(callback).query)
    assert callback.startswith(REDIRECT_URI + "?")
    assert params["state"] == [state]
    assert params["iss"] == [op.issuer]  # RFC 9207
    assert "code" in params
    token = client.fetch_token(
        metadata["token_endpoint"], authorization_response=callback, code_verifier=verifier
    )
    return dict(token), nonce, client


# --- the real provider (oidc-provider via node) -------------------------------------------


@pytest.mark.oidc
@pytest.mark.parametrize(
    "claims_in_id_token", [True, False], ids=["claims-in-id-token", "claims-in-userinfo"]
)
def test_real_provider_sign_in_with_pkce(claims_in_id_token: bool) -> None:
    with run_oidc_provider(provider_config(claims_in_id_token=claims_in_id_token)) as op:
        metadata = op.discovery()
        assert metadata["issuer"] == op.issuer
        assert metadata["backchannel_logout_supported"] is True
        assert "groups" in metadata["scopes_supported"]

        token, nonce, client = sign_in_at_provider(op, ALICE.sub)

        keys = fetch_jwks(metadata["jwks_uri"])
        claims = verify(
            token["id_token"], keys, iss=op.issuer, aud=CLIENT_ID, nonce=nonce, sub=ALICE.sub
        )
        # The published key is the one the Python side handed over.
        header, _ = unverified(token["id_token"])
        assert header["kid"] == op.private_jwks["keys"][0]["kid"]
        assert header["alg"] == "RS256"
        if claims_in_id_token:
            assert claims["email"] == ALICE.email
            assert claims["groups"] == list(ALICE.groups)
            assert claims["name"] == ALICE.name
        else:
            assert "email" not in claims
            assert "groups" not in claims
            assert "name" not in claims

        userinfo = client.get(metadata["userinfo_endpoint"]).json()
        assert userinfo["sub"] == ALICE.sub
        assert userinfo["email"] == ALICE.email
        assert userinfo["email_verified"] is True
        assert userinfo["groups"] == list(ALICE.groups)
        assert userinfo["tenant_hint"] == "acme"


@pytest.mark.oidc
def test_real_provider_accepts_email_as_login_and_refuses_unknown_login() -> None:
    with run_oidc_provider(provider_config(claims_in_id_token=False)) as op:
        token, nonce, _ = sign_in_at_provider(op, ALICE.email)
        claims = verify(token["id_token"], fetch_jwks(f"{op.issuer}/jwks"), nonce=nonce)
        assert claims["sub"] == ALICE.sub

        with pytest.raises(LoginRejected):
            sign_in_at_provider(op, "mallory@example.com")


@pytest.mark.oidc
def test_real_provider_requires_pkce() -> None:
    with run_oidc_provider(provider_config(claims_in_id_token=False)) as op:
        query = urlencode(
            {
                "response_type": "code",
                "client_id": CLIENT_ID,
                "redirect_uri": REDIRECT_URI,
                "scope": "openid",
                "state": "s1",
                "nonce": "n1",
            }
        )
        callback = login_with_browserless_flow(f"{op.issuer}/auth?{query}", ALICE.sub)
        params = parse_qs(urlsplit(callback).query)
        assert params["error"] == ["invalid_request"]
        assert "PKCE" in params["error_description"][0]
        assert params["state"] == ["s1"]


@pytest.mark.oidc
def test_real_provider_keeps_session_for_single_sign_on() -> None:
    """With a shared cookie jar, a second authorization needs no login form."""
    with (
        run_oidc_provider(provider_config(claims_in_id_token=False)) as op,
        httpx.Client() as browser,
    ):
        client = OAuth2Client(
            CLIENT_ID,
            CLIENT_SECRET,
            scope="openid",
            redirect_uri=REDIRECT_URI,
            code_challenge_method="S256",
        )
        urls = [
            client.create_authorization_url(
                f"{op.issuer}/auth", nonce="n", code_verifier=secrets.token_urlsafe(48)
            )[0]
            for _ in range(2)
        ]
        assert "code=" in login_with_browserless_flow(urls[0], ALICE.sub, client=browser)
        # An unknown login would be refused if the form were shown: it is not shown.
        assert "code=" in login_with_browserless_flow(urls[1], "nobody", client=browser)


@pytest.mark.oidc
def test_trigger_backchannel_logout_delivers_a_verifiable_logout_token() -> None:
    with logout_receiver() as receiver:
        config = provider_config(claims_in_id_token=False, backchannel_logout_uri=receiver.url)
        with run_oidc_provider(config) as op:
            assert op.trigger_backchannel_logout(ALICE.sub, CLIENT_ID) == 200
            assert len(receiver.received) == 1
            posted = receiver.received[0]
            assert posted["content-type"] == ["application/x-www-form-urlencoded"]
            logout_token = posted["logout_token"][0]
            assert logout_token == op.last_logout_token

            keys = fetch_jwks(f"{op.issuer}/jwks")
            claims = verify(logout_token, keys, iss=op.issuer, aud=CLIENT_ID, sub=ALICE.sub)
            assert claims["events"] == {BACKCHANNEL_LOGOUT_EVENT: {}}
            assert claims["jti"]
            assert "nonce" not in claims
            header, _ = unverified(logout_token)
            assert header["typ"] == "logout+jwt"

            # The status the client's endpoint answers is what the trigger reports.
            receiver.answer_status = 400
            assert op.trigger_backchannel_logout(ALICE.sub, CLIENT_ID) == 400
            assert len(receiver.received) == 2

            with pytest.raises(OidcHarnessError, match="unknown client_id"):
                op.trigger_backchannel_logout(ALICE.sub, "no-such-client")


@pytest.mark.oidc
def test_rp_initiated_logout_sends_back_channel_logout_to_loopback() -> None:
    """The provider's own logout reaches a 127.0.0.1 receiver (its SSRF guard is lifted)."""
    with logout_receiver() as receiver:
        config = provider_config(claims_in_id_token=False, backchannel_logout_uri=receiver.url)
        with run_oidc_provider(config) as op, httpx.Client() as browser:
            client = OAuth2Client(
                CLIENT_ID,
                CLIENT_SECRET,
                scope="openid",
                redirect_uri=REDIRECT_URI,
                code_challenge_method="S256",
            )
            verifier = secrets.token_urlsafe(48)
            url, _ = client.create_authorization_url(
                f"{op.issuer}/auth", nonce="n", code_verifier=verifier
            )
            callback = login_with_browserless_flow(url, ALICE.sub, client=browser)
            token = client.fetch_token(
                f"{op.issuer}/token", authorization_response=callback, code_verifier=verifier
            )
            end_session = f"{op.issuer}/session/end?" + urlencode(
                {
                    "id_token_hint": token["id_token"],
                    "post_logout_redirect_uri": "http://127.0.0.1:8765/",
                    "state": "bye",
                }
            )
            final = logout_with_browserless_flow(end_session, client=browser)
            assert final == "http://127.0.0.1:8765/?state=bye"
            assert len(receiver.received) == 1
            logout_token = receiver.received[0]["logout_token"][0]
            claims = verify(logout_token, fetch_jwks(f"{op.issuer}/jwks"), aud=CLIENT_ID)
            assert claims["sub"] == ALICE.sub
            assert claims["events"] == {BACKCHANNEL_LOGOUT_EVENT: {}}
            # The session is gone: the next authorization shows the login form again.
            with pytest.raises(LoginRejected):
                login_with_browserless_flow(url, "nobody", client=browser)


@pytest.mark.oidc
def test_python_side_signs_with_the_providers_key() -> None:
    """Tests can forge provider-signed tokens (e.g. logout tokens) with the shared key."""
    private_jwks = generate_private_jwks(kid="shared-key-1")
    config = ProviderConfig(
        clients=provider_config(claims_in_id_token=False).clients,
        accounts=[ALICE],
        jwks=private_jwks,
    )
    with run_oidc_provider(config) as op:
        assert op.private_jwks == private_jwks
        private = KeySet.import_key_set(cast(KeySetSerialization, op.private_jwks))
        token = jwt.encode(
            {"alg": "RS256", "kid": "shared-key-1"}, {"iss": op.issuer, "sub": "x"}, private
        )
        published = fetch_jwks(f"{op.issuer}/jwks")
        assert jwt.decode(token, published, algorithms=["RS256"]).claims["iss"] == op.issuer
        assert op.public_jwks["keys"][0]["kid"] == "shared-key-1"
        assert "d" not in op.public_jwks["keys"][0]


def test_missing_node_modules_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(oidc_provider, "OIDC_DIR", tmp_path)
    expected = pytest.raises(OidcHarnessError, match=r"npm ci --prefix tests/oidc")
    with expected, run_oidc_provider(provider_config(claims_in_id_token=False)):
        pass


@pytest.mark.oidc
def test_provider_dying_at_start_reports_its_stderr() -> None:
    bad = ProviderConfig(
        clients=[OidcClient("broken", "secret", redirect_uris=["not a url"])], accounts=[ALICE]
    )
    started = time.monotonic()
    reason = r"(?s)exited with code 2 .*invalid client broken: invalid_redirect_uri"
    expected = pytest.raises(OidcHarnessError, match=reason)
    with expected, run_oidc_provider(bad):
        pass
    assert time.monotonic() - started < 15


# --- the hostile IdP ----------------------------------------------------------------------


@dataclass
class HostileSignIn:
    """What a relying party would have after the code exchange with the hostile IdP."""

    response: httpx.Response
    nonce: str
    state: str


def hostile_sign_in(idp: HostileIdp, *, verifier: str | None = None) -> HostileSignIn:
    """Authorization request + code exchange against the hostile IdP, over real HTTP."""
    metadata = httpx.get(f"{idp.issuer}/.well-known/openid-configuration").json()
    code_verifier = secrets.token_urlsafe(48)
    client = OAuth2Client(
        idp.client_id,
        idp.client_secret,
        scope=SCOPE,
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
    )
    nonce = secrets.token_urlsafe(16)
    url, state = client.create_authorization_url(
        metadata["authorization_endpoint"], nonce=nonce, code_verifier=code_verifier
    )
    redirect = httpx.get(url, follow_redirects=False)
    assert redirect.status_code == 302
    callback = redirect.headers["location"]
    params = parse_qs(urlsplit(callback).query)
    assert callback.startswith(REDIRECT_URI + "?")
    assert params["state"] == [state]
    assert params["iss"] == [idp.issuer]
    response = httpx.post(
        metadata["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": params["code"][0],
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier or code_verifier,
        },
        auth=(idp.client_id, idp.client_secret),
    )
    return HostileSignIn(response, nonce, state)


@pytest.fixture(scope="module")
def hostile_idp() -> Iterator[HostileIdp]:
    with run_hostile_idp() as idp:
        yield idp


@pytest.fixture
def idp(hostile_idp: HostileIdp) -> Iterator[HostileIdp]:
    hostile_idp.reset()
    yield hostile_idp
    hostile_idp.reset()


def test_hostile_idp_well_behaved_gives_verifiable_token(idp: HostileIdp) -> None:
    signed_in = hostile_sign_in(idp)
    assert signed_in.response.status_code == 200
    body = signed_in.response.json()
    keys = fetch_jwks(f"{idp.issuer}/jwks")
    claims = verify(
        body["id_token"],
        keys,
        iss=idp.issuer,
        aud=idp.client_id,
        nonce=signed_in.nonce,
        sub=idp.account["sub"],
    )
    assert claims["email"] == idp.account["email"]
    userinfo = httpx.get(
        f"{idp.issuer}/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert userinfo.json()["email"] == idp.account["email"]
    assert httpx.get(f"{idp.issuer}/userinfo").status_code == 401


def test_hostile_idp_claims_only_in_userinfo(idp: HostileIdp) -> None:
    idp.claims_in_id_token = False
    signed_in = hostile_sign_in(idp)
    body = signed_in.response.json()
    claims = verify(body["id_token"], idp.key_set(), nonce=signed_in.nonce)
    assert "email" not in claims
    assert "groups" not in claims
    userinfo = httpx.get(
        f"{idp.issuer}/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert userinfo.json()["groups"] == idp.account["groups"]


CLAIM_DEFECTS: dict[Misbehaviour, Callable[[HostileIdp, dict[str, Any], str], bool]] = {
    Misbehaviour.WRONG_ISSUER: lambda idp, claims, nonce: claims["iss"] != idp.issuer,
    Misbehaviour.WRONG_AUDIENCE: lambda idp, claims, nonce: claims["aud"] != idp.client_id,
    Misbehaviour.EXPIRED: lambda idp, claims, nonce: claims["exp"] < time.time() - 600,
    Misbehaviour.IAT_IN_FUTURE: lambda idp, claims, nonce: claims["iat"] > time.time() + 600,
    Misbehaviour.MISSING_NONCE: lambda idp, claims, nonce: "nonce" not in claims,
    Misbehaviour.WRONG_NONCE: lambda idp, claims, nonce: claims["nonce"] not in (None, nonce),
    Misbehaviour.MISSING_SUB: lambda idp, claims, nonce: "sub" not in claims,
}


@pytest.mark.parametrize("misbehaviour", list(CLAIM_DEFECTS), ids=lambda m: m.value)
def test_hostile_idp_claim_defects(idp: HostileIdp, misbehaviour: Misbehaviour) -> None:
    """Each claim defect is present, and it is the only thing wrong (the signature is genuine)."""
    idp.misbehaviour = misbehaviour
    signed_in = hostile_sign_in(idp)
    assert signed_in.response.status_code == 200
    token = signed_in.response.json()["id_token"]
    claims = jwt.decode(token, fetch_jwks(f"{idp.issuer}/jwks"), algorithms=["RS256"]).claims
    assert CLAIM_DEFECTS[misbehaviour](idp, claims, signed_in.nonce)
    # Everything else is still right.
    for name, value in {
        "iss": idp.issuer,
        "aud": idp.client_id,
        "nonce": signed_in.nonce,
        "sub": idp.account["sub"],
    }.items():
        if name not in {
            Misbehaviour.WRONG_ISSUER: "iss",
            Misbehaviour.WRONG_AUDIENCE: "aud",
            Misbehaviour.MISSING_NONCE: "nonce",
            Misbehaviour.WRONG_NONCE: "nonce",
            Misbehaviour.MISSING_SUB: "sub",
        }.get(misbehaviour, ""):
            assert claims[name] == value, name


def test_hostile_idp_bad_signature(idp: HostileIdp) -> None:
    idp.misbehaviour = Misbehaviour.BAD_SIGNATURE
    token = hostile_sign_in(idp).response.json()["id_token"]
    header, _ = unverified(token)
    assert header["kid"] == idp.signing_key.kid  # looks genuine...
    with pytest.raises(BadSignatureError):  # ...but is not
        jwt.decode(token, fetch_jwks(f"{idp.issuer}/jwks"), algorithms=["RS256"])


def test_hostile_idp_unknown_kid(idp: HostileIdp) -> None:
    idp.misbehaviour = Misbehaviour.UNKNOWN_KID
    token = hostile_sign_in(idp).response.json()["id_token"]
    header, _ = unverified(token)
    published = httpx.get(f"{idp.issuer}/jwks").json()
    assert header["kid"] not in {key["kid"] for key in published["keys"]}
    with pytest.raises(InvalidKeyIdError):
        jwt.decode(token, KeySet.import_key_set(published), algorithms=["RS256"])


def test_hostile_idp_alg_none(idp: HostileIdp) -> None:
    idp.misbehaviour = Misbehaviour.ALG_NONE
    signed_in = hostile_sign_in(idp)
    token = signed_in.response.json()["id_token"]
    header, claims = unverified(token)
    assert header["alg"] == "none"
    assert token.endswith(".")  # empty signature
    assert claims["nonce"] == signed_in.nonce
    with pytest.raises(UnsupportedAlgorithmError):
        jwt.decode(token, idp.key_set(), algorithms=["RS256"])


def test_hostile_idp_token_endpoint_error(idp: HostileIdp) -> None:
    idp.misbehaviour = Misbehaviour.TOKEN_ENDPOINT_ERROR
    assert hostile_sign_in(idp).response.status_code == 500


def test_hostile_idp_checks_pkce_and_single_use_codes(idp: HostileIdp) -> None:
    wrong = hostile_sign_in(idp, verifier=secrets.token_urlsafe(48))
    assert wrong.response.status_code == 400
    assert wrong.response.json()["error"] == "invalid_grant"

    no_pkce = httpx.get(
        f"{idp.issuer}/authorize",
        params={
            "response_type": "code",
            "client_id": idp.client_id,
            "redirect_uri": REDIRECT_URI,
            "state": "s",
            "nonce": "n",
            "scope": "openid",
        },
        follow_redirects=False,
    )
    assert parse_qs(urlsplit(no_pkce.headers["location"]).query)["error"] == ["invalid_request"]

    verifier = secrets.token_urlsafe(48)
    authorize = httpx.get(
        f"{idp.issuer}/authorize",
        params={
            "response_type": "code",
            "client_id": idp.client_id,
            "redirect_uri": REDIRECT_URI,
            "state": "s",
            "nonce": "n",
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256",
        },
        follow_redirects=False,
    )
    code = parse_qs(urlsplit(authorize.headers["location"]).query)["code"][0]
    exchange = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
    }
    auth = (idp.client_id, idp.client_secret)
    assert httpx.post(f"{idp.issuer}/token", data=exchange, auth=auth).status_code == 200
    assert httpx.post(f"{idp.issuer}/token", data=exchange, auth=auth).status_code == 400  # reused
    assert (
        httpx.post(f"{idp.issuer}/token", data=exchange, auth=(idp.client_id, "wrong")).status_code
        == 401
    )


def test_hostile_idp_logout_tokens(idp: HostileIdp) -> None:
    keys = idp.key_set()
    valid = idp.logout_token("alice", idp.client_id, sid="session-1")
    claims = verify(valid, keys, iss=idp.issuer, aud=idp.client_id, sub="alice", sid="session-1")
    assert claims["events"] == {BACKCHANNEL_LOGOUT_EVENT: {}}
    assert claims["jti"]
    assert "nonce" not in claims
    assert unverified(valid)[0]["typ"] == "logout+jwt"

    with pytest.raises(BadSignatureError):
        jwt.decode(
            idp.logout_token(
                "alice", idp.client_id, misbehaviour=LogoutTokenMisbehaviour.BAD_SIGNATURE
            ),
            keys,
            algorithms=["RS256"],
        )

    def forged(misbehaviour: LogoutTokenMisbehaviour) -> dict[str, Any]:
        token = idp.logout_token("alice", idp.client_id, misbehaviour=misbehaviour)
        return jwt.decode(token, keys, algorithms=["RS256"]).claims  # genuinely signed

    assert forged(LogoutTokenMisbehaviour.WRONG_AUDIENCE)["aud"] != idp.client_id
    assert forged(LogoutTokenMisbehaviour.WRONG_ISSUER)["iss"] != idp.issuer
    assert forged(LogoutTokenMisbehaviour.EXPIRED)["exp"] < time.time()
    assert "events" not in forged(LogoutTokenMisbehaviour.MISSING_EVENTS)
    assert "nonce" in forged(LogoutTokenMisbehaviour.CONTAINS_NONCE)

    with logout_receiver() as receiver:
        assert idp.send_logout_token(receiver.url, valid) == 200
        assert receiver.received[0]["logout_token"] == [valid]
