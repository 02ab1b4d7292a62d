"""Page plumbing shared by the console and the account page: session from the cookie, one
tenant transaction per request, permission and CSRF checks, rendering, flash messages.

A handler gets a ``PageContext`` and returns a response; it never touches cookies or
transactions itself.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from app.settings import Settings
from app.web.cookies import CookieJar, SignedIn
from app.web.ratelimit import RateLimiter
from tenants.actors import Actor
from tenants.db import tenant_transaction
from tenants.errors import AuthenticationError, TenantryError
from tenants.organisations.models import Organisation
from tenants.permissions import Permission, permissions_of
from tenants.secrets import SecretBox
from tenants.sessions import service as sessions
from tenants.sessions.models import AuthMethod
from tenants.sso.oidc import RelyingParty

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


@dataclass
class Web:
    """What every page needs; built once in the composition root."""

    settings: Settings
    cookies: CookieJar
    rp: RelyingParty
    box: SecretBox
    #: Sign-in attempts per client address per 5 minutes (settings.login_rate_limit);
    #: passwords also lock per credential after 5 failures.
    login_limiter: RateLimiter = field(init=False)
    templates: Jinja2Templates = field(
        default_factory=lambda: Jinja2Templates(directory=str(TEMPLATES))
    )

    def __post_init__(self) -> None:
        self.login_limiter = RateLimiter("sign-in", self.settings.login_rate_limit, 300)

    def render(
        self, request: Request, template: str, context: dict[str, Any], status: int = 200
    ) -> HTMLResponse:
        response = self.templates.TemplateResponse(request, template, context, status_code=status)
        response.headers["Cache-Control"] = "no-store"
        return response

    def message(
        self,
        request: Request,
        title: str,
        text: str,
        *,
        status: int = 200,
        link: tuple[str, str] | None = None,
    ) -> HTMLResponse:
        return self.render(
            request, "message.html", {"title": title, "text": text, "link": link}, status
        )


#: Console navigation: (label, path, permission). Pages the role may not open are hidden.
CONSOLE_NAV: list[tuple[str, str, Permission]] = [
    ("Overview", "/console", Permission.CONSOLE_ACCESS),
    ("Members", "/console/members", Permission.MEMBERS_READ),
    ("Units", "/console/units", Permission.UNITS_READ),
    ("Groups", "/console/groups", Permission.GROUPS_READ),
    ("Products", "/console/products", Permission.PRODUCTS_READ),
    ("Policies", "/console/policies", Permission.POLICIES_READ),
    ("Departures", "/console/departures", Permission.DEPARTURES_READ),
    ("Background jobs", "/console/jobs", Permission.JOBS_READ),
    ("Data access", "/console/data-access", Permission.ACCESS_READ),
    ("Privacy requests", "/console/privacy-requests", Permission.PRIVACY_REQUESTS_READ),
    ("Audit log", "/console/audit", Permission.AUDIT_READ),
    ("Settings", "/console/settings", Permission.SSO_READ),
    ("Identity backend", "/console/identity", Permission.SSO_READ),
    ("Provisioning (SCIM)", "/console/provisioning", Permission.SCIM_READ),
]


@dataclass
class PageContext:
    request: Request
    web: Web
    active: sessions.ActiveSession
    organisation: Organisation
    permissions: frozenset[Permission]
    signed_in: SignedIn
    csrf: str
    form: dict[str, str] = field(default_factory=dict)
    flash: str | None = None

    @property
    def actor(self) -> Actor:
        base = self.active.actor
        client = self.request.client.host if self.request.client else None
        return Actor(
            base.kind,
            base.id,
            base.display,
            request_id=getattr(self.request.state, "request_id", None),
            client_addr=client,
        )

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions

    def render(self, template: str, http_status: int = 200, **context: Any) -> HTMLResponse:
        base = {
            "org": self.organisation,
            "me": self.active.member,
            "session": self.active.session,
            "break_glass": self.active.session.auth_method == AuthMethod.BREAK_GLASS,
            "permissions": self.permissions,
            "P": Permission,
            "csrf": self.csrf,
            "nav": [(label, path) for label, path, p in CONSOLE_NAV if p in self.permissions],
            "path": self.request.url.path,
            "other_orgs": self.signed_in.others(),
            "flash": self.flash,
            "is_admin": Permission.CONSOLE_ACCESS in self.permissions,
        }
        return self.web.render(self.request, template, {**base, **context}, http_status)

    def redirect(self, path: str, message: str | None = None) -> RedirectResponse:
        response = RedirectResponse(path, status_code=303)
        if message:
            self.web.cookies.flash(response, message)
        return response


Handler = Callable[[PageContext], Awaitable[Response]]


def page(
    web: Web, *, permission: Permission | None
) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Wrap a page handler: signed-in session required, ``permission`` checked, and on POST
    the form's CSRF token checked. ``permission=None`` means any signed-in member."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            state = web.cookies.signed_in(request)
            token = state.token()
            if token is None:
                return _to_login(request)
            form: dict[str, str] = {}
            if request.method == "POST":
                raw = await request.form()
                form = {k: v for k, v in raw.items() if isinstance(v, str)}
                if not sessions.is_valid_csrf(web.settings.secret_key, token, form.get("csrf")):
                    return web.message(
                        request,
                        "Form expired",
                        "This form was not sent from this session. Go back, reload and try again.",
                        status=403,
                    )
            response: Response
            try:
                async with tenant_transaction(token.org_id):
                    try:
                        active = await sessions.authenticate_session(token)
                    except AuthenticationError as exc:
                        state.remove(token.org_id)
                        response = _to_login(request, exc.message)
                        web.cookies.store(response, state)
                        return response
                    organisation = await Organisation.get(id=token.org_id)
                    granted = permissions_of(active.member.roles)
                    if permission is not None and permission not in granted:
                        return web.message(
                            request,
                            "Not allowed",
                            "Your role in this organisation does not allow this page.",
                            status=403,
                            link=("/account", "Go to your account"),
                        )
                    ctx = PageContext(
                        request,
                        web,
                        active,
                        organisation,
                        granted,
                        state,
                        sessions.csrf_token(web.settings.secret_key, token),
                        form,
                    )
                    placeholder = Response()
                    ctx.flash = web.cookies.take_flash(request, placeholder)
                    response = await handler(ctx)
                    for key, value in placeholder.headers.items():
                        if key == "set-cookie":
                            response.headers.append(key, value)
            except TenantryError as error:
                if request.method == "POST":
                    back = request.headers.get("referer") or request.url.path
                    response = RedirectResponse(
                        _same_site_path(back, request.url.path), status_code=303
                    )
                    fields = "; ".join(f"{f.field}: {f.reason}" for f in error.fields)
                    web.cookies.flash(
                        response, f"Not done: {error.message}" + (f" ({fields})" if fields else "")
                    )
                    return response
                status = 404 if error.code == "not_found" else 400
                return web.message(request, error.title, error.message, status=status)
            return response

        endpoint.__name__ = handler.__name__
        return endpoint

    return wrap


def _to_login(request: Request, reason: str | None = None) -> RedirectResponse:
    target = "/login?next=" + quote(request.url.path)
    if reason:
        target += "&reason=" + quote(reason)
    return RedirectResponse(target, status_code=303)


def _same_site_path(url: str, fallback: str) -> str:
    """Only redirect back to a path on this site (no open redirect through Referer)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    path = parts.path or fallback
    if not path.startswith("/") or path.startswith("//"):
        return fallback
    return path + (f"?{parts.query}" if parts.query else "")


def safe_next(value: str | None, default: str) -> str:
    """A post-sign-in destination that stays on this site."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return default
