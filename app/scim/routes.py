"""The SCIM 2.0 service provider at ``/scim/v2`` (RFC 7644), one per organisation.

The organisation is the bearer token's: an API token carrying ``scim:provision``
(created, rotated and revoked in the console under Provisioning). The same building
blocks as the ``/v1`` API serve each request (the authenticator, the principal cache,
one ``tenant_transaction`` per request, notifications applied after commit); what
differs is the protocol: ``application/scim+json`` in and out, SCIM error bodies,
ETags and ``If-Match``. Handlers parse, call one function of ``tenants.scim``, render.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route, request_response
from starlette.types import ASGIApp, Receive, Scope, Send
from tortoise.exceptions import IntegrityError

from app.api import PrincipalCache, verified_principal
from app.auth import Authenticator, Principal
from app.conditional import none_match
from app.scim import discovery
from app.scim.queries import list_query, search_query
from app.scim.responses import (
    PREFIX,
    error_response,
    from_error,
    scim_json,
    status_and_type,
)
from tenants import notifications
from tenants.db import tenant_transaction
from tenants.errors import PermissionDeniedError, TenantryError
from tenants.permissions import Permission
from tenants.scim import bulk, groups, users
from tenants.scim.documents import project, render_group, render_user
from tenants.scim.errors import (
    InvalidFilterError,
    InvalidSyntaxError,
    InvalidValueError,
    PayloadTooLargeError,
    UnknownAttributeError,
    UnsupportedMediaTypeError,
)
from tenants.scim.listing import ListQuery
from tenants.scim.schemas import GROUPS, USERS, ResourceKind, published_schemas
from tenants.scim.validation import check_body, too_deep

log = logging.getLogger(__name__)

JSON_TYPES = ("application/scim+json", "application/json")


@dataclass(frozen=True, slots=True)
class ScimCall:
    """What a handler gets: the request, who calls, the parsed body and the base URL."""

    request: Request
    principal: Principal
    body: Any
    base: str

    @property
    def if_match(self) -> str | None:
        return self.request.headers.get("if-match")

    def id(self) -> uuid.UUID:
        raw = self.request.path_params.get("id", "")
        try:
            return uuid.UUID(raw)
        except ValueError:
            from tenants.scim.errors import ResourceNotFoundError

            raise ResourceNotFoundError(f"there is no resource with id {raw!r}") from None


Handler = Callable[[ScimCall], Awaitable[Response]]


def _resource(
    call: ScimCall, kind: ResourceKind, rendered: dict[str, Any], status: int = 200
) -> Response:
    """One resource as an answer: projected on the request's ``attributes`` or
    ``excludedAttributes`` (RFC 7644 §3.9: on every answer that returns a resource, writes
    included), with its ``ETag`` (and, when created, ``Location``) taken from the whole
    resource, so the headers do not depend on whether the projection kept ``meta``."""
    _, attrs, excluded = list_query(kind, call.request.query_params, listing=False)
    meta = rendered["meta"]
    headers = {"ETag": meta["version"]}
    if status == 201:
        headers["Location"] = meta["location"]
    return scim_json(project(rendered, attrs, excluded), status, headers)


def _route(path: str, serve: Callable[[Request], Awaitable[Response]]) -> Route:
    """A route taking every method: ``serve`` answers those it does not take itself with a
    SCIM 405 naming what it takes (Starlette's router would answer a method outside a
    route's list with a bare 405, and give a plain function GET alone)."""
    return Route(path, _AnyMethod(request_response(serve)))


@dataclass(frozen=True, slots=True)
class _AnyMethod:
    """An ASGI app, which Starlette routes whatever the method (a function it would not)."""

    app: ASGIApp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def scim_routes(
    *,
    authenticator: Authenticator,
    base_url: str,
    max_body: int,
    principals: PrincipalCache | None = None,
    committed: Callable[[list[str]], None] | None = None,
) -> list[BaseRoute]:
    """The ``/scim/v2`` mount: discovery without a credential, resources with one."""
    base = base_url.rstrip("/") + PREFIX

    async def read_body(request: Request, limit: int) -> Any:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type and content_type not in JSON_TYPES and not content_type.endswith("+json"):
            raise UnsupportedMediaTypeError(f"send application/scim+json, not {content_type}")
        size = 0
        chunks = []
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLargeError(f"the body is larger than {limit} bytes")
            chunks.append(chunk)
        try:
            payload = json.loads(b"".join(chunks) or b"null")
        except ValueError:
            raise InvalidSyntaxError("the body is not valid JSON") from None
        except RecursionError:
            raise too_deep() from None
        check_body(payload)
        return payload

    def endpoint(
        handlers: dict[str, Handler], *, body_limit: int = max_body
    ) -> Callable[[Request], Awaitable[Response]]:
        """A route serving ``handlers`` by method; others get a SCIM 405 (RFC 7644 §3.12)."""

        allowed = [*handlers, "HEAD"] if "GET" in handlers else list(handlers)

        async def serve(request: Request) -> Response:
            # HEAD is GET without the body (RFC 9110 §9.3.2); the server drops the body.
            handler = handlers.get("GET" if request.method == "HEAD" else request.method)
            if handler is None:
                return error_response(405, f"{request.method} is not allowed here", allow=allowed)
            try:
                credential = await authenticator.identify(request)
                payload = (
                    await read_body(request, body_limit)
                    if request.method in ("POST", "PUT", "PATCH")
                    else None
                )
                with notifications.collect() as sent:
                    async with tenant_transaction(credential.org_id):
                        principal = await verified_principal(credential, request, principals)
                        if Permission.SCIM_PROVISION not in principal.permissions:
                            raise PermissionDeniedError(
                                "this needs a SCIM token (the permission scim:provision)"
                            )
                        response = await handler(ScimCall(request, principal, payload, base))
                if sent and committed is not None:
                    committed(sent)
                return response
            except TenantryError as error:
                return from_error(error)
            except IntegrityError as error:
                log.info("integrity error turned into 409: %s", error)
                return error_response(
                    409, "the change clashes with data written at the same time", "uniqueness"
                )

        return serve

    def static(
        handler: Callable[[Request], dict[str, Any] | None],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def serve(request: Request) -> Response:
            if request.method not in ("GET", "HEAD"):
                return error_response(
                    405, f"{request.method} is not allowed here", allow=["GET", "HEAD"]
                )
            if "filter" in request.query_params:
                # RFC 7644 §4: a client must not take what it asked a filter to match as
                # true of a discovery document that ignored it.
                return error_response(
                    403, f"{request.url.path} takes no filter: it returns every document"
                )
            found = handler(request)
            if found is None:
                return error_response(404, f"nothing lives at {request.url.path}")
            return scim_json(found)

        return serve

    # --- discovery ---------------------------------------------------------------------------

    def spc(request: Request) -> dict[str, Any]:
        return discovery.service_provider_config(base)

    def resource_types(request: Request) -> dict[str, Any]:
        found = discovery.resource_types(base)
        return discovery.list_response(found, len(found))

    def resource_type(request: Request) -> dict[str, Any] | None:
        wanted = request.path_params["id"]
        return next((d for d in discovery.resource_types(base) if d["id"] == wanted), None)

    def schemas(request: Request) -> dict[str, Any]:
        found = discovery.schemas(base)
        return discovery.list_response(found, len(found))

    def schema(request: Request) -> dict[str, Any] | None:
        wanted = request.path_params["id"]
        if wanted not in published_schemas():
            return None
        return next(d for d in discovery.schemas(base) if d["id"] == wanted)

    # --- Users ---------------------------------------------------------------------------------

    async def list_users(call: ScimCall, query: ListQuery, attrs: Any, excluded: Any) -> Response:
        total, found = await users.list_users(query)
        resources = [project(render_user(r, call.base), attrs, excluded) for r in found]
        return scim_json(discovery.list_response(resources, total, max(query.start_index, 1)))

    async def get_users(call: ScimCall) -> Response:
        query, attrs, excluded = list_query(USERS, call.request.query_params)
        return await list_users(call, query, attrs, excluded)

    async def search_users(call: ScimCall) -> Response:
        query, attrs, excluded = search_query(USERS, call.body)
        return await list_users(call, query, attrs, excluded)

    async def create_user(call: ScimCall) -> Response:
        record = await users.create_user(call.body, actor=call.principal.actor)
        return _resource(call, USERS, render_user(record, call.base), 201)

    def _fetched(call: ScimCall, rendered: dict[str, Any], kind: ResourceKind) -> Response:
        """A fetched resource: 304 when the client holds this version (If-None-Match),
        else the resource with the attributes the query asks for."""
        if none_match(call.request.headers.get("if-none-match"), rendered["meta"]["version"]):
            return Response(status_code=304, headers={"ETag": rendered["meta"]["version"]})
        return _resource(call, kind, rendered)

    async def get_user(call: ScimCall) -> Response:
        return _fetched(call, render_user(await users.get_user(call.id()), call.base), USERS)

    async def put_user(call: ScimCall) -> Response:
        record = await users.replace_user(
            call.id(), call.body, if_match=call.if_match, actor=call.principal.actor
        )
        return _resource(call, USERS, render_user(record, call.base))

    async def patch_user(call: ScimCall) -> Response:
        record = await users.patch_user(
            call.id(), call.body, base=call.base, if_match=call.if_match, actor=call.principal.actor
        )
        return _resource(call, USERS, render_user(record, call.base))

    async def delete_user(call: ScimCall) -> Response:
        await users.delete_user(call.id(), if_match=call.if_match, actor=call.principal.actor)
        return Response(status_code=204)

    # --- Groups --------------------------------------------------------------------------------

    async def list_groups(call: ScimCall, query: ListQuery, attrs: Any, excluded: Any) -> Response:
        total, found = await groups.list_groups(query)
        resources = [project(render_group(r, call.base), attrs, excluded) for r in found]
        return scim_json(discovery.list_response(resources, total, max(query.start_index, 1)))

    async def get_groups(call: ScimCall) -> Response:
        query, attrs, excluded = list_query(GROUPS, call.request.query_params)
        return await list_groups(call, query, attrs, excluded)

    async def search_groups(call: ScimCall) -> Response:
        query, attrs, excluded = search_query(GROUPS, call.body)
        return await list_groups(call, query, attrs, excluded)

    async def create_group(call: ScimCall) -> Response:
        record = await groups.create_group(call.body, actor=call.principal.actor)
        return _resource(call, GROUPS, render_group(record, call.base), 201)

    async def get_group(call: ScimCall) -> Response:
        return _fetched(call, render_group(await groups.get_group(call.id()), call.base), GROUPS)

    async def put_group(call: ScimCall) -> Response:
        record = await groups.replace_group(
            call.id(), call.body, if_match=call.if_match, actor=call.principal.actor
        )
        return _resource(call, GROUPS, render_group(record, call.base))

    async def patch_group(call: ScimCall) -> Response:
        record = await groups.patch_group(
            call.id(), call.body, base=call.base, if_match=call.if_match, actor=call.principal.actor
        )
        return _resource(call, GROUPS, render_group(record, call.base))

    async def delete_group(call: ScimCall) -> Response:
        await groups.delete_group(call.id(), if_match=call.if_match, actor=call.principal.actor)
        return Response(status_code=204)

    # --- across resource types and in bulk ----------------------------------------------------

    async def search_all(call: ScimCall) -> Response:
        """POST /.search (RFC 7644 §3.4.3): Users, then Groups, paged as one list. A filter
        naming an attribute one kind lacks matches nothing of that kind (RFC 7644
        §3.4.2.1); one that no kind knows is refused. The totals are counted with the
        query's startIndex, so one past the results is refused as on each kind's list."""
        kinds: list[tuple[Any, Any, Any]] = [
            (USERS, users.list_users, render_user),
            (GROUPS, groups.list_groups, render_group),
        ]
        parts = []
        refused: InvalidFilterError | None = None
        for kind, listing, render in kinds:
            query, attrs, excluded = search_query(kind, call.body)
            if query.sort_by:
                raise InvalidValueError("sortBy is not supported across resource types")
            try:
                total, _ = await listing(
                    ListQuery(filter=query.filter, start_index=query.start_index, count=0)
                )
            except UnknownAttributeError as error:
                refused = error
                continue
            parts.append((listing, render, attrs, excluded, total))
        if not parts:
            assert refused is not None
            raise refused
        skip, wanted = max(query.start_index, 1) - 1, min(query.count, discovery.MAX_RESULTS)
        resources: list[dict[str, Any]] = []
        for listing, render, attrs, excluded, total in parts:
            if skip >= total:
                skip -= total
                continue
            if len(resources) < wanted:
                page = ListQuery(
                    filter=query.filter, start_index=skip + 1, count=wanted - len(resources)
                )
                _, found = await listing(page)
                resources += [project(render(r, call.base), attrs, excluded) for r in found]
            skip = 0
        total_all = sum(part[-1] for part in parts)
        return scim_json(discovery.list_response(resources, total_all, max(query.start_index, 1)))

    async def post_bulk(call: ScimCall) -> Response:
        return scim_json(
            await bulk.run_bulk(
                call.body, base=call.base, actor=call.principal.actor, status_of=status_and_type
            )
        )

    async def not_found(request: Request) -> Response:
        return error_response(404, f"nothing lives at {request.url.path}")

    async def me(request: Request) -> Response:
        # RFC 7644 §3.11: a provider without /Me SHOULD answer 501. A SCIM token stands
        # for an identity provider, not for a member, so there is no "me" to serve.
        return error_response(
            501, "/Me is not supported: a SCIM token acts for an identity provider, not a user"
        )

    routes: list[BaseRoute] = [
        _route("/ServiceProviderConfig", static(spc)),
        _route("/ResourceTypes", static(resource_types)),
        _route("/ResourceTypes/{id}", static(resource_type)),
        _route("/Schemas", static(schemas)),
        _route("/Schemas/{id}", static(schema)),
        _route("/Users", endpoint({"GET": get_users, "POST": create_user})),
        _route("/Users/.search", endpoint({"POST": search_users})),
        _route(
            "/Users/{id}",
            endpoint(
                {"GET": get_user, "PUT": put_user, "PATCH": patch_user, "DELETE": delete_user}
            ),
        ),
        _route("/Groups", endpoint({"GET": get_groups, "POST": create_group})),
        _route("/Groups/.search", endpoint({"POST": search_groups})),
        _route(
            "/Groups/{id}",
            endpoint(
                {"GET": get_group, "PUT": put_group, "PATCH": patch_group, "DELETE": delete_group}
            ),
        ),
        _route("/.search", endpoint({"POST": search_all})),
        _route(
            "/Bulk",
            endpoint({"POST": post_bulk}, body_limit=discovery.MAX_PAYLOAD),
        ),
        _route("/Me", me),
        _route("/Me/{rest:path}", me),
        _route("/{rest:path}", not_found),
    ]
    return [Mount(PREFIX, routes=routes)]


__all__ = ["PREFIX", "scim_routes"]
