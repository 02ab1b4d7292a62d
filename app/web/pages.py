"""Page plumbing shared by the console and the account page: session from the cookie, one
tenant transaction per request, permission and CSRF checks, rendering, flash messages.

A handler gets a ``PageContext`` and returns a response; it never touches cookies or
transactions itself.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Match, Router
from starlette.templating import Jinja2Templates

from app.api import ids_parse
from app.problems import from_domain_error
from app.settings import Settings
from app.web.addresses import storage_problem
from app.web.cookies import CookieJar, SignedIn
from app.web.forms import MAX_FORM_BYTES, UnreadableForm, read_form
from app.web.timezones import localtime, org_date, viewer_time
from tenants import notifications, text
from tenants.actors import Actor
from tenants.audit import reading
from tenants.db import tenant_transaction
from tenants.errors import AuthenticationError, FieldProblem, InvalidInputError, TenantryError
from tenants.ids import OrgId
from tenants.members.roles import role_name, role_names
from tenants.organisations.models import Organisation
from tenants.permissions import Permission, permissions_of
from tenants.ratelimits import RateLimiter
from tenants.secrets import SecretBox
from tenants.sessions import service as sessions
from tenants.sessions.models import AuthMethod
from tenants.signins.rules import METHOD_NAMES, Reason, SignInMethod
from tenants.sso.oidc import RelyingParty
from tenants.text import counted

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
    #: Encrypts the ID tokens sessions keep for signing out at the provider.
    id_tokens: SecretBox = field(init=False)
    templates: Jinja2Templates = field(
        default_factory=lambda: Jinja2Templates(directory=str(TEMPLATES))
    )
    #: Applies a committed page's cache notifications to this process at once (a token
    #: revoked in the console stops working on the next request, not when the
    #: notification comes back through the listener).
    committed: Callable[[list[str]], None] | None = None

    def __post_init__(self) -> None:
        self.login_limiter = RateLimiter("sign-in", self.settings.login_rate_limit, 300)
        self.id_tokens = SecretBox(self.settings.secret_key, "id-token-hints")
        self.templates.env.filters["localtime"] = localtime
        self.templates.env.filters["org_date"] = org_date
        self.templates.env.filters["role_name"] = role_name
        self.templates.env.filters["role_names"] = role_names
        self.templates.env.filters["field_label"] = field_label
        self.templates.env.filters["counted"] = counted
        self.templates.env.filters["sign_in_method"] = sign_in_method
        self.templates.env.filters["action_words"] = reading.action_words
        # The largest file the CSV import reads into its form: percent-encoded, each byte
        # may take three, and the form must stay within what ``read_form`` reads.
        self.templates.env.globals["import_file_max_bytes"] = MAX_FORM_BYTES // 3

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
    ("Legal holds", "/console/holds", Permission.CONTENT_READ),
    ("Background jobs", "/console/jobs", Permission.JOBS_READ),
    ("Data access", "/console/data-access", Permission.ACCESS_READ),
    ("Privacy requests", "/console/privacy-requests", Permission.PRIVACY_REQUESTS_READ),
    ("Access reviews", "/console/access-reviews", Permission.REVIEWS_READ),
    ("My reviews", "/console/access-reviews/queue", Permission.REVIEWS_DECIDE),
    ("Audit log", "/console/audit", Permission.AUDIT_READ),
    ("Sign-ins", "/console/sign-ins", Permission.AUDIT_READ),
    ("Settings", "/console/settings", Permission.SSO_READ),
    ("Domains", "/console/domains", Permission.ORGANISATION_READ),
    ("Identity backend", "/console/identity", Permission.SSO_READ),
    ("Provisioning (SCIM)", "/console/provisioning", Permission.SCIM_READ),
    ("API tokens", "/console/api-tokens", Permission.TOKENS_READ),
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
    #: A refused form's errors by field and what was typed (see CookieJar.form_state).
    form_errors: dict[str, str] = field(default_factory=dict)
    form_values: dict[str, str] = field(default_factory=dict)
    #: Counts shown beside navigation entries (pending grant approvals for approvers).
    nav_badges: dict[str, int] = field(default_factory=dict)

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

    @property
    def sent_form_id(self) -> uuid.UUID | None:
        """The random id a form was given when it was shown (a hidden ``form_id``), which
        tells a reload sending it again from a new form; None when it was sent without
        one (a script posting the form)."""
        try:
            return uuid.UUID(self.form.get("form_id", ""))
        except ValueError:
            return None

    def time(self, value: datetime | None) -> Markup:
        """``value`` in this viewer's zone, as the ``localtime`` filter shows it on pages:
        for times written into messages (a confirmation's consequences)."""
        return viewer_time(value, self.active.member.time_zone, self.request)

    @property
    def is_htmx(self) -> bool:
        """Whether htmx sent the request (to swap part of the page, and only on a 2xx)."""
        return self.request.headers.get("hx-request") == "true"

    def render(self, template: str, http_status: int = 200, **context: Any) -> HTMLResponse:
        base = {
            "org": self.organisation,
            "me": self.active.member,
            "session": self.active.session,
            "break_glass": self.active.session.auth_method == AuthMethod.BREAK_GLASS,
            "permissions": self.permissions,
            "P": Permission,
            "csrf": self.csrf,
            "nav": (
                nav := [(label, path) for label, path, p in CONSOLE_NAV if p in self.permissions]
            ),
            "path": self.request.url.path,
            "nav_current": current_nav_entry([href for _, href in nav], self.request.url.path),
            "other_orgs": self.signed_in.others(),
            "flash": self.flash,
            "flash_error": bool(self.flash and self.flash.startswith(REFUSED)),
            "form_errors": self.form_errors,
            "form_values": self.form_values,
            "nav_badges": self.nav_badges,
            "is_admin": Permission.CONSOLE_ACCESS in self.permissions,
            # Times are shown in the zone stored for this member (see app/web/timezones.py).
            "viewer_zone": self.active.member.time_zone,
        }
        return self.web.render(self.request, template, {**base, **context}, http_status)

    def confirm(
        self,
        *,
        title: str,
        consequences: list[str],
        button: str,
        back: str,
        template: str = "console/confirm.html",
    ) -> HTMLResponse:
        """Ask before a destructive action: the same form posted again with ``confirmed=1``,
        after a page naming what will happen (to whom, how many). Handlers call this when
        ``not ctx.confirmed``; account pages pass ``account/confirm.html``."""
        fields = [(k, v) for k, v in self.form.items() if k not in ("csrf", "confirmed")]
        if "refused_on" not in self.form:
            # A refusal of the confirmed form goes back where the action started, not to
            # this page's address (the action's, which answers POST only).
            fields.append(("refused_on", back))
        return self.render(
            template,
            title=title,
            consequences=consequences,
            button=button,
            back=back,
            action=self.request.url.path,
            fields=fields,
        )

    @property
    def confirmed(self) -> bool:
        return self.form.get("confirmed") == "1"

    def redirect(self, path: str, message: str | None = None) -> RedirectResponse:
        response = RedirectResponse(path, status_code=303)
        if message:
            self.web.cookies.flash(response, message)
        return response


Handler = Callable[[PageContext], Awaitable[Response]]


@asynccontextmanager
async def _page_transaction(web: Web, org_id: OrgId) -> AsyncIterator[None]:
    """The page's tenant transaction; once it has committed, the cache notifications it
    sent are applied to this process (read-your-writes, as the API does)."""
    with notifications.collect() as sent:
        async with tenant_transaction(org_id):
            yield
    if sent and web.committed is not None:
        web.committed(sent)


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
            #: Fields sent more than once (checkboxes of one name), kept for a refused form.
            several: dict[str, str] = {}
            #: Fields whose text is not UTF-8, refused with the form's other problems.
            unreadable: list[FieldProblem] = []
            if request.method == "POST":
                try:
                    raw, unreadable = await read_form(request)
                except UnreadableForm as error:
                    advice = " Go back and send less at once." if error.status == 413 else ""
                    return web.message(
                        request,
                        error.heading,
                        f"Nothing was changed: the {error.fields[0].field} "
                        f"{error.fields[0].reason}.{advice}",
                        status=error.status,
                        link=(page_to_return_to(request), "Back to the page"),
                    )
                form = {k: v for k, v in raw.items() if isinstance(v, str)}
                several = {
                    k: "\n".join(v for v in raw.getlist(k) if isinstance(v, str))
                    for k in set(raw.keys())
                    if len(raw.getlist(k)) > 1
                }
                if not sessions.is_valid_csrf(web.settings.secret_key, token, form.get("csrf")):
                    return web.message(
                        request,
                        "Form expired",
                        "This form was not sent from this session. Go back, reload and try again. "
                        "Nothing was changed: every form carries a token tied to your sign-in, "
                        "so a form kept open across a sign-out, or sent from another site, "
                        "is refused.",
                        status=403,
                        link=(page_to_return_to(request), "Back to the page"),
                    )
            response: Response
            try:
                form = clean_form(form)
                # A field sent more than once (read with getlist): each value storable too.
                unstorable = unreadable + [
                    FieldProblem(key, reason)
                    for key, values in several.items()
                    if (reason := storage_problem(values)) is not None
                ]
                if unstorable:
                    raise InvalidInputError(
                        "the form holds characters that cannot be kept", fields=unstorable
                    )
                async with _page_transaction(web, token.org_id):
                    try:
                        active = await sessions.authenticate_session(token)
                    except AuthenticationError as exc:
                        state.remove(token.org_id)
                        log.info("session refused: %s", exc.message)
                        response = _to_login(request, Reason.SESSION_ENDED)
                        web.cookies.store(response, state)
                        return response
                    organisation = await Organisation.get(id=token.org_id)
                    granted = permissions_of(active.member.roles)
                    if permission is not None and permission not in granted:
                        if Permission.CONSOLE_ACCESS not in granted and request.url.path.startswith(
                            "/console"
                        ):
                            text = (
                                "The console is where administrators manage the organisation; "
                                "you are a member of it without an administrator role. "
                                "Your own settings and data are on your account page. "
                                "Ask an owner of the organisation if you need a role."
                            )
                        else:
                            text = not_allowed_text(permission, active.member.roles)
                        # An admin goes back to the console; a member to their account.
                        home = (
                            ("/console", "Back to the console")
                            if Permission.CONSOLE_ACCESS in granted
                            else ("/account", "Go to your account")
                        )
                        return web.message(
                            request,
                            "Not allowed",
                            text,
                            status=403,
                            link=home,
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
                    ctx.form_errors, ctx.form_values = web.cookies.take_form_state(
                        request, placeholder
                    )
                    if request.url.path.startswith("/console"):
                        ctx.nav_badges = await nav_badges(granted)
                    response = await handler(ctx)
                    for key, value in placeholder.headers.items():
                        if key == "set-cookie":
                            response.headers.append(key, value)
            except TenantryError as error:
                if wants_json(request):
                    # A script's request (tz.js): the API's problem document, naming fields.
                    return from_domain_error(request, error)
                if request.method == "POST":
                    # Back to the page the form was on (never to the POST-only action URL).
                    page_of_action = openable_page(request, request.url.path)
                    # A form shown where the page it came from would not show it again (a
                    # sub-unit's, read into the tree by htmx) names the page that does.
                    back = (
                        form.get("refused_on") or request.headers.get("referer") or page_of_action
                    )
                    response = RedirectResponse(
                        _same_site_path(back, page_of_action), status_code=303
                    )
                    fields = "; ".join(f"{field_label(f.field)}: {f.reason}" for f in error.fields)
                    web.cookies.flash(
                        response, f"{REFUSED} {error.message}" + (f" ({fields})" if fields else "")
                    )
                    web.cookies.form_state(
                        response, {f.field: f.reason for f in error.fields}, {**form, **several}
                    )
                    return response
                status = 404 if error.code == "not_found" else 400
                # A way on: the same page without what was wrong in its address (a bad
                # cursor or filter), or the page above what is not there.
                path = request.url.path
                way_on = (
                    (path, "Back to the first page")
                    if status == 400
                    else (openable_page(request, path.rsplit("/", 1)[0] or "/console"), "Back")
                )
                return web.message(request, error.title, error.message, status=status, link=way_on)
            return response

        endpoint.__name__ = handler.__name__
        return endpoint

    return wrap


#: Fields whose label is not their name in words (as the forms label them).
FIELD_LABELS = {
    "member_text": "What the member is told",
    "review_on": "Review date",
    "kind": "Type of request",
    "max_duration_hours": "Longest access",
    "emergency_max_hours": "Longest emergency access",
    "max_disclosure_delay_days": "Longest disclosure delay",
    "reminder_days": "Reminder",
    "export_collect_hours": "Hours products have to send their data",
    "export_link_days": "Days a download link works",
}


def not_allowed_text(permission: Permission, roles: list[str]) -> str:
    """Why a page refuses an admin, and who could open it: the roles that give the page's
    permission (the refusal said only "your role does not allow this page")."""
    from tenants.members.roles import role_names
    from tenants.permissions import ROLE_PERMISSIONS, Role

    holders = [r for r in Role if permission in ROLE_PERMISSIONS[r]]
    mine = role_names(r for r in roles if r != Role.MEMBER.value) or "Member"
    if not holders:
        return f"This page is not for people: it needs {permission.value}, which no role gives."
    return (
        f"This page is for the role{'s' if len(holders) > 1 else ''} {role_names(holders)};"
        f" yours: {mine}. Ask an owner of the organisation if your work needs it."
    )


def field_label(name: str) -> str:
    """A form field's name as people read it beside an error or in the banner: ``unit_id``
    is "Unit", ``manager_email`` "Manager email", ``csv`` "CSV" (never the code)."""
    if name in FIELD_LABELS:
        return FIELD_LABELS[name]
    words = name.replace("_id", "").replace("_", " ").replace("csv", "CSV")
    return words[:1].upper() + words[1:]


def current_nav_entry(hrefs: list[str], path: str) -> str | None:
    """The navigation entry a page belongs to: the longest one that is the page or holds
    it (``/console/access-reviews/queue`` is My reviews', not Access reviews' too)."""
    holding = [h for h in hrefs if path == h or (h != "/console" and path.startswith(h + "/"))]
    return max(holding, key=len, default=None)


async def nav_badges(granted: frozenset[Permission]) -> dict[str, int]:
    """What waits for this admin, for the navigation: grants to approve (privacy officers).
    One count on the (tenant_id, status, created_at) index."""
    from tenants.access.models import AccessGrant, GrantStatus

    badges: dict[str, int] = {}
    if Permission.ACCESS_APPROVE in granted:
        badges["pending_grants"] = await AccessGrant.filter(status=GrantStatus.REQUESTED).count()
    return badges


#: How a refused form's flash message starts (styled as an error, not a success).
REFUSED = "Not done:"


def sign_in_method(method: str) -> str:
    """A way of signing in in words (``METHOD_NAMES``); a code it does not know as itself."""
    try:
        return METHOD_NAMES[SignInMethod(method)]
    except ValueError:
        return str(method)


def wants_json(request: Request) -> bool:
    """Whether the request comes from a script asking for JSON rather than from a page."""
    accept = request.headers.get("accept", "")
    return "application/json" in accept or "application/problem+json" in accept


def page_to_return_to(request: Request) -> str:
    """The page the person was looking at: the request's own path for a GET page; for a POST
    or an htmx request, the page it was sent from (HX-Current-URL or Referer, same site
    only), since a POST-only URL cannot be opened again."""
    if request.method == "GET" and "hx-request" not in request.headers:
        return request.url.path + (f"?{request.url.query}" if request.url.query else "")
    for header in ("hx-current-url", "referer"):
        value = request.headers.get(header)
        if value:
            return _same_site_path(value, "/console")
    return "/console"


#: Form fields that hold a name, a label or an identifier an admin types (shown back as
#: such, as the API's models hold them): the name policy applies.
NAME_FIELDS = frozenset(
    {
        "name", "display_name", "title", "subject",
        "realm", "client_id", "audience", "email_claim", "name_claim", "groups_claim",
        "unit_claim",
    }
)  # fmt: skip


def clean_form(form: dict[str, str]) -> dict[str, str]:
    """Every text value of a console or account form under the service's one text policy
    (``tenants.text``, as the API's models and SCIM apply it): names by the name policy,
    anything else as free text. InvalidInputError naming each field that breaks it."""
    cleaned: dict[str, str] = {}
    problems: list[FieldProblem] = []
    for key, value in form.items():
        try:
            cleaned[key] = text.clean(value, free=key not in NAME_FIELDS)
        except text.TextError as exc:
            problems.append(FieldProblem(key, str(exc)))
    if problems:
        raise InvalidInputError("the form holds characters that cannot be kept", fields=problems)
    return cleaned


async def posted_form(request: Request) -> dict[str, str]:
    """The text fields of a form posted to a page outside ``page`` (the sign-in forms),
    as sent: a password is not normalised. InvalidInputError naming each field whose value
    PostgreSQL cannot hold (a NUL, a lone surrogate; ``addresses.storage_problem``)."""
    raw, unreadable = await read_form(request)
    form = {k: v for k, v in raw.items() if isinstance(v, str)}
    problems = unreadable + [
        FieldProblem(key, reason)
        for key, value in form.items()
        if (reason := storage_problem(key + value)) is not None
    ]
    if problems:
        raise InvalidInputError("the form holds characters that cannot be kept", fields=problems)
    return form


def _to_login(request: Request, reason: Reason | None = None) -> Response:
    """Send the person to sign in, with the way back to the page they were on. An htmx
    request gets ``HX-Redirect`` so the whole page goes to sign-in, not the fragment."""
    target = "/login?next=" + quote(page_to_return_to(request))
    if reason:
        target += f"&reason={reason}"
    if "hx-request" in request.headers:
        return Response(status_code=200, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def openable_page(request: Request, path: str) -> str:
    """``path`` when a GET can open it; else the nearest parent path that can (a POST-only
    action such as ``/console/members/ID/transition`` lands on ``/console/members/ID``);
    else ``path`` unchanged."""
    bare, _, query = path.partition("?")
    candidate = _openable(request.app.router, bare)
    if candidate is None:
        return path
    return candidate + (f"?{query}" if candidate == bare and query else "")


#: What ``_openable`` found, per router (kept alive here, so its id is never reused).
_OPENABLE: dict[int, tuple[Router, dict[str, str | None]]] = {}
_OPENABLE_MAX = 2048


def _openable(router: Router, bare: str) -> str | None:
    """The path a GET can open for ``bare`` (itself or its nearest parent), None if none:
    remembered per router, whose routes never change once the app is built (a sign-in
    lands on ``/account`` or ``/console`` every time, found after some 250 routes)."""
    entry = _OPENABLE.get(id(router))
    if entry is None or entry[0] is not router:
        entry = _OPENABLE[id(router)] = (router, {})
    known = entry[1]
    if bare in known:
        return known[bare]
    found = None
    candidate = bare
    while candidate and candidate != "/" and found is None:
        scope = {"type": "http", "path": candidate, "method": "GET"}
        for route in router.routes:
            match, child = route.matches(scope)
            if match is Match.FULL and ids_parse(child.get("path_params", {})):
                found = candidate
                break
        candidate = candidate.rsplit("/", 1)[0]
    if len(known) >= _OPENABLE_MAX:
        known.clear()
    known[bare] = found
    return found


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
