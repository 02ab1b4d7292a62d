"""The composition root: ``create_app`` wires settings, database, routes and middleware."""

from __future__ import annotations

import contextlib
import html
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from tortoise.context import TortoiseContext

from app import database, oauth, outage
from app import tracing as app_tracing
from app.api import Endpoint, PrincipalCache, allowed_methods, build_route, versioned
from app.auth import Authenticator, BearerAuthenticator
from app.database import DatabaseUrls
from app.idp_http import identity_provider_client
from app.mail import configure_mail
from app.metrics import Metrics, MetricsMiddleware, last_progress, metrics_endpoint, tag_routes
from app.middleware import RequestContextMiddleware
from app.notifications import Listener
from app.openapi import build_openapi
from app.problems import http_problem, method_not_allowed, problem_catalogue
from app.routes.health import healthz, readyz
from app.runtime import tune_gc
from app.scim.responses import error_response as scim_error_response
from app.scim.responses import is_scim_path
from app.scim.routes import scim_routes
from app.settings import Settings
from app.v1 import ROUTERS, signals
from app.web import account, console, invitations, signin
from app.web.addresses import StorableAddressMiddleware
from app.web.cookies import CookieJar
from app.web.pages import Web
from app.worker import background_worker
from policies.cache import DecisionCache
from tenants import cursors, db, network
from tenants.clients.keys import KeyRing
from tenants.ids import OrgId
from tenants.jobs.worker import Worker
from tenants.policy import service as policy_service
from tenants.secrets import SecretBox
from tenants.signals.refusals import RefusalCounter
from tenants.sso.oidc import RelyingParty

log = logging.getLogger(__name__)

VERSION = "0.1.0"
STATIC = Path(__file__).resolve().parent / "static"
#: Where people browse: a missing page there is answered with a page.
BROWSER_PATHS = ("/console", "/account", "/login", "/invitation")


def api_endpoints() -> list[Endpoint]:
    return [e for router in ROUTERS for e in router.endpoints]


