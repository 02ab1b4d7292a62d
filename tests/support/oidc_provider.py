"""Run the real test OpenID provider (tests/oidc/provider.mjs) from Python tests.

Sign-in tests need a standards-conforming IdP, not a mock, so the app's relying-party code
meets the same redirects, PKCE checks, ID token signing and back-channel logout it will meet
in production. This module starts ``oidc-provider`` (npm) as a subprocess, hands it clients,
accounts and a signing key, and drives its login form without a browser.

Typical use::

    config = ProviderConfig(
        clients=[OidcClient("app", "secret", redirect_uris=["http://127.0.0.1:8000/cb"])],
        accounts=[OidcAccount("alice", "alice@example.com", name="Alice", groups=["admins"])],
    )
    with run_oidc_provider(config) as op:
        callback_url = login_with_browserless_flow(authorization_url, "alice")

The node dependencies are installed with ``npm ci --prefix tests/oidc``.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
from joserfc.jwk import RSAKey

OIDC_DIR = Path(__file__).resolve().parent.parent / "oidc"
PROVIDER_SCRIPT = OIDC_DIR / "provider.mjs"
READY_TIMEOUT_S = 20.0
BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"


class OidcHarnessError(RuntimeError):
    """The test provider could not be started or driven (a harness problem, not an app bug)."""


class LoginRejected(OidcHarnessError):
    """The provider's login form refused the login name (neither an account's sub nor email)."""


@dataclass(frozen=True)
class OidcClient:
    """A relying party registered at the test provider."""

    client_id: str
    client_secret: str
    redirect_uris: Sequence[str]
    post_logout_redirect_uris: Sequence[str] = ()
    backchannel_logout_uri: str | None = None
    backchannel_logout_session_required: bool = False
    token_endpoint_auth_method: str = "client_secret_basic"

    def to_json(self) -> dict[str, Any]:
        """Client metadata in oidc-provider's (RFC 7591) naming."""
        data: dict[str, Any] = {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "redirect_uris": list(self.redirect_uris),
            "post_logout_redirect_uris": list(self.post_logout_redirect_uris),
            "token_endpoint_auth_method": self.token_endpoint_auth_method,
        }
        if self.backchannel_logout_uri is not None:
            data["backchannel_logout_uri"] = self.backchannel_logout_uri
            data["backchannel_logout_session_required"] = self.backchannel_logout_session_required
        return data


@dataclass(frozen=True)
class OidcAccount:
    """A person who can sign in at the test provider (login name = ``sub`` or ``email``).

    ``extra_claims`` are released under the ``profile`` scope (and via the claims parameter).
    """

    sub: str
    email: str
    email_verified: bool = True
    name: str = ""
    groups: Sequence[str] = ()
    extra_claims: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def claims(self) -> dict[str, Any]:
        """All claims of the account, as the provider will serve them."""
        claims: dict[str, Any] = dict(self.extra_claims)
        claims.update(
            email=self.email,
            email_verified=self.email_verified,
            name=self.name or self.sub,
            groups=list(self.groups),
        )
        return claims


def generate_private_jwks(kid: str | None = None) -> dict[str, Any]:
    """A private JWKS with one RS256 key: shared with the provider so tests can sign as it."""
    key = RSAKey.generate_key(
        2048,
        parameters={"kid": kid or f"test-{uuid.uuid4().hex[:12]}", "alg": "RS256", "use": "sig"},
        private=True,
    )
    return {"keys": [key.as_dict(private=True)]}


def public_jwks(private_jwks: Mapping[str, Any]) -> dict[str, Any]:
    """The public half of a JWKS (what the provider publishes at its jwks_uri)."""
    keys = []
    for jwk in private_jwks["keys"]:
        keys.append(RSAKey.import_key(dict(jwk)).as_dict(private=False))
    return {"keys": keys}


@dataclass(frozen=True)
class ProviderConfig:
    """Everything provider.mjs needs; ``port=0`` lets the provider pick a free port itself.

    ``claims_in_id_token`` mirrors the two behaviours real IdPs show: email, name and groups
    in the ID token (True) or only from the userinfo endpoint (False, oidc-provider's default).
    ``jwks`` is generated when not given, so the key is always known to the Python side.
    """

    clients: Sequence[OidcClient]
    accounts: Sequence[OidcAccount]
    claims_in_id_token: bool = False
    port: int = 0
    issuer: str | None = None
    jwks: Mapping[str, Any] | None = field(default=None, hash=False)

    def to_json(self, private_jwks: Mapping[str, Any]) -> dict[str, Any]:
        """The JSON document provider.mjs reads."""
        if self.port == 0 and self.issuer is not None:
            raise OidcHarnessError(
                "an explicit issuer needs an explicit port (the issuer carries it)"
            )
        return {
            "port": self.port,
            "issuer": self.issuer,
            "clients": [client.to_json() for client in self.clients],
            "accounts": {account.sub: account.claims() for account in self.accounts},
            "claims_in_id_token": self.claims_in_id_token,
            "jwks": dict(private_jwks),
        }


