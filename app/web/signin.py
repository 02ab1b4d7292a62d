"""Sign-in and sign-out: home-realm discovery by email domain, OpenID Connect with PKCE,
local passwords where the organisation allows them, the break-glass admin, and the
identity provider's back-channel logout."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from urllib.parse import quote, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from app.middleware import content_security_policy
from app.web.forms import UnreadableForm, read_form
from app.web.pages import Web, openable_page, posted_form, safe_next
from tenants import db
from tenants.actors import Actor, ActorKind
from tenants.errors import AuthenticationError, InvalidInputError
from tenants.ids import OrgId
from tenants.organisations import service as organisations
from tenants.organisations.models import Organisation
from tenants.permissions import is_admin
from tenants.secrets import SecretDecryptionError
from tenants.sessions import passwords
from tenants.sessions import service as sessions
from tenants.sessions.models import AuthMethod
from tenants.signins import service as sign_ins
from tenants.signins.rules import Reason, SignInMethod, message_for
from tenants.sso import oidc
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


def _attempt(
    request: Request,
    method: SignInMethod,
    *,
    reason: Reason | None = None,
    email: str | None = None,
    idp_subject: str | None = None,
    member_id: uuid.UUID | None = None,
    idp: str | None = None,
    detail: str | None = None,
) -> sign_ins.SignInAttempt:
    """A sign-in log entry for this request: its address and user agent, and what is known."""
    return sign_ins.SignInAttempt(
        method,
        reason=reason,
        email=email,
        idp_subject=idp_subject,
        member_id=member_id,
        idp=idp,
        detail=detail,
        client_addr=_client(request),
        user_agent=request.headers.get("user-agent"),
    )


async def _log_refusal(
    request: Request,
    org_id: OrgId,
    method: SignInMethod,
    reason: Reason,
    *,
    email: str | None = None,
    idp: str | None = None,
    failure: SignInError | None = None,
) -> None:
    """Record a refused attempt in a transaction of its own (the refusing one rolled back);
    an SSO attempt names the organisation's identity provider when the caller did not.
    ``failure``: the protocol's refusal, whose words (and whom it knew) the log keeps for
    the admin, who otherwise saw only its code."""
    async with db.tenant_transaction(org_id):
        if method is SignInMethod.SSO and idp is None:
            idp = await sso.current_issuer()
        await sign_ins.record(
            _attempt(
                request,
                method,
                reason=reason,
                email=email or (failure.email if failure else None),
                idp_subject=failure.subject if failure else None,
                idp=idp,
                detail=failure.message if failure else None,
            )
        )


#: The OAuth 2.0 error codes an authorization response may carry (RFC 6749 §4.1.2.1,
#: OpenID Connect Core §3.1.2.6), in plain words. Other codes are not shown.
IDP_ERRORS: dict[str, str] = {
    "access_denied": "you (or a policy at your identity provider) declined the sign-in",
    "login_required": "you need to sign in at your identity provider first",
    "interaction_required": "your identity provider needs you to do something first",
    "consent_required": "your identity provider needs your consent first",
    "account_selection_required": "your identity provider needs you to choose an account",
    "temporarily_unavailable": "your identity provider is temporarily unavailable",
    "server_error": "your identity provider had an error",
}


def browser_csrf(web: Web, browser_id: str) -> str:
    """The CSRF token of a form shown before sign-in: tied to the browser's own cookie."""
    return sessions.csrf_token(web.settings.secret_key, f"browser:{browser_id}")


def browser_form_ok(web: Web, request: Request, form: dict[str, str]) -> bool:
    """Whether a form sent before sign-in carries this browser's token."""
    browser = web.cookies.browser_id(request)
    return browser is not None and sessions.is_valid_csrf(
        web.settings.secret_key, f"browser:{browser}", form.get("csrf")
    )