def create_app(
    settings: Settings,
    urls: DatabaseUrls,
    *,
    authenticator: Authenticator | None = None,
) -> Starlette:
    """Build the ASGI application; connects to the database when the app starts (lifespan).

    The runtime role is checked at start: a role that could bypass row-level security
    stops the service rather than serving with weaker isolation.
    """
    tune_gc(settings.gc_threshold)
    if settings.otel_endpoint:
        app_tracing.start_tracing(settings.otel_endpoint, service="serve")
    http = identity_provider_client(
        timeout=httpx.Timeout(10.0),
        follow_redirects=False,
        headers={"User-Agent": f"Tenantry/{VERSION}"},
    )
    keyring = KeyRing(SecretBox(settings.secret_key, "signing-keys"))
    configure_mail(settings)  # links in emails, and SMTP when configured
    network.configure(settings.outbound_networks)  # where webhooks and identity providers may be
    # Page cursors: sealed with the service key, each bound to its organisation.
    cursors.configure(settings.secret_key, scope=lambda: str(db.current_org_or_none() or ""))
    rp = RelyingParty(http)
    authenticator = authenticator or BearerAuthenticator(
        keyring=keyring,
        issuer=settings.base_url,
        trusted=settings.trusted_issuers,
        jwks=rp.jwks,
        entra_jwks_url=settings.entra_jwks_url,
    )
    web = Web(
        settings=settings,
        cookies=CookieJar(settings.secret_key, secure=settings.secure_cookies),
        rp=rp,
        box=SecretBox(settings.secret_key, "sso-client-secrets"),
    )
    decisions: DecisionCache[OrgId] = DecisionCache()
    principals = PrincipalCache()
    listener = Listener(
        lambda: asyncpg.connect(**database.connection_params(urls.listen)), decisions, principals
    )
    web.committed = listener.applied_locally
    endpoints = api_endpoints()
    openapi_document = build_openapi(endpoints, title="Tenantry", version=VERSION, server_url=None)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        conn = await asyncpg.connect(**urls.runtime_params())
        try:
            await database.check_runtime_role(conn)
        finally:
            await conn.close()
        async with TortoiseContext() as ctx:
            # Global fallback: requests run in other tasks than the lifespan.
            await ctx.init(
                config=database.runtime_config(urls, settings.pool_size),
                _enable_global_fallback=True,
            )
            listener.start()
            log.info("serving on %s", settings.base_url)
            async with contextlib.AsyncExitStack() as stack:
                stack.enter_context(outage.quiet_closes_of_dead_connections())
                if settings.embedded_worker:
                    app.state.worker = Worker(shutdown_seconds=settings.shutdown_seconds)
                    await stack.enter_async_context(background_worker(app.state.worker, settings))
                try:
                    yield
                finally:
                    await stack.aclose()
                await listener.stop()
                await http.aclose()
                app_tracing.stop_tracing()

    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(openapi_document)

    async def problems_index(request: Request) -> HTMLResponse:
        rows = "".join(
            f'<tr id="{p.code}"><td><code>/problems/{p.code}</code></td><td>{p.status}</td>'
            f"<td>{html.escape(p.title)}</td><td>{html.escape(p.description)}</td></tr>"
            for p in problem_catalogue()
        )
        return HTMLResponse(
            "<!doctype html><html lang=en><meta charset=utf-8><title>Tenantry problem types</title>"
            "<h1>Problem types</h1><p>Every error answer is an RFC 9457 problem document whose "
            "<code>type</code> is one of these.</p><table><thead><tr><th>type<th>status<th>title"
            f"<th>meaning</thead><tbody>{rows}</tbody></table></html>"
        )

    async def problem_page(request: Request) -> Response:
        code = request.path_params["code"]
        if code not in {p.code for p in problem_catalogue()}:
            return http_problem(request, "route_not_found")
        return RedirectResponse(f"/problems#{code}", status_code=303)

    async def root(request: Request) -> Response:
        signed_in = web.cookies.signed_in(request).token() is not None
        return RedirectResponse("/console" if signed_in else "/login", status_code=303)

    # Sign-in first: the router tries routes in order, and a sign-in callback found after
    # the API's and SCIM's ~130 routes paid a path match for each. No sign-in path is one
    # another route could serve, so the order changes nothing else.
    routes: list[BaseRoute] = signin.routes(web)
    routes += [
        Route("/", root, methods=["GET"], include_in_schema=False),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/problems", problems_index, methods=["GET"]),
        Route("/problems/{code}", problem_page, methods=["GET"]),
    ]
    resources = versioned(endpoints)
    routes += [
        build_route(
            e,
            authenticator,
            settings.max_body_bytes,
            principals,
            listener.applied_locally,
            current=resources.get(e.path) if e.method != "POST" else None,
        )
        for e in endpoints
    ]
    routes += scim_routes(
        authenticator=authenticator,
        base_url=settings.base_url,
        max_body=settings.max_body_bytes,
        principals=principals,
        committed=listener.applied_locally,
    )
    routes += invitations.routes(web) + console.routes(web)
    routes += account.routes(web)
    routes += oauth.routes(keyring, settings.base_url)
    ssf_refusals = RefusalCounter()
    routes += signals.receiver_routes(rp.jwks, ssf_refusals)
    routes.append(Mount("/static", StaticFiles(directory=str(STATIC)), name="static"))
    metrics = (
        Metrics(decisions=decisions, heartbeat=lambda: last_progress(app.state.worker))
        if settings.metrics
        else None
    )
    if metrics is not None:
        routes.append(
            Route(
                "/metrics",
                metrics_endpoint(metrics, token=settings.metrics_token),
                methods=["GET"],
                include_in_schema=False,
            )
        )
        tag_routes(routes)

    async def not_found(request: Request, exc: Any) -> Response:
        path = request.url.path
        if is_scim_path(path):
            return scim_error_response(404, f"nothing lives at {path}")
        if path.startswith(BROWSER_PATHS) and "text/html" in request.headers.get("accept", ""):
            # A mistyped or stale console address in a browser: a page, not JSON.
            home = "/account" if path.startswith("/account") else "/console"
            return web.message(
                request,
                "Page not found",
                "Nothing lives at this address: it may have been mistyped, or what it showed "
                "was deleted.",
                status=404,
                link=(home, "Go to the console" if home == "/console" else "Go to your account"),
            )
        return http_problem(request, "route_not_found", f"nothing lives at {path}")

    async def http_error(request: Request, exc: Any) -> Response:
        assert isinstance(exc, HTTPException)
        methods = sorted(allowed_methods(request.app.router.routes, request.scope))
        if is_scim_path(request.url.path):
            allow = methods if exc.status_code == 405 else []
            return scim_error_response(exc.status_code, str(exc.detail), allow=allow)
        if exc.status_code == 404 or (exc.status_code == 405 and not methods):
            # A 405 with no method allowed: the path matched a route by its shape only (its
            # id does not parse), and an empty Allow would say no method ever works there.
            # Nothing lives at such an address.
            return await not_found(request, exc)
        if exc.status_code == 405:
            return method_not_allowed(request, methods)
        if exc.status_code == 400:
            # Starlette's own refusal of a body it cannot read (a broken multipart) is the
            # client's to fix, not an internal error.
            return http_problem(request, "bad_request", str(exc.detail))
        return http_problem(request, "internal", str(exc.detail))

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={404: not_found, HTTPException: http_error},
    )
    # No redirect from "/v1/members/" to "/v1/members": Starlette builds that address from
    # the request's Host header (any host a client names), and a redirect is not an answer
    # the API document declares. An address with a stray slash is a 404 like any other.
    app.router.redirect_slashes = False
    app.state.settings = settings
    app.state.web = web
    app.state.keyring = keyring
    app.state.decisions = decisions
    policy_service.share_cache(decisions)
    app.state.listener = listener
    #: The embedded job worker while one runs (``/readyz`` watches its loop).
    app.state.worker = None
    app.state.openapi = openapi_document
    #: Unauthenticated Shared Signals posts refused (counted, never audited).
    app.state.ssf_refusals = ssf_refusals
    app.state.metrics = metrics
    app.add_middleware(StorableAddressMiddleware, web=web)
    tracing = settings.otel_endpoint is not None
    app.add_middleware(
        RequestContextMiddleware,
        production=settings.is_production,
        trace_id=app_tracing.trace_id_source(tracing),
    )
    if metrics is not None:
        # Outside the request context, which turns an outage into its 503 (and a bug into
        # its 500): the metrics count the status the client got. Inside it, they saw the
        # outage's exception and counted every 503 of an outage as a 500.
        app.add_middleware(MetricsMiddleware, metrics=metrics)
    if tracing:
        app.add_middleware(app_tracing.asgi_middleware_class(), exclude_spans=["receive", "send"])
    return app