class RunningProvider:
    """Handle on a started provider: its issuer, its signing key and its test controls."""

    def __init__(
        self,
        issuer: str,
        private_jwks: dict[str, Any],
        config: ProviderConfig,
        process: subprocess.Popen[bytes],
        stderr_path: Path,
    ) -> None:
        self.issuer = issuer
        self.private_jwks = private_jwks
        self.config = config
        self.process = process
        self._stderr_path = stderr_path
        self.last_logout_token: str | None = None

    @property
    def public_jwks(self) -> dict[str, Any]:
        """The published (public) JWKS, computed locally."""
        return public_jwks(self.private_jwks)

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def discovery(self) -> dict[str, Any]:
        """The provider's discovery document, fetched over HTTP."""
        response = httpx.get(self.discovery_url, timeout=10)
        response.raise_for_status()
        document: dict[str, Any] = response.json()
        return document

    def stderr_text(self) -> str:
        """What the provider wrote to stderr so far (warnings, back-channel errors)."""
        return _read_tail(self._stderr_path)

    def trigger_backchannel_logout(
        self, sub: str, client_id: str, *, sid: str | None = None
    ) -> int:
        """Make the provider POST a real signed logout token to the client's back-channel URI.

        Returns the HTTP status the client's endpoint answered; the token sent is kept in
        ``last_logout_token``. Raises OidcHarnessError when nothing was delivered.
        """
        body: dict[str, Any] = {"sub": sub, "client_id": client_id}
        if sid is not None:
            body["sid"] = sid
        response = httpx.post(f"{self.issuer}/__test/backchannel-logout", json=body, timeout=15)
        delivered = response.headers.get("x-test-delivered-status")
        if delivered is None:
            raise OidcHarnessError(
                f"back-channel logout not delivered ({response.status_code}): {response.text}"
            )
        self.last_logout_token = response.headers.get("x-test-logout-token")
        return int(delivered)


def _read_tail(path: Path, limit: int = 8000) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return data[-limit:].decode("utf-8", errors="replace")


def _check_node_setup() -> str:
    node = shutil.which("node")
    if node is None:
        raise OidcHarnessError(
            "node is not on PATH: the test OpenID provider needs Node.js 20 or later"
        )
    if not (OIDC_DIR / "node_modules" / "oidc-provider" / "package.json").is_file():
        raise OidcHarnessError(
            f"{OIDC_DIR / 'node_modules'} is missing: run `npm ci --prefix tests/oidc` "
            "from the repository root first"
        )
    return node


@contextlib.contextmanager
def run_oidc_provider(config: ProviderConfig) -> Iterator[RunningProvider]:
    """Start provider.mjs for the duration of the block, and always stop it afterwards."""
    node = _check_node_setup()
    private_jwks = dict(config.jwks) if config.jwks is not None else generate_private_jwks()
    with tempfile.TemporaryDirectory(prefix="oidc-provider-") as tmp:
        config_path = Path(tmp) / "config.json"
        config_path.write_text(json.dumps(config.to_json(private_jwks)), encoding="utf-8")
        stderr_path = Path(tmp) / "stderr.log"
        with stderr_path.open("wb") as stderr_file:
            process = subprocess.Popen(
                [node, str(PROVIDER_SCRIPT), str(config_path)],
                cwd=OIDC_DIR,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr_file,
                env={**os.environ, "NODE_ENV": "test"},
            )
        try:
            issuer = _wait_until_ready(process, stderr_path)
            yield RunningProvider(issuer, private_jwks, config, process, stderr_path)
        finally:
            _stop(process)


def _wait_until_ready(process: subprocess.Popen[bytes], stderr_path: Path) -> str:
    """Block until the provider prints ``READY <issuer>``; fail loudly with its stderr otherwise."""
    assert process.stdout is not None
    lines: queue.Queue[bytes | None] = queue.Queue()

    def pump(stream: Any) -> None:
        # Keep draining stdout for the process' whole life so it can never block on a full pipe.
        for line in iter(stream.readline, b""):
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, args=(process.stdout,), daemon=True).start()
    deadline = time.monotonic() + READY_TIMEOUT_S
    seen: list[str] = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            _stop(process)
            raise OidcHarnessError(
                f"test OpenID provider not ready after {READY_TIMEOUT_S:.0f}s; stdout={seen!r}\n"
                f"stderr:\n{_read_tail(stderr_path)}"
            )
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            continue
        if line is None:
            code = process.wait(timeout=5)
            raise OidcHarnessError(
                f"test OpenID provider exited with code {code} before it was ready; "
                f"stdout={seen!r}\n"
                f"stderr:\n{_read_tail(stderr_path)}"
            )
        text = line.decode("utf-8", errors="replace").strip()
        if text.startswith("READY "):
            return text.removeprefix("READY ").strip()
        seen.append(text)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    if process.stdout is not None:
        process.stdout.close()