def routes(web: Web) -> list[BaseRoute]:
    settings = web.settings

    def login_csrf(browser_id: str) -> str:
        return browser_csrf(web, browser_id)

    def login_form_ok(request: Request, form: dict[str, str]) -> bool:
        return browser_form_ok(web, request, form)

    def landing(request: Request, roles: list[str], next_path: str) -> str:
        default = "/console" if is_admin(roles) else "/account"
        # A POST-only ``next`` (an action URL) lands on the page it belongs to.
        target = openable_page(request, safe_next(next_path, default))
        if target.startswith("/console") and not is_admin(roles):
            return "/account"
        return target

    def storable_form(
        handler: Callable[[Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        """``handler`` reads its form with ``posted_form``: a form holding text that cannot
        be stored (a NUL in the email address) is answered with a 400 naming the field,
        before anything is looked up or logged."""

        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except InvalidInputError as error:
                fields = "; ".join(f"{f.field} {f.reason}" for f in error.fields)
                slug = request.path_params.get("slug")
                return web.message(
                    request,
                    "This form cannot be sent",
                    f"Nothing was sent: {fields}. Go back and type it again.",
                    status=error.status if isinstance(error, UnreadableForm) else 400,
                    link=(f"/login/{quote(slug)}" if slug else "/login", "Back to sign-in"),
                )

        endpoint.__name__ = handler.__name__
        return endpoint

    @storable_form
    async def login(request: Request) -> Response:
        """Ask for the email address and find the organisation by its domain."""
        response = Response()
        browser = web.cookies.ensure_browser_id(request, response)
        next_path = safe_next(request.query_params.get("next"), "")
        error = message_for(request.query_params.get("reason"))
        if request.method == "POST":
            form = await posted_form(request)
            if not login_form_ok(request, form):
                error = message_for(Reason.FORM_EXPIRED)
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
                    target = f"/login/{org.slug}"
                    if form.get("next"):
                        target += "?next=" + quote(safe_next(form.get("next"), ""))
                    redirect = RedirectResponse(target, status_code=303)
                    web.cookies.remember_typed_email(redirect, form["email"].strip())
                    return redirect
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
        copy_cookies(response, page)
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
                "email": request.query_params.get("email") or web.cookies.typed_email(request),
                "next": safe_next(request.query_params.get("next"), ""),
                "error": message_for(request.query_params.get("reason")),
                "break_glass": request.query_params.get("break_glass") == "1",
                "signed_out": request.query_params.get("signed_out"),
            },
        )
        if connection is not None and connection.enabled:
            # The SSO form is answered with a redirect to the identity provider, which the
            # browser blocks unless this page's CSP form-action names the provider.
            targets = await _identity_provider_origins(web, connection.issuer)
            page.headers["content-security-policy"] = content_security_policy(form_targets=targets)
        copy_cookies(response, page)
        return page

    @storable_form
    async def start_sso(request: Request) -> Response:
        slug = request.path_params["slug"]
        form = await posted_form(request)
        browser = web.cookies.browser_id(request)
        org_id = await organisations.id_by_slug(slug)
        if org_id is None:
            return web.message(
                request, "Unknown organisation", "There is no such organisation.", status=404
            )
        if browser is None or not login_form_ok(request, form):
            await _log_refusal(request, org_id, SignInMethod.SSO, Reason.FORM_EXPIRED)
            return RedirectResponse(f"/login/{quote(slug)}?reason={Reason.FORM_EXPIRED}", 303)
        if (wait := await web.login_limiter.retry_after(_client(request))) is not None:
            await _log_refusal(request, org_id, SignInMethod.SSO, Reason.RATE_LIMITED)
            return too_many_attempts(web, request, wait)
        try:
            async with db.tenant_transaction(org_id):
                url = await sso.begin_sign_in(
                    web.rp,
                    redirect_uri=f"{settings.base_url}/oidc/{slug}/callback",
                    browser_id=browser,
                    return_to=safe_next(form.get("next"), ""),
                )
        except SignInError as exc:
            await _log_refusal(request, org_id, SignInMethod.SSO, exc.reason, failure=exc)
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
        code, state = params.get("code"), params.get("state")
        browser = web.cookies.browser_id(request)
        if params.get("error") or not code or not state or browser is None:
            return await unfinished_callback(request, slug)
        org_id: OrgId | None = None
        pending: sso.PendingSignIn | None = None
        try:
            async with db.tenant_transaction_by_slug(slug) as org_id:
                if org_id is not None:
                    pending = await sso.consume_login_attempt(
                        state, box=web.box, browser_id=browser
                    )
            if org_id is None or pending is None:
                return web.message(
                    request, "Unknown organisation", "There is no such organisation.", status=404
                )
            verified = await sso.verify_callback(
                web.rp,
                pending,
                code=code,
                iss=params.get("iss"),
                redirect_uri=f"{settings.base_url}/oidc/{slug}/callback",
                browser_id=browser,
            )
            async with db.tenant_transaction(org_id):
                outcome = await sso.admit(
                    verified.claims,
                    return_to=pending.return_to,
                    actor=_anonymous(request, "oidc-callback"),
                    user_agent=request.headers.get("user-agent"),
                    email_claim=pending.email_claim,
                    started_with=(pending.issuer, pending.client_id),
                    sign_in=_attempt(request, SignInMethod.SSO, idp=pending.issuer),
                    id_token_hint=web.id_tokens.encrypt(verified.id_token),
                )
                # The log entry commits with the outcome: the session (written with it),
                # or the refusal's audit event.
                if not outcome.logged:
                    await sign_ins.record(
                        _attempt(
                            request,
                            SignInMethod.SSO,
                            reason=outcome.reason,
                            email=outcome.email,
                            idp_subject=outcome.subject,
                            member_id=outcome.member.id if outcome.member else None,
                            idp=pending.issuer,
                        )
                    )
        except SignInError as exc:
            log.info("sign-in refused for %s: %s (%s)", slug, exc.reason, exc.message)
            assert org_id is not None  # only found organisations get this far
            await _log_refusal(
                request,
                org_id,
                SignInMethod.SSO,
                exc.reason,
                idp=pending.issuer if pending is not None else None,
                failure=exc,
            )
            return web.message(request, "Sign-in failed", exc.message, status=401, link=back)
        if outcome.refusal is not None or outcome.token is None or outcome.member is None:
            return web.message(
                request,
                "You cannot sign in",
                outcome.refusal or "Sign-in refused.",
                status=403,
                link=back,
            )
        return await signed_in_response(
            web,
            request,
            outcome.token,
            outcome.org_slug,
            outcome.org_name,
            landing(request, outcome.member.roles, outcome.return_to),
        )

    async def unfinished_callback(request: Request, slug: str) -> Response:
        """A callback with the provider's error, or without its code, state or the
        browser's cookie: refused and logged."""
        back = (f"/login/{slug}", "Try again")
        params = request.query_params
        org_id = await organisations.id_by_slug(slug)
        if org_id is None:
            return web.message(
                request, "Unknown organisation", "There is no such organisation.", status=404
            )
        if params.get("error"):
            # The description is the provider's free text: logged, never shown.
            log.info(
                "identity provider error for %s: %s %s",
                slug,
                params["error"][:100],
                (params.get("error_description") or "")[:300],
            )
            await _log_refusal(request, org_id, SignInMethod.SSO, Reason.IDP_ERROR)
            said = IDP_ERRORS.get(params["error"], "your identity provider ended the sign-in")
            return web.message(
                request,
                "Sign-in was not completed",
                f"You were not signed in: {said}.",
                status=400,
                link=back,
            )
        await _log_refusal(request, org_id, SignInMethod.SSO, Reason.INCOMPLETE_RESPONSE)
        return web.message(
            request,
            "Sign-in failed",
            "The answer from your identity provider is incomplete.",
            status=400,
            link=back,
        )

    @storable_form
    async def password_sign_in(request: Request) -> Response:
        slug = request.path_params["slug"]
        form = await posted_form(request)
        org_id = await organisations.id_by_slug(slug)
        if org_id is None:
            return web.message(
                request, "Unknown organisation", "There is no such organisation.", status=404
            )
        asked = SignInMethod.BREAK_GLASS if form.get("break_glass") else SignInMethod.PASSWORD
        typed = form.get("email", "").strip()[:320] or None
        if not login_form_ok(request, form):
            await _log_refusal(request, org_id, asked, Reason.FORM_EXPIRED, email=typed)
            return RedirectResponse(f"/login/{quote(slug)}?reason={Reason.FORM_EXPIRED}", 303)
        if (wait := await web.login_limiter.retry_after(_client(request))) is not None:
            await _log_refusal(request, org_id, asked, Reason.RATE_LIMITED, email=typed)
            return too_many_attempts(web, request, wait)
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
                refusal = Reason.PASSWORD_SIGN_IN_OFF
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
            used = asked
            if check.credential is not None:
                used = (
                    SignInMethod.BREAK_GLASS
                    if check.credential.break_glass
                    else SignInMethod.PASSWORD
                )
            await sign_ins.record(
                _attempt(
                    request,
                    used,
                    reason=refusal if token is None else None,
                    email=typed,
                    member_id=check.member.id if check.member else None,
                )
            )
        if token is None or check.member is None:
            code = refusal or Reason.BAD_CREDENTIALS
            target = f"/login/{quote(slug)}?reason={code}"
            if form.get("break_glass"):
                target += "&break_glass=1"
            redirect = RedirectResponse(target, status_code=303)
            web.cookies.remember_typed_email(redirect, form.get("email", ""))
            return redirect
        return await signed_in_response(
            web,
            request,
            token,
            org.slug,
            org.name,
            landing(request, check.member.roles, form.get("next", "")),
        )

    @storable_form
    async def logout(request: Request) -> Response:
        state = web.cookies.signed_in(request)
        token = state.token()
        form = await posted_form(request)
        if token is not None and not sessions.is_valid_csrf(
            settings.secret_key, token, form.get("csrf")
        ):
            # Said "signed out" once while the session went on: a sign-out sent from
            # another site, or from a page of an earlier session, ends nothing.
            return web.message(
                request,
                "Not signed out",
                "This sign-out was not sent from this session, so you are still signed in. "
                "Go back, reload the page and press Sign out again.",
                status=403,
                link=("/console", "Back to the console"),
            )
        at_provider: sso.ProviderSignOut | None = None
        target, slug, org_name = "/login?signed_out=1", "", ""
        if token is not None:
            async with db.tenant_transaction(token.org_id):
                try:
                    active = await sessions.authenticate_session(token)
                    at_provider = await sso.provider_sign_out(active.session)
                    await sessions.end_session(
                        active.session, reason="signed out", actor=active.actor
                    )
                    if at_provider is not None:
                        org = await Organisation.get(id=token.org_id)
                        slug, org_name = org.slug, org.name
                except Exception as exc:
                    log.info("sign-out of an ended session: %s", exc)
                    at_provider = None
            state.remove(token.org_id)
            if at_provider is not None:
                target = await _provider_sign_out_target(at_provider, slug)
        response: Response
        if target.startswith("/"):
            response = RedirectResponse(target, status_code=303)
        else:
            # Not a redirect: every page's CSP allows forms to post only to this site
            # (form-action 'self'), which browsers apply to the redirects after a form too,
            # and the browser stayed on the page, still showing the member's data, with
            # the provider's session open. A page of this site sends it on instead.
            response = web.render(
                request, "signing_out.html", {"url": target, "org_name": org_name}
            )
            response.headers["cache-control"] = "no-store"
        web.cookies.store(response, state)
        web.cookies.forget_typed_email(response)
        return response

    async def _provider_sign_out_target(at_provider: sso.ProviderSignOut, slug: str) -> str:
        """The provider's sign-out address (RP-Initiated Logout), or the organisation's
        sign-in page saying the person is still signed in at the provider when it has no
        sign-out endpoint or cannot be reached: signed out of Tenantry, they should know
        the provider's session is open on this computer."""
        hint = None
        if at_provider.id_token_enc is not None:
            try:
                hint = web.id_tokens.decrypt(at_provider.id_token_enc)
            except SecretDecryptionError:
                log.warning("an ID token kept for sign-out cannot be read (secret key changed)")
        try:
            metadata = await web.rp.metadata(at_provider.issuer)
        except SignInError as exc:
            log.warning("signing out at %s: %s", at_provider.issuer, exc.message)
            metadata = None
        url = (
            oidc.end_session_url(
                metadata,
                client_id=at_provider.client_id,
                post_logout_redirect_uri=f"{settings.base_url}/oidc/{slug}/signed-out",
                id_token_hint=hint,
            )
            if metadata is not None
            else None
        )
        return url or f"/login/{quote(slug)}?signed_out=here"

    async def signed_out_at_provider(request: Request) -> Response:
        """Where the provider sends the browser back after signing out there
        (``post_logout_redirect_uri``): the organisation's sign-in page, saying so."""
        return RedirectResponse(
            f"/login/{quote(request.path_params['slug'])}?signed_out=both", status_code=303
        )

    @storable_form
    async def switch(request: Request) -> Response:
        state = web.cookies.signed_in(request)
        form = await posted_form(request)
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
        try:
            form, _ = await read_form(request)
        except InvalidInputError:
            return JSONResponse({"error": "invalid_request"}, status_code=400, headers=headers)
        token = form.get("logout_token")
        token = token if isinstance(token, str) else None
        if org_id is None or not token:
            return JSONResponse({"error": "invalid_request"}, status_code=400, headers=headers)
        try:
            async with db.tenant_transaction(org_id):
                ended = await sso.backchannel_logout(
                    web.rp, token, actor=_anonymous(request, "backchannel-logout")
                )
        except SignInError as exc:
            log.warning("back-channel logout refused for %s: %s", slug, exc.message)
            # Anyone may post here: what is wrong with the token itself is said (its
            # signature is checked first, so a forger learns only that), but not how the
            # organisation's sign-in is set up (no provider, its address unreachable).
            body = {"error": "invalid_request"}
            if exc.reason is Reason.LOGOUT_TOKEN_INVALID:
                body["error_description"] = exc.message
            return JSONResponse(body, status_code=400, headers=headers)
        log.info("back-channel logout for %s ended %d sessions", slug, ended)
        return Response(status_code=200, headers=headers)

    return [
        Route("/login", login, methods=["GET", "POST"]),
        Route("/login/{slug}", login_org, methods=["GET"]),
        Route("/login/{slug}/sso", start_sso, methods=["POST"]),
        Route("/login/{slug}/password", password_sign_in, methods=["POST"]),
        Route("/oidc/{slug}/callback", callback, methods=["GET"]),
        Route("/oidc/{slug}/backchannel-logout", backchannel_logout, methods=["POST"]),
        Route("/oidc/{slug}/signed-out", signed_out_at_provider, methods=["GET"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/console/switch", switch, methods=["POST"]),
    ]


async def signed_in_response(
    web: Web, request: Request, token: sessions.SessionToken, slug: str, name: str, target: str
) -> Response:
    """Redirect to ``target`` with the session for the organisation ``slug`` (shown as
    ``name`` in the organisation switcher) added to the browser's cookie; the sessions the
    cookie no longer holds end."""
    state = web.cookies.signed_in(request)
    for dropped in state.add(token, slug, name):
        await _end_dropped(dropped)
    response = RedirectResponse(target, status_code=303)
    web.cookies.store(response, state)
    web.cookies.forget_typed_email(response)
    return response


async def _end_dropped(token: sessions.SessionToken) -> None:
    """End a session its browser no longer holds; one already over is left as it is."""
    async with db.tenant_transaction(token.org_id):
        try:
            active = await sessions.authenticate_session(token)
        except AuthenticationError:
            return
        await sessions.end_session(
            active.session, reason="replaced by another sign-in in this browser", actor=active.actor
        )


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


def too_many_attempts(web: Web, request: Request, wait: int) -> Response:
    """The 429 page every sign-in form answers when the address is over its limit."""
    response = web.message(
        request,
        "Too many attempts",
        f"Too many sign-in attempts from your address. Wait {wait} seconds and try again.",
        status=429,
    )
    response.headers["Retry-After"] = str(wait)
    return response


def copy_cookies(source: Response, target: Response) -> None:
    for key, value in source.headers.items():
        if key == "set-cookie":
            target.headers.append(key, value)
