"""SCIM responses: ``application/scim+json`` bodies and SCIM error bodies (RFC 7644 §3.12).

Every error of the SCIM endpoints, ours or another package's, leaves as a SCIM error
(``schemas``, ``status`` as a string, ``scimType`` where the RFC has one, ``detail``),
never as the ``/v1`` API's problem documents: SCIM clients parse only this shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from starlette.responses import Response

from app.problems import bearer_challenge
from tenants.errors import (
    AuthenticationError,
    ConflictError,
    IllegalTransitionError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    TenantryError,
)
from tenants.scim import errors as scim
from tenants.scim.schemas import ERROR_URN

MEDIA_TYPE = "application/scim+json"
PREFIX = "/scim/v2"


def is_scim_path(path: str) -> bool:
    """Whether ``path`` is under the SCIM service provider, whose every answer, errors from
    the router (404, 405) and the last-resort 500 included, must be SCIM JSON."""
    return path == PREFIX or path.startswith(PREFIX + "/")


#: Status of each SCIM error (RFC 7644 §3.12, Tables 8 and 9).
STATUS: dict[type[scim.ScimError], int] = {
    scim.InvalidFilterError: 400,
    scim.TooManyError: 400,
    scim.UniquenessError: 409,
    scim.MutabilityError: 400,
    scim.InvalidSyntaxError: 400,
    scim.InvalidPathError: 400,
    scim.NoTargetError: 400,
    scim.InvalidValueError: 400,
    scim.InvalidVersionError: 400,
    scim.SensitiveError: 403,
    scim.ResourceNotFoundError: 404,
    scim.PreconditionFailedError: 412,
    scim.PayloadTooLargeError: 413,
    scim.UnsupportedMediaTypeError: 415,
    scim.NotImplementedScimError: 501,
}


def scim_json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type=MEDIA_TYPE,
        headers=headers,
    )


def error_body(status: int, detail: str, scim_type: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": [ERROR_URN], "status": str(status)}
    if scim_type:
        body["scimType"] = scim_type
    body["detail"] = detail
    return body


def error_response(
    status: int,
    detail: str,
    scim_type: str | None = None,
    *,
    allow: Sequence[str] = (),
    challenge: str | None = None,
) -> Response:
    """A SCIM error document (RFC 7644 §3.12); a 405 names the methods allowed (``allow``)
    in an ``Allow`` header, as RFC 9110 §15.5.6 requires; a 401 or 403 carries
    ``challenge`` (RFC 6750 §3), a 401 at least the bare one."""
    headers: dict[str, str] = {}
    if challenge is not None or status == 401:
        headers["WWW-Authenticate"] = challenge or 'Bearer realm="scim"'
    if allow:
        headers["Allow"] = ", ".join(allow)
    return scim_json(error_body(status, detail, scim_type), status, headers or None)


def status_and_type(error: TenantryError) -> tuple[int, str | None]:
    """The HTTP status and scimType of any error a SCIM request may raise."""
    if isinstance(error, scim.ScimError):
        return STATUS.get(type(error), 400), error.scim_type
    if isinstance(error, AuthenticationError):
        return 401, None
    if isinstance(error, PermissionDeniedError):
        return 403, None
    if isinstance(error, NotFoundError):
        return 404, None
    if isinstance(error, IllegalTransitionError):
        return 409, None
    if isinstance(error, ConflictError):
        return 409, "uniqueness"
    if isinstance(error, InvalidInputError):
        return 400, "invalidValue"
    return 400, None


def from_error(error: TenantryError) -> Response:
    status, scim_type = status_and_type(error)
    detail = error.message
    if error.fields:
        detail += " (" + "; ".join(f"{f.field}: {f.reason}" for f in error.fields) + ")"
    return error_response(status, detail, scim_type, challenge=bearer_challenge("scim", error))
