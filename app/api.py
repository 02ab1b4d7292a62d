"""Declared API endpoints: parsing, authentication, the tenant transaction, rendering.

Each endpoint states its method, path, permission and pydantic models once; from that
the same declaration serves the request and writes the OpenAPI document, so the two
cannot drift. A handler receives a parsed ``Call`` and returns a model (or None for
204); everything around it (one transaction per request, problem responses) is here.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Scope
from tortoise.exceptions import IntegrityError

from app import outage
from app.auth import Authenticator, BearerAuthenticator, Credential, Principal, unverified_claims
from app.conditional import entity_tag, if_match, none_match
from app.problems import (
    from_domain_error,
    from_validation_error,
    http_problem,
    method_not_allowed,
)
from tenants import json_objects, notifications
from tenants.actors import Actor
from tenants.db import tenant_transaction
from tenants.errors import (
    ConflictError,
    FieldProblem,
    PermissionDeniedError,
    PreconditionFailedError,
    TenantryError,
)
from tenants.outages import is_concurrency_conflict, is_database_outage
from tenants.permissions import Permission

log = logging.getLogger(__name__)

#: A write that clashed with a concurrent one (409): nothing of it was written. Every write
#: operation declares the 409 for it (app/openapi.py).
CLASHED = "the change clashes with data written at the same time; retry"

B = TypeVar("B", bound=BaseModel)
Q = TypeVar("Q", bound=BaseModel)

PATH_PARAM = re.compile(r"{(\w+)}")
#: Path parameters that are names, not ids: passed to the handler as text (``Call.text``)
#: for the service to validate. Every other path parameter is a UUID.
NAME_PARAMS: dict[str, str] = {"domain": "A domain name, such as example.org."}


class NoBody(BaseModel):
    """Marker for endpoints without a request body."""


class NoQuery(BaseModel):
    model_config = {"extra": "forbid"}


class RawBody(BaseModel):
    """``call.body`` of an endpoint with a ``StreamBody``: the bytes as sent."""

    content: bytes


@dataclass(frozen=True, slots=True)
class StreamBody:
    """A body that is a stream of records, not one JSON object (NDJSON bulk uploads).

    It is read whole up to its own ``max_bytes`` (the JSON limit is far smaller), refused
    with 415 unless sent as ``media_type``, and handed to the handler as ``RawBody``: the
    service parses it record by record so it can name bad records by line. ``item`` is the
    schema of one record, for the OpenAPI document.
    """

    media_type: str
    item: type[BaseModel]
    max_bytes: int


@dataclass(frozen=True, slots=True)
class Call(Generic[B, Q]):
    """What a handler gets: the request, who is calling, and the parsed input."""

    request: Request
    principal: Principal
    body: B
    query: Q
    path: dict[str, uuid.UUID]

    @property
    def actor(self) -> Actor:
        return self.principal.actor

    def id(self, name: str = "id") -> uuid.UUID:
        return self.path[name]

    def text(self, name: str) -> str:
        """A name path parameter (``NAME_PARAMS``), as sent."""
        return str(self.request.path_params[name])


Handler = Callable[[Call[Any, Any]], Awaitable[BaseModel | Response | None]]
#: A read answered from memory without a transaction, or None to take the normal path.
FastPath = Callable[[Request, Principal, dict[str, uuid.UUID]], Awaitable[Response | None]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    permission: Permission | None
    tag: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    errors: tuple[int, ...] = ()
    description: str = ""
    fast: FastPath | None = None
    #: Other media types the success response may come in (OpenAPI only).
    alternatives: tuple[str, ...] = ()
    #: Instead of ``body``: a streamed body of records (see StreamBody).
    stream: StreamBody | None = None

    @property
    def operation_id(self) -> str:
        return self.handler.__name__

    @property
    def path_params(self) -> list[str]:
        return PATH_PARAM.findall(self.path)


@dataclass
class ApiRouter:
    """Collects endpoints of one resource; ``prefix`` is prepended to every path."""

    prefix: str
    tag: str
    endpoints: list[Endpoint] = field(default_factory=list)

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        permission: Permission | None,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        status: int = 200,
        errors: Sequence[int] = (),
        fast: FastPath | None = None,
        alternatives: Sequence[str] = (),
        stream: StreamBody | None = None,
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.endpoints.append(
                Endpoint(
                    method=method,
                    path=self.prefix + path,
                    handler=handler,
                    summary=summary,
                    permission=permission,
                    tag=self.tag,
                    body=body,
                    query=query,
                    response=response,
                    status=status,
                    errors=tuple(errors),
                    description=(handler.__doc__ or "").strip(),
                    fast=fast,
                    alternatives=tuple(alternatives),
                    stream=stream,
                )
            )
            return handler

        return register

    def get(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, **kw)

    def patch(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("PATCH", path, **kw)

    def put(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("PUT", path, **kw)

    def delete(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, **kw)


class _Refused(Exception):
    """Carries an already-built problem response out of input parsing."""

    def __init__(self, response: Response) -> None:
        self.response = response


#: A uuid as this API writes it (either case): 8-4-4-4-12 hexadecimal digits.
CANONICAL_UUID = re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")


def _parse_path(request: Request, endpoint: Endpoint) -> dict[str, uuid.UUID]:
    values = {}
    for name in endpoint.path_params:
        if name in NAME_PARAMS:
            continue
        raw = request.path_params.get(name, "")
        try:
            # The canonical form only: uuid.UUID also reads "{…}", "urn:uuid:…" and 32 bare
            # digits, several addresses of one resource (for caches, logs and audits alike).
            if not CANONICAL_UUID.fullmatch(raw):
                raise ValueError(raw)
            values[name] = uuid.UUID(raw)
        except ValueError:
            # ``/v1/members/import`` matched ``/v1/members/{id}`` for a method its own
            # route does not serve: the path exists, the method does not.
            methods = allowed_methods(request.app.router.routes, request.scope)
            if methods and request.method not in methods:
                raise _Refused(method_not_allowed(request, sorted(methods))) from None
            # A malformed id names nothing, exactly like a well-formed id of nothing.
            raise _Refused(
                from_domain_error(
                    request,
                    _not_found(f"there is no such resource: {raw!r} is not an id"),
                )
            ) from None
    return values


def allowed_methods(routes: list[BaseRoute], scope: Scope) -> set[str]:
    """Every method some route serves at the request's path: the ``Allow`` header of a 405
    (RFC 9110 §15.5.6). A path may be served by several routes, one per method, so the
    union is taken rather than the methods of the first route that matched."""
    allowed: set[str] = set()
    # The request's scope holds the parameters of the route that matched it in part;
    # each route's own are what tell whether it serves the path.
    bare = {**scope, "path_params": {}}
    for route in routes:
        if isinstance(route, Route) and route.methods:
            match, child = route.matches(bare)
            if match is not Match.NONE and (
                not route.path.startswith("/v1/") or ids_parse(child.get("path_params", {}))
            ):
                allowed |= route.methods
    return allowed


def ids_parse(params: dict[str, Any]) -> bool:
    """Whether every id among a route's path parameters (``id`` and ``*_id``: each a UUID)
    is one. ``/v1/members/import`` also matches ``/v1/members/{id}``, whose methods answer
    it only with a 404 ('import' is not an id), so they are not methods of that path (the
    Allow of a DELETE there); ``/console/members/bulk`` is no member's page to return to."""
    for name, value in params.items():
        if not (name == "id" or name.endswith("_id")) or not isinstance(value, str):
            continue
        try:
            uuid.UUID(value)
        except ValueError:
            return False
    return True


