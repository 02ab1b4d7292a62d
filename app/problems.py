"""RFC 9457 problem details: the one place where errors become HTTP answers.

Every 4xx and 5xx the service sends is ``application/problem+json`` with a stable
``type`` (``/problems/<code>``, documented at that address), a ``title``, the ``status``,
a ``detail`` written for the caller, the ``instance`` (request path), the request id,
and for input problems an ``errors`` list of ``{field, reason}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from starlette.requests import Request
from starlette.responses import Response

from tenants.errors import (
    AuthenticationError,
    CredentialsMissingError,
    FieldProblem,
    PermissionDeniedError,
    TenantryError,
)

MEDIA_TYPE = "application/problem+json"

#: Domain error code → HTTP status. A test checks every TenantryError subclass is here.
STATUS_BY_CODE: dict[str, int] = {
    "error": 400,
    "not_found": 404,
    "invalid_input": 422,
    # A cursor is the service's own token: one it did not issue is a bad request, not a
    # breach of a domain rule.
    "invalid_cursor": 400,
    "conflict": 409,
    "precondition_failed": 412,
    "illegal_transition": 409,
    "permission_denied": 403,
    "unauthenticated": 401,
    "sign_in_failed": 401,
    # An invitation link that is forged, expired or used: the page says which.
    "invitation_link": 400,
    "dns_unavailable": 503,
}


@dataclass(frozen=True, slots=True)
class ProblemType:
    code: str
    title: str
    status: int
    description: str


#: Problems raised by the HTTP layer itself (not by the domain).
HTTP_PROBLEMS: dict[str, ProblemType] = {
    p.code: p
    for p in (
        ProblemType("malformed_json", "Malformed JSON", 400, "The request body is not valid JSON."),
        ProblemType("bad_request", "Bad request", 400, "The request could not be read as sent."),
        ProblemType(
            "validation",
            "Invalid input",
            422,
            "One or more fields are missing, of the wrong type or out of range; see errors.",
        ),
        ProblemType(
            "unsupported_media_type",
            "Unsupported media type",
            415,
            "Send the body as application/json.",
        ),
        ProblemType(
            "body_too_large",
            "Request body too large",
            413,
            "The body is larger than the service accepts.",
        ),
        ProblemType(
            "method_not_allowed",
            "Method not allowed",
            405,
            "The resource exists but not with this method.",
        ),
        ProblemType("route_not_found", "Not found", 404, "No resource lives at this address."),
        ProblemType(
            "internal",
            "Internal error",
            500,
            "Something failed on our side; the request id helps the operator find it.",
        ),
        ProblemType(
            "unavailable",
            "Service unavailable",
            503,
            "A dependency (the database) is not reachable right now.",
        ),
    )
}


def problem_response(
    request: Request | None,
    *,
    code: str,
    title: str,
    status: int,
    detail: str,
    fields: Sequence[FieldProblem] = (),
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": f"/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if request is not None:
        body["instance"] = request.url.path
        request_id = getattr(request.state, "request_id", None)
        if request_id:
            body["request_id"] = request_id
    if fields:
        body["errors"] = [{"field": f.field, "reason": f.reason} for f in fields]
    for key, value in (extra or {}).items():
        body.setdefault(key, value)
    return Response(
        json.dumps(body, ensure_ascii=False, default=str),
        status_code=status,
        media_type=MEDIA_TYPE,
        headers=headers,
    )


def http_problem(
    request: Request | None, code: str, detail: str | None = None, **kw: Any
) -> Response:
    kind = HTTP_PROBLEMS[code]
    return problem_response(
        request,
        code=kind.code,
        title=kind.title,
        status=kind.status,
        detail=detail or kind.description,
        **kw,
    )


def method_not_allowed(request: Request, methods: Sequence[str]) -> Response:
    """405 with the methods that do serve the path in ``Allow`` (RFC 9110 §15.5.6)."""
    allowed = ", ".join(methods)
    return http_problem(
        request,
        "method_not_allowed",
        f"{request.method} is not allowed here; use {allowed}",
        headers={"Allow": allowed},
    )


def status_for(error_class: type[TenantryError]) -> int:
    """The status of the nearest class in the error's ancestry that the table names, so a
    new subclass of ConflictError answers 409 without being listed."""
    for cls in error_class.__mro__:
        code = getattr(cls, "code", None)
        if code in STATUS_BY_CODE:
            return STATUS_BY_CODE[code]
    return 500


#: What an ``error_description`` of a challenge may hold (RFC 6750 §3: printable ASCII
#: but the quote and the backslash).
_NOT_IN_CHALLENGE = re.compile(r'[^\x20\x21\x23-\x5b\x5d-\x7e]')


def bearer_challenge(realm: str, error: TenantryError) -> str | None:
    """The ``WWW-Authenticate`` of a refusal (RFC 6750 §3): bare when no credential was
    sent, ``invalid_token`` when the one sent is not valid, ``insufficient_scope`` with the
    scope needed when it lacks a permission; None for other refusals."""
    if isinstance(error, CredentialsMissingError):
        return f'Bearer realm="{realm}"'
    if isinstance(error, AuthenticationError):
        description = _NOT_IN_CHALLENGE.sub("?", error.message)[:200]
        return f'Bearer realm="{realm}", error="invalid_token", error_description="{description}"'
    needed = (error.extra or {}).get("required_permission")
    if isinstance(error, PermissionDeniedError) and isinstance(needed, str):
        return f'Bearer realm="{realm}", error="insufficient_scope", scope="{needed}"'
    return None


def from_domain_error(request: Request | None, error: TenantryError) -> Response:
    status = status_for(type(error))
    challenge = bearer_challenge("tenantry", error)
    headers = {"WWW-Authenticate": challenge} if challenge and status in (401, 403) else None
    return problem_response(
        request,
        code=error.code,
        title=error.title,
        status=status,
        detail=error.message,
        fields=error.fields,
        extra=error.extra,
        headers=headers,
    )


def error_reason(item: ErrorDetails) -> str:
    """One pydantic error's reason: our own validators' as they wrote it ("contains the
    control character U+0007"), without pydantic's "Value error, " before it."""
    if item["type"] == "value_error" and "error" in item.get("ctx", {}):
        return str(item["ctx"]["error"])
    return item["msg"]


def field_problems(
    error: ValidationError, prefix: str = "", model: type[BaseModel] | None = None
) -> list[FieldProblem]:
    """Pydantic's errors as ``{field, reason}`` with dotted paths (``roles[1]``), one entry
    per field.

    When a value matches no member of a union, pydantic reports one error per member and
    puts the member's name (``bool``, ``list[constrained-str]``) in the location as if it
    were a field. Given the ``model`` that was validated, those names are left out and the
    reasons joined, so the problem names the field the client actually sent.
    """
    reasons: dict[str, list[str]] = {}
    for item in error.errors(include_url=False):
        path = _field_path(item["loc"], model, prefix)
        reason = error_reason(item)
        if item["type"] == "extra_forbidden":
            reason = "is not a known field"
        elif item["type"] == "missing":
            reason = "is required"
        found = reasons.setdefault(path, [])
        if reason not in found:
            found.append(reason)
    return [FieldProblem(path, " or ".join(found)) for path, found in reasons.items()]


def _field_path(loc: tuple[int | str, ...], model: type[BaseModel] | None, prefix: str) -> str:
    path = prefix
    node: Any = model
    for part in loc:
        node = _unwrap(node)
        if _is_union(node):
            members = [m for m in get_args(node) if m is not type(None)]
            if len(members) > 1 and isinstance(part, str):
                node = None  # a union member's name, not a field; which member is not known
                continue
            node = _unwrap(members[0]) if members else None
        if isinstance(part, int):
            path += f"[{part}]"
            args = get_args(node) if get_origin(node) in (list, tuple, set, frozenset) else ()
            node = args[0] if args else None
        else:
            path += ("." if path else "") + str(part)
            node = _field_type(node, part)
    return path or "body"


def _unwrap(node: Any) -> Any:
    while get_origin(node) is Annotated:
        node = get_args(node)[0]
    return node


def _is_union(node: Any) -> bool:
    return get_origin(node) in (Union, UnionType)


def _field_type(node: Any, name: str) -> Any:
    """The annotation of field ``name`` (or alias) of model ``node``; None when unknown."""
    if not (isinstance(node, type) and issubclass(node, BaseModel)):
        return None
    for field_name, info in node.model_fields.items():
        if name in (field_name, info.alias):
            return info.annotation
    return None


def from_validation_error(
    request: Request | None,
    error: ValidationError,
    prefix: str = "",
    model: type[BaseModel] | None = None,
) -> Response:
    problems = field_problems(error, prefix, model)
    summary = "; ".join(f"{p.field}: {p.reason}" for p in problems[:5])
    return http_problem(
        request, "validation", f"The input is not valid: {summary}", fields=problems
    )


def problem_catalogue() -> list[ProblemType]:
    """Every problem type the service can answer with, for the /problems pages."""
    from tenants.errors import TenantryError

    seen: dict[str, ProblemType] = dict(HTTP_PROBLEMS)
    stack: list[type[TenantryError]] = [TenantryError]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        doc = (cls.__doc__ or cls.title).strip().splitlines()[0]
        seen.setdefault(cls.code, ProblemType(cls.code, cls.title, status_for(cls), doc))
    return sorted(seen.values(), key=lambda p: p.code)
