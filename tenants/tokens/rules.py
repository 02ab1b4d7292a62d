"""Rules of API tokens, as plain functions: what state a token is in, and who may give
which scope to one."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

from tenants.errors import FieldProblem, PermissionDeniedError
from tenants.permissions import PERSONAL_SCOPES, Permission, may_grant

#: A token's name, at most (the column's length; ``ApiToken.name``).
NAME_MAX_LENGTH = 200


class TokenStatus(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


def status_of(
    revoked_at: datetime | None, expires_at: datetime | None, now: datetime
) -> TokenStatus:
    """Revoked wins over expired (a revoked token stays revoked whatever its expiry); a
    token whose expiry is ``now`` is expired, as ``service.authenticate`` refuses it."""
    if revoked_at is not None:
        return TokenStatus.REVOKED
    if expires_at is not None and expires_at <= now:
        return TokenStatus.EXPIRED
    return TokenStatus.ACTIVE


def may_give(issuer: frozenset[Permission], scope: Permission) -> bool:
    """Whether someone holding ``issuer`` may put ``scope`` on a token: an owner (or anyone
    holding all an owner holds) any scope, product and machine scopes included; anyone
    else only a permission they hold, so that a token is never a way to act beyond one's
    own role (the principle of ``members.roles.may_assign``). A personal permission
    (``PERSONAL_SCOPES``) only someone who holds it: an owner, who does not, would
    otherwise approve access to data through a token, past the privacy officer. (An owner
    may still make someone a privacy officer: that is a person, who then decides.)"""
    if scope in PERSONAL_SCOPES:
        return scope in issuer
    return may_grant(issuer, frozenset({scope}))


def check_may_give(issuer: frozenset[Permission], scopes: Iterable[Permission]) -> None:
    """Refuse scopes ``issuer`` may not give (``may_give``). Raises PermissionDeniedError
    naming the ``scopes`` field and each scope beyond; returns None when all may be given."""
    beyond = sorted(s.value for s in scopes if not may_give(issuer, s))
    if beyond:
        listed = ", ".join(beyond)
        raise PermissionDeniedError(
            f"you cannot give a token the scope {listed}: it is beyond your own permissions; "
            "ask an owner",
            fields=[FieldProblem("scopes", f"{listed}: beyond your own permissions")],
        )