def _not_found(message: str) -> TenantryError:
    from tenants.errors import NotFoundError

    return NotFoundError(message)


#: The query of a request to an endpoint without query parameters that sent none.
_NO_QUERY = NoQuery()


def _parse_query(request: Request, model: type[BaseModel] | None) -> BaseModel:
    if model is None and not request.scope.get("query_string"):
        return _NO_QUERY  # nothing to validate: spared on every call of a fast path
    model = model or NoQuery
    raw: dict[str, Any] = {}
    for key, value in request.query_params.multi_items():
        if key in raw:
            raise _Refused(
                http_problem(
                    request,
                    "validation",
                    f"query parameter {key} is given twice",
                    fields=[_field(f"query.{key}", "is given more than once")],
                )
            )
        raw[key] = value
    unstorable = [
        _field(f"query.{key}", NUL_REASON) for key, value in raw.items() if "\x00" in key + value
    ]
    if unstorable:
        raise _Refused(
            http_problem(
                request,
                "validation",
                "a query parameter contains a NUL character",
                fields=unstorable,
            )
        )
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise _Refused(from_validation_error(request, exc, prefix="query", model=model)) from None


#: PostgreSQL text cannot hold U+0000, so such input is refused up front rather than failing in
#: the database as a 500.
NUL_REASON = "contains a NUL character (U+0000), which cannot be stored"


