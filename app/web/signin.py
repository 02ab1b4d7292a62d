"""Sign-in and sign-out: home-realm discovery by email domain, OpenID Connect with PKCE,
local passwords where the organisation allows them, the break-glass admin, and the
identity provider's back-channel logout."""

from __future__ import annotations

import logging
import re
from urllib.parse import quote, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from app.middleware import content_security_policy
from app.web.pages import Web, safe_next
from tenants import db
from tenants.actors import Actor, ActorKind
from tenants.organisations import service as organisations
from tenants.organisations.models import Organisation
from tenants.permissions import is_admin
from tenants.sessions import passwords
from tenants.sessions import service as sessions
from tenants.sessions.models import AuthMethod
from tenants.sso import service as sso
from tenants.sso.oidc import SignInError

log = logging.getLogger(__name__)

EMAIL = re.compile(r"^[^@\s]{1,200}@([A-Za-z0-9.-]{1,253})$")


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _anonymous(request: Request, what: str) -> Actor:
    return Actor(
        ActorKind.SYSTEM,
        what,
        what,
        request_id=getattr(request.state, "request_id", None),
        client_addr=_client(request),
    )


def routes(web: Web) -> list[BaseRoute]:
    settings = web.settings

    def login_csrf(browser_id: str) -> str:
        return sessions.csrf_token(settings.secret_key, f"browser:{browser_id}")

    def login_form_ok(request: Request, form: dict[str, str]) -> bool:
        browser = web.cookies.browser_id(request)
        return browser is not None and sessions.is_valid_csrf(
            settings.secret_key, f"browser:{browser}", form.get("csrf")
        )

    def landing(roles: list[str], next_path: str) -> str:
        default = "/console" if is_admin(roles) else "/account"
        target = safe_next(next_path, default)
        if target.startswith("/console") and not is_admin(roles):
            return "/account"
        return target

    async def login(request: Request) -> Response:
        """Ask for the email address and find the organisation by its domain."""
        response = Response()
        browser = web.cookies.ensure_browser_id(request, response)
        next_path = safe_next(request.query_params.get("next"), "")
        error = request.query_params.get("reason")
        if request.method == "POST":
            form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
            if not login_form_ok(request, form):
                error = "The form expired; please try again."
            else:
                match = EMAIL.match(form.get("email", "").strip())
                org_id = await organisations.id_by_domain(match.group(1).lower()) if match else None
                if match is None:
                    error = "Enter your full work or school email address."
                elif org_id is None:
                    error = "No organisation here uses that email domain. Check the address or ask your administrator."
                else:
                    async with db.tenant_transaction(org_id):
                        org = await Organisation.get(id=org_id)
                    target = f"/login/{org.slug}?email={quote(form['email'].strip())}"
                    if form.get("next"):
                        target += "&next=" + quote(safe_next(form.get("next"), ""))
                    return RedirectResponse(target, status_code=303)
        page = web.render(
            request,
            "login.html",
            {
                "csrf": login_csrf(browser),
                "error": error,
                "next": next_path,
                "signed_out": request.query_params.get("signed_out") == "1",
            },
            status=400 if error and request.method == "POST" else 200,
        )
        _copy_cookies(response, page)
        return page

    async def login_org(request: Request) -> Response:
        """An organisation's own sign-in page: its identity provider, and passwords if allowed."""
        slug = request.path_params["slug"]
        org_id = await organisations.id_by_slug(slug)
        if org_id is None:
            return web.message(
                request,
                "Unknown organisation",
                f"There is no organisation {slug!r} here.",
                status=404,
                link=("/login", "Sign in with your email"),
            )
        async with db.tenant_transaction(org_id):
            org = await Organisation.get(id=org_id)
            connection = await sso.get_connection()
        response = Response()
        browser = web.cookies.ensure_browser_id(request, response)
        page = web.render(
            request,
            "login_org.html",
            {
                "org": org,
                "csrf": login_csrf(browser),
                "has_sso": connection is not None and connection.enabled,
                "email": request.query_params.get("email", ""),
                "next": safe_next(request.query_params.get("next"), ""),
                "error": request.query_params.get("reason"),
                "break_glass": request.query_params.get("break_glass") == "1",
            },
        )
        if connection is not None and connection.enabled:
            # The SSO form is answered with a redirect to the identity provider, which the
            # browser blocks unless this page's CSP form-action names the provider.
            targets = await _identity_provider_origins(web, connection.issuer)
            page.headers["content-security-policy"] = content_security_policy(form_targets=targets)
        _copy_cookies(response, page)
        return page

    async def start_sso(request: Request) -> Response:
        slug = request.path_params["slug"]
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        browser = web.cookies.browser_id(request)
        if browser is None or not login_form_ok(request, form):
            return RedirectResponse(
                f"/login/{quote(slug)}?reason=" + quote("The form expired; try again."), 303
            )
        org_id = await organisations.id_by_slug(slug)
        if org_id is None:
            return web.message(
                request, "Unknown organisation", "There is no such organisation.", status=404
            )
        if (wait := await web.login_limiter.retry_after(_client(request))) is not None:
            return _too_many(web, request, wait)
        try:
            async with db.tenant_transaction(org_id):
                url = await sso.begin_sign_in(
                    web.rp,
                    redirect_uri=f"{settings.base_url}/oidc/{slug}/callback",
                    browser_id=browser,
                    return_to=safe_next(form.get("next"), ""),
                )
        except SignInError as exc:
            return web.message(
                request,
                "Sign-in is not available",
                exc.message,
                status=502,
                link=(f"/login/{slug}", "Back"),
            )
        return RedirectResponse(url, status_code=303)

    async def callback(request: Request) -> Response:
        """The identity provider sends the browser back here with a code (or an error)."""
        slug = request.path_params["slug"]
        back = (f"/login/{slug}", "Try again")
        params = request.query_params
        org_id = await organisations.id_by_slug(slug)
        if org_id is None:
            return web.message(
                request, "Unknown organisation", "There is no such organisation.", status=404
            )
        if params.get("error"):
            text = params.get("error_description") or params["error"]
            return web.message(
                request,
                "Sign-in was not completed",
                f"Your identity provider said: {text}",
                status=400,
                link=back,
            )
        code, state = params.get("code"), params.get("state")
        browser = web.cookies.browser_id(request)
        if not code or not state or browser is None:
            return web.message(
                request,
                "Sign-in failed",
                "The answer from your identity provider is incomplete.",
                status=400,
                link=back,
            )
        try:
            async with db.tenant_transaction(org_id):
                pending = await sso.consume_login_attempt(state, box=web.box)
            claims = await sso.verify_callback(
                web.rp,
                pending,
                code=code,
                iss=params.get("iss"),
                redirect_uri=f"{settings.base_url}/oidc/{slug}/callback",
                browser_id=browser,
            )
            async with db.tenant_transaction(org_id):
                outcome = await sso.admit(
                    claims,
                    return_to=pending.return_to,
                    actor=_anonymous(request, "oidc-callback"),
                    user_agent=request.headers.get("user-agent"),
                )
                org = await Organisation.get(id=org_id)
        except SignInError as exc:
            log.info("sign-in refused for %s: %s", slug, exc.message)
            return web.message(request, "Sign-in failed", exc.message, status=401, link=back)
        if outcome.refusal is not None or outcome.token is None or outcome.member is None:
            return web.message(
                request,
                "You cannot sign in",
                outcome.refusal or "Sign-in refused.",
                status=403,
                link=back,
            )
        return _signed_in(
            web, request, outcome.token, org, landing(outcome.member.roles, outcome.return_to)
        )

    async def password_sign_in(request: Request) -> Response:
        slug = request.path_params["slug"]
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        if not login_form_ok(request, form):
            return RedirectResponse(
                f"/login/{quote(slug)}?reason=" + quote("The form expired; try again."), 303
            )
        if (wait := await web.login_limiter.retry_after(_client(request))) is not None:
            return _too_many(web, request, wait)
        org_id = await organisations.id_by_slug(slug)
        if org_id is None:
            return web.message(
                request, "Unknown organisation", "There is no such organisation.", status=404
            )
        async with db.tenant_transaction(org_id):
            org = await Organisation.get(id=org_id)
            check = await passwords.check_password(
                form.get("email", ""),
                form.get("password", ""),
                actor=_anonymous(request, "password-sign-in"),
            )
            refusal = check.refusal
            if (
                refusal is None
                and check.credential is not None
                and not check.credential.break_glass
                and not org.local_sign_in
            ):
                refusal = "password sign-in is switched off for this organisation; use your identity provider"
            token = None
            if refusal is None and check.member is not None and check.credential is not None:
                method = (
                    AuthMethod.BREAK_GLASS if check.credential.break_glass else AuthMethod.PASSWORD
                )
                member_actor = Actor(
                    ActorKind.MEMBER,
                    str(check.member.id),
                    f"{check.member.name} <{check.member.email}>",
                    request_id=getattr(request.state, "request_id", None),
                    client_addr=_client(request),
                )
                token = await sessions.create_session(
                    check.member,
                    method,
                    actor=member_actor,
                    user_agent=request.headers.get("user-agent"),
                )
        if token is None or check.member is None:
            target = f"/login/{quote(slug)}?email={quote(form.get('email', ''))}&reason={quote(refusal or '')}"
            if form.get("break_glass"):
                target += "&break_glass=1"
            return RedirectResponse(target, status_code=303)
        return _signed_in(
            web, request, token, org, landing(check.member.roles, form.get("next", ""))
        )

    async def logout(request: Request) -> Response:
        state = web.cookies.signed_in(request)
        token = state.token()
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        if token is not None and sessions.is_valid_csrf(
            settings.secret_key, token, form.get("csrf")
        ):
            async with db.tenant_transaction(token.org_id):
                try:
                    active = await sessions.authenticate_session(token)
                    await sessions.end_session(
                        active.session, reason="signed out", actor=active.actor
                    )
                except Exception as exc:
                    log.info("sign-out of an ended session: %s", exc)
            state.remove(token.org_id)
        response = RedirectResponse("/login?signed_out=1", status_code=303)
        web.cookies.store(response, state)
        return response

    async def switch(request: Request) -> Response:
        state = web.cookies.signed_in(request)
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        token = state.token()
        target = form.get("org", "")
        if (
            token is None
            or not sessions.is_valid_csrf(settings.secret_key, token, form.get("csrf"))
            or target not in state.sessions
        ):
            return RedirectResponse("/console", status_code=303)
        state.current = target
        response = RedirectResponse("/console", status_code=303)
        web.cookies.store(response, state)
        return response

    async def backchannel_logout(request: Request) -> Response:
        """OpenID Connect Back-Channel Logout 1.0 §2.5: 200 when sessions were ended (or
        none matched), 400 for an invalid token; never cached."""
        headers = {"Cache-Control": "no-store"}
        slug = request.path_params["slug"]
        org_id = await organisations.id_by_slug(slug)
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        token = form.get("logout_token")
        if org_id is None or not token:
            return JSONResponse({"error": "invalid_request"}, status_code=400, headers=headers)
        try:
            async with db.tenant_transaction(org_id):
                ended = await sso.backchannel_logout(
                    web.rp, token, actor=_anonymous(request, "backchannel-logout")
                )
        except SignInError as exc:
            log.warning("back-channel logout refused for %s: %s", slug, exc.message)
            return JSONResponse(
                {"error": "invalid_request", "error_description": exc.message},
                status_code=400,
                headers=headers,
            )
        log.info("back-channel logout for %s ended %d sessions", slug, ended)
        return Response(status_code=200, headers=headers)

    return [
        Route("/login", login, methods=["GET", "POST"]),
        Route("/login/{slug}", login_org, methods=["GET"]),
        Route("/login/{slug}/sso", start_sso, methods=["POST"]),
        Route("/login/{slug}/password", password_sign_in, methods=["POST"]),
        Route("/oidc/{slug}/callback", callback, methods=["GET"]),
        Route("/oidc/{slug}/backchannel-logout", backchannel_logout, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/console/switch", switch, methods=["POST"]),
    ]


def _signed_in(
    web: Web, request: Request, token: sessions.SessionToken, org: Organisation, target: str
) -> Response:
    state = web.cookies.signed_in(request)
    state.add(token, org.slug, org.name)
    response = RedirectResponse(target, status_code=303)
    web.cookies.store(response, state)
    return response


ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$")


async def _identity_provider_origins(web: Web, issuer: str) -> list[str]:
    """The origins of the issuer and of its authorization endpoint (discovery is cached and
    warmed here for the sign-in that follows); only well-formed origins, never anything
    that could add a directive to the header."""
    urls = [issuer]
    try:
        urls.append((await web.rp.metadata(issuer)).authorization_endpoint)
    except SignInError as exc:
        log.info("no discovery for %s while showing the sign-in page: %s", issuer, exc.message)
    origins = set()
    for url in urls:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if ORIGIN.match(origin):
            origins.add(origin)
    return sorted(origins)


def _too_many(web: Web, request: Request, wait: int) -> Response:
    response = web.message(
        request,
        "Too many attempts",
        f"Too many sign-in attempts from your address. Wait {wait} seconds and try again.",
        status=429,
    )
    response.headers["Retry-After"] = str(wait)
    return response


def _copy_cookies(source: Response, target: Response) -> None:
    for key, value in source.headers.items():
        if key == "set-cookie":
            target.headers.append(key, value)