class _FormParser(HTMLParser):
    """Collects a page's forms and their input fields (stdlib only; enough for these pages)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append(
                {
                    "action": attributes.get("action", ""),
                    "method": attributes.get("method", "get"),
                    "fields": {},
                }
            )
        elif tag == "input" and self.forms and attributes.get("name"):
            self.forms[-1]["fields"][attributes["name"]] = attributes.get("value", "")


def _login_form(html: str) -> dict[str, Any] | None:
    parser = _FormParser()
    parser.feed(html)
    for form in parser.forms:
        if "login" in form["fields"]:
            return form
    return None


def _same_endpoint(url: str, target: str) -> bool:
    a, b = urlsplit(url), urlsplit(target)
    return (a.scheme, a.netloc, a.path) == (b.scheme, b.netloc, b.path)


def login_with_browserless_flow(
    authorization_url: str,
    login: str,
    *,
    password: str = "any-password",  # noqa: S107 (devInteractions accept any)
    client: httpx.Client | None = None,
    max_steps: int = 12,
) -> str:
    """Sign in at the provider like a browser would and return the callback URL it redirects to.

    ``authorization_url`` is the complete authorization request the app built (state, nonce,
    PKCE challenge, redirect_uri). The redirect chain is followed by hand and stops at the first
    redirect to that redirect_uri, which is returned unvisited (code, state and iss in its query,
    or an OAuth error). Pass ``client`` to keep the provider's session cookies across calls
    (single sign-on, logout tests). Raises LoginRejected for an unknown login name.
    """
    query = parse_qs(urlsplit(authorization_url).query)
    if "redirect_uri" not in query:
        raise OidcHarnessError("the authorization URL has no redirect_uri parameter")
    redirect_uri = query["redirect_uri"][0]
    own_client = client is None
    http = client or httpx.Client(timeout=10)
    try:
        method, url, data = "GET", authorization_url, None
        for _ in range(max_steps):
            response = http.request(method, url, data=data, follow_redirects=False)
            if response.is_redirect:
                location = urljoin(str(response.url), response.headers["location"])
                if _same_endpoint(location, redirect_uri):
                    return location
                method, url, data = "GET", location, None
                continue
            if response.status_code == 401 and _login_form(response.text) is not None:
                raise LoginRejected(f"the provider refused the login {login!r}")
            form = _login_form(response.text) if response.status_code == 200 else None
            if form is None:
                raise OidcHarnessError(
                    f"unexpected {response.status_code} from {url} (no login form, no redirect): "
                    f"{response.text[:800]}"
                )
            fields = dict(form["fields"])
            fields.update(login=login, password=password)
            method, url, data = "POST", urljoin(str(response.url), form["action"]), fields
        raise OidcHarnessError(
            f"no redirect to {redirect_uri} after {max_steps} steps (last: {url})"
        )
    finally:
        if own_client:
            http.close()


def logout_with_browserless_flow(end_session_url: str, *, client: httpx.Client) -> str:
    """Confirm an RP-initiated logout at the provider and return where it finally redirects.

    ``client`` must be the one that signed in (it holds the provider's session cookie). The
    provider then also sends back-channel logout tokens to every client of that session that
    registered a ``backchannel_logout_uri``. Returns the post_logout_redirect_uri (with state)
    when one was given, else the provider's own "signed out" page URL.
    """
    response = client.get(end_session_url, follow_redirects=False)
    parser = _FormParser()
    parser.feed(response.text)
    if response.status_code != 200 or not parser.forms or "xsrf" not in parser.forms[0]["fields"]:
        raise OidcHarnessError(
            f"no logout confirmation form ({response.status_code}) at {end_session_url}: "
            f"{response.text[:800]}"
        )
    form = parser.forms[0]
    url = urljoin(str(response.url), form["action"])
    response = client.post(url, data={**form["fields"], "logout": "yes"}, follow_redirects=False)
    for _ in range(5):
        if not response.is_redirect:
            return str(response.url)
        location = urljoin(str(response.url), response.headers["location"])
        if urlsplit(location).netloc != urlsplit(end_session_url).netloc:
            return location
        response = client.get(location, follow_redirects=False)
    raise OidcHarnessError(f"logout did not settle after 5 redirects (last: {response.url})")
