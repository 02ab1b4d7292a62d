"""The browser's cookies: signed, HttpOnly, SameSite=Lax, Secure outside development.

``tenantry_session`` holds one session token per organisation the browser signed in to
(an admin of several organisations switches between them) and which one is current;
``tenantry_browser`` is a random id set before sign-in, binding a login attempt and the
login forms' CSRF tokens to this browser.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from itsdangerous import BadSignature, URLSafeSerializer
from starlette.requests import Request
from starlette.responses import Response

from tenants.ids import OrgId
from tenants.sessions.service import ABSOLUTE_TIMEOUT, SessionToken

SESSION_COOKIE = "tenantry_session"
BROWSER_COOKIE = "tenantry_browser"
TYPED_EMAIL_COOKIE = "tenantry_login_email"
FLASH_COOKIE = "tenantry_flash"
#: A refused form's field errors and what was typed, for the page it is sent back to.
FORM_COOKIE = "tenantry_form"
#: Kept input fits in one cookie (browsers keep about 4 KB).
FORM_STATE_MAX = 2500
#: The longest value of a refused form kept for the page after the redirect.
FORM_VALUE_MAX = 500
MAX_ORGS = 8


@dataclass
class SignedIn:
    """The organisations this browser has sessions with; ``current`` is the active one."""

    sessions: dict[str, tuple[str, str, str]] = field(
        default_factory=dict
    )  # org hex → (secret, slug, name)
    current: str | None = None

    def token(self, org_hex: str | None = None) -> SessionToken | None:
        key = org_hex or self.current
        if key is None or key not in self.sessions:
            return None
        return SessionToken.parse(f"{key}.{self.sessions[key][0]}")

    def add(self, token: SessionToken, slug: str, name: str) -> list[SessionToken]:
        """Make ``token`` the current session; returns the sessions this drops from the
        cookie (the organisation's earlier one, the oldest beyond MAX_ORGS), which the
        caller ends: a session no browser holds must not stay valid (an admin's did,
        after someone else signed in at the same browser)."""
        key = token.org_id.hex
        earlier = self.token(key)
        dropped = [earlier] if earlier is not None and earlier.secret != token.secret else []
        self.sessions.pop(key, None)
        self.sessions[key] = (token.secret, slug, name)
        while len(self.sessions) > MAX_ORGS:
            oldest = next(iter(self.sessions))
            dropped.extend(t for t in [self.token(oldest)] if t is not None)
            self.sessions.pop(oldest)
        self.current = key
        return dropped

    def remove(self, org_id: OrgId) -> None:
        self.sessions.pop(org_id.hex, None)
        if self.current == org_id.hex:
            self.current = next(iter(self.sessions), None)

    def others(self) -> list[tuple[str, str, str]]:
        """(org hex, slug, name) of the signed-in organisations other than the current one."""
        return [(k, v[1], v[2]) for k, v in self.sessions.items() if k != self.current]


class CookieJar:
    def __init__(self, secret_key: str, *, secure: bool) -> None:
        self._signer = URLSafeSerializer(secret_key, salt="tenantry.cookies")
        self.secure = secure

    def signed_in(self, request: Request) -> SignedIn:
        raw = request.cookies.get(SESSION_COOKIE)
        if not raw:
            return SignedIn()
        try:
            data = self._signer.loads(raw)
            sessions = {str(k): (str(v[0]), str(v[1]), str(v[2])) for k, v in data["s"].items()}
            current = data.get("c")
            return SignedIn(sessions, current if current in sessions else None)
        except (BadSignature, KeyError, TypeError, ValueError, IndexError, AttributeError):
            return SignedIn()

    def store(self, response: Response, state: SignedIn) -> None:
        if not state.sessions:
            response.delete_cookie(
                SESSION_COOKIE, path="/", secure=self.secure, httponly=True, samesite="lax"
            )
            return
        value = self._signer.dumps(
            {"s": {k: list(v) for k, v in state.sessions.items()}, "c": state.current}
        )
        response.set_cookie(
            SESSION_COOKIE,
            value,
            max_age=int(ABSOLUTE_TIMEOUT.total_seconds()),
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="lax",
        )

    def browser_id(self, request: Request) -> str | None:
        raw = request.cookies.get(BROWSER_COOKIE)
        if not raw:
            return None
        try:
            value = self._signer.loads(raw, salt="tenantry.browser")
        except BadSignature:
            return None
        return value if isinstance(value, str) else None

    def form_state(
        self, response: Response, errors: dict[str, str], values: dict[str, str]
    ) -> None:
        """Keep a refused form's errors and input for one page view after the redirect
        (POST-redirect-GET without losing what was typed). A value too long for the cookie
        is left out whole, never cut: a field shown with part of what was typed would be
        saved so when sent again (its field shows what the page shows without it)."""
        kept: dict[str, str] = {}
        budget = FORM_STATE_MAX
        for key, value in values.items():
            # Secrets are never written back into a page (nor into a cookie).
            if key == "csrf" or len(key) > 100 or "secret" in key or "password" in key:
                continue
            if len(value) > FORM_VALUE_MAX or len(key) + len(value) > budget:
                continue
            budget -= len(key) + len(value)
            kept[key] = value
        response.set_cookie(
            FORM_COOKIE,
            self._signer.dumps({"errors": errors, "values": kept}, salt="tenantry.form"),
            max_age=60,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="lax",
        )

    def take_form_state(
        self, request: Request, response: Response
    ) -> tuple[dict[str, str], dict[str, str]]:
        """(errors by field, kept input by field) of the form refused just before; empty
        dicts when there is none."""
        raw = request.cookies.get(FORM_COOKIE)
        if not raw:
            return {}, {}
        response.delete_cookie(FORM_COOKIE, path="/")
        try:
            value = self._signer.loads(raw, salt="tenantry.form")
        except BadSignature:
            return {}, {}
        if not isinstance(value, dict):
            return {}, {}
        errors, values = value.get("errors"), value.get("values")
        return (
            {str(k): str(v) for k, v in errors.items()} if isinstance(errors, dict) else {},
            {str(k): str(v) for k, v in values.items()} if isinstance(values, dict) else {},
        )

    def ensure_browser_id(self, request: Request, response: Response) -> str:
        existing = self.browser_id(request)
        if existing:
            return existing
        value = secrets.token_urlsafe(24)
        response.set_cookie(
            BROWSER_COOKIE,
            self._signer.dumps(value, salt="tenantry.browser"),
            max_age=30 * 24 * 3600,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="lax",
        )
        return value

    def remember_typed_email(self, response: Response, email: str) -> None:
        """Keep the address typed on one sign-in page for the next (the organisation's
        page, or the same one after a refusal) in a cookie rather than in the URL:
        addresses in URLs end up in browser history, proxy and server logs."""
        response.set_cookie(
            TYPED_EMAIL_COOKIE,
            quote(email[:320]),
            max_age=600,
            path="/login",
            secure=self.secure,
            httponly=True,
            samesite="lax",
        )

    def forget_typed_email(self, response: Response) -> None:
        """Signed in or out: the address typed is not offered to the next person at this
        computer."""
        response.delete_cookie(
            TYPED_EMAIL_COOKIE, path="/login", secure=self.secure, httponly=True, samesite="lax"
        )

    @staticmethod
    def typed_email(request: Request) -> str:
        return unquote(request.cookies.get(TYPED_EMAIL_COOKIE, ""))

    def flash(self, response: Response, message: str) -> None:
        response.set_cookie(
            FLASH_COOKIE,
            self._signer.dumps(message, salt="tenantry.flash"),
            max_age=60,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="lax",
        )

    def take_flash(self, request: Request, response: Response) -> str | None:
        raw = request.cookies.get(FLASH_COOKIE)
        if not raw:
            return None
        response.delete_cookie(FLASH_COOKIE, path="/")
        try:
            value = self._signer.loads(raw, salt="tenantry.flash")
        except BadSignature:
            return None
        return value if isinstance(value, str) else None
