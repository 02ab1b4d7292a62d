"""Errors of SCIM provisioning, one per ``scimType`` of RFC 7644 §3.12 (Table 9) and the
statuses that come without one.

Nothing here knows about HTTP: ``app/scim/errors.py`` maps each ``code`` to its status
and renders the SCIM error body. ``scim_type`` is the RFC's keyword, sent as is.
"""

from __future__ import annotations

from typing import ClassVar

from tenants.errors import TenantryError


class ScimError(TenantryError):
    """Base of the errors the SCIM service provider raises on purpose."""

    code: ClassVar[str] = "scim_error"
    title: ClassVar[str] = "SCIM request refused"
    #: The RFC 7644 §3.12 keyword, or None for errors the RFC gives no scimType.
    scim_type: ClassVar[str | None] = None


class InvalidFilterError(ScimError):
    """The filter syntax is invalid, or it names an attribute or operator that does not
    apply (RFC 7644 §3.4.2.2)."""

    code = "scim_invalid_filter"
    scim_type = "invalidFilter"


class UnknownAttributeError(InvalidFilterError):
    """The filter names an attribute the resource kind does not have."""


class TooManyError(ScimError):
    """The filter would return more results than the service provider allows."""

    code = "scim_too_many"
    scim_type = "tooMany"


class UniquenessError(ScimError):
    """A value must be unique (userName, externalId, a group's displayName, a member's
    email) and another resource has it."""

    code = "scim_uniqueness"
    scim_type = "uniqueness"


class MutabilityError(ScimError):
    """The request would change an attribute whose mutability forbids it."""

    code = "scim_mutability"
    scim_type = "mutability"


class InvalidSyntaxError(ScimError):
    """The request body is not a message of the expected schema (RFC 7644 §3.12)."""

    code = "scim_invalid_syntax"
    scim_type = "invalidSyntax"


class InvalidPathError(ScimError):
    """A PATCH path is malformed or names nothing of the resource."""

    code = "scim_invalid_path"
    scim_type = "invalidPath"


class NoTargetError(ScimError):
    """A PATCH path with a value filter matched no value to work on."""

    code = "scim_no_target"
    scim_type = "noTarget"


class InvalidValueError(ScimError):
    """A value is of the wrong type, missing where required, or refers to nothing."""

    code = "scim_invalid_value"
    scim_type = "invalidValue"


class InvalidVersionError(ScimError):
    """The request names a SCIM protocol version this service provider does not speak."""

    code = "scim_invalid_version"
    scim_type = "invalidVers"


class SensitiveError(ScimError):
    """The request carries information that must not travel in a URL (RFC 7644 §7.5.2)."""

    code = "scim_sensitive"
    scim_type = "sensitive"


class ResourceNotFoundError(ScimError):
    """No such resource in this organisation: never existed, belongs to another
    organisation, or was deleted (RFC 7644 §3.6: later requests answer 404)."""

    code = "scim_not_found"


class PreconditionFailedError(ScimError):
    """``If-Match`` named another version than the resource's current one
    (RFC 7644 §3.14)."""

    code = "scim_precondition_failed"


class PayloadTooLargeError(ScimError):
    """The body, or the number of bulk operations, exceeds the published limits
    (RFC 7644 §3.7.4)."""

    code = "scim_payload_too_large"


class UnsupportedMediaTypeError(ScimError):
    """The body is not JSON (RFC 7644 §3.1: ``application/scim+json``; plain
    ``application/json`` is accepted too)."""

    code = "scim_unsupported_media_type"


class NotImplementedScimError(ScimError):
    """An operation this service provider does not offer (RFC 7644 §3.12: 501)."""

    code = "scim_not_implemented"
