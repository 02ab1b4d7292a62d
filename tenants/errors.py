"""The errors of the domain.

Each carries a stable ``code`` (mapped to an HTTP status in one place, ``app/problems.py``),
a message written for the person who caused it, and where it applies the offending
fields. Nothing here knows about HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, TypeVar

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One reason one input field was refused; ``field`` is a dotted path (``unit_id``)."""

    field: str
    reason: str


class TenantryError(Exception):
    """Base of every error the domain raises on purpose."""

    code: ClassVar[str] = "error"
    title: ClassVar[str] = "Request refused"

    def __init__(
        self,
        message: str,
        *,
        fields: Sequence[FieldProblem] = (),
        extra: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.fields = tuple(fields)
        self.extra = dict(extra or {})


class NotFoundError(TenantryError):
    """The thing does not exist in this organisation (or belongs to another one)."""

    code = "not_found"
    title = "Not found"


class InvalidInputError(TenantryError):
    """The input is well-formed but breaks a rule of the domain."""

    code = "invalid_input"
    title = "Invalid input"


class Problems:
    """The problems of several fields gathered, so that a refused form or request names
    every field that is wrong at once rather than only the first one checked."""

    def __init__(self) -> None:
        self.errors: list[InvalidInputError] = []

    def check(self, check: Callable[[], _T], default: _T) -> _T:
        """``check()``'s value; ``default`` (never used: ``raise_any`` raises) when it
        raised InvalidInputError, which is kept."""
        try:
            return check()
        except InvalidInputError as error:
            self.errors.append(error)
            return default

    def raise_any(self) -> None:
        """InvalidInputError naming every field gathered, with the first one's message."""
        if self.errors:
            raise InvalidInputError(
                self.errors[0].message, fields=[f for e in self.errors for f in e.fields]
            )


class ConflictError(TenantryError):
    """The request clashes with the current state (a duplicate, a stale version)."""

    code = "conflict"
    title = "Conflict"


class PreconditionFailedError(TenantryError):
    """The client's If-Match names a version of the resource that is no longer current
    (RFC 9110 §13.1.1): someone changed it since the client read it."""

    code = "precondition_failed"
    title = "Precondition failed"


class IllegalTransitionError(ConflictError):
    """A lifecycle action that the current status does not allow."""

    code = "illegal_transition"
    title = "Illegal lifecycle transition"


class PermissionDeniedError(TenantryError):
    """The actor is known but may not do this."""

    code = "permission_denied"
    title = "Permission denied"


class AuthenticationError(TenantryError):
    """No valid credential was presented."""

    code = "unauthenticated"
    title = "Authentication required"


class CredentialsMissingError(AuthenticationError):
    """No credential at all (RFC 6750 §3.1: the challenge then names no error)."""
