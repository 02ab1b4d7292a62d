"""ASGI middleware: request ids, access logs, security headers, and the last-resort 500
(503 when the database is out).

Written as plain ASGI rather than BaseHTTPMiddleware so streaming bodies and the
per-request context variables behave, and so it costs little on the hot path.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, Response

from app import outage
from app.logs import request_id_var
from app.problems import http_problem
from app.scim.responses import error_response, is_scim_path
from tenants.outages import is_database_outage

log = logging.getLogger("tenantry.access")
errors = logging.getLogger("tenantry.errors")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,100}$")


def content_security_policy(*, form_targets: Iterable[str] = ()) -> str:
    """The pages' CSP. ``form_targets`` are extra origins a form may lead to: form-action
    also governs the redirects after a submission (CSP 3, §6.4.1), so a form answered
    with a redirect to an identity provider needs that provider's origin here."""
    form_action = " ".join(["'self'", *form_targets])
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"object-src 'none'; base-uri 'none'; form-action {form_action}; frame-ancestors 'none'"
    )


def security_headers(production: bool) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),
        (b"x-frame-options", b"DENY"),
        (b"cross-origin-opener-policy", b"same-origin"),
        (b"content-security-policy", content_security_policy().encode()),
    ]
    if production:
        headers.append((b"strict-transport-security", b"max-age=63072000; includeSubDomains"))
    return headers


def unavailable(request: Request, request_id: str) -> Response:
    """The 503 for a request the database could not serve: nothing was changed, and the
    same request in a few seconds is expected to succeed."""
    retry = {"Retry-After": str(outage.RETRY_AFTER)}
    detail = "the database is not reachable right now; nothing was changed, retry shortly"
    if is_scim_path(request.url.path):
        response: Response = error_response(503, detail)
        response.headers.update(retry)
        return response
    if _wants_html(request):
        return HTMLResponse(
            "<!doctype html><html lang=en><meta charset=utf-8><title>Unavailable for a moment</title>"
            "<link rel=stylesheet href=/static/app.css><main class=narrow><h1>Unavailable for a moment</h1>"
            "<p>Tenantry cannot reach its database right now, so nothing was changed. Try again in a "
            f"few seconds; if it lasts, give your administrator this reference: <code>{request_id}</code>."
            "</p></main></html>",
            status_code=503,
            headers=retry,
        )
    return http_problem(request, "unavailable", detail, headers=retry)


def _personal_api(path: str) -> bool:
    """Whether answers at ``path`` may hold people's data and are not to be kept by any
    cache (RFC 9111 §5.2.2.5), unless the endpoint says otherwise: the API and SCIM."""
    return path.startswith("/v1/") or is_scim_path(path)


class RequestContextMiddleware:
    """Assigns the request id, logs one line per request, turns crashes into problem 500s."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        production: bool,
        trace_id: Callable[[], str | None] | None = None,
    ) -> None:
        self.app = app
        self.headers = security_headers(production)
        #: With tracing on, the request id is the trace id (logs lead to traces).
        self.trace_id = trace_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        traced = self.trace_id() if self.trace_id is not None else None
        if traced is not None:
            request_id = traced
        else:
            incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
            request_id = incoming if SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers.append((b"x-request-id", request_id.encode()))
                headers.extend(h for h in self.headers if h[0] not in present)
                if b"cache-control" not in present and _personal_api(scope["path"]):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except ClientDisconnect:
            # The client left before its body was whole (shorter than its Content-Length):
            # nothing was done. A 400 no one reads, not an unhandled error with a traceback
            # that anyone could repeat to fill the error log and the 5xx rate.
            log.info(
                "client left before sending its whole body: %s %s",
                scope.get("method"),
                scope.get("path"),
            )
            if not response_started:
                gone = http_problem(
                    Request(scope), "bad_request", "the body ended before its Content-Length"
                )
                await gone(scope, receive, send_with_headers)
        except Exception as exc:
            where = f"{scope.get('method')} {scope.get('path')}"
            down = is_database_outage(exc)
            if down:
                outage.note(exc, where)
                await outage.forget_pooled_connections()
            else:
                errors.exception("unhandled error in %s", where)
            if response_started:
                raise
            request = Request(scope)
            response: Response
            if down:
                response = unavailable(request, request_id)
            elif is_scim_path(request.url.path):
                response = error_response(
                    500, f"the request could not be finished (reference {request_id})"
                )
            elif _wants_html(request):
                response = HTMLResponse(
                    "<!doctype html><html lang=en><meta charset=utf-8><title>Something went wrong</title>"
                    "<link rel=stylesheet href=/static/app.css><main class=narrow><h1>Something went wrong</h1>"
                    f"<p>We could not finish this. Try again; if it keeps happening, give your administrator "
                    f"this reference: <code>{request_id}</code>.</p></main></html>",
                    status_code=500,
                )
            else:
                response = http_problem(request, "internal")
            await response(scope, receive, send_with_headers)
        finally:
            log.info(
                "%s %s %s",
                scope.get("method"),
                scope.get("path"),
                status,
                extra={
                    "method": scope.get("method"),
                    "path": scope.get("path"),
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "client": (scope.get("client") or ("", 0))[0],
                },
            )
            request_id_var.reset(token)


def _wants_html(request: Request) -> bool:
    """Browser pages get an HTML error; the API, SCIM and machine endpoints problem+json."""
    path = request.url.path
    if path.startswith(("/v1", "/scim", "/oauth", "/.well-known", "/oidc")):
        return False
    return "text/html" in request.headers.get("accept", "")