def _paths_with_nul(value: Any, path: str) -> list[str]:
    """Dotted paths (as in validation errors) of the keys and strings in ``value`` holding NUL.

    Recursive: give it validated data (bounded by a schema), not raw JSON.
    """
    if isinstance(value, str):
        return [path or "body"] if "\x00" in value else []
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            # Keys may be uuids or enums (dict[uuid.UUID, ...] fields), not only strings.
            child = f"{path}.{key}" if path else str(key)
            found += [child] if "\x00" in str(key) else _paths_with_nul(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths_with_nul(item, f"{path}[{index}]")
    return found


def _surrogate_problems(data: Any, limit: int = 20) -> list[Any]:
    """Where raw JSON (``json.loads`` reads ``"\\udc00"`` as a lone surrogate, where the
    model's parser refuses the whole body) holds a lone UTF-16 surrogate, as field
    problems with the text policy's reason; the first ``limit``. Iterative: raw JSON may
    nest as deep as ``json.loads`` allowed."""
    from tenants.text import is_storable, problem

    found: list[Any] = []
    stack: list[tuple[Any, str]] = [(data, "")]
    while stack and len(found) < limit:
        value, path = stack.pop()
        if isinstance(value, str):
            if not is_storable(value):
                found.append(_field(path or "body", problem(value) or "is not text"))
        elif isinstance(value, dict):
            for key, item in reversed(list(value.items())):
                child = f"{path}.{key}" if path else key
                # A key that is not text is named by its parent: it cannot name itself.
                stack.append((key, path or "body") if not is_storable(key) else (item, child))
        elif isinstance(value, list):
            stack.extend((item, f"{path}[{i}]") for i, item in reversed(list(enumerate(value))))
    return found


def _field(name: str, reason: str) -> Any:
    from tenants.errors import FieldProblem

    return FieldProblem(name, reason)


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _unsupported(request: Request, expected: str) -> _Refused:
    return _Refused(
        http_problem(
            request,
            "unsupported_media_type",
            f"expected Content-Type {expected}, got {_media_type(request) or 'none'}",
        )
    )


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it grows past ``limit`` bytes."""
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _Refused(
                http_problem(request, "body_too_large", f"the body is larger than {limit} bytes")
            )
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_stream(request: Request, stream: StreamBody) -> RawBody:
    if _media_type(request) != stream.media_type:
        raise _unsupported(request, stream.media_type)
    return RawBody(content=await _read_body(request, stream.max_bytes))


async def _receive_json(request: Request, model: type[BaseModel] | None, limit: int) -> bytes:
    """The body of an endpoint that takes JSON, its media type checked (415) and its size
    bounded (413); parsed by ``_parse_body`` only once the caller may make the request, so
    a caller without the permission learns nothing of what the body should hold."""
    if model is None:
        return b""
    content_type = _media_type(request)
    if content_type not in (
        "application/json",
        "application/merge-patch+json",
    ) and not content_type.endswith("+json"):
        raise _unsupported(request, "application/json")
    return await _read_body(request, limit)


def _parse_body(request: Request, model: type[BaseModel] | None, raw: bytes) -> BaseModel:
    if model is None:
        return NoBody()
    try:
        data = json_objects.loads(raw)
    except json_objects.DuplicateKeyError as exc:
        raise _Refused(
            http_problem(
                request,
                "validation",
                "the body names a member twice",
                fields=[_field(exc.key, "is given more than once")],
            )
        ) from None
    except ValueError as exc:
        # JSONDecodeError, UnicodeDecodeError, and the int-size limit (over 4300 digits).
        raise _Refused(
            http_problem(request, "malformed_json", f"the body is not valid JSON: {exc}")
        ) from None
    except RecursionError:
        raise _Refused(
            http_problem(request, "malformed_json", "the body nests arrays or objects too deeply")
        ) from None
    if not isinstance(data, dict):
        raise _Refused(
            http_problem(
                request,
                "validation",
                "the body must be a JSON object",
                fields=[_field("body", "expected a JSON object")],
            )
        )
    try:
        # Strict JSON mode: the types the OpenAPI document states, no coercion (false is not
        # an integer, 1 is not a boolean); uuids, times and enum values come as JSON strings.
        parsed = model.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            # Valid JSON (json.loads read it) that is not text: a lone surrogate escape.
            surrogates = _surrogate_problems(data)
            if surrogates:
                raise _Refused(
                    http_problem(
                        request,
                        "validation",
                        "a text value is not valid Unicode",
                        fields=surrogates,
                    )
                ) from None
        raise _Refused(from_validation_error(request, exc, model=model)) from None
    # Checked on the validated model, whose shape (and so depth) the schema bounds.
    unstorable = [_field(name, NUL_REASON) for name in _paths_with_nul(parsed.model_dump(), "")]
    if unstorable:
        raise _Refused(
            http_problem(
                request, "validation", "a text value contains a NUL character", fields=unstorable
            )
        )
    return parsed


def _render(endpoint: Endpoint, result: BaseModel | Response | None) -> Response:
    if isinstance(result, Response):
        return result
    if result is None or endpoint.status == 204:
        return Response(status_code=204)
    return Response(
        result.model_dump_json(), status_code=endpoint.status, media_type="application/json"
    )


class PrincipalCache:
    """Verified principals for a few seconds, so reads answered from memory (the decision
    endpoint) need no database round trip to re-check a credential. Cleared whenever a
    token or client is revoked (see app/notifications.py).

    It also remembers, for the same few seconds, the exact ``Authorization`` header each
    principal was verified from, so a repeated read with the same bearer token skips
    ``identify`` too (an ES256 signature check costs more than the rest of a cached
    answer); never past the token's own ``exp``.
    """

    def __init__(self, ttl: float = 15.0, size: int = 10_000) -> None:
        self.ttl = ttl
        self.size = size
        self._entries: dict[Hashable, tuple[float, Principal]] = {}
        self._presented: dict[str, tuple[float, Credential, Principal]] = {}

    def get(self, credential: Credential) -> Principal | None:
        key = getattr(credential, "cache_key", None)
        if key is None:
            return None
        entry = self._entries.get(key)
        if entry is None or time.monotonic() - entry[0] > self.ttl:
            return None
        until = entry[1].valid_until
        if until is not None and time.time() >= until:
            return None
        return entry[1]

    def presented(self, authorization: str) -> tuple[Credential, Principal] | None:
        """The credential and principal verified from exactly this header, while fresh."""
        entry = self._presented.get(authorization) if authorization else None
        if entry is None or time.monotonic() > entry[0]:
            return None
        return entry[1], entry[2]

    def put(
        self, credential: Credential, principal: Principal, authorization: str | None = None
    ) -> None:
        """Remember ``principal``; with ``authorization`` (the header it was verified
        from, for authenticators that read nothing else) remember that header too."""
        key = getattr(credential, "cache_key", None)
        if key is None:
            return
        if len(self._entries) >= self.size:
            self._entries.clear()
        now = time.monotonic()
        self._entries[key] = (now, principal)
        if authorization:
            until = _header_expiry(authorization, now, self.ttl)
            if until is not None:
                if len(self._presented) >= self.size:
                    self._presented.clear()
                self._presented[authorization] = (until, credential, principal)

    def clear(self) -> None:
        self._entries.clear()
        self._presented.clear()


def _header_expiry(authorization: str, now: float, ttl: float) -> float | None:
    """Until when (monotonic) a verified ``Authorization`` header may be trusted again
    without checking it: ``ttl`` from now, and never past a JWT's ``exp``; None for a JWT
    whose expiry cannot be read. API tokens (no ``exp`` in them) are checked in the
    database, at most ``ttl`` ago, as ``get`` does."""
    _, _, token = authorization.partition(" ")
    if token.count(".") != 2:
        return now + ttl
    try:
        exp = unverified_claims(token.strip()).get("exp")
    except TenantryError:
        return None
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        return None
    return min(now + ttl, now + (exp - time.time()))


async def verified_principal(
    credential: Credential,
    request: Request,
    principals: PrincipalCache | None,
    *,
    header: str | None = None,
) -> Principal:
    """Who ``credential`` is, checked in the open tenant transaction.

    A credential verified in the last seconds is not looked up again (revocations clear
    the cache on every process at once); otherwise it is verified now and remembered,
    with ``header`` when the authenticator reads nothing but it (``PrincipalCache.put``).
    """
    known = principals.get(credential) if principals is not None else None
    if known is not None:
        return known.for_request(request)
    principal = await credential.verify(request)
    if principals is not None:
        principals.put(credential, principal, header)
    return principal


def _check_permission(endpoint: Endpoint, principal: Principal) -> None:
    if endpoint.permission is not None and endpoint.permission not in principal.permissions:
        raise PermissionDeniedError(
            f"this needs the permission {endpoint.permission.value}",
            extra={"required_permission": endpoint.permission.value},
        )


#: Methods that change a resource in place, and so may be made conditional on its version.
CONDITIONAL_WRITES = frozenset({"PATCH", "PUT", "DELETE"})


def versioned(endpoints: Sequence[Endpoint]) -> dict[str, Endpoint]:
    """The GET endpoint of each resource that can be changed in place (a path some PATCH,
    PUT or DELETE shares with a GET answering one object, not a page): its answer carries
    an ``ETag``, which ``If-None-Match`` on it and ``If-Match`` on its writes compare."""
    written = {e.path for e in endpoints if e.method in CONDITIONAL_WRITES}
    return {
        e.path: e
        for e in endpoints
        if e.method == "GET"
        and e.path in written
        and e.response is not None
        and "items" not in e.response.model_fields
    }


async def _check_if_match(
    request: Request, current: Endpoint, call: Call[Any, Any]
) -> None:
    """PreconditionFailedError unless ``If-Match`` names the resource's current version
    (RFC 9110 §13.1.1), read in the write's own transaction: a client that read it, and
    changes it only if nobody has since, is refused (412) instead of overwriting another's
    change. Without the header the write is unconditional."""
    header = request.headers.get("if-match")
    if header is None:
        return
    shown = _render(current, await current.handler(call))
    if not if_match(header, entity_tag(bytes(shown.body))):
        raise PreconditionFailedError(
            "the resource changed since the version named in If-Match: read it again and "
            "decide on the current version",
            fields=[FieldProblem("If-Match", "is not the current version (ETag)")],
        )


def _tagged(request: Request, response: Response) -> Response:
    """``response`` with its representation's ``ETag``; 304 when ``If-None-Match`` names it."""
    if response.status_code != 200:
        return response
    tag = entity_tag(bytes(response.body))
    if request.method == "GET" and none_match(request.headers.get("if-none-match"), tag):
        return Response(status_code=304, headers={"ETag": tag})
    response.headers["ETag"] = tag
    return response


def build_route(
    endpoint: Endpoint,
    authenticator: Authenticator,
    max_body: int,
    principals: PrincipalCache | None = None,
    committed: Callable[[list[str]], None] | None = None,
    current: Endpoint | None = None,
) -> Route:
    """The Starlette route that runs ``endpoint`` in one tenant transaction (or, for a read
    with a fast path and a recently verified credential, from memory). ``current``: the GET
    of the resource ``endpoint`` reads or changes in place (``versioned``), whose answer's
    ``ETag`` conditional requests compare."""
    #: The bearer authenticator reads nothing but the Authorization header, so a header it
    #: accepted moments ago identifies the same credential (see PrincipalCache.presented).
    by_header = isinstance(authenticator, BearerAuthenticator)

    async def asgi_endpoint(request: Request) -> Response:
        try:
            recent = None
            if endpoint.fast is not None and principals is not None and by_header:
                recent = principals.presented(request.headers.get("authorization", ""))
            credential = recent[0] if recent else await authenticator.identify(request)
            path = _parse_path(request, endpoint)
            query = _parse_query(request, endpoint.query)
            if endpoint.fast is not None and principals is not None:
                known = recent[1] if recent else principals.get(credential)
                if known is not None:
                    _check_permission(endpoint, known)
                    answered = await endpoint.fast(request, known, path)
                    if answered is not None:
                        return answered
            streamed = (
                await _read_stream(request, endpoint.stream)
                if endpoint.stream is not None
                else None
            )
            raw = await _receive_json(request, endpoint.body, max_body) if streamed is None else b""
            # A read whose pooled session turns out dead (the database restarted, or ended
            # it) runs once more on a fresh one; a write is not repeated: it may have
            # committed as the connection died, so its client is told 503 and decides.
            tries = 2 if endpoint.method == "GET" else 1
            while True:
                tries -= 1
                try:
                    with notifications.collect() as sent:
                        async with tenant_transaction(credential.org_id):
                            header = request.headers.get("authorization") if by_header else None
                            principal = await verified_principal(
                                credential, request, principals, header=header
                            )
                            _check_permission(endpoint, principal)
                            body = (
                                streamed
                                if streamed is not None
                                else _parse_body(request, endpoint.body, raw)
                            )
                            if current is not None and current is not endpoint:
                                await _check_if_match(
                                    request,
                                    current,
                                    Call(request, principal, None, current_query(request), path),
                                )
                            result = await endpoint.handler(
                                Call(request, principal, body, query, path)
                            )
                    break
                except Exception as error:
                    if tries == 0 or not is_database_outage(error):
                        raise
                    await outage.forget_pooled_connections()
            if sent and committed is not None:
                committed(sent)
        except _Refused as refused:
            return refused.response
        except TenantryError as error:
            return from_domain_error(request, error)
        except IntegrityError as error:
            # A uniqueness race the service's own checks could not see (two requests at once).
            log.info("integrity error turned into 409: %s", error)
            return from_domain_error(request, ConflictError(CLASHED))
        except Exception as error:
            if not is_concurrency_conflict(error):
                raise
            # PostgreSQL ended the transaction for a deadlock or serialization failure with
            # another one: nothing is written, and the same request later succeeds.
            log.info("concurrency conflict turned into 409: %s", error)
            return from_domain_error(request, ConflictError(CLASHED))
        response = _render(endpoint, result)
        # Only the read is tagged: a write's answer, rendered from the state it just wrote,
        # is not promised to be the bytes the next read gives.
        return _tagged(request, response) if current is endpoint else response

    def current_query(request: Request) -> BaseModel:
        assert current is not None
        return _parse_query(request, current.query)

    asgi_endpoint.__name__ = endpoint.operation_id
    starlette_path = endpoint.path
    return Route(
        starlette_path, asgi_endpoint, methods=[endpoint.method], name=endpoint.operation_id
    )
