"""The role rules of a member, as plain functions: an organisation always keeps an owner."""

from __future__ import annotations

from collections.abc import Iterable

from tenants.errors import ConflictError, FieldProblem
from tenants.permissions import Role

#: Members with a role beyond ``member``: ``members.staff`` (generated from ``roles``) and
#: the partial index ``members_staff`` on it (migration 0029). A lookup of owners, admins
#: or officers among the members writes it beside its role test (``roles ?| …`` alone
#: cannot use an index), so it reads the few members in that index instead of every
#: member of the organisation.
STAFF = "staff"


def drops_owner(before: Iterable[str], after: Iterable[str]) -> bool:
    """True when the change takes the owner role away from the member."""
    return Role.OWNER.value in set(before) and Role.OWNER.value not in set(after)


def check_keeps_owner(before: Iterable[str], after: Iterable[str], other_owners: int) -> None:
    """Refuse taking the owner role from the organisation's last owner (nobody could then
    manage tokens, the organisation's settings, or give the role back).

    Raises ConflictError naming the ``roles`` field; returns None when the change is fine.
    """
    if drops_owner(before, after) and other_owners < 1:
        raise ConflictError(
            "an organisation always keeps an owner: make someone else owner first",
            fields=[FieldProblem("roles", "would leave the organisation without an owner")],
        )
