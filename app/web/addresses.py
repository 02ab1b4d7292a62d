"""What a page's address may hold: nothing PostgreSQL cannot store.

A NUL or a lone UTF-16 surrogate in a query parameter or a path segment reaches the pages'
searches and filters as text, and PostgreSQL refuses it mid-query ("invalid byte sequence
for encoding UTF8"), a 500 or a download cut off after its first bytes. The API refuses
such a query itself (``app.api``, a 422 naming the parameter); every other address is
checked here, once, before any route runs, so no page, present or future, can pass one on.

Form fields are checked where pages read their forms: ``app.web.pages.clean_form`` for the
console and the account page, ``posted_form`` (with ``storage_problem`` here) for sign-in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from app.middleware import ASGIApp, Receive, Scope, Send
from app.problems import http_problem
from app.scim.responses import is_scim_path
from tenants import text
from tenants.errors import FieldProblem

if TYPE_CHECKING:
    from app.web.pages import Web


def storage_problem(value: str) -> str | None:
    """Why PostgreSQL cannot hold ``value`` at all (a NUL, a lone surrogate); None when it
    can. Only those two: a search or a filter may hold any other character (it is compared,
    never shown as a name), so the stricter name policy of ``tenants.text`` does not apply."""
    return None if text.is_storable(value) else text.problem(value, free=True)


#: Paths called by programs rather than opened in a browser: a problem document.
MACHINE_PATHS = ("/oauth/", "/.well-known/", "/ssf/", "/openapi.json", "/problems", "/metrics")


def unstorable_parts(request: Request) -> list[FieldProblem]:
    """The address's parts PostgreSQL could not hold, named ``path`` or ``query.<name>``,
    each with the reason; empty when there are none."""
    found: list[FieldProblem] = []
    if (reason := storage_problem(request.url.path)) is not None:
        found.append(FieldProblem("path", reason))
    for key, value in request.query_params.multi_items():
        reason = storage_problem(key) or storage_problem(value)
        if reason is not None:
            found.append(FieldProblem(f"query.{_shown(key)}", reason))
    return found


def _checked_elsewhere(path: str) -> bool:
    """The API and SCIM answer in their own formats and check their own input."""
    return path == "/v1" or path.startswith("/v1/") or is_scim_path(path)


def _shown(name: str) -> str:
    """A parameter's name fit to show: its unstorable characters as escapes."""
    return name if storage_problem(name) is None else ascii(name)[1:-1]


class StorableAddressMiddleware:
    """Refuses a request whose path or query holds text PostgreSQL cannot store: a 400 page
    naming each parameter and why (a 422 problem document on the paths programs call)."""

    def __init__(self, app: ASGIApp, *, web: Web) -> None:
        self.app = app
        self.web = web

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _checked_elsewhere(scope["path"]):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        problems = unstorable_parts(request)
        if not problems:
            await self.app(scope, receive, send)
            return
        summary = "; ".join(f"{p.field} {p.reason}" for p in problems)
        response: Response
        if scope["path"].startswith(MACHINE_PATHS):
            response = http_problem(
                request, "validation", f"the address cannot be used: {summary}", fields=problems
            )
        else:
            response = self.web.message(
                request,
                "This address cannot be opened",
                f"Nothing was looked up: {summary}. Remove it from the address and try again.",
                status=400,
                link=("/console", "Go to the console"),
            )
        await response(scope, receive, send)
